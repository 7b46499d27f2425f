package telemetry

import (
	"encoding/hex"
	"math"
	"time"
	"unicode/utf8"
	"unsafe"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
)

// The trace receiver decodes ExportTraceServiceRequest straight from its
// wire bytes into Spans (decodeSpans) rather than into message structs:
// a span's ~18 attributes would cost some 90 allocations there. The
// decoder handles what proxies send; on anything else (a repeated
// singular message field, an array or map value merged from parts) it
// reports !ok and the receiver decodes the request with proto.Unmarshal
// and convertSpans, whose results decodeSpans matches exactly (the fuzz
// test compares them).

// Field numbers of opentelemetry.proto.{collector.trace,trace,common}.v1.
const (
	wireResourceSpans protowire.Number = 1 // ExportTraceServiceRequest

	wireRSResource   protowire.Number = 1 // ResourceSpans
	wireRSScopeSpans protowire.Number = 2

	wireResourceAttrs protowire.Number = 1 // Resource

	wireSSScope protowire.Number = 1 // ScopeSpans
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
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return f, n
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

// spanDecoder holds what one request's spans share. Strings view the
// request's bytes, which must not change afterwards.
type spanDecoder struct {
	// values interns the boxed attribute values of one request (most
	// repeat on every span: methods, workloads, clusters).
	values map[string]any
}

// viewString views b as a string.
func viewString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// decodeSpans decodes an ExportTraceServiceRequest's bytes as
// convertSpans converts the decoded request; ok is false when b needs
// proto.Unmarshal (it is malformed or uses a form the decoder leaves to
// it). b must not change afterwards: the spans' strings view it.
func decodeSpans(id xds.Identity, b []byte) (out []Span, rejected int64, msg string, ok bool) {
	d := spanDecoder{values: map[string]any{}}
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return nil, 0, "", false
		}
		b = b[n:]
		if f.num != wireResourceSpans || f.typ != protowire.BytesType {
			continue
		}
		var r int64
		var m string
		if out, r, m, ok = d.resourceSpans(id, f.b, out); !ok {
			return nil, 0, "", false
		}
		rejected += r
		if msg == "" {
			msg = m
		}
	}
	return out, rejected, msg, true
}

func (d *spanDecoder) resourceSpans(id xds.Identity, b []byte, out []Span) (_ []Span, rejected int64, msg string, ok bool) {
	// The resource may follow the spans: find it first.
	res := &resourcepb.Resource{}
	var scopes [][]byte
	for rest := b; len(rest) > 0; {
		f, n := nextField(rest)
		if n < 0 {
			return nil, 0, "", false
		}
		rest = rest[n:]
		switch {
		case f.num == wireRSResource && f.typ == protowire.BytesType:
			// Once per request: the proto decoder is fine (and merges
			// repeated resources as proto.Unmarshal does).
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(f.b, res); err != nil {
				return nil, 0, "", false
			}
		case f.num == wireRSScopeSpans && f.typ == protowire.BytesType:
			scopes = append(scopes, f.b)
		case f.typ == protowire.BytesType && !validUnknownString(f):
			return nil, 0, "", false
		}
	}
	ri := readResource(res)
	allow := allowed(id, ri.namespace)
	n := 0
	for _, sb := range scopes {
		for len(sb) > 0 {
			f, m := nextField(sb)
			if m < 0 {
				return nil, 0, "", false
			}
			sb = sb[m:]
			switch {
			case f.num == wireSSScope && f.typ == protowire.BytesType:
				if proto.Unmarshal(f.b, &commonpb.InstrumentationScope{}) != nil {
					return nil, 0, "", false
				}
			case f.num == wireSSSpans && f.typ == protowire.BytesType:
				sp, valid, ok := d.span(f.b, ri)
				if !ok {
					return nil, 0, "", false
				}
				n++
				if !allow {
					continue
				}
				if !valid {
					rejected++
					if msg == "" {
						msg = "a span needs a 16-byte trace id and an 8-byte span id"
					}
					continue
				}
				out = append(out, sp)
			case f.typ == protowire.BytesType && !validUnknownString(f):
				return nil, 0, "", false
			}
		}
	}
	if !allow {
		return out, int64(n), spanNamespaceDenied(id, ri.namespace), true
	}
	return out, rejected, msg, true
}

