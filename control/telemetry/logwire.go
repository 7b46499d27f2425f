package telemetry

import (
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/weft-mesh/weft/control/xds"
)

// The logs receiver reads ExportLogsServiceRequest straight from its wire
// bytes into logEntries (scanLogs), as the trace receiver does with spans:
// the strings of an entry view the request's bytes. It handles what
// proxies and `weft up` send; on anything else (a body that is not a
// string, an attribute value that is not a scalar, a repeated message
// field) it reports !ok and the receiver decodes the request with
// proto.Unmarshal and convertLogs, whose results scanLogs matches exactly
// (the fuzz test compares them).

// Field numbers of opentelemetry.proto.logs.v1.LogRecord (the envelope's
// are spanwire.go's).
const (
	wireLogTime         protowire.Number = 1 // LogRecord
	wireLogSeverityText protowire.Number = 3
	wireLogBody         protowire.Number = 5
	wireLogAttrs        protowire.Number = 6
	wireLogTraceID      protowire.Number = 9
	wireLogSpanID       protowire.Number = 10
	wireLogObserved     protowire.Number = 11
	wireLogEventName    protowire.Number = 12
)

// scanLogs reads an ExportLogsServiceRequest's bytes as convertLogs
// converts the decoded request; now stamps records without a time. ok is
// false when b needs proto.Unmarshal. b must not change afterwards.
func scanLogs(id xds.Identity, b []byte, now time.Time) (out []logEntry, rejected int64, msg string, ok bool) {
	ok = walkExport(b, func(ri *resourceInfo, recs [][]byte) bool {
		out = slices.Grow(out, len(recs))
		for _, rb := range recs {
			e, ok := scanLog(rb, ri, now)
			if !ok {
				return false
			}
			if !allowed(id, e.namespace) {
				rejected++
				if msg == "" {
					msg = fmt.Sprintf("%s may not send logs of namespace %q", id.Subject, e.namespace)
				}
				continue
			}
			out = append(out, e)
		}
		return true
	})
	if !ok {
		return nil, 0, "", false
	}
	return out, rejected, msg, true
}

// scanLog reads one LogRecord.
func scanLog(b []byte, ri *resourceInfo, now time.Time) (e logEntry, ok bool) {
	e = logEntry{namespace: ri.namespace, workload: ri.service, instance: ri.instance}
	var at, observed uint64
	var traceID, spanID []byte
	var attrTrace [16]byte // the first valid trace_id attribute
	body := false
	for len(b) > 0 {
		f, n := nextField(b)
		if n < 0 {
			return e, false
		}
		b = b[n:]
		switch f.typ {
		case protowire.Fixed64Type:
			switch f.num {
			case wireLogTime:
				at = f.v
			case wireLogObserved:
				observed = f.v
			}
		case protowire.BytesType:
			switch f.num {
			case wireLogSeverityText:
				if !utf8.Valid(f.b) {
					return e, false
				}
				e.severity = viewString(f.b)
			case wireLogEventName:
				if !utf8.Valid(f.b) {
					return e, false
				}
			case wireLogBody:
				if body {
					return e, false // repeated: the values merge
				}
				body = true
				if e.body, ok = bodyString(f.b); !ok {
					return e, false
				}
			case wireLogAttrs:
				if !e.attribute(f.b, &attrTrace) {
					return e, false
				}
			case wireLogTraceID:
				traceID = f.b
			case wireLogSpanID:
				spanID = f.b
			}
		}
	}
	// The record's own trace id wins over a trace_id attribute.
	if !validID(e.traceID[:], traceID) {
		e.traceID = attrTrace
	}
	if !validID(e.spanID[:], spanID) {
		e.spanID = [8]byte{}
	}
	switch {
	case at != 0:
		e.time = unixNano(at)
	case observed != 0:
		e.time = unixNano(observed)
	default:
		e.time = now
	}
	return e, true
}

// bodyString is a log body as bodyText renders it, for the bodies it
// handles without the proto decoder: none, empty, or one string.
func bodyString(b []byte) (string, bool) {
	if len(b) == 0 {
		return "null", true // an AnyValue with no value
	}
	f, n := nextField(b)
	if n != len(b) || f.num != wireAnyString || f.typ != protowire.BytesType || !utf8.Valid(f.b) {
		return "", false
	}
	return viewString(f.b), true
}

// attribute applies one attribute (a KeyValue) of a log record as
// convertLogs does: namespace, workload, instance, stream and trace_id
// override what the resource said, when their value is a string (any
// other scalar reads as ""); the first valid trace_id goes to trace.
func (e *logEntry) attribute(b []byte, trace *[16]byte) bool {
	key, value, hasValue, simple, ok := splitKV(b)
	if !ok || !simple {
		return false
	}
	var v string
	if hasValue && len(value) > 0 {
		f, n := nextField(value)
		if n != len(value) {
			return false
		}
		switch {
		case f.num == wireAnyString && f.typ == protowire.BytesType:
			if !utf8.Valid(f.b) {
				return false
			}
			v = viewString(f.b)
		case f.num == wireAnyBool && f.typ == protowire.VarintType,
			f.num == wireAnyInt && f.typ == protowire.VarintType,
			f.num == wireAnyDouble && f.typ == protowire.Fixed64Type,
			f.num == wireAnyBytes && f.typ == protowire.BytesType:
		default:
			return false
		}
	}
	switch viewString(key) {
	case attrNamespace:
		e.namespace = v
	case attrWorkload:
		e.workload = v
	case attrInstance:
		e.instance = v
	case attrStream:
		e.stream, e.app = v, true
	case attrTraceID:
		if id, ok := hexID(v, 32); ok && *trace == ([16]byte{}) {
			decodeID(trace[:], id)
		}
	}
	return true
}
