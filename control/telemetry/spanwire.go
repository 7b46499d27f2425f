package telemetry

import (
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"time"
	"unicode/utf8"
	"unsafe"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/accessrec"
)

// The trace receiver reads ExportTraceServiceRequest straight from its
// wire bytes into compact records (scanSpans, spanRec) rather than into
// message structs: a span's ~18 attributes would cost some 90
// allocations there. A record keeps the span's bytes; spanDecoder turns
// them into a Span when a trace is asked for. The reader handles what
// proxies send; on anything else (a repeated singular message field, an
// array or map value merged from parts) it reports !ok and the receiver
// decodes the request with proto.Unmarshal and convertSpans, whose
// results the records decode to exactly (the fuzz test compares them).

// Field numbers of opentelemetry.proto.{collector.trace,trace,common}.v1.
const (
	// ExportTraceServiceRequest and ExportLogsServiceRequest
	wireResourceSpans protowire.Number = 1

	// ResourceSpans and ResourceLogs
	wireRSResource   protowire.Number = 1
	wireRSScopeSpans protowire.Number = 2

	wireResourceAttrs protowire.Number = 1 // Resource

	// ScopeSpans and ScopeLogs
	wireSSScope protowire.Number = 1
	wireSSSpans protowire.Number = 2

	wireSpanTraceID    protowire.Number = 1
	wireSpanSpanID     protowire.Number = 2
	wireSpanTraceState protowire.Number = 3
	wireSpanParentID   protowire.Number = 4
	wireSpanName       protowire.Number = 5
	wireSpanKind       protowire.Number = 6
	wireSpanStart      protowire.Number = 7
	wireSpanEnd        protowire.Number = 8
	wireSpanAttrs      protowire.Number = 9
	wireSpanEvents     protowire.Number = 11
	wireSpanLinks      protowire.Number = 13
	wireSpanStatus     protowire.Number = 15

	wireStatusMessage protowire.Number = 2
	wireStatusCode    protowire.Number = 3

	wireKVKey   protowire.Number = 1 // KeyValue
	wireKVValue protowire.Number = 2

	wireAnyString protowire.Number = 1 // AnyValue
	wireAnyBool   protowire.Number = 2
	wireAnyInt    protowire.Number = 3
	wireAnyDouble protowire.Number = 4
	wireAnyBytes  protowire.Number = 7
)

// wireField is one field of a message.
type wireField struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // varint, fixed32 and fixed64 values
	b   []byte // bytes value
}

// nextField consumes the first field of b; n < 0 when b is malformed.
func nextField(b []byte) (f wireField, n int) {
	// Fast path: a one-byte tag (fields 1-15) and a one-byte length or
	// varint, which is nearly every field of a span or log record.
	if len(b) >= 2 && b[0] < 0x80 && b[0] >= 1<<3 {
		f.num, f.typ = protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
		switch f.typ {
		case protowire.BytesType:
			if l := int(b[1]); l < 0x80 && 2+l <= len(b) {
				f.b = b[2 : 2+l]
				return f, 2 + l
			}
		case protowire.VarintType:
			if b[1] < 0x80 {
				f.v = uint64(b[1])
				return f, 2
			}
		case protowire.Fixed64Type:
			if len(b) >= 9 {
				f.v = binary.LittleEndian.Uint64(b[1:9])
				return f, 9
			}
		}
		f = wireField{}
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return f, n
	}
	if num > protowire.MaxValidNumber {
		return f, -1 // ConsumeTag checks only the lower bound
	}
	f.num, f.typ = num, typ
	rest := b[n:]
	var m int
	switch typ {
	case protowire.VarintType:
		f.v, m = protowire.ConsumeVarint(rest)
	case protowire.Fixed32Type:
		var v uint32
		v, m = protowire.ConsumeFixed32(rest)
		f.v = uint64(v)
	case protowire.Fixed64Type:
		f.v, m = protowire.ConsumeFixed64(rest)
	case protowire.BytesType:
		f.b, m = protowire.ConsumeBytes(rest)
	default:
		m = protowire.ConsumeFieldValue(num, typ, rest)
	}
	if m < 0 {
		return f, m
	}
	return f, n + m
}

