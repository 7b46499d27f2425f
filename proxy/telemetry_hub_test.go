package proxy

import (
	"context"
	"encoding/hex"
	"net"
	"reflect"
	"testing"
	"time"

	logscol "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	tracecol "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hub "github.com/weft-mesh/weft/control/telemetry"
	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/otlpexport"
)

// startHub serves the control plane's telemetry hub (its real OTLP
// receivers) on a loopback gRPC server.
func startHub(t *testing.T) (*hub.Hub, *grpc.ClientConn) {
	t.Helper()
	h := hub.New(hub.Options{Auth: hub.AuthFunc(func(context.Context) (xds.Identity, error) {
		return xds.Identity{Subject: "test"}, nil
	})})
	srv := grpc.NewServer()
	h.Register(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return h, cc
}

// The hub stores the same spans and access records from the encoded
// export as from the requests the proxy used to build: one hub gets the
// reference messages through the generated client, the other the proxy's
// encoding through the exporter.
func TestHubReceivesSameAsReference(t *testing.T) {
	res := otlpexport.Resource{ServiceName: "catalog", Namespace: "shop", InstanceID: "catalog-1.shop", Role: "sidecar"}
	refHub, refCC := startHub(t)
	newHub, newCC := startHub(t)
	tel := newTelemetry(Options{Clock: time.Now, TraceSampling: 1})

	var spans []*tracepb.Span
	var logs []*logspb.LogRecord
	var trace string
	batch := &recBatch{}
	for _, tt := range refCases() {
		r := tt.r
		if r.trace.valid {
			trace = hex.EncodeToString(r.trace.traceID[:])
		}
		dur := 1920 * time.Microsecond
		end := r.start.Add(dur)
		srcP, dstP := tel.principals(&r)
		body := refAppendRecord(nil, &r, dur, srcP, dstP)
		logs = append(logs, refLogRecord(&r, end, body))
		if r.recordSpan() && tt.name != "escapes" { // the old path could not marshal invalid UTF-8
			spans = append(spans, refSpan(&r, end, srcP, dstP))
		}
		if tt.name == "escapes" {
			continue
		}
		var d doneRec
		tel.pack(&d, &r, dur)
		batch.recs = append(batch.recs, d)
		batch.arena = batch.recs[len(batch.recs)-1].ownStrings(batch.arena)
		if d.bits&bitSpan != 0 {
			batch.spans++
		}
	}
	logs = append(logs[:10], logs[11:]...) // "escapes" is case 10

	// Reference: the generated messages, marshalled by grpc's proto codec.
	rres := &resourcepb.Resource{}
	for _, kv := range [][2]string{{"service.name", res.ServiceName}, {"service.namespace", res.Namespace}, {"service.instance.id", res.InstanceID}, {"weft.role", res.Role}} {
		rres.Attributes = append(rres.Attributes, strAttr(kv[0], kv[1]))
	}
	scope := &commonpb.InstrumentationScope{Name: "weft-proxy"}
	ctx := context.Background()
	if _, err := tracecol.NewTraceServiceClient(refCC).Export(ctx, &tracecol.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: rres, ScopeSpans: []*tracepb.ScopeSpans{{Scope: scope, Spans: spans}}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := logscol.NewLogsServiceClient(refCC).Export(ctx, &logscol.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: rres, ScopeLogs: []*logspb.ScopeLogs{{Scope: scope, LogRecords: logs}}}}}); err != nil {
		t.Fatal(err)
	}

	// New: the telemetry goroutine's encoder into a real exporter.
	exp, err := otlpexport.New(otlpexport.Config{Conn: newCC, Resource: res})
	if err != nil {
		t.Fatal(err)
	}
	tel.sink = exp
	tel.encode(batch)
	ectx, cancel := context.WithCancel(ctx)
	cancel() // Run sends what is queued and returns
	exp.Run(ectx)
	if exp.Sent(otlpexport.Traces) != uint64(len(spans)) || exp.Sent(otlpexport.Logs) != uint64(len(logs)) {
		t.Fatalf("sent %d spans %d logs, want %d and %d", exp.Sent(otlpexport.Traces), exp.Sent(otlpexport.Logs), len(spans), len(logs))
	}

	want, ok := refHub.Trace(trace)
	got, ok2 := newHub.Trace(trace)
	if !ok || !ok2 || len(want.Spans) == 0 {
		t.Fatalf("trace %s held: reference %v, new %v", trace, ok, ok2)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hub trace\n got %+v\nwant %+v", got, want)
	}
	wl, _, _ := refHub.Logs(hub.LogQuery{})
	gl, _, _ := newHub.Logs(hub.LogQuery{})
	if len(wl) != len(logs) {
		t.Fatalf("reference hub holds %d records, want %d", len(wl), len(logs))
	}
	if !reflect.DeepEqual(gl, wl) {
		t.Errorf("hub logs\n got %+v\nwant %+v", gl, wl)
	}
}
