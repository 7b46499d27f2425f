package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// TestProxyFileMode runs `weft proxy --config` on an Envoy bootstrap and
// carries HTTP/1.1, h2c, gRPC (unary and streaming) and TCP through it, and
// through two proxies in a row (the mesh path).
func TestProxyFileMode(t *testing.T) {
	h1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s via %s", r.Proto, r.URL.Path, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer h1.Close()
	h2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
	}))
	h2.Config.Protocols = new(http.Protocols)
	h2.Config.Protocols.SetUnencryptedHTTP2(true)
	h2.Start()
	defer h2.Close()
	glis, _ := net.Listen("tcp", "127.0.0.1:0")
	gsrv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gsrv, hs)
	go gsrv.Serve(glis)
	defer gsrv.Stop()
	echo, _ := net.Listen("tcp", "127.0.0.1:0")
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	admin, pH1, pH2, pGRPC, pTCP, pHop := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	doc := bootstrapDoc(admin,
		httpListenerDoc("h1", pH1, "h1")+httpListenerDoc("h2", pH2, "h2")+httpListenerDoc("grpc", pGRPC, "grpc")+
			tcpListenerDoc("tcp", pTCP, "echo")+httpListenerDoc("hop", pHop, "self"),
		clusterDoc("h1", false, h1.Listener.Addr().String())+clusterDoc("h2", true, h2.Listener.Addr().String())+
			clusterDoc("grpc", true, glis.Addr().String())+clusterDoc("echo", false, echo.Addr().String())+
			clusterDoc("self", false, fmt.Sprintf("127.0.0.1:%d", pH1)))
	file := filepath.Join(t.TempDir(), "envoy.yaml")
	os.WriteFile(file, []byte(doc), 0o644)
	p := start(t, "proxy", "--config", file)
	waitReady(t, p, admin)

	get := func(c *http.Client, url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
		}
		return string(b)
	}
	t.Run("http1", func(t *testing.T) {
		if got := get(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/x", pH1)); got != "HTTP/1.1 /x via http" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("two hops", func(t *testing.T) {
		if got := get(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/y", pHop)); got != "HTTP/1.1 /y via http" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("h2c both sides", func(t *testing.T) {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		defer tr.CloseIdleConnections()
		if got := get(&http.Client{Transport: tr}, fmt.Sprintf("http://127.0.0.1:%d/z", pH2)); got != "HTTP/2.0 /z" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("http1 client to h2c upstream", func(t *testing.T) {
		if got := get(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/w", pH2)); got != "HTTP/2.0 /w" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("grpc", func(t *testing.T) {
		cc, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", pGRPC), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c := healthpb.NewHealthClient(cc)
		if r, err := c.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("check: %v %v", r, err)
		}
		st, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "cart"})
		if err != nil {
			t.Fatal(err)
		}
		if m, err := st.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
			t.Fatalf("first watch message: %v %v", m, err)
		}
		hs.SetServingStatus("cart", healthpb.HealthCheckResponse_SERVING)
		if m, err := st.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("second watch message: %v %v", m, err)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", pTCP))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "hello\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "hello\n" {
			t.Fatalf("echo: %q %v", line, err)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		m := get(http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/stats/prometheus", admin))
		if !strings.Contains(m, `weft_cluster_upstream_requests_total{cluster="h1"}`) {
			t.Fatalf("metrics lack the h1 cluster:\n%s", m)
		}
	})
}
