package telemetry

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/accessrec"
)

// bothCodecs runs test against a server built as weft control builds it
// (ServerCodec) and against one with gRPC's own codec.
func bothCodecs(t *testing.T, test func(t *testing.T, codec bool)) {
	t.Run("ServerCodec", func(t *testing.T) { test(t, true) })
	t.Run("gRPC codec", func(t *testing.T) { test(t, false) })
}

// startXDS runs a real xDS server with the hub's receivers registered
// (with ServerCodec when codec) and returns a client connection to it.
func startXDS(t *testing.T, h *Hub, codec bool) *grpc.ClientConn {
	t.Helper()
	reg := registry.New(registry.Options{})
	t.Cleanup(reg.Close)
	var srv *xds.Server
	h.opts.Auth = AuthFunc(func(ctx context.Context) (xds.Identity, error) { return srv.Authenticate(ctx) })
	opts := xds.Options{
		Translator: func(xds.ProxyInfo) (xds.Resources, error) { return xds.Resources{}, nil },
		Registry:   reg,
		Auth: xds.StaticTokens{
			"operator":  {Subject: "operator"},
			"shop-only": {Subject: "shop-token", Namespace: "shop", ServiceAccount: "frontend"},
		},
		Register: h.Register,
	}
	if codec {
		opts.GRPCOptions = []grpc.ServerOption{grpc.ForceServerCodecV2(ServerCodec{})}
	}
	srv, err := xds.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return conn
}

func withToken(t *testing.T, token string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func resource(ns, svc, node string) *resourcepb.Resource {
	return &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", svc), str("service.namespace", ns), str("service.instance.id", node), str("weft.role", "sidecar")}}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

const (
	tid = "4bf92f3577b34da6a3ce929d0e0e4736"
	sid = "00f067aa0ba902b7"
)

func traceRequest(ns string, spans ...*tracepb.Span) *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   resource(ns, "catalog-v1", "catalog-v1-0."+ns),
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

func TestTraceReceiver(t *testing.T) { bothCodecs(t, testTraceReceiver) }

func testTraceReceiver(t *testing.T, codec bool) {
	clk := newFakeClock()
	h := New(Options{Clock: clk})
	client := coltracepb.NewTraceServiceClient(startXDS(t, h, codec))
	start := uint64(clk.Now().UnixNano())
	good := &tracepb.Span{
		TraceId: mustHex(tid), SpanId: mustHex(sid), ParentSpanId: mustHex("1111111111111111"),
		Name: "GET default", Kind: tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: start, EndTimeUnixNano: start + 1_500_000,
		Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "503"},
		Attributes: []*commonpb.KeyValue{
			str("http.request.method", "GET"),
			{Key: "http.response.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 503}}},
		},
	}
	badID := &tracepb.Span{TraceId: []byte{1, 2}, SpanId: mustHex(sid), Name: "broken"}

	// Refused without a token and with an unknown one.
	for _, tc := range []struct{ token, want string }{
		{"", "code = Unauthenticated desc = missing authorization metadata"},
		{"nope", "code = Unauthenticated desc = authenticate: unknown token"},
	} {
		_, err := client.Export(withToken(t, tc.token), traceRequest("shop", good))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("token %q: error %v, want %q", tc.token, err, tc.want)
		}
	}
	if n := h.spans.len(); n != 0 {
		t.Fatalf("refused exports stored %d spans", n)
	}

	resp, err := client.Export(withToken(t, "operator"), traceRequest("shop", good, badID))
	if err != nil {
		t.Fatal(err)
	}
	if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() != 1 || ps.GetErrorMessage() != "a span needs a 16-byte trace id and an 8-byte span id" {
		t.Fatalf("partial success %+v", ps)
	}
	tr, ok := h.Trace(tid)
	if !ok || len(tr.Spans) != 1 {
		t.Fatalf("trace %+v, %v", tr, ok)
	}
	sp := tr.Spans[0]
	if sp.SpanID != sid || sp.ParentSpanID != "1111111111111111" || sp.Kind != "SERVER" || sp.Status != "ERROR" || sp.StatusMessage != "503" ||
		sp.DurationMS != 1.5 || sp.Service != "catalog-v1" || sp.Namespace != "shop" || sp.Instance != "catalog-v1-0.shop" ||
		sp.Attributes["http.request.method"] != "GET" || sp.Attributes["http.response.status_code"] != int64(503) {
		t.Fatalf("span %+v", sp)
	}

	// A token bound to namespace shop cannot send another namespace's spans.
	resp, err = client.Export(withToken(t, "shop-only"), traceRequest("billing", good))
	if err != nil {
		t.Fatal(err)
	}
	if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() != 1 || ps.GetErrorMessage() != `shop-token may not send spans of namespace "billing"` {
		t.Fatalf("partial success %+v", ps)
	}
	if n := h.logs.len(); n != 0 {
		t.Fatalf("spans that carry no access record made %d log records", n)
	}

	// A span that carries its access record: the hub says in its answer
	// that it takes them, and the record is a log record rendered from
	// the span.
	carrying := proto.Clone(good).(*tracepb.Span)
	carrying.TraceId = mustHex("0af7651916cd43dd8448eb211c80319c")
	carrying.Attributes = append(carrying.Attributes, str(accessrec.AttrReporter, "destination"), str(accessrec.AttrListener, "inbound"),
		str(accessrec.AttrRequestID, "rid-7"), intAttr(accessrec.AttrAttempts, 2),
		&commonpb.KeyValue{Key: accessrec.AttrCarries, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}})
	var md metadata.MD
	if _, err := client.Export(withToken(t, "operator"), traceRequest("shop", carrying), grpc.Header(&md)); err != nil {
		t.Fatal(err)
	}
	if got := md.Get(strings.ToLower(accessrec.Header)); len(got) != 1 || got[0] != accessrec.HeaderSpans {
		t.Fatalf("answer's %s header: %q", accessrec.Header, got)
	}
	recs, _, _ := h.Logs(LogQuery{TraceID: "0af7651916cd43dd8448eb211c80319c"})
	if len(recs) != 1 {
		t.Fatalf("%d log records for the carrying span, want 1", len(recs))
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(recs[0].Body), &body); err != nil {
		t.Fatalf("body %q: %v", recs[0].Body, err)
	}
	if r := recs[0]; r.Kind != LogAccess || r.SpanID != sid || r.Workload != "catalog-v1" || r.Namespace != "shop" || !r.Time.Equal(unixNano(start)) ||
		body["kind"] != "http" || body["reporter"] != "destination" || body["listener"] != "inbound" || body["request_id"] != "rid-7" ||
		body["attempts"] != 2.0 || body["status"] != 503.0 || body["duration_ms"] != 1.5 || body["span_id"] != sid {
		t.Fatalf("record %+v, body %v", r, body)
	}
	if recs, _, _ := h.Logs(LogQuery{Contains: "RID-7"}); len(recs) != 1 {
		t.Fatalf("a search for the request id found %d records", len(recs))
	}
}

