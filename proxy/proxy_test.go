package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/bootstrap"
)

// startProxy runs a proxy on a bootstrap document and returns it with the
// address of each listener.
func startProxy(t testing.TB, doc string) (*Proxy, map[string]string) {
	t.Helper()
	return startProxyOpts(t, doc, Options{})
}

// startProxyOpts is startProxy with options.
func startProxyOpts(t testing.TB, doc string, opts Options) (*Proxy, map[string]string) {
	t.Helper()
	cfg, err := bootstrap.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse bootstrap: %v", err)
	}
	p := New(opts)
	if err := p.ApplyStatic(StaticResources{Listeners: cfg.Listeners, Clusters: cfg.Clusters}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	addrs := map[string]string{}
	for _, l := range cfg.Listeners {
		a, ok := p.ListenerAddr(l.GetName())
		if !ok {
			t.Fatalf("listener %q not bound", l.GetName())
		}
		addrs[l.GetName()] = a.String()
	}
	return p, addrs
}

func hostPort(t *testing.T, rawURL string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// httpBootstrap is a listener "in" routing everything (or by prefix) to
// static clusters.
func httpBootstrap(routes string, clusters string) string {
	return fmt.Sprintf(`
static_resources:
  listeners:
  - name: in
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: in
          upgrade_configs: [{upgrade_type: websocket}, {upgrade_type: CONNECT}]
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
%s
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
%s`, routes, clusters)
}

func staticCluster(name string, extra string, addrs ...string) string {
	var eps strings.Builder
	for _, a := range addrs {
		h, p, _ := net.SplitHostPort(a)
		fmt.Fprintf(&eps, "        - endpoint: {address: {socket_address: {address: %s, port_value: %s}}}\n", h, p)
	}
	return fmt.Sprintf(`  - name: %s
    type: STATIC
    connect_timeout: 1s
%s    load_assignment:
      cluster_name: %s
      endpoints:
      - lb_endpoints:
%s`, name, extra, name, eps.String())
}

func TestHTTPForwarding(t *testing.T) {
	var seen http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		w.Header().Set("Connection", "x-hop")
		w.Header().Set("X-Hop", "1")
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	defer up.Close()
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())))

	req, _ := http.NewRequest("GET", "http://"+addrs["in"]+"/a/b", nil)
	req.Header.Set("Connection", "x-secret")
	req.Header.Set("X-Secret", "s")
	req.Header.Set("Proxy-Authorization", "basic x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello /a/b" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if seen.Get("X-Secret") != "" || seen.Get("Proxy-Authorization") != "" {
		t.Errorf("hop-by-hop headers forwarded: %v", seen)
	}
	if len(seen.Get("X-Request-Id")) != 36 {
		t.Errorf("x-request-id = %q, want a UUID", seen.Get("X-Request-Id"))
	}
	if resp.Header.Get("X-Hop") != "" {
		t.Errorf("response hop-by-hop header forwarded")
	}
}

func TestLocalReplies(t *testing.T) {
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}))
	defer reset.Close()
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/dead"}
                route: {cluster: dead}
              - match: {prefix: "/slow"}
                route: {cluster: slow, timeout: 0.2s}
              - match: {prefix: "/reset"}
                route: {cluster: reset}
              - match: {prefix: "/missing"}
                route: {cluster: nothing}`,
		staticCluster("dead", "", deadAddr)+staticCluster("slow", "", slow.Listener.Addr().String())+staticCluster("reset", "", reset.Listener.Addr().String())))
	for _, tc := range []struct {
		path   string
		status int
		reason string
	}{
		{"/dead", 503, reasonConnectFail},
		{"/slow", 504, reasonTimeout},
		{"/reset", 502, reasonReset},
		{"/missing", 503, reasonNoCluster},
		{"/nowhere", 404, reasonNoRoute},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get("http://" + addrs["in"] + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("X-Weft-Reason") != tc.reason {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Weft-Reason"), tc.status, tc.reason)
			}
		})
	}
}

func TestWeightedSplit(t *testing.T) {
	hits := map[string]int{}
	mk := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	}
	v1, v2 := mk("v1"), mk("v2")
	defer v1.Close()
	defer v2.Close()
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route:
                  weighted_clusters:
                    clusters: [{name: v1, weight: 90}, {name: v2, weight: 10}]`,
		staticCluster("v1", "", v1.Listener.Addr().String())+staticCluster("v2", "", v2.Listener.Addr().String())))
	const n = 2000
	for i := 0; i < n; i++ {
		resp, err := http.Get("http://" + addrs["in"] + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hits[string(b)]++
	}
	// 10% of 2000 = 200; binomial sd ≈ 13.4: allow ±5 sd.
	if got := hits["v2"]; got < 133 || got > 267 {
		t.Fatalf("v2 got %d of %d requests, want about 200 (hits %v)", got, n, hits)
	}
}

