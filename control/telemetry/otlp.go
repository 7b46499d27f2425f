package telemetry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/accessrec"
)

// OTLP resource attributes the hub reads (docs/observability.md).
const (
	attrServiceName      = "service.name"
	attrServiceNamespace = "service.namespace"
	attrServiceInstance  = "service.instance.id"
	// Application log record attributes.
	attrNamespace = "namespace"
	attrWorkload  = "workload"
	attrInstance  = "instance"
	attrStream    = "stream"
	attrTraceID   = "trace_id"
)

func registerReceivers(g grpc.ServiceRegistrar, h *Hub) {
	g.RegisterService(wireServiceDesc(coltracepb.TraceService_ServiceDesc, coltracepb.TraceService_Export_FullMethodName,
		func(ctx context.Context, b []byte) (any, error) { return traceReceiver{h: h}.exportWire(ctx, b) }), traceReceiver{h: h})
	g.RegisterService(wireServiceDesc(collogspb.LogsService_ServiceDesc, collogspb.LogsService_Export_FullMethodName,
		func(ctx context.Context, b []byte) (any, error) { return logsReceiver{h: h}.exportWire(ctx, b) }), logsReceiver{h: h})
}

// wireServiceDesc is desc (an OTLP collector service) with an Export
// handler that takes the request's bytes (wireRequest) and gives them to
// export, which reads them without message structs (scanSpans,
// scanLogs).
func wireServiceDesc(desc grpc.ServiceDesc, method string, export func(context.Context, []byte) (any, error)) *grpc.ServiceDesc {
	desc.Methods = []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := &wireRequest{}
			if err := dec(in); err != nil {
				return nil, err
			}
			if interceptor == nil {
				return export(ctx, in.bytes())
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
			return interceptor(ctx, in, info, func(ctx context.Context, req any) (any, error) {
				return export(ctx, req.(*wireRequest).bytes())
			})
		},
	}}
	return &desc
}

// traceReceiver is the OTLP TraceService. Export runs on the RPC's
// goroutine.
type traceReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	h *Hub
}

// Export authenticates the caller and stores the spans. Spans of a
// resource in another namespace than the caller's token grants, and spans
// without a valid trace or span id, are rejected and counted in the
// partial success.
func (r traceReceiver) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	id, err := r.h.admit(ctx)
	if err != nil {
		return nil, err
	}
	return r.storeDecoded(id, req), nil
}

// exportWire is Export for the request's wire bytes b, which must not
// change afterwards (the stored spans view them).
func (r traceReceiver) exportWire(ctx context.Context, b []byte) (*coltracepb.ExportTraceServiceResponse, error) {
	id, err := r.h.admit(ctx)
	if err != nil {
		return nil, err
	}
	return r.storeWire(id, b)
}

// storeWire stores the spans of request bytes b from the authenticated
// caller id; b must not change afterwards.
func (r traceReceiver) storeWire(id xds.Identity, b []byte) (*coltracepb.ExportTraceServiceResponse, error) {
	recs, rejected, msg, ok := scanSpans(id, b)
	if !ok {
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			return nil, status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
		}
		return r.storeDecoded(id, req), nil
	}
	now := r.h.opts.Clock.Now()
	r.h.spans.addRecs(now, recs)
	r.h.logs.addSome(now, len(recs), func(i int) (logEntry, bool) { return carriedRecord(&recs[i]) })
	return traceResponse(rejected, msg), nil
}

// carriedRecord is the access record span r carries (accessrec.AttrCarries),
// if it carries one: a log entry whose body is rendered from the span's
// bytes when read.
func carriedRecord(r *spanRec) (logEntry, bool) {
	if !r.carries {
		return logEntry{}, false
	}
	return logEntry{time: unixNano(r.start), traceID: r.traceID, spanID: r.spanID,
		severity: "INFO", namespace: r.res.namespace, workload: r.res.service, instance: r.res.instance,
		body: viewString(r.raw), inSpan: true}, true
}

