package proxy

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/weft-mesh/weft/proxy/otlpexport"
)

// A finished request leaves the request path as a doneRec: a fixed-size
// value copied into the record queue (telemetry_queue.go). The telemetry
// goroutine renders its JSON access record and encodes its OTLP span and
// log record straight into reused buffers (no message structs).

// doneBits are a doneRec's flags.
type doneBits uint8

const (
	bitTCP        doneBits = 1 << iota // a TCP connection, not an HTTP request
	bitGRPC                            // a gRPC request
	bitTraceValid                      // traceID holds an id
	bitSpan                            // export a span
	bitFailed                          // 5xx, local reply or an error flag
)

// doneRec is what the access record, the span and the OTLP log record of
// one finished request are made of. Its strings are immutable: those that
// viewed connection buffers are copied into the queue's arena when it is
// queued. Not safe for concurrent use.
type doneRec struct {
	start, end        int64 // Unix ns
	dur, upDur        time.Duration
	bytesIn, bytesOut int64
	traceID           [16]byte
	spanID, parent    [8]byte
	status, attempts  int32
	flags             respFlags
	rep               reporter
	bits              doneBits

	// Long-lived: config names, endpoint metadata, identities, constants.
	listener, route, cluster, upstream, reason string
	srcP, dstP, dstWL, dstNS, dstSvc           string
	// Per request: copied into the arena when queued.
	srcWL, srcNS, method, authority, path, protocol string
	userAgent, requestID, grpcStatus, tracestate    string
}

// pack fills d from a finished request.
func (t *telemetry) pack(d *doneRec, r *reqRecord, end time.Time, dur time.Duration) {
	srcP, dstP := t.principals(r)
	*d = doneRec{
		start: r.start.UnixNano(), end: end.UnixNano(), dur: dur, upDur: r.upDur,
		bytesIn: r.bytesIn, bytesOut: r.bytesOut,
		traceID: r.trace.traceID, spanID: r.trace.spanID, parent: r.trace.parent,
		status: int32(r.status), attempts: int32(r.attempts), flags: r.flags, rep: r.rep,
		listener: r.listener, route: r.route, cluster: r.cluster, upstream: r.upstream, reason: r.reason,
		srcP: srcP, dstP: dstP, dstWL: r.dstWL, dstNS: r.dstNS, dstSvc: r.dstSvc,
		srcWL: r.srcWL, srcNS: r.srcNS, method: r.method, authority: r.authority, path: r.path, protocol: r.protocol,
		userAgent: r.userAgent, requestID: r.requestID, grpcStatus: r.grpcStatus, tracestate: r.trace.tracestate,
	}
	if r.tcp {
		d.bits |= bitTCP
	}
	if r.grpc {
		d.bits |= bitGRPC
	}
	if r.trace.valid {
		d.bits |= bitTraceValid
	}
	if r.failed() {
		d.bits |= bitFailed
	}
	if r.recordSpan() {
		d.bits |= bitSpan
	}
}

// ownStrings copies the strings that may view connection buffers into
// arena, and points d at the copies.
func (d *doneRec) ownStrings(arena []byte) []byte {
	for _, s := range [...]*string{&d.srcWL, &d.srcNS, &d.method, &d.authority, &d.path, &d.protocol,
		&d.userAgent, &d.requestID, &d.grpcStatus, &d.tracestate} {
		if len(*s) == 0 {
			continue
		}
		off := len(arena)
		arena = append(arena, *s...)
		// The arena's bytes are not written again until the record is
		// encoded; when append moves them, the old array stays alive.
		*s = unsafe.String(&arena[off], len(*s))
	}
	return arena
}

// appendTimeMicros appends the UTC time ns (Unix) as
// time.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00") does, without
// parsing the layout.
func appendTimeMicros(b []byte, ns int64) []byte {
	t := time.Unix(0, ns).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	}
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	b = two(two(b, y/100), y%100)
	b = two(append(b, '-'), int(mo))
	b = two(append(b, '-'), d)
	b = two(append(b, 'T'), h)
	b = two(append(b, ':'), mi)
	b = two(append(b, ':'), s)
	us := t.Nanosecond() / 1000
	b = two(two(two(append(b, '.'), us/10000), us/100%100), us%100)
	return append(b, 'Z')
}

