package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/accessrec"
	"github.com/weft-mesh/weft/proxy/admin"
)

// lineWriter hands every access log line to a channel, so that tests wait
// for records instead of sleeping. The proxy writes a batch of lines at a
// time.
type lineWriter struct{ ch chan map[string]any }

func newLineWriter() *lineWriter { return &lineWriter{ch: make(chan map[string]any, 64)} }

func (w *lineWriter) Write(b []byte) (int, error) {
	if len(b) == 0 || b[len(b)-1] != '\n' {
		panic(fmt.Sprintf("access log write does not end a line: %q", b))
	}
	for _, line := range bytes.SplitAfter(b[:len(b)-1], []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			panic(fmt.Sprintf("access log line is not JSON: %v: %s", err, line))
		}
		w.ch <- m
	}
	return len(b), nil
}

func (w *lineWriter) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m := <-w.ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no access record within 5s")
		return nil
	}
}

// decodeSpans decodes what the proxy hands TelemetrySink.ExportSpans.
func decodeSpans(enc []byte, n int) ([]*tracepb.Span, error) {
	var ss tracepb.ScopeSpans
	if err := proto.Unmarshal(enc, &ss); err != nil {
		return nil, err
	}
	if len(ss.Spans) != n || ss.Scope != nil {
		return nil, fmt.Errorf("%d spans and scope %v, want %d spans alone", len(ss.Spans), ss.Scope, n)
	}
	return ss.Spans, nil
}

// decodeLogs decodes what the proxy hands TelemetrySink.ExportLogs.
func decodeLogs(enc []byte, n int) ([]*logspb.LogRecord, error) {
	var sl logspb.ScopeLogs
	if err := proto.Unmarshal(enc, &sl); err != nil {
		return nil, err
	}
	if len(sl.LogRecords) != n || sl.Scope != nil {
		return nil, fmt.Errorf("%d log records and scope %v, want %d records alone", len(sl.LogRecords), sl.Scope, n)
	}
	return sl.LogRecords, nil
}

// recordingSink keeps what the proxy exports, decoded.
// With carry it says its collector takes spans that carry access records.
type recordingSink struct {
	carry   bool
	mu      sync.Mutex
	spans   []*tracepb.Span
	logs    []*logspb.LogRecord
	carried int // spans handed over as carrying their records
	dropped [2]int
}

func (s *recordingSink) ExportSpans(enc []byte, n int, records bool) error {
	spans, err := decodeSpans(enc, n)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.spans = append(s.spans, spans...)
	if records {
		s.carried += n
	}
	s.mu.Unlock()
	return nil
}

func (s *recordingSink) SpansCarryRecords() bool { return s.carry }

func (s *recordingSink) ExportLogs(enc []byte, n int) error {
	logs, err := decodeLogs(enc, n)
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.logs = append(s.logs, logs...)
	s.mu.Unlock()
	return nil
}

func (s *recordingSink) DropRecords(spans, logs int) {
	s.mu.Lock()
	s.dropped[0] += spans
	s.dropped[1] += logs
	s.mu.Unlock()
}

// withDirection sets the traffic_direction of the listener "in".
func withDirection(doc, dir string) string {
	return strings.Replace(doc, "  - name: in\n", "  - name: in\n    traffic_direction: "+dir+"\n", 1)
}

// meshCluster is a static cluster whose endpoint carries the weft metadata.
func meshCluster(name, addr, workload, namespace string) string {
	h, p, _ := net.SplitHostPort(addr)
	return fmt.Sprintf(`  - name: %q
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: %q
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: %s, port_value: %s}}}
          metadata:
            filter_metadata:
              weft: {workload: %s, namespace: %s, service_account: %s}
`, name, name, h, p, workload, namespace, workload)
}

var frozen = time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC)

func frozenClock() time.Time { return frozen }

