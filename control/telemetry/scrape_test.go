package telemetry

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/xds"
)

// fakeProxy is a real admin listener serving a settable metrics page.
type fakeProxy struct {
	srv    *httptest.Server
	mu     sync.Mutex
	page   string
	next   []string // pages to serve first, one per scrape
	status int
	taps   chan string // lines served on /tap; closed to end the stream
	path   chan string // the path parameter of each /tap request
}

func newFakeProxy(t *testing.T) *fakeProxy {
	fp := &fakeProxy{status: http.StatusOK, taps: make(chan string, 16), path: make(chan string, 4)}
	fp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stats/prometheus":
			fp.mu.Lock()
			if len(fp.next) > 0 {
				fp.page, fp.next = fp.next[0], fp.next[1:]
			}
			page, status := fp.page, fp.status
			fp.mu.Unlock()
			w.WriteHeader(status)
			fmt.Fprint(w, page)
		case "/tap":
			fp.path <- r.URL.Query().Get("path")
			w.Header().Set("Content-Type", ndjsonType)
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			for {
				select {
				case line, ok := <-fp.taps:
					if !ok {
						return
					}
					fmt.Fprintln(w, line)
					http.NewResponseController(w).Flush()
				case <-r.Context().Done():
					return
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(fp.srv.Close)
	return fp
}

func (fp *fakeProxy) set(page string) {
	fp.mu.Lock()
	fp.page = page
	fp.mu.Unlock()
}

func (fp *fakeProxy) addr() string { return fp.srv.Listener.Addr().String() }

// requests renders weft_requests_total series: code → value.
func requests(reporter, src, dstWL, dstSvc string, byCode map[string]float64) string {
	var b strings.Builder
	for code, v := range byCode {
		fmt.Fprintf(&b, `weft_requests_total{reporter=%q,source_workload=%q,source_namespace="shop",source_principal="unknown",destination_workload=%q,destination_namespace="shop",destination_service=%q,destination_principal="unknown",route="default",request_protocol="http",response_code=%q,grpc_status="",response_flags="-"} %g`+"\n",
			reporter, src, dstWL, dstSvc, code, v)
	}
	return b.String()
}

// histogram renders one weft_request_duration_seconds series with
// cumulative counts per bound; the last count is the +Inf bucket.
func histogram(reporter, src, dstWL, dstSvc, class string, bounds []string, cum []float64) string {
	var b strings.Builder
	labels := fmt.Sprintf(`reporter=%q,source_workload=%q,source_namespace="shop",destination_workload=%q,destination_namespace="shop",destination_service=%q,route="default",response_code_class=%q`,
		reporter, src, dstWL, dstSvc, class)
	for i, le := range bounds {
		fmt.Fprintf(&b, "weft_request_duration_seconds_bucket{%s,le=%q} %g\n", labels, le, cum[i])
	}
	total := cum[len(cum)-1]
	fmt.Fprintf(&b, "weft_request_duration_seconds_bucket{%s,le=\"+Inf\"} %g\n", labels, total)
	fmt.Fprintf(&b, "weft_request_duration_seconds_sum{%s} 1\n", labels)
	fmt.Fprintf(&b, "weft_request_duration_seconds_count{%s} %g\n", labels, total)
	return b.String()
}

const header = "# TYPE weft_requests_total counter\n"
const histHeader = "# TYPE weft_request_duration_seconds histogram\n"

var docBounds = []string{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"}

// cumulative spreads counts over docBounds: counts[i] observations in
// bucket i.
func cumulative(counts map[int]float64) []float64 {
	out := make([]float64, len(docBounds))
	sum := 0.0
	for i := range out {
		sum += counts[i]
		out[i] = sum
	}
	return out
}

// catalogPage is the catalog sidecar's page (destination reporter).
func catalogPage(ok, failed float64, okBuckets, failedBuckets []float64) string {
	return header + requests("destination", "frontend", "catalog", "catalog.shop", map[string]float64{"200": ok, "503": failed}) +
		histHeader + histogram("destination", "frontend", "catalog", "catalog.shop", "2xx", []string{"0.005", "0.01", "0.025"}, okBuckets) +
		histogram("destination", "frontend", "catalog", "catalog.shop", "5xx", []string{"0.005", "0.01", "0.025"}, failedBuckets)
}

// frontendPage is the frontend sidecar's page (source reporter).
func frontendPage(n float64) string {
	return header + requests("source", "frontend", "catalog", "catalog.shop", map[string]float64{"200": n}) +
		histHeader + histogram("source", "frontend", "catalog", "catalog.shop", "2xx", docBounds, cumulative(map[int]float64{6: n}))
}

// meshFixture is three proxies and a hub scraping them.
type meshFixture struct {
	clk                *fakeClock
	hub                *Hub
	catalog, front, gw *fakeProxy
	broken             *fakeProxy
	proxies            []xds.ProxyStatus
}

func newMeshFixture(t *testing.T) *meshFixture {
	f := &meshFixture{clk: newFakeClock(), catalog: newFakeProxy(t), front: newFakeProxy(t), gw: newFakeProxy(t), broken: newFakeProxy(t)}
	f.broken.status = http.StatusInternalServerError
	f.proxies = []xds.ProxyStatus{
		{ID: "catalog-0.shop", Namespace: "shop", Workload: "catalog", Role: xds.RoleSidecar, AdminAddr: f.catalog.addr()},
		{ID: "edge-0.shop", Namespace: "shop", Workload: "edge", Role: xds.RoleGateway, AdminAddr: f.gw.addr()},
		{ID: "frontend-0.shop", Namespace: "shop", Workload: "frontend", Role: xds.RoleSidecar, AdminAddr: f.front.addr()},
		{ID: "frontend-1.shop", Namespace: "shop", Workload: "frontend", Role: xds.RoleSidecar, AdminAddr: f.broken.addr()},
		{ID: "legacy-0.shop", Namespace: "shop", Workload: "legacy", Role: xds.RoleSidecar},
	}
	f.hub = New(Options{Clock: f.clk, Proxies: ProxiesFunc(func() []xds.ProxyStatus { return f.proxies })})
	f.gw.set(header + requests("gateway", "edge", "frontend", "frontend.shop", map[string]float64{"200": 7}))
	// t0: the baseline.
	f.catalog.set(catalogPage(100, 5, []float64{50, 90, 100}, []float64{0, 0, 5}))
	f.front.set(frontendPage(10))
	f.hub.Scrape(context.Background())
	// t1 = t0+5s: catalog +40 ok, +10 failed; frontend +25.
	f.clk.Advance(5 * time.Second)
	f.catalog.set(catalogPage(140, 15, []float64{70, 120, 140}, []float64{0, 0, 15}))
	f.front.set(frontendPage(35))
	f.hub.Scrape(context.Background())
	return f
}

func near(got *float64, want float64) bool {
	return got != nil && math.Abs(*got-want) < 1e-9
}

func TestScrapeGoldenMetrics(t *testing.T) {
	f := newMeshFixture(t)
	top := f.hub.metrics.top("")
	if !top.Time.Equal(f.clk.Now()) || len(top.Workloads) != 1 || len(top.Edges) != 2 {
		t.Fatalf("top %+v", top)
	}
	// catalog: 50 requests in 5s, 40 ok; latency deltas per bound
	// .005: 20, .01: 30, .025: 50.
	w := top.Workloads[0]
	if w.Workload != "catalog" || w.Namespace != "shop" || w.Requests != 50 || w.RPS != 10 || !near(w.SuccessRate, 0.8) ||
		!near(w.P50MS, 7.5) || !near(w.P90MS, 21.25) || !near(w.P99MS, 24.625) {
		t.Fatalf("catalog %+v (success %v p50 %v p90 %v p99 %v)", w, *w.SuccessRate, *w.P50MS, *w.P90MS, *w.P99MS)
	}
	// edge → frontend.shop: no request in the interval.
	e := top.Edges[0]
	if e.SourceWorkload != "edge" || e.DestinationService != "frontend.shop" || e.Requests != 0 || e.RPS != 0 || e.SuccessRate != nil || e.P50MS != nil {
		t.Fatalf("gateway edge %+v", e)
	}
	// frontend → catalog.shop: 25 requests in (25ms, 50ms].
	e = top.Edges[1]
	if e.SourceWorkload != "frontend" || e.DestinationService != "catalog.shop" || e.Requests != 25 || e.RPS != 5 || !near(e.SuccessRate, 1) ||
		!near(e.P50MS, 37.5) || !near(e.P99MS, 49.75) {
		t.Fatalf("frontend edge %+v", e)
	}

	// t2: the catalog proxy restarted (counters reset): its increments are
	// the new values.
	f.clk.Advance(5 * time.Second)
	f.catalog.set(catalogPage(4, 1, []float64{4, 4, 4}, []float64{0, 0, 1}))
	f.hub.Scrape(context.Background())
	w = f.hub.metrics.top("shop").Workloads[0]
	if w.Requests != 5 || w.RPS != 1 || !near(w.SuccessRate, 0.8) || !near(w.P50MS, 2.5*5/4) {
		t.Fatalf("after a reset: %+v", w)
	}
	if top := f.hub.metrics.top("billing"); len(top.Workloads) != 0 || len(top.Edges) != 0 {
		t.Fatalf("namespace filter: %+v", top)
	}

	// The history holds both intervals.
	series := f.hub.metrics.series(MetricsQuery{Workload: "catalog.shop"})
	if len(series) != 1 || len(series[0].Points) != 2 || series[0].Points[0].RPS != 10 || series[0].Points[1].RPS != 1 {
		t.Fatalf("history %+v", series)
	}
	if got := f.hub.metrics.series(MetricsQuery{Edge: "frontend->catalog.shop"}); len(got) != 1 || len(got[0].Points) != 2 || got[0].Kind != "edge" {
		t.Fatalf("edge history %+v", got)
	}
	if got := f.hub.metrics.series(MetricsQuery{Since: f.clk.Now()}); len(got) != 3 || len(got[0].Points) != 1 {
		t.Fatalf("since: %+v", got)
	}
}

func TestScrapeHistoryWindow(t *testing.T) {
	clk := newFakeClock()
	fp := newFakeProxy(t)
	proxies := []xds.ProxyStatus{{ID: "catalog-0.shop", Namespace: "shop", Workload: "catalog", AdminAddr: fp.addr()}}
	h := New(Options{Clock: clk, History: time.Minute, Proxies: ProxiesFunc(func() []xds.ProxyStatus { return proxies })})
	n := 0.0
	for range 20 { // 19 intervals of 5s = 95s of history, a minute kept
		n += 5
		fp.set(catalogPage(n, 0, []float64{n, n, n}, []float64{0, 0, 0}))
		h.Scrape(context.Background())
		clk.Advance(5 * time.Second)
	}
	s := h.metrics.series(MetricsQuery{})
	// Read 5s after the last scrape: the minute holds the points of the
	// last 12 scrapes.
	if len(s) != 1 || len(s[0].Points) != 12 {
		t.Fatalf("points %d, want 12", len(s[0].Points))
	}
	// A proxy that leaves stops contributing; its series ages out.
	proxies = nil
	for range 14 {
		h.Scrape(context.Background())
		clk.Advance(5 * time.Second)
	}
	if s := h.metrics.series(MetricsQuery{}); len(s) != 0 {
		t.Fatalf("series left after the window: %+v", s)
	}
	if top := h.metrics.top(""); len(top.Workloads) != 0 {
		t.Fatalf("top after the proxy left: %+v", top)
	}
}

// TestRunScrapesOnTicks drives Run with the fake ticker: each Tick is
// taken only once the previous scrape has finished.
func TestRunScrapesOnTicks(t *testing.T) {
	clk := newFakeClock()
	fp := newFakeProxy(t)
	// One page per scrape; the last one repeats.
	fp.next = []string{
		catalogPage(10, 0, []float64{10, 10, 10}, []float64{0, 0, 0}),
		catalogPage(60, 0, []float64{60, 60, 60}, []float64{0, 0, 0}),
	}
	proxies := []xds.ProxyStatus{{ID: "catalog-0.shop", Namespace: "shop", Workload: "catalog", AdminAddr: fp.addr()}}
	h := New(Options{Clock: clk, Proxies: ProxiesFunc(func() []xds.ProxyStatus { return proxies })})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	<-clk.tickerMade
	clk.Tick()
	clk.Advance(5 * time.Second) // the scrape is timed by its tick
	clk.Tick()
	clk.Tick() // taken after the second scrape finished
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The third tick's scrape saw no time pass: only the second one made
	// a point.
	if s := h.metrics.series(MetricsQuery{}); len(s) != 1 || len(s[0].Points) != 1 || s[0].Points[0].RPS != 10 {
		t.Fatalf("series %+v", s)
	}
	select {
	case <-h.stopped:
	default:
		t.Fatal("Run returned without ending the streams")
	}
}

func TestQuantile(t *testing.T) {
	bounds := []float64{0.1, 0.2, 0.4}
	tests := []struct {
		name    string
		q       float64
		buckets []float64
		total   float64
		want    float64
		ok      bool
	}{
		{"first bucket from zero", 0.5, []float64{10, 10, 10}, 10, 0.05, true},
		{"interpolated", 0.75, []float64{0, 10, 20}, 20, 0.3, true},
		{"in +Inf", 0.99, []float64{1, 2, 3}, 10, 0.4, true},
		{"empty", 0.5, []float64{0, 0, 0}, 0, 0, false},
		{"exact bound", 0.5, []float64{5, 10, 10}, 10, 0.1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := quantile(tt.q, bounds, tt.buckets, tt.total)
			if ok != tt.ok || math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("quantile = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseMetricsErrors(t *testing.T) {
	tests := []struct {
		name, page, wantErr string
	}{
		{"garbage", "weft_requests_total{reporter=\"source\" 1\n", "parse metrics: text format parsing error in line 1"},
		{"bad value", "weft_requests_total{reporter=\"source\"} x\n", "parse metrics: text format parsing error in line 1: expected float as value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseMetrics(strings.NewReader(tt.page), reporterID{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want prefix %q", err, tt.wantErr)
			}
		})
	}
	// Unknown metrics and reporters are ignored, not errors.
	keys, err := parseMetrics(strings.NewReader("other_total 3\n"+requests("mystery", "a", "b", "b.shop", map[string]float64{"200": 1})), reporterID{"shop", "a"})
	if err != nil || len(keys) != 0 {
		t.Fatalf("keys %v, err %v", keys, err)
	}
}

func TestScrapeAddr(t *testing.T) {
	tests := []struct {
		p    xds.ProxyStatus
		want string
	}{
		{xds.ProxyStatus{AdminAddr: "127.0.0.1:15000"}, "127.0.0.1:15000"},
		{xds.ProxyStatus{AdminAddr: "0.0.0.0:15000", Address: "10.0.0.7:15006"}, "10.0.0.7:15000"},
		{xds.ProxyStatus{AdminAddr: "[::]:15000"}, "127.0.0.1:15000"},
		{xds.ProxyStatus{}, ""},
	}
	for _, tt := range tests {
		if got := scrapeAddr(tt.p); got != tt.want {
			t.Errorf("scrapeAddr(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestKeysOf(t *testing.T) {
	self := reporterID{"edge-ns", "edge"}
	tests := []struct {
		name   string
		labels map[string]string
		want   []seriesKey
	}{
		{"destination", map[string]string{"reporter": "destination", "destination_workload": "catalog", "destination_namespace": "shop"},
			[]seriesKey{{kind: kindWorkload, dstNS: "shop", dstWL: "catalog"}}},
		{"destination unknown: the reporter", map[string]string{"reporter": "destination", "destination_workload": "unknown"},
			[]seriesKey{{kind: kindWorkload, dstNS: "edge-ns", dstWL: "edge"}}},
		{"gateway with unknown source: the gateway", map[string]string{"reporter": "gateway", "source_workload": "unknown", "destination_service": "frontend.shop", "destination_namespace": "shop", "destination_workload": "frontend"},
			[]seriesKey{
				{kind: kindEdge, srcNS: "edge-ns", srcWL: "edge", dstSvc: "frontend.shop", dstNS: "shop"},
				{kind: kindLink, srcNS: "edge-ns", srcWL: "edge", dstSvc: "frontend.shop", dstNS: "shop", dstWL: "frontend"},
			}},
		{"unknown reporter", map[string]string{"reporter": "mystery", "source_workload": "a"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keysOf(tt.labels, self); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("keysOf = %+v\nwant     %+v", got, tt.want)
			}
		})
	}
	if got := keysOf(map[string]string{"reporter": "source"}, reporterID{}); got != nil {
		t.Fatalf("no workload at all: %+v", got)
	}
}

// TestWindowBackends: a Service that is only the parent of routes has no
// edges of its own; with its route's backends the window counts the calls
// to them, and an edge query does too.
func TestWindowBackends(t *testing.T) {
	clk := newFakeClock()
	fp := newFakeProxy(t)
	proxies := []xds.ProxyStatus{{ID: "frontend-0.shop", Namespace: "shop", Workload: "frontend", AdminAddr: fp.addr()}}
	h := New(Options{Clock: clk, Proxies: ProxiesFunc(func() []xds.ProxyStatus { return proxies })})
	page := func(v1, v2 float64) string {
		return header + requests("source", "frontend", "catalog-v1", "catalog-v1.shop", map[string]float64{"200": v1}) +
			requests("source", "frontend", "catalog-v2", "catalog-v2.shop", map[string]float64{"200": v2, "503": 0})
	}
	fp.set(page(0, 0))
	h.Scrape(context.Background())
	clk.Advance(5 * time.Second)
	fp.set(page(30, 10))
	h.Scrape(context.Background())
	backends := []string{"catalog-v1.shop", "catalog-v2.shop"}
	for _, tc := range []struct {
		name string
		q    WindowQuery
		want float64 // requests; -1: no series
	}{
		{"the parent alone", WindowQuery{Namespace: "shop", Service: "catalog"}, -1},
		{"the parent with its backends", WindowQuery{Namespace: "shop", Service: "catalog", Backends: backends}, 40},
		{"an edge to the parent", WindowQuery{Namespace: "shop", Service: "catalog", SourceWorkload: "frontend", Backends: backends}, 40},
		{"backends in another namespace", WindowQuery{Namespace: "shop", Service: "catalog", Backends: []string{"catalog-v1.billing"}}, -1},
		{"one backend", WindowQuery{Namespace: "shop", Service: "catalog-v2"}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, ok := h.Window(tc.q, time.Minute, clk.Now())
			if tc.want < 0 {
				if ok {
					t.Fatalf("window %+v, want no series", g)
				}
				return
			}
			if !ok || g.Requests != tc.want {
				t.Fatalf("window %+v (%v), want %v requests", g, ok, tc.want)
			}
		})
	}
}