// appendRecord appends the access record of d as one JSON object
// (docs/observability.md).
func appendRecord(b []byte, d *doneRec) []byte {
	b = append(b, `{"time":"`...)
	b = appendTimeMicros(b, d.start)
	tcp := d.bits&bitTCP != 0
	if tcp {
		b = append(b, `","kind":"tcp"`...)
	} else {
		b = append(b, `","kind":"http"`...)
	}
	b = jsonField(b, "reporter", d.rep.String())
	b = append(b, `,"trace_id":"`...)
	if d.bits&bitTraceValid != 0 {
		b = hex.AppendEncode(b, d.traceID[:])
		b = append(b, `","span_id":"`...)
		if !isZero(d.spanID[:]) {
			b = hex.AppendEncode(b, d.spanID[:])
		}
	} else {
		b = append(b, `","span_id":"`...)
	}
	b = append(b, '"')
	b = jsonField(b, "request_id", d.requestID)
	b = jsonField(b, "listener", d.listener)
	b = jsonField(b, "route", d.route)
	if !tcp {
		b = jsonField(b, "method", d.method)
		b = jsonField(b, "authority", d.authority)
		b = jsonField(b, "path", d.path)
		b = jsonField(b, "protocol", d.protocol)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(d.status), 10)
		b = jsonField(b, "grpc_status", d.grpcStatus)
	}
	b = append(b, `,"flags":"`...)
	b = d.flags.appendTo(b)
	b = append(b, '"')
	b = jsonField(b, "reason", d.reason)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(d.attempts), 10)
	b = jsonField(b, "cluster", d.cluster)
	b = jsonField(b, "upstream", d.upstream)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(d.dur)/1e6, 'f', 3, 64)
	b = append(b, `,"upstream_ms":`...)
	b = strconv.AppendFloat(b, float64(d.upDur)/1e6, 'f', 3, 64)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, d.bytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, d.bytesOut, 10)
	b = jsonField(b, "source_workload", orUnknown(d.srcWL))
	b = jsonField(b, "source_namespace", orUnknown(d.srcNS))
	b = jsonField(b, "source_principal", d.srcP)
	b = jsonField(b, "destination_workload", orUnknown(d.dstWL))
	b = jsonField(b, "destination_namespace", orUnknown(d.dstNS))
	b = jsonField(b, "destination_service", orUnknown(d.dstSvc))
	b = jsonField(b, "destination_principal", d.dstP)
	if !tcp {
		b = jsonField(b, "user_agent", d.userAgent)
	}
	return append(b, '}')
}

// Field numbers of opentelemetry.proto.{trace,logs}.v1 used below.
const (
	fieldScopeRecord protowire.Number = 2 // ScopeSpans.spans, ScopeLogs.log_records

	spanTraceID    protowire.Number = 1
	spanSpanID     protowire.Number = 2
	spanTraceState protowire.Number = 3
	spanParentID   protowire.Number = 4
	spanName       protowire.Number = 5
	spanKind       protowire.Number = 6
	spanStart      protowire.Number = 7
	spanEnd        protowire.Number = 8
	spanAttributes protowire.Number = 9
	spanStatus     protowire.Number = 15
	spanFlags      protowire.Number = 16

	statusMessage protowire.Number = 2
	statusCode    protowire.Number = 3

	logTime         protowire.Number = 1
	logSeverity     protowire.Number = 2
	logSeverityText protowire.Number = 3
	logBody         protowire.Number = 5
	logTraceID      protowire.Number = 9
	logSpanID       protowire.Number = 10
	logObserved     protowire.Number = 11

	spanKindServer  = 2 // Span_SPAN_KIND_SERVER
	spanKindClient  = 3 // Span_SPAN_KIND_CLIENT
	statusCodeError = 2 // Status_STATUS_CODE_ERROR
	severityInfo    = 9 // SEVERITY_NUMBER_INFO
)