// TestGoldenMetrics sends known requests through a source sidecar
// (frontend, outbound listener) and a destination sidecar (catalog,
// inbound listener) and compares the new series line by line. The clock
// is frozen, so every duration is 0 and the buckets are exact.
func TestGoldenMetrics(t *testing.T) {
	var appSaw []string
	var mu sync.Mutex
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		appSaw = append(appSaw, r.Header.Get("X-Weft-Source"))
		mu.Unlock()
		io.WriteString(w, "items")
	}))
	defer app.Close()
	pb, inb := startProxyOpts(t, withDirection(httpBootstrap(`              - name: default
                match: {prefix: "/"}
                route: {cluster: "inbound|8080||"}`, staticCluster(`"inbound|8080||"`, "", app.Listener.Addr().String())), "INBOUND"),
		Options{Clock: frozenClock, Workload: "catalog-v1", Namespace: "shop", Service: "catalog"})
	pa, outb := startProxyOpts(t, withDirection(httpBootstrap(`              - name: catalog-route
                match: {prefix: "/api"}
                route: {cluster: "outbound|80||catalog.shop"}`, meshCluster("outbound|80||catalog.shop", inb["in"], "catalog-v1", "shop")), "OUTBOUND"),
		Options{Clock: frozenClock, Workload: "frontend", Namespace: "shop", Service: "frontend"})

	c := clients(t)["http1"]
	for _, path := range []string{"/api/items?page=1", "/api/items", "/missing"} {
		req, _ := http.NewRequest("GET", "http://"+outb["in"]+path, nil)
		req.Header.Set("X-Weft-Source", "forged.elsewhere") // the source sidecar overwrites it
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	mu.Lock()
	if !slices.Equal(appSaw, []string{"", ""}) {
		t.Errorf("the app saw x-weft-source %q, want it removed", appSaw)
	}
	mu.Unlock()

	const (
		srcEdge  = `reporter="source",source_workload="frontend",source_namespace="shop",destination_workload="catalog-v1",destination_namespace="shop",destination_service="catalog.shop",route="catalog-route"`
		srcNR    = `reporter="source",source_workload="frontend",source_namespace="shop",destination_workload="unknown",destination_namespace="unknown",destination_service="unknown",route="unknown"`
		destEdge = `reporter="destination",source_workload="frontend",source_namespace="shop",destination_workload="catalog-v1",destination_namespace="shop",destination_service="catalog.shop",route="default"`
	)
	tests := []struct {
		name string
		p    *Proxy
		want []string
	}{
		{"source", pa, []string{
			`weft_requests_total{reporter="source",source_workload="frontend",source_namespace="shop",source_principal="unknown",destination_workload="catalog-v1",destination_namespace="shop",destination_service="catalog.shop",destination_principal="unknown",route="catalog-route",request_protocol="http",response_code="200",grpc_status="",response_flags="-"} 2`,
			`weft_requests_total{reporter="source",source_workload="frontend",source_namespace="shop",source_principal="unknown",destination_workload="unknown",destination_namespace="unknown",destination_service="unknown",destination_principal="unknown",route="unknown",request_protocol="http",response_code="404",grpc_status="",response_flags="NR"} 1`,
			`weft_request_duration_seconds_bucket{` + srcEdge + `,response_code_class="2xx",le="0.0005"} 2`,
			`weft_request_duration_seconds_bucket{` + srcEdge + `,response_code_class="2xx",le="+Inf"} 2`,
			`weft_request_duration_seconds_sum{` + srcEdge + `,response_code_class="2xx"} 0`,
			`weft_request_duration_seconds_count{` + srcEdge + `,response_code_class="2xx"} 2`,
			`weft_request_duration_seconds_bucket{` + srcNR + `,response_code_class="4xx",le="0.0005"} 1`,
			`weft_request_duration_seconds_bucket{` + srcNR + `,response_code_class="4xx",le="+Inf"} 1`,
			`weft_request_duration_seconds_sum{` + srcNR + `,response_code_class="4xx"} 0`,
			`weft_request_duration_seconds_count{` + srcNR + `,response_code_class="4xx"} 1`,
			`weft_upstream_duration_seconds_bucket{` + srcEdge + `,response_code_class="2xx",le="0.0005"} 2`,
			`weft_upstream_duration_seconds_bucket{` + srcEdge + `,response_code_class="2xx",le="+Inf"} 2`,
			`weft_upstream_duration_seconds_sum{` + srcEdge + `,response_code_class="2xx"} 0`,
			`weft_upstream_duration_seconds_count{` + srcEdge + `,response_code_class="2xx"} 2`,
			`weft_request_bytes_total{` + srcEdge + `,response_code_class="2xx"} 0`,
			`weft_request_bytes_total{` + srcNR + `,response_code_class="4xx"} 0`,
			`weft_response_bytes_total{` + srcEdge + `,response_code_class="2xx"} 10`,
			`weft_response_bytes_total{` + srcNR + `,response_code_class="4xx"} 9`,
			`weft_downstream_connections_active{listener="in"} 1`,
		}},
		{"destination", pb, []string{
			`weft_requests_total{reporter="destination",source_workload="frontend",source_namespace="shop",source_principal="unknown",destination_workload="catalog-v1",destination_namespace="shop",destination_service="catalog.shop",destination_principal="unknown",route="default",request_protocol="http",response_code="200",grpc_status="",response_flags="-"} 2`,
			`weft_request_duration_seconds_bucket{` + destEdge + `,response_code_class="2xx",le="0.0005"} 2`,
			`weft_request_duration_seconds_bucket{` + destEdge + `,response_code_class="2xx",le="+Inf"} 2`,
			`weft_request_duration_seconds_sum{` + destEdge + `,response_code_class="2xx"} 0`,
			`weft_request_duration_seconds_count{` + destEdge + `,response_code_class="2xx"} 2`,
			`weft_request_bytes_total{` + destEdge + `,response_code_class="2xx"} 0`,
			`weft_response_bytes_total{` + destEdge + `,response_code_class="2xx"} 10`,
			`weft_downstream_connections_active{listener="in"} 1`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := tt.p.WritePrometheus(&b); err != nil {
				t.Fatal(err)
			}
			got := goldenLines(b.String())
			if !slices.Equal(got, tt.want) {
				t.Errorf("golden series:\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, typ := range []string{"weft_requests_total counter", "weft_request_duration_seconds histogram", "weft_upstream_duration_seconds histogram",
				"weft_request_bytes_total counter", "weft_response_bytes_total counter", "weft_tcp_connections_opened_total counter",
				"weft_tcp_connections_closed_total counter", "weft_tcp_sent_bytes_total counter", "weft_tcp_received_bytes_total counter",
				"weft_downstream_connections_active gauge"} {
				if !strings.Contains(b.String(), "# TYPE "+typ+"\n") {
					t.Errorf("missing # TYPE %s", typ)
				}
			}
			// Every bucket bound of the contract is rendered.
			for _, le := range []string{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"} {
				if !strings.Contains(b.String(), `le="`+le+`"}`) {
					t.Errorf("missing bucket le=%s", le)
				}
			}
		})
	}
}

// goldenLines keeps the new series of a scrape: every request counter,
// sums and counts, the first and +Inf buckets, byte counters and the
// connection gauge.
func goldenLines(scrape string) []string {
	var out []string
	for _, l := range strings.Split(scrape, "\n") {
		switch {
		case strings.HasPrefix(l, "weft_requests_total{"),
			strings.Contains(l, "_duration_seconds_sum{"), strings.Contains(l, "_duration_seconds_count{"),
			strings.Contains(l, "_duration_seconds_bucket{") && (strings.Contains(l, `le="0.0005"`) || strings.Contains(l, `le="+Inf"`)),
			strings.HasPrefix(l, "weft_request_bytes_total{"), strings.HasPrefix(l, "weft_response_bytes_total{"),
			strings.HasPrefix(l, "weft_downstream_connections_active{"):
			out = append(out, l)
		}
	}
	return out
}

// TestAccessLogLocalReplies checks the flags and reason of every kind of
// local reply, on both HTTP paths (HTTP/1.1 fast path, h2c net/http path).
func TestAccessLogLocalReplies(t *testing.T) {
	hold := make(chan struct{})
	held := make(chan struct{}, 4)
	defer close(hold)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/overflow") {
			held <- struct{}{}
		}
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	jwks, _ := json.Marshal(testJWKS(t))
	doc := httpBootstrap(`              - name: nocluster
                match: {prefix: "/nocluster"}
                route: {cluster: missing}
              - name: nohealthy
                match: {prefix: "/nohealthy"}
                route: {cluster: empty}
              - name: connfail
                match: {prefix: "/connfail"}
                route: {cluster: dead}
              - name: timeout
                match: {prefix: "/timeout"}
                route: {cluster: slow, timeout: 0.05s}
              - name: overflow
                match: {prefix: "/overflow"}
                route: {cluster: limited, timeout: 0s}
              - name: fault
                match: {prefix: "/fault"}
                route: {cluster: slow}
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    abort: {http_status: 503, percentage: {numerator: 100}}
              - name: other
                match: {prefix: "/rbac"}
                route: {cluster: slow}
              - name: jwt
                match: {prefix: "/jwt"}
                route: {cluster: slow}`,
		`  - name: empty
    type: EDS
    eds_cluster_config: {eds_config: {ads: {}}}
`+staticCluster("dead", "", deadAddr)+staticCluster("slow", "", slow.Listener.Addr().String())+
			staticCluster("limited", "    circuit_breakers: {thresholds: [{max_requests: 1}]}\n", slow.Listener.Addr().String()))
	doc = withFilters(doc, fmt.Sprintf(`          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                issuer: {issuer: https://issuer.test, local_jwks: {inline_string: %s}}
              rules:
              - match: {prefix: /jwt}
                requires: {provider_name: issuer}
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: DENY
                policies:
                  rbac-path:
                    permissions: [{url_path: {path: {prefix: /rbac}}}]
                    principals: [{any: true}]
`, jwks))
	log := newLineWriter()
	_, addrs := startProxyOpts(t, doc, Options{AccessLog: log})
	tests := []struct {
		path   string
		status int
		flags  string
		reason string
	}{
		{"/nothing", 404, "NR", "no_route"},
		{"/nocluster", 503, "NC", "no_cluster"},
		{"/nohealthy", 503, "UH", "no_healthy_upstream"},
		{"/connfail", 503, "UF", "connect_failure"},
		{"/timeout", 504, "UT", "upstream_timeout"},
		{"/fault", 503, "FI", "fault_abort"},
		{"/rbac", 403, "UAEX", "rbac_access_denied"},
		{"/jwt", 401, "JWT", "jwt_missing"},
	}
	for proto, c := range clients(t) {
		for _, tt := range tests {
			t.Run(proto+tt.path, func(t *testing.T) {
				r := get(t, c, "http://"+addrs["in"]+tt.path+"?q=secret", nil)
				rec := log.next(t)
				if r.status != tt.status || rec["status"] != float64(tt.status) || rec["flags"] != tt.flags || rec["reason"] != tt.reason {
					t.Errorf("reply %d; record status %v flags %v reason %v, want %d %s %s", r.status, rec["status"], rec["flags"], rec["reason"], tt.status, tt.flags, tt.reason)
				}
				if rec["path"] != tt.path {
					t.Errorf("record path %v, want %s (no query)", rec["path"], tt.path)
				}
			})
		}
		t.Run(proto+"/overflow", func(t *testing.T) {
			first := make(chan result, 1)
			go func() {
				req, _ := http.NewRequest("GET", "http://"+addrs["in"]+"/overflow/hold", nil)
				resp, err := c.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					first <- result{status: resp.StatusCode}
				} else {
					first <- result{}
				}
			}()
			<-held // the first request holds the only slot
			r := get(t, c, "http://"+addrs["in"]+"/overflow/second", nil)
			rec := log.next(t)
			if r.status != 503 || rec["flags"] != "UO" || rec["reason"] != "overflow" || rec["route"] != "overflow" {
				t.Errorf("reply %d; record %v", r.status, rec)
			}
			hold <- struct{}{}
			if f := <-first; f.status != 200 {
				t.Errorf("held request: %d, want 200", f.status)
			}
			if rec := log.next(t); rec["flags"] != "-" || rec["status"] != float64(200) || rec["attempts"] != float64(1) {
				t.Errorf("held request record %v", rec)
			}
		})
	}
}