// spanDecoder decodes stored spans' bytes into Spans. Strings view the
// bytes, which must not change afterwards.
type spanDecoder struct {
	// values, when not nil, interns the boxed attribute values of the
	// spans it decodes (most repeat on every span: methods, workloads,
	// clusters).
	values map[string]any
}

// viewString views b as a string.
func viewString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// scanSpans reads an ExportTraceServiceRequest's bytes into records that
// keep each span's bytes (spanRec); it checks every field convertSpans
// would read, so a record decodes later as convertSpans converts it. ok
// is false when b needs proto.Unmarshal (it is malformed or uses a form
// the decoder leaves to it). b must not change afterwards.
func scanSpans(id xds.Identity, b []byte) (out []spanRec, rejected int64, msg string, ok bool) {
	reject := func(n int, why string) {
		rejected += int64(n)
		if msg == "" {
			msg = why
		}
	}
	ok = walkExport(b, func(ri *resourceInfo, spans [][]byte) bool {
		allow := allowed(id, ri.namespace)
		if allow {
			out = slices.Grow(out, len(spans))
		}
		for _, sb := range spans {
			rec, valid, ok := scanSpan(sb, ri)
			switch {
			case !ok:
				return false
			case !allow:
			case !valid:
				reject(1, "a span needs a 16-byte trace id and an 8-byte span id")
			default:
				out = append(out, rec)
			}
		}
		if !allow {
			reject(len(spans), spanNamespaceDenied(id, ri.namespace))
		}
		return true
	})
	if !ok {
		return nil, 0, "", false
	}
	return out, rejected, msg, true
}

// walkExport walks an OTLP export request (ExportTraceServiceRequest and
// ExportLogsServiceRequest share their layout: resource entries, each
// with a resource and scope entries, each with a scope and records) and
// calls fn with each resource entry's resource and the bytes of its
// records, in order. It returns false when b is malformed, when a
// resource or scope is not valid (the proto decoder checks those, once
// per entry), or when fn does.
func walkExport(b []byte, fn func(ri *resourceInfo, recs [][]byte) bool) bool {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if f.num != wireResourceSpans || f.typ != protowire.BytesType {
			continue
		}
		ri, recs, ok := readResourceEntry(f.b)
		if !ok || !fn(&ri, recs) {
			return false
		}
	}
	return true
}

// readResourceEntry reads a ResourceSpans or ResourceLogs: its resource
// (which may follow the scopes) and its records' bytes.
func readResourceEntry(b []byte) (ri resourceInfo, recs [][]byte, ok bool) {
	res := &resourcepb.Resource{}
	var scopes [][]byte
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return ri, nil, false
		}
		b = b[n:]
		switch {
		case f.num == wireRSResource && f.typ == protowire.BytesType:
			// Repeated resources merge, as proto.Unmarshal does.
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(f.b, res); err != nil {
				return ri, nil, false
			}
		case f.num == wireRSScopeSpans && f.typ == protowire.BytesType:
			scopes = append(scopes, f.b)
		case f.typ == protowire.BytesType && !validUnknownString(f):
			return ri, nil, false
		}
	}
	for _, sb := range scopes {
		for len(sb) > 0 {
			f, n := nextField(sb)
			if n < 0 {
				return ri, nil, false
			}
			sb = sb[n:]
			switch {
			case f.num == wireSSScope && f.typ == protowire.BytesType:
				if proto.Unmarshal(f.b, &commonpb.InstrumentationScope{}) != nil {
					return ri, nil, false
				}
			case f.num == wireSSSpans && f.typ == protowire.BytesType:
				recs = append(recs, f.b)
			case f.typ == protowire.BytesType && !validUnknownString(f):
				return ri, nil, false
			}
		}
	}
	return readResource(res), recs, true
}

// validUnknownString reports whether a bytes field the decoder skips in
// ResourceSpans or ScopeSpans is valid: schema_url (3) must be UTF-8.
func validUnknownString(f wireField) bool {
	return f.num != 3 || utf8.Valid(f.b)
}

// spanWire is what the hub reads of a Span's fields, as views of its
// bytes.
type spanWire struct {
	traceID, spanID, parentID, name, statusMsg []byte
	kind, statusCode, start, end               uint64
}

