package control

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/telemetry"
	"github.com/weft-mesh/weft/proxy/otlpexport"
)

// TestAPIOffLoopbackNeedsTokenForWrites binds the API on every address:
// reads stay open, writes and the operator endpoints need the operator
// token.
func TestAPIOffLoopbackNeedsTokenForWrites(t *testing.T) {
	p, m, stop := startMesh(t, Config{StateDir: t.TempDir(), APIAddr: "0.0.0.0:0"}, MeshOptions{})
	defer stop()
	_, port, _ := net.SplitHostPort(p.APIAddr.String())
	base := "http://127.0.0.1:" + port
	call := func(method, path, token, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/yaml")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	svc := "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"read without token", http.MethodGet, "/api/v1/services", "", "", 200},
		{"write without token", http.MethodPost, "/api/v1/apply", "", svc, 401},
		{"write with a wrong token", http.MethodPost, "/api/v1/apply", "nope", svc, 401},
		{"write with the operator token", http.MethodPost, "/api/v1/apply", m.JoinToken, svc, 200},
		{"join token without operator token", http.MethodPost, "/api/v1/join-tokens", "", `{"namespace":"a","serviceAccount":"b"}`, 401},
		{"join token with a bad namespace", http.MethodPost, "/api/v1/join-tokens", m.JoinToken, `{"namespace":"A_B","serviceAccount":"b"}`, 400},
		{"join token", http.MethodPost, "/api/v1/join-tokens", m.JoinToken, `{"namespace":"a","serviceAccount":"b","ttl":"1h"}`, 200},
		{"profiles without operator token", http.MethodGet, "/debug/pprof/", "", "", 401},
		{"profiles", http.MethodGet, "/debug/pprof/", m.JoinToken, "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := call(tc.method, tc.path, tc.token, tc.body); got != tc.want {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, got, tc.want)
			}
		})
	}
	// The OTLP/HTTP receivers take a proxy's join token, which is not the
	// operator token the other writes need off loopback.
	join, err := m.Tokens.Issue("shop", "frontend", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := proto.Marshal(&collogspb.ExportLogsServiceRequest{})
	for _, tc := range []struct {
		token string
		want  int
	}{{join, 200}, {"", 401}, {"nope", 401}} {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/logs", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("OTLP/HTTP export with token %q: %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
}

// startMesh runs a control plane with the mesh component (cfg's xDS
// address defaults to a free loopback port here, its API address too)
// and returns it once it is ready, with a function that stops it and
// reports a failed shutdown.
func startMesh(t *testing.T, cfg Config, opts MeshOptions) (*Plane, *Mesh, func()) {
	t.Helper()
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:0"
	}
	if cfg.XDSAddr == "" {
		cfg.XDSAddr = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *Plane, 1)
	meshes := make(chan *Mesh, 1)
	errc := make(chan error, 1)
	cfg.OnReady = func(p *Plane) { ready <- p }
	opts.Started = func(m *Mesh) { meshes <- m }
	go func() { errc <- Run(ctx, cfg, MeshComponent(opts)) }()
	var p *Plane
	select {
	case p = <-ready:
	case err := <-errc:
		cancel()
		t.Fatal(err)
	}
	stop := func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	return p, <-meshes, stop
}

// The hub takes OTLP/HTTP exports on <state-dir>/otlp.sock (mode 0600),
// in place of a stale socket file; the file goes when the plane stops.
func TestOTLPSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "otlp.sock")
	// A socket file left by a process that is gone.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	_, m, stop := startMesh(t, Config{StateDir: dir}, MeshOptions{})
	if m.OTLPSocket != sock {
		t.Fatalf("OTLPSocket = %q, want %q", m.OTLPSocket, sock)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket file: %v, %v", fi, err)
	}
	join, err := m.Tokens.Issue("shop", "frontend", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp, err := otlpexport.New(otlpexport.Config{URL: "unix://" + sock, Token: join, Resource: otlpexport.Resource{ServiceName: "frontend", Namespace: "shop"}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &logspb.LogRecord{TimeUnixNano: uint64(time.Now().UnixNano()), SeverityText: "INFO",
		Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "over the socket"}}}
	enc, err := proto.Marshal(&logspb.ScopeLogs{LogRecords: []*logspb.LogRecord{rec}})
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.ExportLogs(enc, 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run sends what is queued, then returns
	exp.Run(ctx)
	if exp.Sent(otlpexport.Logs) != 1 || !exp.SpansCarryRecords() {
		t.Fatalf("sent %d records (dropped %d); the hub said it takes carried records: %v", exp.Sent(otlpexport.Logs), exp.Dropped(otlpexport.Logs), exp.SpansCarryRecords())
	}
	if recs, _, _ := m.Telemetry.Logs(telemetry.LogQuery{Contains: "over the socket"}); len(recs) != 1 || recs[0].Workload != "frontend" {
		t.Fatalf("records in the hub: %+v", recs)
	}
	stop()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("the socket file outlived the plane: %v", err)
	}

	// off: no socket.
	_, m, stop = startMesh(t, Config{StateDir: dir}, MeshOptions{OTLPSocket: "off"})
	defer stop()
	if m.OTLPSocket != "" {
		t.Fatalf("OTLPSocket = %q with off", m.OTLPSocket)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("a socket file with off: %v", err)
	}
}
