package proxy

import (
	"strconv"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/weft-mesh/weft/proxy/accessrec"
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
	start             int64 // Unix ns; the end is start + dur
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
func (t *telemetry) pack(d *doneRec, r *reqRecord, dur time.Duration) {
	srcP, dstP := t.principals(r)
	*d = doneRec{
		start: r.start.UnixNano(), dur: dur, upDur: r.upDur,
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

// endNanos is when the request ended (Unix ns): its start plus its
// duration, so that a span's end minus its start is the record's
// duration_ms (accessrec.FromSpan).
func (d *doneRec) endNanos() int64 { return d.start + int64(d.dur) }

// record is d's access record. Its strings are d's.
func (d *doneRec) record() accessrec.Record {
	var flags [64]byte
	f := d.flags.appendTo(flags[:0])
	r := accessrec.Record{
		Start: d.start, TCP: d.bits&bitTCP != 0, TraceValid: d.bits&bitTraceValid != 0,
		Reporter: d.rep.String(), RequestID: d.requestID, Listener: d.listener, Route: d.route,
		Method: d.method, Authority: d.authority, Path: d.path, Protocol: d.protocol,
		Status: int64(d.status), GRPCStatus: d.grpcStatus,
		Flags: string(f), Reason: d.reason, Attempts: int64(d.attempts),
		Cluster: d.cluster, Upstream: d.upstream, Duration: d.dur, UpstreamDuration: d.upDur,
		BytesIn: d.bytesIn, BytesOut: d.bytesOut,
		SourceWorkload: orUnknown(d.srcWL), SourceNamespace: orUnknown(d.srcNS), SourcePrincipal: d.srcP,
		DestinationWorkload: orUnknown(d.dstWL), DestinationNamespace: orUnknown(d.dstNS),
		DestinationService: orUnknown(d.dstSvc), DestinationPrincipal: d.dstP, UserAgent: d.userAgent,
	}
	if r.TraceValid {
		r.TraceID, r.SpanID = d.traceID, d.spanID
	}
	return r
}

// appendRecord appends the access record of d as one JSON object
// (docs/observability.md).
func appendRecord(b []byte, d *doneRec) []byte {
	r := d.record()
	return accessrec.AppendJSON(b, &r)
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
// the span's body before its length is known. With carry the span also
// carries d's access record (accessrec.FromSpan reads it back), for a
// collector that takes it in place of a log record.
func appendSpan(b []byte, d *doneRec, scratch *[]byte, carry bool) []byte {
	s := (*scratch)[:0]
	s = protowire.AppendTag(s, spanTraceID, protowire.BytesType)
	s = protowire.AppendBytes(s, d.traceID[:])
	s = protowire.AppendTag(s, spanSpanID, protowire.BytesType)
	s = protowire.AppendBytes(s, d.spanID[:])
	if d.tracestate != "" {
		s = protowire.AppendTag(s, spanTraceState, protowire.BytesType)
		s = protowire.AppendString(s, accessrec.ValidUTF8(d.tracestate))
	}
	flags := uint32(0x100) // the parent's remote flag is known
	if !isZero(d.parent[:]) {
		s = protowire.AppendTag(s, spanParentID, protowire.BytesType)
		s = protowire.AppendBytes(s, d.parent[:])
		flags |= 0x200
	}
	tcp := d.bits&bitTCP != 0
	route := orUnknown(d.route)
	method, path, authority := accessrec.ValidUTF8(d.method), accessrec.ValidUTF8(d.path), accessrec.ValidUTF8(d.authority)
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
	s = protowire.AppendFixed64(s, uint64(d.endNanos()))
	str := func(key, v string) { s = otlpexport.AppendStringAttr(s, spanAttributes, key, v) }
	num := func(key string, v int64) { s = otlpexport.AppendIntAttr(s, spanAttributes, key, v) }
	if !tcp {
		str(accessrec.AttrMethod, method)
		str(accessrec.AttrPath, path)
		str(accessrec.AttrRoute, route)
		str(accessrec.AttrAuthority, authority)
		if d.status > 0 {
			num(accessrec.AttrStatus, int64(d.status))
		}
		if d.bits&bitGRPC != 0 && d.grpcStatus != "" {
			if n, err := strconv.Atoi(d.grpcStatus); err == nil {
				num(accessrec.AttrGRPCStatus, int64(n))
			}
		}
	}
	if d.upstream != "" {
		str(accessrec.AttrPeer, d.upstream)
	}
	str(accessrec.AttrReporter, d.rep.String())
	str(accessrec.AttrCluster, d.cluster)
	str(accessrec.AttrUpstream, d.upstream)
	s = appendFlagsAttr(s, spanAttributes, d.flags)
	str(accessrec.AttrSrcWL, accessrec.ValidUTF8(orUnknown(d.srcWL)))
	str(accessrec.AttrSrcNS, accessrec.ValidUTF8(orUnknown(d.srcNS)))
	str(accessrec.AttrSrcP, d.srcP)
	str(accessrec.AttrDstWL, orUnknown(d.dstWL))
	str(accessrec.AttrDstNS, orUnknown(d.dstNS))
	str(accessrec.AttrDstSvc, orUnknown(d.dstSvc))
	str(accessrec.AttrDstP, d.dstP)
	if d.reason != "" {
		str(accessrec.AttrReason, d.reason)
	}
	if carry {
		s = append(s, carriesAttr...)
		str(accessrec.AttrListener, d.listener)
		if tcp && d.route != "" || !tcp && d.route != route {
			str(accessrec.AttrRawRoute, d.route)
		}
		if d.requestID != "" {
			str(accessrec.AttrRequestID, accessrec.ValidUTF8(d.requestID))
		}
		if !tcp {
			if d.protocol != "" {
				str(accessrec.AttrProtocol, accessrec.ValidUTF8(d.protocol))
			}
			if d.grpcStatus != "" {
				str(accessrec.AttrRawGRPC, accessrec.ValidUTF8(d.grpcStatus))
			}
			if d.userAgent != "" {
				str(accessrec.AttrUserAgent, accessrec.ValidUTF8(d.userAgent))
			}
		}
		num(accessrec.AttrAttempts, int64(d.attempts))
		if d.upDur != 0 {
			num(accessrec.AttrUpstreamNS, int64(d.upDur))
		}
		if d.bytesIn != 0 {
			num(accessrec.AttrBytesIn, d.bytesIn)
		}
		if d.bytesOut != 0 {
			num(accessrec.AttrBytesOut, d.bytesOut)
		}
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

// carriesAttr is the span attribute accessrec.AttrCarries = true.
var carriesAttr = func() []byte {
	v := protowire.AppendVarint(protowire.AppendTag(nil, 2, protowire.VarintType), 1) // AnyValue.bool_value
	kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), accessrec.AttrCarries)
	kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), v)
	return protowire.AppendBytes(protowire.AppendTag(nil, spanAttributes, protowire.BytesType), kv)
}()

// appendFlagsAttr appends the attribute weft.response_flags as field num:
// the flags are rendered in a stack buffer the attribute's value views.
func appendFlagsAttr(b []byte, num protowire.Number, f respFlags) []byte {
	var fb [64]byte
	v := f.appendTo(fb[:0])
	return otlpexport.AppendStringAttr(b, num, accessrec.AttrFlags, unsafe.String(unsafe.SliceData(v), len(v)))
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
	return protowire.AppendFixed64(b, uint64(d.endNanos()))
}