// readSpan reads one Span's fields, calling attr with the bytes of each
// attribute (a KeyValue); ok is false when b is malformed or attr says so.
func readSpan(b []byte, attr func(kv []byte) bool) (w spanWire, ok bool) {
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return w, false
		}
		b = b[n:]
		switch f.typ {
		case protowire.BytesType:
			switch f.num {
			case wireSpanTraceID:
				w.traceID = f.b
			case wireSpanSpanID:
				w.spanID = f.b
			case wireSpanParentID:
				w.parentID = f.b
			case wireSpanName:
				// Every occurrence of a string field must be UTF-8, as the
				// proto decoder checks each before the last one wins.
				if !utf8.Valid(f.b) {
					return w, false
				}
				w.name = f.b
			case wireSpanTraceState:
				if !utf8.Valid(f.b) {
					return w, false
				}
			case wireSpanAttrs:
				if !attr(f.b) {
					return w, false
				}
			case wireSpanEvents:
				if proto.Unmarshal(f.b, &tracepb.Span_Event{}) != nil {
					return w, false
				}
			case wireSpanLinks:
				if proto.Unmarshal(f.b, &tracepb.Span_Link{}) != nil {
					return w, false
				}
			case wireSpanStatus:
				// Repeated status fields merge: later values win.
				for st := f.b; len(st) > 0; {
					g, m := nextField(st)
					if m < 0 {
						return w, false
					}
					st = st[m:]
					switch {
					case g.num == wireStatusMessage && g.typ == protowire.BytesType:
						if !utf8.Valid(g.b) {
							return w, false
						}
						w.statusMsg = g.b
					case g.num == wireStatusCode && g.typ == protowire.VarintType:
						w.statusCode = g.v
					}
				}
			}
		case protowire.VarintType:
			if f.num == wireSpanKind {
				w.kind = f.v
			}
		case protowire.Fixed64Type:
			switch f.num {
			case wireSpanStart:
				w.start = f.v
			case wireSpanEnd:
				w.end = f.v
			}
		}
	}
	return w, true
}

// validID copies b into dst when it has dst's length and is not all zero.
func validID(dst, b []byte) bool {
	if len(b) != len(dst) {
		return false
	}
	copy(dst, b)
	for _, c := range b {
		if c != 0 {
			return true
		}
	}
	return false
}

// scanSpan reads one Span into a record, checking its attributes without
// decoding them; valid is false when its ids are missing.
func scanSpan(b []byte, ri *resourceInfo) (r spanRec, valid, ok bool) {
	var carries bool
	w, ok := readSpan(b, func(kv []byte) bool {
		ok, known := checkSimpleAttribute(kv)
		if known {
			if ok && viewString(kv[2:2+int(kv[1])]) == accessrec.AttrCarries {
				// Only bool_value true: tag 0x10 and a varint that is not
				// zero.
				v := kv[2+int(kv[1]):][2:]
				x, _ := protowire.ConsumeVarint(v[1:])
				carries = v[0] == 0x10 && x != 0
			}
			return ok
		}
		if !checkAttribute(kv) {
			return false
		}
		if key, v, isKey := carriesAttribute(kv); isKey {
			carries = v
		} else if key == nil {
			return false
		}
		return true
	})
	if !ok {
		return r, false, false
	}
	r = spanRec{name: viewString(w.name), res: ri, raw: b, carries: carries,
		status: tracepb.Status_StatusCode(int32(w.statusCode))}
	if !validID(r.traceID[:], w.traceID) || !validID(r.spanID[:], w.spanID) {
		return r, false, true
	}
	if !validID(r.parent[:], w.parentID) {
		r.parent = [8]byte{}
	}
	r.start, r.end = w.start, w.end
	if unixNano(r.start).IsZero() {
		r.start = 0
	}
	if unixNano(r.end).IsZero() {
		r.end = 0
	}
	r.end = max(r.end, r.start)
	return r, true, true
}