// storeDecoded stores the spans of a decoded request (Export, and the
// forms scanSpans leaves to the protobuf decoder).
func (r traceReceiver) storeDecoded(id xds.Identity, req *coltracepb.ExportTraceServiceRequest) *coltracepb.ExportTraceServiceResponse {
	spans, carried, rejected, msg := convertSpans(id, req.GetResourceSpans())
	r.h.AddSpans(spans)
	r.h.logs.addRecs(r.h.opts.Clock.Now(), carried)
	return traceResponse(rejected, msg)
}

// traceResponse answers an export that rejected some spans for msg.
func traceResponse(rejected int64, msg string) *coltracepb.ExportTraceServiceResponse {
	resp := &coltracepb.ExportTraceServiceResponse{}
	if rejected > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: rejected, ErrorMessage: msg}
	}
	return resp
}

// logsReceiver is the OTLP LogsService. Export runs on the RPC's
// goroutine.
type logsReceiver struct {
	collogspb.UnimplementedLogsServiceServer
	h *Hub
}

// exportWire is Export for the request's wire bytes b, which must not
// change afterwards (the stored records view them).
func (r logsReceiver) exportWire(ctx context.Context, b []byte) (*collogspb.ExportLogsServiceResponse, error) {
	id, err := r.h.admit(ctx)
	if err != nil {
		return nil, err
	}
	return r.storeWire(id, b)
}

// storeWire stores the records of request bytes b from the authenticated
// caller id; b must not change afterwards.
func (r logsReceiver) storeWire(id xds.Identity, b []byte) (*collogspb.ExportLogsServiceResponse, error) {
	now := r.h.opts.Clock.Now()
	recs, rejected, msg, ok := scanLogs(id, b, now)
	if !ok {
		req := &collogspb.ExportLogsServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			return nil, status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
		}
		return r.storeDecoded(id, req, now), nil
	}
	r.h.logs.addRecs(now, recs)
	return logsResponse(rejected, msg), nil
}

// storeDecoded stores the records of a decoded request (Export, and the
// forms scanLogs leaves to the protobuf decoder); now stamps records
// without a time.
func (r logsReceiver) storeDecoded(id xds.Identity, req *collogspb.ExportLogsServiceRequest, now time.Time) *collogspb.ExportLogsServiceResponse {
	recs, rejected, msg := convertLogs(id, req.GetResourceLogs(), now)
	r.h.AddLogs(recs)
	return logsResponse(rejected, msg)
}

// logsResponse answers an export that rejected some records for msg.
func logsResponse(rejected int64, msg string) *collogspb.ExportLogsServiceResponse {
	resp := &collogspb.ExportLogsServiceResponse{}
	if rejected > 0 {
		resp.PartialSuccess = &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: rejected, ErrorMessage: msg}
	}
	return resp
}

// Export authenticates the caller and stores the records; records of a
// resource in another namespace than the caller's token grants are
// rejected.
func (r logsReceiver) Export(ctx context.Context, req *collogspb.ExportLogsServiceRequest) (*collogspb.ExportLogsServiceResponse, error) {
	id, err := r.h.admit(ctx)
	if err != nil {
		return nil, err
	}
	return r.storeDecoded(id, req, r.h.opts.Clock.Now()), nil
}

func (h *Hub) authenticate(ctx context.Context) (xds.Identity, error) {
	if h.opts.Auth == nil {
		return xds.Identity{}, fmt.Errorf("telemetry: no authenticator configured")
	}
	return h.opts.Auth.Authenticate(ctx)
}

// admit authenticates the caller of a gRPC export and, once it is
// admitted, tells it in the response header metadata that the hub takes
// spans carrying access records (accessrec.Header): a weft proxy then
// sends a traced request's record in its span alone.
func (h *Hub) admit(ctx context.Context) (xds.Identity, error) {
	id, err := h.authenticate(ctx)
	if err != nil {
		return id, err
	}
	grpc.SetHeader(ctx, carriedMD) // no stream (a direct call): nothing to tell
	return id, nil
}