// TestAccessRecordFields checks a whole record of a proxied request.
func TestAccessRecordFields(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer app.Close()
	log := newLineWriter()
	_, addrs := startProxyOpts(t, withDirection(httpBootstrap(`              - name: default
                match: {prefix: "/"}
                route: {cluster: "inbound|8080||"}`, staticCluster(`"inbound|8080||"`, "", app.Listener.Addr().String())), "INBOUND"),
		Options{Clock: frozenClock, AccessLog: log, Workload: "catalog-v1", Namespace: "shop", Service: "catalog"})
	for proto, c := range clients(t) {
		t.Run(proto, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+addrs["in"]+"/api/products?x=1", strings.NewReader("order"))
			req.Header.Set("User-Agent", "test-agent")
			req.Header.Set("X-Request-Id", "rid-1")
			req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
			req.Header.Set("X-Weft-Source", "frontend.shop")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			rec := log.next(t)
			upstream := app.Listener.Addr().String()
			protocol := map[string]string{"http1": "HTTP/1.1", "h2c": "HTTP/2.0"}[proto]
			want := map[string]any{
				"time": "2026-11-25T12:00:00.123456Z", "kind": "http", "reporter": "destination",
				"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "request_id": "rid-1",
				"listener": "in", "route": "default", "method": "POST", "authority": addrs["in"], "path": "/api/products",
				"protocol": protocol, "status": 200.0, "grpc_status": "", "flags": "-", "reason": "", "attempts": 1.0,
				"cluster": "inbound|8080||", "upstream": upstream, "duration_ms": 0.0, "upstream_ms": 0.0,
				"bytes_in": 5.0, "bytes_out": 5.0, "source_workload": "frontend", "source_namespace": "shop",
				"source_principal": "unknown", "destination_workload": "catalog-v1", "destination_namespace": "shop",
				"destination_service": "catalog.shop", "destination_principal": "unknown", "user_agent": "test-agent",
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("%s = %#v, want %#v", k, rec[k], v)
				}
			}
			if len(rec) != len(want) {
				t.Errorf("record has %d fields, want %d: %v", len(rec), len(want), rec)
			}
		})
	}
}

