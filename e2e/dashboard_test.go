package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/alert"
	"github.com/weft-mesh/weft/control/dashboard"
	"github.com/weft-mesh/weft/control/telemetry"
	"github.com/weft-mesh/weft/control/xds"
)

// TestDashboard runs the demo (`weft up -f examples/shop`), sends traffic
// through its gateway, and drives the dashboard in headless Chromium: the
// topology shows the demo's workloads and coloured edges, a workload's
// page its charts and proxies, a trace opens from the list as a waterfall
// with span attributes, its logs link filters the logs by trace, and the
// logs view filters by a search term on the server and while typing.
// Screenshots go to $WEFT_SCREENSHOTS (or a new temporary folder, logged).
func TestDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole demo in a browser")
	}
	shots := os.Getenv("WEFT_SCREENSHOTS")
	if shots == "" {
		var err error
		if shots, err = os.MkdirTemp("", "weft-dashboard-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	br := startBrowser(t, shots) // skips without chromium
	t.Logf("screenshots in %s", shots)
	demo := startShopDemo(t)
	server := demo.server
	skipIfPortShared(t, 8080)
	started := time.Now()
	dash := "http://" + server + "/"

	var nonce [6]byte
	rand.Read(nonce[:])
	marker := "dash-e2e-" + hex.EncodeToString(nonce[:])
	stopTraffic := sendShopTraffic(t, demo.gateway, marker)
	defer stopTraffic()

	// The hub needs two scrapes (5 s apart) with traffic between them
	// before edges have rates: wait for them on the API first, so that a
	// failure below is the dashboard's.
	waitAPI(t, "http://"+server+"/api/v1/topology", 60*time.Second, func(body []byte) (bool, string) {
		var topo struct {
			Edges []struct {
				Source, Target string
				RPS            float64 `json:"rps"`
			} `json:"edges"`
		}
		if err := json.Unmarshal(body, &topo); err != nil {
			return false, err.Error()
		}
		for _, e := range topo.Edges {
			if e.Source == "shop/frontend" && e.Target == "shop/catalog-v1" && e.RPS > 0 {
				return true, ""
			}
		}
		return false, string(body)
	})

	skipIfPortShared(t, 8080)

	// Overview: every workload, the gateway and coloured, labelled edges.
	br.open(dash + "#/")
	for _, wl := range []string{"frontend", "catalog-v1", "catalog-v2", "cart", "checkout"} {
		br.waitFind("topology node "+wl, fmt.Sprintf(`[data-testid=topo-node][data-id="shop/%s"]`, wl), 1, 20*time.Second)
	}
	if gw := br.find(`[data-testid=topo-node][data-kind=gateway]`); len(gw) == 0 {
		t.Error("the topology shows no gateway node")
	}
	edge := br.waitFind("edge frontend -> catalog-v1", `[data-testid=topo-edge][data-source="shop/frontend"][data-target="shop/catalog-v1"]`, 1, 20*time.Second)[0]
	if h := br.attr(edge, "data-health"); h != "ok" && h != "warn" && h != "bad" {
		t.Errorf("edge frontend -> catalog-v1 has health %q, want a colour from its success rate", h)
	}
	labels := br.find(`[data-testid=edge-label][data-source="shop/frontend"][data-target="shop/catalog-v1"]`)
	if len(labels) != 1 || !strings.Contains(br.text(labels[0]), "rps") {
		t.Errorf("edge frontend -> catalog-v1 has no rps label (%d labels)", len(labels))
	}
	t.Logf("topology: %d nodes, %d edges", len(br.find(`[data-testid=topo-node]`)), len(br.find(`[data-testid=topo-edge]`)))
	br.screenshot("overview")

	// A workload's page: golden metrics, charts and its proxies.
	br.click(br.find(`[data-testid=topo-node][data-id="shop/frontend"]`)[0])
	br.waitFind("frontend's page", `[data-testid=workload-title]`, 1, 10*time.Second)
	br.waitFind("frontend's rps chart line", `[data-testid=chart-rps-line]`, 1, 20*time.Second)
	if rows := br.waitFind("frontend's proxies", `[data-testid=workload-proxies] [data-testid=proxy-row][data-synced=true]`, 1, 10*time.Second); len(rows) != 1 {
		t.Errorf("frontend's page lists %d synced proxies, want 1", len(rows))
	}
	br.screenshot("workload-frontend")

	// Traces: open the frontend's trace with the most spans from the list.
	br.open(dash + "#/traces?service=frontend")
	var traceID string
	br.waitFor("a trace of two spans or more in the list", 30*time.Second, func() (bool, string) {
		br.script(&traceID, `
			let best = '', most = 1;
			for (const r of document.querySelectorAll('[data-testid=trace-row]')) {
				const n = Number(r.children[5].textContent);
				if (n > most) { best = r.dataset.trace; most = n; }
			}
			return best;`)
		return traceID != "", fmt.Sprintf("%d trace rows", len(br.find(`[data-testid=trace-row]`)))
	})
	br.screenshot("traces")
	br.click(br.find(fmt.Sprintf(`[data-testid=trace-row][data-trace="%s"] [data-testid=trace-link]`, traceID))[0])
	spans := br.waitFind("the waterfall's spans", `[data-testid=waterfall] [data-testid=span-row]`, 2, 15*time.Second)
	if bars := br.find(`[data-testid=span-bar]`); len(bars) != len(spans) {
		t.Errorf("%d span bars for %d spans", len(bars), len(spans))
	}
	br.click(spans[len(spans)-1])
	attrs := br.waitFind("span attributes", `[data-testid=span-details]:not([hidden]) [data-testid=span-attributes] tr[data-key="http.request.method"]`, 1, 5*time.Second)
	if got := br.text(attrs[0]); !strings.Contains(got, "http.request.method") {
		t.Errorf("span attribute row %q", got)
	}
	br.screenshot("trace-waterfall")

	// The trace's logs: every record shown carries the trace id.
	br.click(br.find(`[data-testid=trace-logs-link]`)[0])
	rows := br.waitFind("the trace's log records", `[data-testid=log-row]`, 2, 15*time.Second)
	for _, r := range rows {
		if got := br.attr(r, "data-trace"); got != traceID {
			t.Errorf("logs of trace %s show a record of trace %q", traceID, got)
		}
	}
	br.screenshot("trace-logs")

	// Logs searched on the server: only records with the marker.
	br.open(dash + "#/logs?q=" + marker)
	rows = br.waitFind("log records with "+marker, `[data-testid=log-row]`, 1, 20*time.Second)
	for _, r := range rows {
		msg := br.find(`[data-testid=log-row][data-seq="` + br.attr(r, "data-seq") + `"] [data-testid=log-message]`)
		if len(msg) != 1 || !strings.Contains(br.attr(msg[0], "title")+br.text(msg[0]), marker) {
			t.Errorf("search %q shows a record without it", marker)
		}
	}
	br.screenshot("logs-search")

	// Logs filtered while typing: fewer rows shown, all with the marker.
	br.open(dash + "#/logs")
	br.waitFind("unfiltered log records", `[data-testid=log-row]`, 20, 20*time.Second)
	br.must(http.MethodPost, "/element/"+br.find(`#auto-refresh`)[0]+"/click", nil) // hold the rows still
	var total, shown int
	br.script(&total, `return document.querySelectorAll('[data-testid=log-row]').length;`)
	br.typeInto(br.find(`[data-testid=logs-search]`)[0], marker)
	var bad int
	br.waitFor("the typed filter", 5*time.Second, func() (bool, string) {
		br.script(&shown, `return [...document.querySelectorAll('[data-testid=log-row]')].filter((r) => !r.hidden).length;`)
		br.script(&bad, `return [...document.querySelectorAll('[data-testid=log-row]')].filter((r) => !r.hidden && !r.textContent.includes(arguments[0]) && !r.querySelector('[data-testid=log-message]').title.includes(arguments[0])).length;`, marker)
		return shown > 0 && shown < total && bad == 0, fmt.Sprintf("%d of %d shown, %d without the marker", shown, total, bad)
	})
	t.Logf("typing %q shows %d of %d log records", marker, shown, total)
	br.screenshot("logs-typed-filter")

	// Proxies: the gateway and six sidecars, all synced.
	br.open(dash + "#/proxies")
	rows = br.waitFind("proxies", `[data-testid=proxy-row]`, 7, 10*time.Second)
	for _, r := range rows {
		if br.attr(r, "data-synced") != "true" {
			t.Errorf("proxy %s is not synced", br.attr(r, "data-id"))
		}
	}
	br.screenshot("proxies")

	// Alerts: the demo defines no AlertRule.
	br.open(dash + "#/alerts")
	br.waitFind("the alerts table", `#view[data-state=ready] [data-testid=alerts-table]`, 1, 10*time.Second)
	if banner := br.find(`[data-testid=alert-banner]:not([hidden])`); len(banner) != 0 {
		t.Errorf("an alert banner is shown without AlertRules: %q", br.text(banner[0]))
	}
	br.screenshot("alerts")
	t.Logf("browser steps took %s", time.Since(started).Round(time.Second))
}

// sendShopTraffic browses the shop through its gateway every 100 ms until
// the returned stop is called: products, carts, a checkout now and then,
// and a page whose path holds marker (a 404 from the frontend) for the
// logs search.
func sendShopTraffic(t *testing.T, gw, marker string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	send := func(method, path, body string) {
		req, err := http.NewRequestWithContext(ctx, method, gw+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			switch {
			case i%25 == 0:
				send(http.MethodPost, "/api/cart/dash/items", `{"sku":"mug","qty":1}`)
				send(http.MethodPost, "/api/checkout/dash", "")
			case i%5 == 0:
				send(http.MethodGet, "/"+marker, "")
			default:
				send(http.MethodGet, "/api/products", "")
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// waitAPI polls a JSON API endpoint until ok accepts its body.
func waitAPI(t *testing.T, url string, limit time.Duration, ok func([]byte) (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var done bool
			if done, last = ok(b); done {
				return
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: not as wanted after %s; last: %.2000s", url, limit, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestDashboardStates serves the dashboard over a fake API built from the
// control plane's own JSON types, and checks in the browser what the demo
// does not show: edge colours for each success band, the firing alert
// banner, a NACKed proxy, a workload's charts and a trace that is gone.
func TestDashboardStates(t *testing.T) {
	shots := os.Getenv("WEFT_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	br := startBrowser(t, shots)
	now := time.Now().UTC()
	f := func(v float64) *float64 { return &v }
	golden := func(rps float64, sr *float64) telemetry.Golden {
		g := telemetry.Golden{Requests: rps * 5, RPS: rps, SuccessRate: sr}
		if sr != nil {
			g.P50MS, g.P90MS, g.P99MS = f(1.5), f(4), f(9)
		}
		return g
	}
	topo := telemetry.Topology{Time: now, Nodes: []telemetry.TopologyNode{
		{ID: "shop/edge", Namespace: "shop", Workload: "edge", Kind: "gateway", Proxies: 1},
		{ID: "shop/frontend", Namespace: "shop", Workload: "frontend", Kind: "workload", Proxies: 1, Golden: golden(20, f(1))},
		{ID: "shop/catalog", Namespace: "shop", Workload: "catalog", Kind: "workload", Proxies: 2, Golden: golden(12, f(0.5))},
		{ID: "shop/cart", Namespace: "shop", Workload: "cart", Kind: "workload", Proxies: 1, Golden: golden(4, f(0.97))},
		{ID: "shop/idle", Namespace: "shop", Workload: "idle", Kind: "workload", Proxies: 1},
	}, Edges: []telemetry.TopologyEdge{
		{Source: "shop/edge", Target: "shop/frontend", Service: "frontend.shop", Golden: golden(20, f(0.995))},
		{Source: "shop/frontend", Target: "shop/catalog", Service: "catalog.shop", Golden: golden(12, f(0.5))},
		{Source: "shop/frontend", Target: "shop/cart", Service: "cart.shop", Golden: golden(4, f(0.97))},
		{Source: "shop/frontend", Target: "shop/idle", Service: "idle.shop", Golden: golden(0, nil)},
	}}
	var points []telemetry.Point
	for i := range 12 {
		points = append(points, telemetry.Point{Time: now.Add(time.Duration(i-12) * 5 * time.Second), Golden: golden(float64(10+i), f(0.5+float64(i)/24))})
	}
	metrics := telemetry.MetricsResponse{Interval: "5s", Series: []telemetry.Series{{Kind: "workload", Namespace: "shop", Workload: "catalog", Points: points}}}
	proxies := xds.ProxyList{Kind: "ProxyList", Items: []xds.ProxyStatus{
		{ID: "catalog-0.shop", Namespace: "shop", Workload: "catalog", Role: "sidecar", Protocol: "delta", Streams: 1, ConfigVersion: 3, Synced: true, LastAck: now},
		{ID: "catalog-1.shop", Namespace: "shop", Workload: "catalog", Role: "sidecar", Protocol: "delta", Streams: 1, ConfigVersion: 4,
			LastNack: `cluster "outbound|80||catalog.shop": unsupported field`, Types: []xds.TypeStatus{{Type: "Cluster", SentVersion: "4", AckedVersion: "3", NackVersion: "4"}}},
	}}
	firing := alert.Alert{Namespace: "shop", Name: "catalog-errors", Target: "service catalog", Metric: "successRate", Op: "below",
		Threshold: 0.99, State: alert.Firing, Value: 0.5, Requests: 60, Since: now, FiredAt: now}
	alerts := map[string]any{"alerts": []alert.Alert{firing}, "events": []alert.Event{{Kind: "firing", Alert: firing}}}
	mux := http.NewServeMux()
	dashboard.Register(mux.Handle)
	serve := func(path string, v any) {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v)
		})
	}
	serve("/api/v1/topology", topo)
	serve("/api/v1/metrics", metrics)
	serve("/api/v1/proxies", proxies)
	serve("/api/v1/alerts", alerts)
	mux.HandleFunc("GET /api/v1/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"code":404,"error":"trace %s: not found (never received, or dropped)"}`, r.PathValue("id"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	br.open(srv.URL + "/#/")
	for edge, want := range map[string]string{
		"shop/edge->shop/frontend": "ok", "shop/frontend->shop/cart": "warn",
		"shop/frontend->shop/catalog": "bad", "shop/frontend->shop/idle": "idle",
	} {
		src, dst, _ := strings.Cut(edge, "->")
		el := br.waitFind("edge "+edge, fmt.Sprintf(`[data-testid=topo-edge][data-source="%s"][data-target="%s"]`, src, dst), 1, 10*time.Second)[0]
		if got := br.attr(el, "data-health"); got != want {
			t.Errorf("edge %s: health %q, want %q", edge, got, want)
		}
	}
	banner := br.waitFind("the alert banner", `[data-testid=alert-banner]:not([hidden]) [data-testid=banner-alert][data-id="shop/catalog-errors"]`, 1, 10*time.Second)
	if got := br.text(banner[0]); !strings.Contains(got, "50.0 %") || !strings.Contains(got, "below 99.0 %") {
		t.Errorf("banner %q, want the value and threshold as percentages", got)
	}
	br.screenshot("states-overview")

	br.open(srv.URL + "/#/proxies")
	nacked := br.waitFind("the NACKed proxy", `[data-testid=proxy-row][data-id="catalog-1.shop"][data-synced=false]`, 1, 10*time.Second)[0]
	if got := br.text(nacked); !strings.Contains(got, "NACK") || !strings.Contains(got, "unsupported field") {
		t.Errorf("NACKed proxy row %q", got)
	}
	br.screenshot("states-proxies")

	br.open(srv.URL + "/#/workloads/shop/catalog")
	if lines := br.waitFind("latency lines", `[data-testid=chart-latency-line]`, 2, 10*time.Second); len(lines) != 2 {
		t.Errorf("%d latency lines, want p50 and p99", len(lines))
	}
	br.waitFind("rps line", `[data-testid=chart-rps-line]`, 1, 5*time.Second)
	if got := br.text(br.find(`[data-testid=golden-success]`)[0]); !strings.Contains(got, "50.0 %") {
		t.Errorf("success card %q", got)
	}
	if rows := br.find(`[data-testid=workload-proxies] [data-testid=proxy-row]`); len(rows) != 2 {
		t.Errorf("catalog's page lists %d proxies, want 2", len(rows))
	}
	br.screenshot("states-workload")

	br.open(srv.URL + "/#/traces/0123456789abcdef0123456789abcdef")
	gone := br.waitFind("the missing trace", `[data-testid=trace-missing]`, 1, 10*time.Second)[0]
	if got := br.text(gone); !strings.Contains(got, "not found") {
		t.Errorf("missing trace says %q", got)
	}
}

// skipIfPortShared skips the test when more than one socket listens on
// 127.0.0.1:port: gateways listen with SO_REUSEPORT, so a second demo
// started by another test run binds the same port and the kernel splits
// our traffic between the two meshes.
func skipIfPortShared(t *testing.T, port int) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return // not Linux: cannot tell
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == local && f[3] == "0A" { // 0A: LISTEN
			n++
		}
	}
	if n > 1 {
		t.Skipf("%d sockets listen on 127.0.0.1:%d: another demo shares the gateway port (SO_REUSEPORT)", n, port)
	}
}