// validUnknownString reports whether a bytes field the decoder skips in
// ResourceSpans or ScopeSpans is valid: schema_url (3) must be UTF-8.
func validUnknownString(f wireField) bool {
	return f.num != 3 || utf8.Valid(f.b)
}

// span decodes one Span; valid is false when its ids are missing.
func (d *spanDecoder) span(b []byte, ri resourceInfo) (s Span, valid, ok bool) {
	var traceID, spanID, parentID, name, statusMsg []byte
	var kind, statusCode, start, end uint64
	var attrs [][]byte
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return s, false, false
		}
		b = b[n:]
		switch f.typ {
		case protowire.BytesType:
			switch f.num {
			case wireSpanTraceID:
				traceID = f.b
			case wireSpanSpanID:
				spanID = f.b
			case wireSpanParentID:
				parentID = f.b
			case wireSpanName:
				name = f.b
			case wireSpanTraceState:
				if !utf8.Valid(f.b) {
					return s, false, false
				}
			case wireSpanAttrs:
				attrs = append(attrs, f.b)
			case wireSpanEvents:
				if proto.Unmarshal(f.b, &tracepb.Span_Event{}) != nil {
					return s, false, false
				}
			case wireSpanLinks:
				if proto.Unmarshal(f.b, &tracepb.Span_Link{}) != nil {
					return s, false, false
				}
			case wireSpanStatus:
				// Repeated status fields merge: later values win.
				for st := f.b; len(st) > 0; {
					g, m := nextField(st)
					if m < 0 {
						return s, false, false
					}
					st = st[m:]
					switch {
					case g.num == wireStatusMessage && g.typ == protowire.BytesType:
						statusMsg = g.b
					case g.num == wireStatusCode && g.typ == protowire.VarintType:
						statusCode = g.v
					}
				}
			}
		case protowire.VarintType:
			if f.num == wireSpanKind {
				kind = f.v
			}
		case protowire.Fixed64Type:
			switch f.num {
			case wireSpanStart:
				start = f.v
			case wireSpanEnd:
				end = f.v
			}
		}
	}
	if !utf8.Valid(name) || !utf8.Valid(statusMsg) {
		return s, false, false
	}
	s = Span{
		Name: viewString(name), Status: statusName(tracepb.Status_StatusCode(int32(statusCode))), StatusMessage: viewString(statusMsg),
		Service: ri.service, Namespace: ri.namespace, Instance: ri.instance,
	}
	if len(attrs) > 0 {
		s.Attributes = make(map[string]any, len(attrs))
		for _, kv := range attrs {
			if !d.attribute(s.Attributes, kv) {
				return s, false, false
			}
		}
	}
	s.TraceID, s.SpanID, s.ParentSpanID = spanIDs(traceID, spanID, parentID)
	if s.TraceID == "" || s.SpanID == "" {
		return s, false, true
	}
	s.Start, s.End = unixNano(start), unixNano(end)
	if s.End.Before(s.Start) {
		s.End = s.Start
	}
	s.DurationMS = float64(s.End.Sub(s.Start)) / float64(time.Millisecond)
	k, known := spanKinds[tracepb.Span_SpanKind(int32(kind))]
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

// attribute decodes one KeyValue into m.
func (d *spanDecoder) attribute(m map[string]any, b []byte) bool {
	var key []byte
	var values [][]byte
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case wireKVKey:
			key = f.b
		case wireKVValue:
			values = append(values, f.b)
		}
	}
	if !utf8.Valid(key) {
		return false
	}
	var v any
	switch len(values) {
	case 0:
	case 1:
		var ok bool
		if v, ok = d.value(values[0]); !ok {
			return false
		}
	default:
		// Repeated values merge: leave it to the proto decoder.
		av := &commonpb.AnyValue{}
		for _, vb := range values {
			if (proto.UnmarshalOptions{Merge: true}).Unmarshal(vb, av) != nil {
				return false
			}
		}
		v = anyValue(av)
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
		d.values[viewString(f.b)] = v
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