var carriedMD = metadata.Pairs(strings.ToLower(accessrec.Header), accessrec.HeaderSpans)

// resourceInfo is what the hub reads from an OTLP resource.
type resourceInfo struct {
	service, namespace, instance string
}

func readResource(r *resourcepb.Resource) resourceInfo {
	var ri resourceInfo
	for _, kv := range r.GetAttributes() {
		switch kv.GetKey() {
		case attrServiceName:
			ri.service = kv.GetValue().GetStringValue()
		case attrServiceNamespace:
			ri.namespace = kv.GetValue().GetStringValue()
		case attrServiceInstance:
			ri.instance = kv.GetValue().GetStringValue()
		}
	}
	return ri
}

// allowed reports whether the caller may send data for namespace ns.
func allowed(id xds.Identity, ns string) bool { return id.Namespace == "" || id.Namespace == ns }

var spanKinds = map[tracepb.Span_SpanKind]string{
	tracepb.Span_SPAN_KIND_UNSPECIFIED: "UNSPECIFIED",
	tracepb.Span_SPAN_KIND_INTERNAL:    "INTERNAL",
	tracepb.Span_SPAN_KIND_SERVER:      "SERVER",
	tracepb.Span_SPAN_KIND_CLIENT:      "CLIENT",
	tracepb.Span_SPAN_KIND_PRODUCER:    "PRODUCER",
	tracepb.Span_SPAN_KIND_CONSUMER:    "CONSUMER",
}

// convertSpans turns OTLP spans into stored spans, and the access records
// some carry into log entries (carriedRecord); it returns how many
// were rejected and why (the first reason).
func convertSpans(id xds.Identity, rss []*tracepb.ResourceSpans) (out []Span, carried []logEntry, rejected int64, msg string) {
	reject := func(n int, why string) {
		rejected += int64(n)
		if msg == "" {
			msg = why
		}
	}
	for _, rs := range rss {
		ri := readResource(rs.GetResource())
		if !allowed(id, ri.namespace) {
			n := 0
			for _, ss := range rs.GetScopeSpans() {
				n += len(ss.GetSpans())
			}
			reject(n, spanNamespaceDenied(id, ri.namespace))
			continue
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				traceID, spanID := hexBytes(sp.GetTraceId(), 16), hexBytes(sp.GetSpanId(), 8)
				if traceID == "" || spanID == "" {
					reject(1, "a span needs a 16-byte trace id and an 8-byte span id")
					continue
				}
				start, end := unixNano(sp.GetStartTimeUnixNano()), unixNano(sp.GetEndTimeUnixNano())
				if end.Before(start) {
					end = start
				}
				kind, ok := spanKinds[sp.GetKind()]
				if !ok {
					kind = "UNSPECIFIED"
				}
				s := Span{
					TraceID: traceID, SpanID: spanID, ParentSpanID: hexBytes(sp.GetParentSpanId(), 8),
					Name: sp.GetName(), Kind: kind, Start: start, End: end,
					DurationMS: float64(end.Sub(start)) / float64(time.Millisecond),
					Status:     statusName(sp.GetStatus().GetCode()), StatusMessage: sp.GetStatus().GetMessage(),
					Service: ri.service, Namespace: ri.namespace, Instance: ri.instance,
					Attributes: attributes(sp.GetAttributes()),
				}
				out = append(out, s)
				if s.Attributes[accessrec.AttrCarries] == true {
					// The record renders from the span's bytes, read as the
					// wire path reads them.
					raw, err := proto.Marshal(sp)
					if err != nil {
						continue
					}
					if rec, valid, ok := scanSpan(raw, &ri); ok && valid {
						if e, ok := carriedRecord(&rec); ok {
							carried = append(carried, e)
						}
					}
				}
			}
		}
	}
	return out, carried, rejected, msg
}

