package control

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/weft-mesh/weft/control/telemetry"
)

// TestMeshServesTelemetry exports a span over OTLP to the xDS port with
// the operator token and reads it back from the API.
func TestMeshServesTelemetry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *Plane, 1)
	meshes := make(chan *Mesh, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Config{StateDir: t.TempDir(), APIAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0", OnReady: func(p *Plane) { ready <- p }},
			MeshComponent(MeshOptions{NoCA: true, TraceSampling: 0.5, Started: func(m *Mesh) { meshes <- m }}))
	}()
	var p *Plane
	select {
	case p = <-ready:
	case err := <-errc:
		t.Fatal(err)
	}
	m := <-meshes
	if got := m.Source.Mesh().TraceSampling; got != 0.5 {
		t.Fatalf("mesh trace sampling %v", got)
	}
	conn, err := grpc.NewClient(m.XDSAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tid := []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	now := uint64(time.Now().UnixNano())
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "frontend"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: tid, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "GET default", StartTimeUnixNano: now, EndTimeUnixNano: now + 1e6,
		}}}},
	}}}
	client := coltracepb.NewTraceServiceClient(conn)
	if _, err := client.Export(ctx, req); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Fatalf("export without a token: %v", err)
	}
	if _, err := client.Export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+m.JoinToken), req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + p.APIAddr.String() + "/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	var tr telemetry.Trace
	err = json.NewDecoder(resp.Body).Decode(&tr)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(tr.Spans) != 1 || tr.Spans[0].Service != "frontend" {
		t.Fatalf("trace: %d %+v %v", resp.StatusCode, tr, err)
	}
	for _, path := range []string{"/api/v1/top", "/api/v1/topology", "/api/v1/metrics", "/api/v1/logs", "/api/v1/prometheus/targets"} {
		resp, err := http.Get("http://" + p.APIAddr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %s %s", path, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestMeshRefusesBadTraceSampling(t *testing.T) {
	err := Run(context.Background(), Config{StateDir: t.TempDir(), APIAddr: "127.0.0.1:0", XDSAddr: "127.0.0.1:0"},
		MeshComponent(MeshOptions{NoCA: true, TraceSampling: 1.5}))
	if err == nil || err.Error() != "control: component 0: trace sampling 1.5: want a share from 0 to 1" {
		t.Fatalf("error %v", err)
	}
}