func TestInvalidUpdateKeepsServing(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	p, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())))
	bad := &clusterv3.Cluster{Name: "dyn", ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}, UpstreamBindConfig: &corev3.BindConfig{}}
	a, _ := anypb.New(bad)
	err := p.Update(resourcev3.ClusterType, map[string]*anypb.Any{"dyn": a})
	if err == nil || !strings.Contains(err.Error(), `cluster "dyn": upstream_bind_config: unsupported by weft`) {
		t.Fatalf("err = %v, want the unsupported field named", err)
	}
	resp, err := http.Get("http://" + addrs["in"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("after NACK got %q", b)
	}
}

func TestTCPProxy(t *testing.T) {
	echo := tcpEcho(t)
	_, addrs := startProxy(t, fmt.Sprintf(`
static_resources:
  listeners:
  - name: tcp
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: echo
  clusters:
%s`, staticCluster("echo", "", echo)))
	c, err := net.Dial("tcp", addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo got %q, %v", line, err)
	}
}

// TestHTTP10ClientChunkedUpstream: an HTTP/1.0 client cannot read chunked
// framing, so a chunked upstream response reaches it close-delimited.
func TestHTTP10ClientChunkedUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1-")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
	}))
	defer up.Close()
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())))
	c, err := net.Dial("tcp", addrs["in"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	if !strings.HasPrefix(s, "HTTP/1.0 200 ") || strings.Contains(strings.ToLower(s), "transfer-encoding") || !strings.HasSuffix(s, "\r\n\r\npart1-part2") {
		t.Fatalf("response to HTTP/1.0 client:\n%s", s)
	}
}

// refuseListen is a Listen option that binds nothing (for fuzzing).
func refuseListen(name, addr string) (net.Listener, error) {
	return nil, fmt.Errorf("listen disabled in this test")
}

// TestReusePort: two proxies can serve the same listener address (two
// replicas' sidecars sharing an upstream port), as with Envoy's
// enable_reuse_port.
func TestReusePort(t *testing.T) {
	l1, err := listenReusePort("a", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	l2, err := listenReusePort("b", l1.Addr().String())
	if err != nil {
		t.Fatalf("second listener on %s: %v", l1.Addr(), err)
	}
	l2.Close()
}

// TestConnectTunnel: a CONNECT request (HTTP proxy mode) is routed by its
// authority and tunnels bytes both ways to the routed cluster.
func TestConnectTunnel(t *testing.T) {
	echo := tcpEcho(t)
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: echo}`, staticCluster("echo", "", echo)))
	c, err := net.Dial("tcp", addrs["in"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT echo.shop:9000 HTTP/1.1\r\nHost: echo.shop:9000\r\n\r\nearly\n")
	br := bufio.NewReader(c)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200") {
		t.Fatalf("CONNECT answer %q %v", status, err)
	}
	if blank, _ := br.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("after the status line: %q", blank)
	}
	// Bytes sent with the request head, and bytes sent later, both arrive.
	fmt.Fprintf(c, "later\n")
	for _, want := range []string{"early\n", "later\n"} {
		if got, err := br.ReadString('\n'); err != nil || got != want {
			t.Fatalf("tunnel got %q %v, want %q", got, err, want)
		}
	}
}
