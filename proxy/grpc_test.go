package proxy

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

const h2Options = `    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
`

// TestGRPCThroughProxy runs a grpc-go client and server through the proxy
// (h2c on both sides): unary, server streaming, deadlines and status codes.
func TestGRPCThroughProxy(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	defer srv.Stop()
	hs.SetServingStatus("shop", healthpb.HealthCheckResponse_SERVING)

	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: grpc, timeout: 0s}`, staticCluster("grpc", h2Options, lis.Addr().String())))
	cc, err := grpc.NewClient(addrs["in"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("unary: %v %v", resp, err)
	}
	// A gRPC error status travels in trailers.
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unknown service: %v, want NotFound", err)
	}
	// Server streaming: every status change arrives as it happens.
	stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []healthpb.HealthCheckResponse_ServingStatus{
		healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING,
	} {
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if m.GetStatus() != want {
			t.Fatalf("recv %d: %v, want %v", i, m.GetStatus(), want)
		}
		switch i {
		case 0:
			hs.SetServingStatus("shop", healthpb.HealthCheckResponse_NOT_SERVING)
		case 1:
			hs.SetServingStatus("shop", healthpb.HealthCheckResponse_SERVING)
		}
	}
	// Deadline: an already-expired context fails with DeadlineExceeded.
	short, cancel2 := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel2()
	<-short.Done()
	if _, err := c.Check(short, &healthpb.HealthCheckRequest{Service: "shop"}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("deadline: %v", err)
	}
	_ = fmt.Sprint
}
