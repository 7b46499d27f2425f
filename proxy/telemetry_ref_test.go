package proxy

// The message-building path the proxy used before spans and access
// records were encoded on the telemetry goroutine: the reference the
// encoders are compared against (TestEncodersMatchReference).

import (
	"encoding/hex"
	"strconv"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/weft-mesh/weft/proxy/accessrec"
)

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// span builds the OTLP span of a finished request.
func refSpan(r *reqRecord, end time.Time, srcP, dstP string) *tracepb.Span {
	ts := &r.trace
	kind := tracepb.Span_SPAN_KIND_SERVER
	if r.rep == repSource {
		kind = tracepb.Span_SPAN_KIND_CLIENT
	}
	name := r.method + " " + orUnknown(r.route)
	if r.tcp {
		name = "tcp " + r.listener
	}
	s := &tracepb.Span{
		TraceId:           append([]byte(nil), ts.traceID[:]...),
		SpanId:            append([]byte(nil), ts.spanID[:]...),
		TraceState:        ts.tracestate,
		Name:              name,
		Kind:              kind,
		StartTimeUnixNano: uint64(r.start.UnixNano()),
		EndTimeUnixNano:   uint64(end.UnixNano()),
		Flags:             0x100, // the parent's remote flag is known
	}
	if !isZero(ts.parent[:]) {
		s.ParentSpanId = append([]byte(nil), ts.parent[:]...)
		s.Flags |= 0x200
	}
	attrs := make([]*commonpb.KeyValue, 0, 20)
	if !r.tcp {
		attrs = append(attrs,
			strAttr("http.request.method", r.method),
			strAttr("url.path", r.path),
			strAttr("http.route", orUnknown(r.route)),
			strAttr("server.address", r.authority),
		)
		if r.status > 0 {
			attrs = append(attrs, intAttr("http.response.status_code", int64(r.status)))
		}
		if r.grpc && r.grpcStatus != "" {
			if n, err := strconv.Atoi(r.grpcStatus); err == nil {
				attrs = append(attrs, intAttr("rpc.grpc.status_code", int64(n)))
			}
		}
	}
	if r.upstream != "" {
		attrs = append(attrs, strAttr("network.peer.address", r.upstream))
	}
	attrs = append(attrs,
		strAttr("weft.reporter", r.rep.String()),
		strAttr("weft.cluster", r.cluster),
		strAttr("weft.upstream", r.upstream),
		strAttr("weft.response_flags", r.flags.String()),
		strAttr("weft.source_workload", orUnknown(r.srcWL)),
		strAttr("weft.source_namespace", orUnknown(r.srcNS)),
		strAttr("weft.source_principal", srcP),
		strAttr("weft.destination_workload", orUnknown(r.dstWL)),
		strAttr("weft.destination_namespace", orUnknown(r.dstNS)),
		strAttr("weft.destination_service", orUnknown(r.dstSvc)),
		strAttr("weft.destination_principal", dstP),
	)
	if r.reason != "" {
		attrs = append(attrs, strAttr("weft.reason", r.reason))
	}
	s.Attributes = attrs
	if r.failed() {
		s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: r.reason}
	}
	return s
}

// jsonField appends ,"name":"value" with value escaped as a JSON string.
func jsonField(b []byte, name, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return accessrec.AppendJSONString(b, value)
}

// refAppendRecord appends the access record of r as one JSON object.
func refAppendRecord(b []byte, r *reqRecord, dur time.Duration, srcP, dstP string) []byte {
	b = append(b, `{"time":"`...)
	b = r.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	kind := "http"
	if r.tcp {
		kind = "tcp"
	}
	b = append(b, `","kind":"`...)
	b = append(b, kind...)
	b = append(b, '"')
	b = jsonField(b, "reporter", r.rep.String())
	var tid, sid string
	var hb [48]byte
	if r.trace.valid {
		h := hex.AppendEncode(hb[:0], r.trace.traceID[:])
		tid = bstr(h)
		if !isZero(r.trace.spanID[:]) {
			h2 := hex.AppendEncode(h, r.trace.spanID[:])
			sid = bstr(h2[len(h):])
		}
	}
	b = jsonField(b, "trace_id", tid)
	b = jsonField(b, "span_id", sid)
	b = jsonField(b, "request_id", r.requestID)
	b = jsonField(b, "listener", r.listener)
	b = jsonField(b, "route", r.route)
	if !r.tcp {
		b = jsonField(b, "method", r.method)
		b = jsonField(b, "authority", r.authority)
		b = jsonField(b, "path", r.path)
		b = jsonField(b, "protocol", r.protocol)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.status), 10)
		b = jsonField(b, "grpc_status", r.grpcStatus)
	}
	b = append(b, `,"flags":"`...)
	b = r.flags.appendTo(b)
	b = append(b, '"')
	b = jsonField(b, "reason", r.reason)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.attempts), 10)
	b = jsonField(b, "cluster", r.cluster)
	b = jsonField(b, "upstream", r.upstream)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(dur)/1e6, 'f', 3, 64)
	b = append(b, `,"upstream_ms":`...)
	b = strconv.AppendFloat(b, float64(r.upDur)/1e6, 'f', 3, 64)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, r.bytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, r.bytesOut, 10)
	b = jsonField(b, "source_workload", orUnknown(r.srcWL))
	b = jsonField(b, "source_namespace", orUnknown(r.srcNS))
	b = jsonField(b, "source_principal", srcP)
	b = jsonField(b, "destination_workload", orUnknown(r.dstWL))
	b = jsonField(b, "destination_namespace", orUnknown(r.dstNS))
	b = jsonField(b, "destination_service", orUnknown(r.dstSvc))
	b = jsonField(b, "destination_principal", dstP)
	if !r.tcp {
		b = jsonField(b, "user_agent", r.userAgent)
	}
	return append(b, '}')
}

// refLogRecord is the OTLP log record the proxy built for r.
func refLogRecord(r *reqRecord, end time.Time, body []byte) *logspb.LogRecord {
	lr := &logspb.LogRecord{
		TimeUnixNano:         uint64(r.start.UnixNano()),
		ObservedTimeUnixNano: uint64(end.UnixNano()),
		SeverityNumber:       logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
		SeverityText:         "INFO",
		Body:                 &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: string(body)}},
	}
	if r.trace.valid {
		lr.TraceId = append([]byte(nil), r.trace.traceID[:]...)
		if !isZero(r.trace.spanID[:]) {
			lr.SpanId = append([]byte(nil), r.trace.spanID[:]...)
		}
	}
	return lr
}
