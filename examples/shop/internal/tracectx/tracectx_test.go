package tracectx

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

const (
	tp    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tid   = "4bf92f3577b34da6a3ce929d0e0e4736"
	state = "congo=t61rcWkgMzE"
)

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{name: "sampled", in: tp, want: tid, ok: true},
		{name: "not sampled", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", want: tid, ok: true},
		{name: "later version with more fields", in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", want: tid, ok: true},
		{name: "later version, same length", in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", want: tid, ok: true},
		{name: "empty", in: ""},
		{name: "version ff", in: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "version 00 with more fields", in: tp + "-x"},
		{name: "later version, junk after flags", in: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"},
		{name: "upper-case hex", in: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},
		{name: "zero trace id", in: "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
		{name: "zero parent id", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"},
		{name: "short trace id", in: "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"},
		{name: "bad separator", in: "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "non-hex flags", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseTraceparent(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ParseTraceparent(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{tp, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", "", "00-", "ff-" + tp[3:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseTraceparent(s)
		if !ok {
			if id != "" {
				t.Fatalf("rejected %q but returned %q", s, id)
			}
			return
		}
		if len(id) != 32 || !isHex(id) || allZero(id) || !strings.Contains(s, id) {
			t.Fatalf("accepted %q with trace id %q", s, id)
		}
		if c := (Context{Traceparent: s}); c.TraceID() != id {
			t.Fatalf("TraceID of %q = %q, want %q", s, c.TraceID(), id)
		}
	})
}

func TestFromHeader(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want Context
	}{
		{name: "both", h: http.Header{"Traceparent": {tp}, "Tracestate": {state}}, want: Context{Traceparent: tp, Tracestate: state}},
		{name: "traceparent only", h: http.Header{"Traceparent": {tp}}, want: Context{Traceparent: tp}},
		{name: "none", h: http.Header{}},
		{name: "invalid traceparent drops tracestate", h: http.Header{"Traceparent": {"00-zz"}, "Tracestate": {state}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := FromHeader(tc.h); got != tc.want {
				t.Fatalf("FromHeader = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestHTTPPropagation: a server wrapped in Handler calls another one
// through a client with Transport; the second sees the first's incoming
// trace context, and the caller's own request is left as it was.
func TestHTTPPropagation(t *testing.T) {
	seen := make(chan http.Header, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() }))
	defer backend.Close()
	client := &http.Client{Transport: &Transport{}}
	var outgoing *http.Request
	front := httptest.NewServer(Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, backend.URL, nil)
		if err != nil {
			t.Error(err)
			return
		}
		req.Header.Set(HeaderTracestate, "stale=1")
		outgoing = req
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
	})))
	defer front.Close()

	tests := []struct {
		name           string
		header         http.Header
		wantTP, wantTS string
	}{
		{name: "traceparent and tracestate", header: http.Header{"Traceparent": {tp}, "Tracestate": {state}}, wantTP: tp, wantTS: state},
		{name: "traceparent only: no stale tracestate", header: http.Header{"Traceparent": {tp}}, wantTP: tp},
		{name: "no trace context: the request goes as it is", header: http.Header{}, wantTS: "stale=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
			req.Header = tc.header
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := <-seen
			if got.Get(HeaderTraceparent) != tc.wantTP || got.Get(HeaderTracestate) != tc.wantTS {
				t.Fatalf("backend saw traceparent %q tracestate %q, want %q %q", got.Get(HeaderTraceparent), got.Get(HeaderTracestate), tc.wantTP, tc.wantTS)
			}
			if outgoing.Header.Get(HeaderTraceparent) != "" || outgoing.Header.Get(HeaderTracestate) != "stale=1" {
				t.Fatalf("the caller's request was modified: %v", outgoing.Header)
			}
		})
	}
}

// TestGRPCPropagation: a call made with a context carrying a trace
// context sends it as metadata, alongside the caller's own metadata.
func TestGRPCPropagation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan metadata.MD, 1)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		seen <- md
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUnaryInterceptor(UnaryClientInterceptor))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	tests := []struct {
		name           string
		ctx            context.Context
		wantTP, wantTS string
	}{
		{name: "trace context", ctx: NewContext(context.Background(), Context{Traceparent: tp, Tracestate: state}), wantTP: tp, wantTS: state},
		{name: "traceparent only", ctx: NewContext(context.Background(), Context{Traceparent: tp}), wantTP: tp},
		{name: "none", ctx: context.Background()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(tc.ctx, "x-user", "alice")
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			md := <-seen
			if first(md, HeaderTraceparent) != tc.wantTP || first(md, HeaderTracestate) != tc.wantTS || first(md, "x-user") != "alice" {
				t.Fatalf("server saw %v, want traceparent %q tracestate %q x-user alice", md, tc.wantTP, tc.wantTS)
			}
		})
	}
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

func BenchmarkTransportInject(b *testing.B) {
	b.ReportAllocs()
	ctx := NewContext(context.Background(), Context{Traceparent: tp, Tracestate: state})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://catalog.shop/products", nil)
	tr := &Transport{Base: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })}
	for b.Loop() {
		_, _ = tr.RoundTrip(req)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