func spanNamespaceDenied(id xds.Identity, ns string) string {
	return fmt.Sprintf("%s may not send spans of namespace %q", id.Subject, ns)
}

func statusName(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return "OK"
	case tracepb.Status_STATUS_CODE_ERROR:
		return "ERROR"
	}
	return "UNSET"
}

// convertLogs turns OTLP log records into stored records. Application
// lines carry a "stream" attribute and name their namespace, workload and
// instance in attributes; access records take them from the resource.
func convertLogs(id xds.Identity, rls []*logspb.ResourceLogs, now time.Time) (out []LogRecord, rejected int64, msg string) {
	for _, rl := range rls {
		ri := readResource(rl.GetResource())
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				rec := LogRecord{
					Kind: LogAccess, Severity: lr.GetSeverityText(), Body: bodyText(lr.GetBody()),
					TraceID: hexBytes(lr.GetTraceId(), 16), SpanID: hexBytes(lr.GetSpanId(), 8),
					Namespace: ri.namespace, Workload: ri.service, Instance: ri.instance,
				}
				for _, kv := range lr.GetAttributes() {
					v := kv.GetValue().GetStringValue()
					switch kv.GetKey() {
					case attrNamespace:
						rec.Namespace = v
					case attrWorkload:
						rec.Workload = v
					case attrInstance:
						rec.Instance = v
					case attrStream:
						rec.Stream, rec.Kind = v, LogApp
					case attrTraceID:
						if rec.TraceID == "" {
							rec.TraceID, _ = hexID(v, 32)
						}
					}
				}
				if !allowed(id, rec.Namespace) {
					rejected++
					if msg == "" {
						msg = fmt.Sprintf("%s may not send logs of namespace %q", id.Subject, rec.Namespace)
					}
					continue
				}
				switch {
				case lr.GetTimeUnixNano() != 0:
					rec.Time = unixNano(lr.GetTimeUnixNano())
				case lr.GetObservedTimeUnixNano() != 0:
					rec.Time = unixNano(lr.GetObservedTimeUnixNano())
				default:
					rec.Time = now
				}
				out = append(out, rec)
			}
		}
	}
	return out, rejected, msg
}

func unixNano(ns uint64) time.Time {
	if ns == 0 || ns > 1<<63-1 {
		return time.Time{}
	}
	return time.Unix(0, int64(ns)).UTC()
}

// hexBytes is b in lower-case hex when it has n bytes, not all zero.
func hexBytes(b []byte, n int) string {
	if len(b) != n {
		return ""
	}
	for _, c := range b {
		if c != 0 {
			return hex.EncodeToString(b)
		}
	}
	return ""
}

// bodyText is a log body as text: a string as is, anything else as JSON
// (a key-value list becomes a JSON object).
func bodyText(v *commonpb.AnyValue) string {
	if v == nil {
		return ""
	}
	if s, ok := v.GetValue().(*commonpb.AnyValue_StringValue); ok {
		return s.StringValue
	}
	b, err := json.Marshal(anyValue(v))
	if err != nil {
		return ""
	}
	return string(b)
}

// attributes converts OTLP attributes to JSON values.
func attributes(kvs []*commonpb.KeyValue) map[string]any {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyValue(kv.GetValue())
	}
	return m
}

// anyValue converts an OTLP value to a JSON value.
func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		if x.IntValue > 1<<53 || x.IntValue < -(1<<53) {
			return strconv.FormatInt(x.IntValue, 10) // JSON numbers lose precision beyond 2^53
		}
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return finite(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		list := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			list = append(list, anyValue(e))
		}
		return list
	case *commonpb.AnyValue_KvlistValue:
		m := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			m[kv.GetKey()] = anyValue(kv.GetValue())
		}
		return m
	}
	return nil
}

// finite returns f, or its text when JSON cannot hold it (NaN, ±Inf).
func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}
