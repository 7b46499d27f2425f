package instance

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/weft-mesh/weft/examples/shop/internal/tracectx"
)

const (
	testTP  = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTID = "4bf92f3577b34da6a3ce929d0e0e4736"
)

// lockedBuffer is a log sink shared by the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// take returns the lines logged so far and forgets them.
func (l *lockedBuffer) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.b.String())
	l.b.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// serveObserved serves h (HTTP/1.1 and h2c) with a text logger into the
// returned buffer, as the shop's commands do.
func serveObserved(t *testing.T, h http.Handler) (string, *lockedBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, 5*time.Second, logger) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String(), logs
}

// TestObserveHTTP: the handler sees the trace context in its context, the
// answer names the trace, and one line per request carries trace_id (none
// for probes).
func TestObserveHTTP(t *testing.T) {
	addr, logs := serveObserved(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			return
		}
		if got, want := tracectx.FromContext(r.Context()).Traceparent, tracectx.FromHeader(r.Header).Traceparent; got != want {
			t.Errorf("trace context in the handler: %q, want %q", got, want)
		}
		http.Error(w, "teapot", http.StatusTeapot)
	}))
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	tests := []struct {
		name, method, path, traceparent string
		wantHeader                      string
		wantLog                         []string // substrings of the one line; nil: no line
		notInLog                        string
	}{
		{name: "traced request", method: "POST", path: "/api/x", traceparent: testTP, wantHeader: testTID,
			wantLog: []string{"msg=request", "method=POST", "path=/api/x", "status=418", "duration_ms=", "trace_id=" + testTID}},
		{name: "untraced request", method: "GET", path: "/y",
			wantLog: []string{"msg=request", "method=GET", "path=/y", "status=418"}, notInLog: "trace_id"},
		{name: "invalid traceparent is no trace", method: "GET", path: "/z", traceparent: "00-nope",
			wantLog: []string{"path=/z"}, notInLog: "trace_id"},
		{name: "probe is not logged", method: "GET", path: "/healthz", traceparent: testTP, wantHeader: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
			if tc.traceparent != "" {
				req.Header.Set("traceparent", tc.traceparent)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get(HeaderTraceID); got != tc.wantHeader {
				t.Errorf("%s: %q, want %q", HeaderTraceID, got, tc.wantHeader)
			}
			lines := logs.take()
			if tc.wantLog == nil {
				if len(lines) != 0 {
					t.Fatalf("logged %q, want nothing", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("logged %q, want one line", lines)
			}
			for _, want := range tc.wantLog {
				if !strings.Contains(lines[0], want) {
					t.Errorf("log line %q lacks %q", lines[0], want)
				}
			}
			if tc.notInLog != "" && strings.Contains(lines[0], tc.notInLog) {
				t.Errorf("log line %q has %q", lines[0], tc.notInLog)
			}
		})
	}
}

// TestObserveGRPC: gRPC still works through the wrapped writer (it needs
// http.Flusher and trailers), and its line names the gRPC status.
func TestObserveGRPC(t *testing.T) {
	g := grpc.NewServer()
	healthpb.RegisterHealthServer(g, health.NewServer())
	addr, logs := serveObserved(t, g)
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", testTP)
	client := healthpb.NewHealthClient(conn)
	var hdr metadata.MD
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"}); err == nil {
		t.Fatal("Check of an unknown service succeeded")
	}
	if got := hdr.Get(HeaderTraceID); len(got) != 1 || got[0] != testTID {
		t.Errorf("x-trace-id metadata %q, want %q", got, testTID)
	}
	lines := logs.take()
	if len(lines) != 2 {
		t.Fatalf("logged %q, want two lines", lines)
	}
	for i, want := range []string{"grpc_status=0", "grpc_status=5"} {
		if !strings.Contains(lines[i], "path=/grpc.health.v1.Health/Check") || !strings.Contains(lines[i], want) ||
			!strings.Contains(lines[i], "trace_id="+testTID) {
			t.Errorf("line %d %q: want the method, %s and the trace id", i, lines[i], want)
		}
	}
}