// appendSpan appends d's span as a ScopeSpans.spans field; scratch holds
// the span's body before its length is known.
func appendSpan(b []byte, d *doneRec, scratch *[]byte) []byte {
	s := (*scratch)[:0]
	s = protowire.AppendTag(s, spanTraceID, protowire.BytesType)
	s = protowire.AppendBytes(s, d.traceID[:])
	s = protowire.AppendTag(s, spanSpanID, protowire.BytesType)
	s = protowire.AppendBytes(s, d.spanID[:])
	if d.tracestate != "" {
		s = protowire.AppendTag(s, spanTraceState, protowire.BytesType)
		s = protowire.AppendString(s, validUTF8(d.tracestate))
	}
	flags := uint32(0x100) // the parent's remote flag is known
	if !isZero(d.parent[:]) {
		s = protowire.AppendTag(s, spanParentID, protowire.BytesType)
		s = protowire.AppendBytes(s, d.parent[:])
		flags |= 0x200
	}
	tcp := d.bits&bitTCP != 0
	route := orUnknown(d.route)
	method, path, authority := validUTF8(d.method), validUTF8(d.path), validUTF8(d.authority)
	s = protowire.AppendTag(s, spanName, protowire.BytesType)
	if tcp {
		s = protowire.AppendVarint(s, uint64(len("tcp ")+len(d.listener)))
		s = append(s, "tcp "...)
		s = append(s, d.listener...)
	} else {
		s = protowire.AppendVarint(s, uint64(len(method)+1+len(route)))
		s = append(s, method...)
		s = append(s, ' ')
		s = append(s, route...)
	}
	kind := uint64(spanKindServer)
	if d.rep == repSource {
		kind = spanKindClient
	}
	s = protowire.AppendTag(s, spanKind, protowire.VarintType)
	s = protowire.AppendVarint(s, kind)
	s = protowire.AppendTag(s, spanStart, protowire.Fixed64Type)
	s = protowire.AppendFixed64(s, uint64(d.start))
	s = protowire.AppendTag(s, spanEnd, protowire.Fixed64Type)
	s = protowire.AppendFixed64(s, uint64(d.end))
	if !tcp {
		s = otlpexport.AppendStringAttr(s, spanAttributes, "http.request.method", method)
		s = otlpexport.AppendStringAttr(s, spanAttributes, "url.path", path)
		s = otlpexport.AppendStringAttr(s, spanAttributes, "http.route", route)
		s = otlpexport.AppendStringAttr(s, spanAttributes, "server.address", authority)
		if d.status > 0 {
			s = otlpexport.AppendIntAttr(s, spanAttributes, "http.response.status_code", int64(d.status))
		}
		if d.bits&bitGRPC != 0 && d.grpcStatus != "" {
			if n, err := strconv.Atoi(d.grpcStatus); err == nil {
				s = otlpexport.AppendIntAttr(s, spanAttributes, "rpc.grpc.status_code", int64(n))
			}
		}
	}
	if d.upstream != "" {
		s = otlpexport.AppendStringAttr(s, spanAttributes, "network.peer.address", d.upstream)
	}
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.reporter", d.rep.String())
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.cluster", d.cluster)
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.upstream", d.upstream)
	s = appendFlagsAttr(s, spanAttributes, d.flags)
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.source_workload", validUTF8(orUnknown(d.srcWL)))
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.source_namespace", validUTF8(orUnknown(d.srcNS)))
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.source_principal", d.srcP)
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.destination_workload", orUnknown(d.dstWL))
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.destination_namespace", orUnknown(d.dstNS))
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.destination_service", orUnknown(d.dstSvc))
	s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.destination_principal", d.dstP)
	if d.reason != "" {
		s = otlpexport.AppendStringAttr(s, spanAttributes, "weft.reason", d.reason)
	}
	if d.bits&bitFailed != 0 {
		n := 1 + protowire.SizeVarint(statusCodeError)
		if d.reason != "" {
			n += 1 + protowire.SizeBytes(len(d.reason))
		}
		s = protowire.AppendTag(s, spanStatus, protowire.BytesType)
		s = protowire.AppendVarint(s, uint64(n))
		if d.reason != "" {
			s = protowire.AppendTag(s, statusMessage, protowire.BytesType)
			s = protowire.AppendString(s, d.reason)
		}
		s = protowire.AppendTag(s, statusCode, protowire.VarintType)
		s = protowire.AppendVarint(s, statusCodeError)
	}
	s = protowire.AppendTag(s, spanFlags, protowire.Fixed32Type)
	s = protowire.AppendFixed32(s, flags)
	*scratch = s
	b = protowire.AppendTag(b, fieldScopeRecord, protowire.BytesType)
	return protowire.AppendBytes(b, s)
}

// validUTF8 returns s with invalid UTF-8 replaced by U+FFFD: a protobuf
// string must be valid UTF-8, or the collector rejects the whole batch.
// Request strings (path, authority, headers) may hold any bytes.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// appendFlagsAttr appends the attribute weft.response_flags as field num:
// the flags are rendered in a stack buffer the attribute's value views.
func appendFlagsAttr(b []byte, num protowire.Number, f respFlags) []byte {
	var fb [64]byte
	v := f.appendTo(fb[:0])
	return otlpexport.AppendStringAttr(b, num, "weft.response_flags", unsafe.String(unsafe.SliceData(v), len(v)))
}

// appendLogRecord appends d's OTLP log record, whose body is the access
// record body, as a ScopeLogs.log_records field.
func appendLogRecord(b []byte, d *doneRec, body []byte) []byte {
	valid := d.bits&bitTraceValid != 0
	withSpan := valid && !isZero(d.spanID[:])
	bodyLen := 1 + protowire.SizeBytes(len(body)) // AnyValue{string_value}
	n := 1 + 8 +                                  // time_unix_nano
		1 + 8 + // observed_time_unix_nano
		1 + protowire.SizeVarint(severityInfo) +
		1 + protowire.SizeBytes(len("INFO")) +
		1 + protowire.SizeBytes(bodyLen)
	if valid {
		n += 1 + protowire.SizeBytes(16)
	}
	if withSpan {
		n += 1 + protowire.SizeBytes(8)
	}
	b = protowire.AppendTag(b, fieldScopeRecord, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(n))
	b = protowire.AppendTag(b, logTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(d.start))
	b = protowire.AppendTag(b, logSeverity, protowire.VarintType)
	b = protowire.AppendVarint(b, severityInfo)
	b = protowire.AppendTag(b, logSeverityText, protowire.BytesType)
	b = protowire.AppendString(b, "INFO")
	b = protowire.AppendTag(b, logBody, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(bodyLen))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, body)
	if valid {
		b = protowire.AppendTag(b, logTraceID, protowire.BytesType)
		b = protowire.AppendBytes(b, d.traceID[:])
	}
	if withSpan {
		b = protowire.AppendTag(b, logSpanID, protowire.BytesType)
		b = protowire.AppendBytes(b, d.spanID[:])
	}
	b = protowire.AppendTag(b, logObserved, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, uint64(d.end))
}