func TestLogsReceiver(t *testing.T) { bothCodecs(t, testLogsReceiver) }

func testLogsReceiver(t *testing.T, codec bool) {
	clk := newFakeClock()
	h := New(Options{Clock: clk})
	client := collogspb.NewLogsServiceClient(startXDS(t, h, codec))
	access := `{"kind":"http","reporter":"destination","status":200,"path":"/api/products"}`
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{
		{
			Resource: resource("shop", "catalog-v1", "catalog-v1-0.shop"),
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
				TimeUnixNano: uint64(clk.Now().UnixNano()), Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: access}},
				TraceId: mustHex(tid), SpanId: mustHex(sid), SeverityText: "INFO",
			}}}},
		},
		{
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{{
				Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "listing products trace_id=" + tid}},
				Attributes: []*commonpb.KeyValue{str("namespace", "shop"), str("workload", "catalog-v1"), str("instance", "catalog-v1-0"),
					str("stream", "stderr"), str("trace_id", tid)},
			}}}},
		},
	}}
	if _, err := client.Export(withToken(t, ""), req); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("export without a token: %v", err)
	}
	if _, err := client.Export(withToken(t, "shop-only"), req); err != nil {
		t.Fatal(err)
	}
	got, _, _ := h.Logs(LogQuery{TraceID: tid})
	if len(got) != 2 {
		t.Fatalf("records %+v", got)
	}
	a, app := got[0], got[1]
	if a.Kind != LogAccess || a.Body != access || a.Workload != "catalog-v1" || a.Namespace != "shop" || a.Instance != "catalog-v1-0.shop" ||
		a.SpanID != sid || a.Severity != "INFO" || !a.Time.Equal(clk.Now()) {
		t.Fatalf("access record %+v", a)
	}
	if app.Kind != LogApp || app.Stream != "stderr" || app.Instance != "catalog-v1-0" || app.TraceID != tid || !app.Time.Equal(clk.Now()) {
		t.Fatalf("app record %+v", app)
	}
	// Another namespace is refused for a bound token.
	req.ResourceLogs[0].Resource = resource("billing", "ledger", "ledger-0.billing")
	resp, err := client.Export(withToken(t, "shop-only"), req)
	if err != nil {
		t.Fatal(err)
	}
	if ps := resp.GetPartialSuccess(); ps.GetRejectedLogRecords() != 1 || ps.GetErrorMessage() != `shop-token may not send logs of namespace "billing"` {
		t.Fatalf("partial success %+v", ps)
	}
}

func TestBodyText(t *testing.T) {
	kv := &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
		str("path", "/"), {Key: "status", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 200}}},
		{Key: "ms", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}},
	}}}}
	if got, want := bodyText(kv), `{"ms":1.5,"path":"/","status":200}`; got != want {
		t.Fatalf("bodyText(kvlist) = %s, want %s", got, want)
	}
	if got := bodyText(nil); got != "" {
		t.Fatalf("bodyText(nil) = %q", got)
	}
}