// carriesAttribute reads a checked KeyValue: isKey when its key is
// accessrec.AttrCarries, and then whether its value is true. key is nil
// only when kv does not read (it was checked, so never).
func carriesAttribute(kv []byte) (key []byte, carries, isKey bool) {
	key, value, hasValue, simple, ok := splitKV(kv)
	if !ok {
		return nil, false, false
	}
	if key == nil {
		key = []byte{}
	}
	if viewString(key) != accessrec.AttrCarries {
		return key, false, false
	}
	var v any
	switch {
	case !simple:
		m := &commonpb.KeyValue{}
		if proto.Unmarshal(kv, m) != nil {
			return nil, false, false
		}
		v = anyValue(m.GetValue())
	case hasValue:
		v, _ = (&spanDecoder{}).value(value)
	}
	return key, v == true, true
}

// span decodes one Span; valid is false when its ids are missing.
func (d *spanDecoder) span(b []byte, ri resourceInfo) (s Span, valid, ok bool) {
	var attrs map[string]any
	w, ok := readSpan(b, func(kv []byte) bool {
		if attrs == nil {
			attrs = map[string]any{}
		}
		return d.attribute(attrs, kv)
	})
	if !ok {
		return s, false, false
	}
	s = Span{
		Name: viewString(w.name), Status: statusName(tracepb.Status_StatusCode(int32(w.statusCode))), StatusMessage: viewString(w.statusMsg),
		Service: ri.service, Namespace: ri.namespace, Instance: ri.instance, Attributes: attrs,
	}
	s.TraceID, s.SpanID, s.ParentSpanID = spanIDs(w.traceID, w.spanID, w.parentID)
	if s.TraceID == "" || s.SpanID == "" {
		return s, false, true
	}
	s.Start, s.End = unixNano(w.start), unixNano(w.end)
	if s.End.Before(s.Start) {
		s.End = s.Start
	}
	s.DurationMS = float64(s.End.Sub(s.Start)) / float64(time.Millisecond)
	k, known := spanKinds[tracepb.Span_SpanKind(int32(w.kind))]
	if !known {
		k = "UNSPECIFIED"
	}
	s.Kind = k
	return s, true, true
}

// spanIDs renders a span's ids as hexBytes does, in one allocation.
func spanIDs(traceID, spanID, parentID []byte) (t, s, p string) {
	valid := func(b []byte, n int) bool {
		if len(b) != n {
			return false
		}
		for _, c := range b {
			if c != 0 {
				return true
			}
		}
		return false
	}
	vt, vs, vp := valid(traceID, 16), valid(spanID, 8), valid(parentID, 8)
	var buf [64]byte
	h := buf[:0]
	if vt {
		h = hex.AppendEncode(h, traceID)
	}
	if vs {
		h = hex.AppendEncode(h, spanID)
	}
	if vp {
		h = hex.AppendEncode(h, parentID)
	}
	all := string(h)
	if vt {
		t, all = all[:32], all[32:]
	}
	if vs {
		s, all = all[:16], all[16:]
	}
	return t, s, all
}

// splitKV reads a KeyValue: its key (every occurrence checked to be
// UTF-8) and its value's bytes; simple is false when the value field
// repeats (values merge: the proto decoder's job).
func splitKV(b []byte) (key, value []byte, hasValue, simple, ok bool) {
	simple = true
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return nil, nil, false, false, false
		}
		b = b[n:]
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case wireKVKey:
			if !utf8.Valid(f.b) { // each occurrence, as the proto decoder
				return nil, nil, false, false, false
			}
			key = f.b
		case wireKVValue:
			if hasValue {
				simple = false
			}
			value, hasValue = f.b, true
		}
	}
	return key, value, hasValue, simple, true
}

// checkAttribute reports whether one KeyValue is valid: whether
// spanDecoder.attribute decodes it.
func checkAttribute(b []byte) bool {
	if ok, known := checkSimpleAttribute(b); known {
		return ok
	}
	_, value, hasValue, simple, ok := splitKV(b)
	switch {
	case !ok:
		return false
	case !simple:
		return proto.Unmarshal(b, &commonpb.KeyValue{}) == nil
	case !hasValue || len(value) == 0:
		return true
	}
	f, n := nextField(value)
	if n < 0 {
		return false
	}
	if n == len(value) {
		switch {
		case f.num == wireAnyString && f.typ == protowire.BytesType:
			return utf8.Valid(f.b)
		case f.num == wireAnyBool && f.typ == protowire.VarintType,
			f.num == wireAnyInt && f.typ == protowire.VarintType,
			f.num == wireAnyDouble && f.typ == protowire.Fixed64Type,
			f.num == wireAnyBytes && f.typ == protowire.BytesType:
			return true
		}
	}
	return proto.Unmarshal(value, &commonpb.AnyValue{}) == nil
}