// TestTCPTelemetry: a tcp_proxy connection gives one access record and
// the TCP series.
func TestTCPTelemetry(t *testing.T) {
	echo := tcpEcho(t)
	log := newLineWriter()
	p, addrs := startProxyOpts(t, `
static_resources:
  listeners:
  - name: tcp
    traffic_direction: OUTBOUND
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: "outbound|6379||redis.shop"
  clusters:
`+meshCluster("outbound|6379||redis.shop", echo, "redis", "shop"), Options{AccessLog: log, Workload: "frontend", Namespace: "shop"})
	c, err := net.Dial("tcp", addrs["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "ping\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	if line != "ping\n" {
		t.Fatalf("echo %q", line)
	}
	c.Close()
	rec := log.next(t)
	for k, v := range map[string]any{"kind": "tcp", "reporter": "source", "cluster": "outbound|6379||redis.shop", "bytes_in": 5.0, "bytes_out": 5.0,
		"destination_workload": "redis", "destination_service": "redis.shop", "flags": "-"} {
		if rec[k] != v {
			t.Errorf("%s = %#v, want %#v", k, rec[k], v)
		}
	}
	var b strings.Builder
	p.WritePrometheus(&b)
	labels := `{reporter="source",source_workload="frontend",source_namespace="shop",destination_workload="redis",destination_namespace="shop",destination_service="redis.shop"}`
	for _, l := range []string{"weft_tcp_connections_opened_total" + labels + " 1", "weft_tcp_connections_closed_total" + labels + " 1",
		"weft_tcp_sent_bytes_total" + labels + " 5", "weft_tcp_received_bytes_total" + labels + " 5"} {
		if !strings.Contains(b.String(), l+"\n") {
			t.Errorf("missing %s", l)
		}
	}
}

// TestTap streams access records over the admin API while a client reads.
func TestTap(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	p, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: app}`, staticCluster("app", "", app.Listener.Addr().String())))
	adm := httptest.NewServer(admin.Handler(p))
	defer adm.Close()
	resp, err := http.Get(adm.URL + "/tap?path=/api")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "application/x-ndjson" {
		t.Fatalf("tap: %d %s", resp.StatusCode, ct)
	}
	// The headers arrive once the subscription exists.
	c := clients(t)["http1"]
	for _, path := range []string{"/other", "/api/orders", "/api/items"} {
		if r := get(t, c, "http://"+addrs["in"]+path, nil); r.status != 200 {
			t.Fatalf("%s: %d", path, r.status)
		}
	}
	sc := bufio.NewScanner(resp.Body)
	for _, want := range []string{"/api/orders", "/api/items"} {
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if rec["path"] != want {
			t.Fatalf("tapped %v, want %s", rec["path"], want)
		}
	}
	resp.Body.Close()
	timeout := time.After(5 * time.Second)
	for {
		changed := p.tel.taps.watch() // before the count: a change in between closes it
		if p.tel.taps.n.Load() == 0 {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatal("the tap subscription outlived its client")
		}
	}
}

// With a collector that takes spans carrying access records, a traced
// request's record goes in its span and gets no log record; an untraced
// one gets its log record as before. The record read back from the span
// is the one written to the access log.
func TestSpansCarryRecords(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	defer app.Close()
	log := newLineWriter()
	sink := &recordingSink{carry: true}
	p, addrs := startProxyOpts(t, withDirection(httpBootstrap(`              - name: default
                match: {prefix: "/"}
                route: {cluster: "inbound|8080||"}`, staticCluster(`"inbound|8080||"`, "", app.Listener.Addr().String())), "INBOUND"),
		Options{AccessLog: log, Telemetry: sink, Workload: "catalog-v1", Namespace: "shop", Service: "catalog"})
	c := clients(t)["http1"]
	var lines []map[string]any
	for _, sampled := range []string{"01", "00"} {
		req, _ := http.NewRequest("GET", "http://"+addrs["in"]+"/products", nil)
		req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"+sampled)
		req.Header.Set("User-Agent", "test-agent")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lines = append(lines, log.next(t))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil { // hands out every record
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.spans) != 1 || sink.carried != 1 || len(sink.logs) != 1 {
		t.Fatalf("%d spans (%d carrying records) and %d log records; want 1, 1 and 1 (the untraced request's)", len(sink.spans), sink.carried, len(sink.logs))
	}
	b, err := proto.Marshal(sink.spans[0])
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := accessrec.FromSpan(b)
	if !ok {
		t.Fatal("the traced request's span carries no record")
	}
	var fromSpan map[string]any
	if err := json.Unmarshal(accessrec.AppendJSON(nil, &rec), &fromSpan); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromSpan, lines[0]) {
		t.Errorf("record from the span\n %v\nin the access log\n %v", fromSpan, lines[0])
	}
	var logged map[string]any
	if err := json.Unmarshal([]byte(sink.logs[0].GetBody().GetStringValue()), &logged); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(logged, lines[1]) {
		t.Errorf("log record\n %v\nin the access log\n %v", logged, lines[1])
	}
}