// checkSimpleAttribute checks, without the field walk, the KeyValue most
// attributes are: a key and a string, int or bool value, each length one
// byte long. known is false for any other layout (checkAttribute walks
// it).
func checkSimpleAttribute(b []byte) (ok, known bool) {
	// 0x0a len key 0x12 len (0x0a len string | 0x18 varint | 0x10 varint)
	if len(b) < 4 || b[0] != 0x0a || b[1] >= 0x80 {
		return false, false
	}
	kl := int(b[1])
	v := b[2+min(kl, len(b)-2):]
	if 2+kl > len(b) || len(v) < 3 || v[0] != 0x12 || v[1] >= 0x80 || int(v[1]) != len(v)-2 {
		return false, false
	}
	switch v = v[2:]; v[0] {
	case 0x0a: // string_value
		if len(v) < 2 || v[1] >= 0x80 || int(v[1]) != len(v)-2 {
			return false, false
		}
		// The tags and lengths between key and value are ASCII: the whole
		// is valid UTF-8 exactly when key and value are.
		return utf8.Valid(b[2:]), true
	case 0x10, 0x18: // bool_value, int_value
		if _, n := protowire.ConsumeVarint(v[1:]); n != len(v)-1 {
			return false, false
		}
		return utf8.Valid(b[2 : 2+kl]), true
	}
	return false, false
}

// attribute decodes one KeyValue into m.
func (d *spanDecoder) attribute(m map[string]any, b []byte) bool {
	key, value, hasValue, simple, ok := splitKV(b)
	if !ok {
		return false
	}
	if !simple {
		// Repeated values merge: leave it to the proto decoder.
		kv := &commonpb.KeyValue{}
		if proto.Unmarshal(b, kv) != nil {
			return false
		}
		m[kv.GetKey()] = anyValue(kv.GetValue())
		return true
	}
	var v any
	if hasValue {
		if v, ok = d.value(value); !ok {
			return false
		}
	}
	m[viewString(key)] = v
	return true
}

// value decodes one AnyValue as anyValue converts it.
func (d *spanDecoder) value(b []byte) (any, bool) {
	if len(b) == 0 {
		return nil, true
	}
	f, n := nextField(b)
	if n < 0 {
		return nil, false
	}
	if n != len(b) {
		// More than one field (a oneof set twice): the proto decoder.
		av := &commonpb.AnyValue{}
		if proto.Unmarshal(b, av) != nil {
			return nil, false
		}
		return anyValue(av), true
	}
	switch {
	case f.num == wireAnyString && f.typ == protowire.BytesType:
		if v, ok := d.values[viewString(f.b)]; ok {
			return v, true
		}
		if !utf8.Valid(f.b) {
			return nil, false
		}
		var v any = viewString(f.b)
		if d.values != nil {
			d.values[viewString(f.b)] = v
		}
		return v, true
	case f.num == wireAnyBool && f.typ == protowire.VarintType:
		return f.v != 0, true
	case f.num == wireAnyInt && f.typ == protowire.VarintType:
		i := int64(f.v)
		if i > 1<<53 || i < -(1<<53) {
			return anyValue(&commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}), true
		}
		return i, true
	case f.num == wireAnyDouble && f.typ == protowire.Fixed64Type:
		return finite(math.Float64frombits(f.v)), true
	case f.num == wireAnyBytes && f.typ == protowire.BytesType:
		return hex.EncodeToString(f.b), true
	}
	// Arrays, maps, unknown fields: the proto decoder.
	av := &commonpb.AnyValue{}
	if proto.Unmarshal(b, av) != nil {
		return nil, false
	}
	return anyValue(av), true
}
