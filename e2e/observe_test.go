package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestObserve runs the demo shop (`weft up -f examples/shop`) under load
// and looks at it the way a user does (issue 7): `weft top` shows traffic
// on every edge, `weft tap` prints live requests, one request is one trace
// across every hop (`weft traces ID`) with its access and application log
// lines (`weft logs --trace ID`), an AlertRule fires when a catalog
// instance fails and resolves when it recovers (API, `weft get alerts`,
// webhook) while the mesh's retries keep the shop answering, and a real Prometheus discovers every proxy through the
// control plane's HTTP service discovery and scrapes it. The demo's
// gateway port (8080) must be free; the Prometheus part is skipped when
// the prometheus binary is missing.
func TestObserve(t *testing.T) {
	demo := startShopDemo(t)
	dir, server, gw := t.TempDir(), demo.server, demo.gateway

	hook := newAlertHook(t)
	rule := filepath.Join(dir, "alert.yaml")
	mustWrite(t, rule, fmt.Sprintf(observeAlertRule, hook.url))
	if out, err := runWeft(t, "apply", "--server", server, "-f", rule); err != nil {
		t.Fatalf("apply the AlertRule: %v\n%s", err, out)
	}
	if out, err := runWeft(t, "get", "alertrules", "-n", "shop", "--server", server); err != nil || !strings.Contains(out, "catalog-v1-success") {
		t.Fatalf("weft get alertrules: %v\n%s", err, out)
	}
	prom := startPrometheus(t, server, dir)

	tap := start(t, "tap", "frontend", "--server", server)
	load := startShopLoad(gw, 50)
	defer load.stop()

	t.Run("top", func(t *testing.T) { observeTop(t, server) })
	t.Run("tap", func(t *testing.T) { observeTap(t, tap) })
	t.Run("trace", func(t *testing.T) { observeTrace(t, server, load) })
	// At least 20 s of healthy load before the failure.
	time.Sleep(time.Until(load.start.Add(20 * time.Second)))
	t.Run("alert", func(t *testing.T) { observeAlert(t, server, hook, load) })
	load.stop()
	t.Logf("load: %s", load.summary())
	t.Run("prometheus", func(t *testing.T) { prom.check(t, server) })
}

const observeAlertRule = `apiVersion: weft.dev/v1alpha1
kind: AlertRule
metadata:
  name: catalog-v1-success
  namespace: shop
spec:
  target:
    workload: catalog-v1
  metric: successRate
  threshold: 0.9
  window: 10s
  for: 5s
  severity: critical
  summary: catalog v1 answers errors
  webhook:
    url: %s
`

// observeEdges are the demo's calls; each must carry traffic. A call to
// the catalog goes to catalog-v1 or catalog-v2 (the HTTPRoute's split), so
// the destination is a prefix.
var observeEdges = []struct{ from, to string }{
	{"shop/edge", "frontend.shop"},
	{"shop/frontend", "catalog-"},
	{"shop/frontend", "cart.shop"},
	{"shop/frontend", "checkout.shop"},
	{"shop/checkout", "catalog-"},
	{"shop/checkout", "cart.shop"},
}

// observeTop waits until `weft top --once` shows a non-zero rate on every
// edge of the demo.
func observeTop(t *testing.T, server string) {
	// The hub needs two scrapes (5 s apart) of every proxy after the load
	// began; proxies built with -race start slowly.
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		out, err := runWeft(t, "top", "--once", "--server", server)
		if err != nil {
			t.Fatalf("weft top: %v\n%s", err, out)
		}
		rps := topEdges(out)
		var missing []string
		for _, e := range observeEdges {
			sum := 0.0
			for k, v := range rps {
				if k[0] == e.from && strings.HasPrefix(k[1], e.to) {
					sum += v
				}
			}
			if sum <= 0 {
				missing = append(missing, e.from+" -> "+e.to)
			}
		}
		if len(missing) == 0 {
			t.Logf("weft top --once (every edge busy %s after the load began):\n%s", time.Since(start).Round(time.Second), out)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("weft top shows no traffic on %v after 60s:\n%s", missing, out)
		}
		time.Sleep(time.Second)
	}
}

// topEdges reads the EDGE table of `weft top`: {source, destination} →
// requests per second.
func topEdges(out string) map[[2]string]float64 {
	rps := map[[2]string]float64{}
	_, table, ok := strings.Cut(out, "\nEDGE")
	if !ok {
		return rps
	}
	for line := range strings.Lines(table) {
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != "->" {
			continue
		}
		if v, err := strconv.ParseFloat(f[3], 64); err == nil {
			rps[[2]string{f[0], f[2]}] = v
		}
	}
	return rps
}

// observeTap reads `weft tap frontend` while the load runs: live lines
// for the requests the frontend serves and makes, then Ctrl-C ends it.
func observeTap(t *testing.T, tap *process) {
	count := func() (served, made int) {
		for line := range strings.Lines(tap.output()) {
			switch {
			case strings.Contains(line, " destination ") && strings.Contains(line, "/api/") && strings.Contains(line, "edge.shop -> frontend.shop trace="):
				served++
			case strings.Contains(line, " source ") && strings.Contains(line, "frontend.shop -> "):
				made++
			}
		}
		return served, made
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		served, made := count()
		if served >= 20 && made >= 20 {
			break
		}
		select {
		case <-tap.done:
			t.Fatalf("weft tap exited (%v):\n%s", tap.err, tap.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("weft tap printed %d served and %d outgoing request lines in 20s:\n%s", served, made, tap.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	tap.stop(t)
	if tap.err != nil {
		t.Errorf("weft tap did not exit cleanly on Ctrl-C: %v", tap.err)
	}
	served, made := count()
	lines := strings.SplitN(tap.output(), "\n", 5)
	t.Logf("weft tap frontend: %d served and %d outgoing request lines; the first:\n%s", served, made, strings.Join(lines[:min(4, len(lines))], "\n"))
}

// observeTrace follows one checkout through every hop: its trace has a
// span from each workload, and its log lines are the proxies' access
// records and the applications' request lines.
func observeTrace(t *testing.T, server string, load *shopLoad) {
	var id string
	deadline := time.Now().Add(20 * time.Second)
	for id == "" {
		id = load.checkoutTrace()
		if time.Now().After(deadline) {
			t.Fatalf("no checkout answered 200 with an X-Trace-Id in 20s: %s", load.summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Spans are exported in batches (1 s): poll.
	want := []string{"edge.shop server", "frontend.shop server", "frontend.shop client", "checkout.shop server", "checkout.shop client", "cart.shop server", "catalog-"}
	var out string
	deadline = time.Now().Add(15 * time.Second)
	for {
		var err error
		out, err = runWeft(t, "traces", id, "--server", server)
		if err == nil && containsAll(out, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("weft traces %s: %v; want spans of %v:\n%s", id, err, want, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("weft traces %s:\n%s", id, out)

	wantLogs := map[string]bool{}
	for _, wl := range []string{"edge", "frontend", "checkout", "cart", "catalog-"} {
		wantLogs["access "+wl] = true
	}
	for _, wl := range []string{"frontend", "checkout", "cart", "catalog-"} {
		wantLogs["app "+wl] = true
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		var err error
		out, err = runWeft(t, "logs", "--trace", id, "--server", server)
		got := map[string]bool{}
		for line := range strings.Lines(out) {
			tag, body, ok := strings.Cut(strings.TrimPrefix(line, "["), "] ")
			if !ok || !strings.Contains(body, id) {
				continue
			}
			wl, _, _ := strings.Cut(tag, "/")
			kind := "app"
			if strings.HasPrefix(body, "{") && strings.Contains(body, `"kind":"http"`) {
				kind = "access"
			} else if !strings.Contains(body, "msg=request") {
				continue
			}
			for w := range wantLogs {
				if k, name, _ := strings.Cut(w, " "); k == kind && strings.HasPrefix(wl, name) {
					got[w] = true
				}
			}
		}
		if err == nil && len(got) == len(wantLogs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("weft logs --trace %s: %v; found %v of %v:\n%s", id, err, got, wantLogs, out)
		}
		time.Sleep(250 * time.Millisecond)
	}
	access, app := 0, 0
	var sample []string
	for line := range strings.Lines(out) {
		if strings.Contains(line, "] {") {
			access++
		} else {
			app++
			sample = append(sample, strings.TrimSpace(line))
		}
	}
	t.Logf("weft logs --trace %s: %d access records, %d application lines:\n%s", id, access, app, strings.Join(sample, "\n"))
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// alertState is what the test reads of GET /api/v1/alerts.
type alertState struct {
	Alerts []struct {
		Namespace string    `json:"namespace"`
		Name      string    `json:"name"`
		State     string    `json:"state"`
		Value     float64   `json:"value"`
		Requests  float64   `json:"requests"`
		FiredAt   time.Time `json:"firedAt"`
		Resolved  time.Time `json:"resolvedAt"`
	} `json:"alerts"`
	Events []struct {
		Kind string `json:"kind"`
	} `json:"events"`
}

// observeAlert makes one of catalog-v1's two instances fail (its failure
// knob) and waits for the AlertRule on the workload's success rate (as its
// sidecars see every attempt) to fire, then ends the failure and waits for
// it to resolve: through the API, `weft get alerts` and the webhook.
// Meanwhile the callers' retries go to the other instance: the shop's
// failed answers are logged.
func observeAlert(t *testing.T, server string, hook *alertHook, load *shopLoad) {
	var port int
	for _, e := range weftPs(t, server) {
		if e.Instance == "catalog-v1-0" {
			port = e.AppPort
		}
	}
	if port == 0 {
		t.Fatal("weft ps shows no catalog-v1-0")
	}
	knob := func(status int) {
		t.Helper()
		u := fmt.Sprintf("http://127.0.0.1:%d/admin/fail?status=%d", port, status)
		resp, err := http.Post(u, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf(`{"status":%d}`, status); resp.StatusCode != 200 || strings.TrimSpace(string(b)) != want {
			t.Fatalf("POST %s: %d %s, want 200 %s", u, resp.StatusCode, b, want)
		}
	}
	state := func() (string, float64, float64) {
		t.Helper()
		body, err := httpGet("http://" + server + "/api/v1/alerts")
		var st alertState
		if err == nil {
			err = json.Unmarshal([]byte(body), &st)
		}
		if err != nil {
			t.Fatalf("GET /api/v1/alerts: %v\n%s", err, body)
		}
		for _, a := range st.Alerts {
			if a.Namespace == "shop" && a.Name == "catalog-v1-success" {
				return a.State, a.Value, a.Requests
			}
		}
		t.Fatalf("GET /api/v1/alerts has no shop/catalog-v1-success:\n%s", body)
		return "", 0, 0
	}
	waitState := func(want string, limit time.Duration) (float64, float64) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			st, v, n := state()
			if st == want {
				return v, n
			}
			if time.Now().After(deadline) {
				out, _ := runWeft(t, "get", "alerts", "-n", "shop", "--server", server)
				t.Fatalf("alert still %s (value %.3f over %.0f requests) after %s, want %s:\n%s", st, v, n, limit, want, out)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	getAlerts := func(want string) string {
		t.Helper()
		out, err := runWeft(t, "get", "alerts", "-n", "shop", "--server", server)
		if err != nil || !strings.Contains(out, "catalog-v1-success") || !strings.Contains(out, want) {
			t.Fatalf("weft get alerts: %v, want the rule %s:\n%s", err, want, out)
		}
		return out
	}

	if st, _, _ := state(); st != "inactive" {
		t.Fatalf("before the failure the alert is %s, want inactive", st)
	}
	failAt := time.Now()
	sent0, failed0 := load.counts()
	knob(500)
	value, requests := waitState("firing", 60*time.Second)
	fired := time.Since(failAt)
	ev := hook.wait(t, "firing", 10*time.Second)
	t.Logf("catalog-v1-0 fails: alert firing after %s (success rate %.3f over %.0f requests); webhook got %q\n%s",
		fired.Round(100*time.Millisecond), value, requests, ev.Kind, getAlerts("firing"))

	recoverAt := time.Now()
	knob(0)
	sent1, failed1 := load.counts()
	t.Logf("while catalog-v1-0 failed (%s): %d of the %d shop requests answered by then failed (retries went to catalog-v1-1)",
		recoverAt.Sub(failAt).Round(100*time.Millisecond), failed1-failed0, sent1-sent0)
	value, requests = waitState("inactive", 90*time.Second)
	resolved := time.Since(recoverAt)
	ev = hook.wait(t, "resolved", 10*time.Second)
	t.Logf("catalog-v1-0 recovers: alert resolved after %s (success rate %.3f over %.0f requests); webhook got %q\n%s",
		resolved.Round(100*time.Millisecond), value, requests, ev.Kind, getAlerts("inactive"))

	body, err := httpGet("http://" + server + "/api/v1/alerts")
	var st alertState
	if err == nil {
		err = json.Unmarshal([]byte(body), &st)
	}
	var kinds []string
	for _, e := range st.Events {
		kinds = append(kinds, e.Kind)
	}
	if err != nil || !slices.Equal(kinds, []string{"firing", "resolved"}) {
		t.Errorf("GET /api/v1/alerts events %v (%v), want [firing resolved]:\n%s", kinds, err, body)
	}
	if n := hook.count(); n != 2 {
		t.Errorf("the webhook got %d notifications, want 2 (firing, resolved)", n)
	}
}

// alertHook is a webhook receiver for AlertRule notifications.
type alertHook struct {
	url    string
	events chan alertEvent
	mu     sync.Mutex
	n      int
}

type alertEvent struct {
	Kind  string `json:"kind"`
	Alert struct {
		Name  string  `json:"name"`
		State string  `json:"state"`
		Value float64 `json:"value"`
	} `json:"alert"`
}

func newAlertHook(t *testing.T) *alertHook {
	h := &alertHook{events: make(chan alertEvent, 16)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev alertEvent
		if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&ev) != nil {
			http.Error(w, "want a POSTed alert event", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
		select {
		case h.events <- ev:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

func (h *alertHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// wait returns the next notification, which must be of kind.
func (h *alertHook) wait(t *testing.T, kind string, limit time.Duration) alertEvent {
	t.Helper()
	select {
	case ev := <-h.events:
		if ev.Kind != kind || ev.Alert.Name != "catalog-v1-success" {
			t.Fatalf("webhook got %+v, want a %s notification of catalog-v1-success", ev, kind)
		}
		return ev
	case <-time.After(limit):
		t.Fatalf("the webhook got no %s notification within %s", kind, limit)
	}
	return alertEvent{}
}

// prometheus is a real Prometheus that discovers the proxies through the
// control plane's HTTP service discovery; nil when not installed.
type prometheus struct {
	addr string
	skip string // why there is none
}

// startPrometheus starts prometheus on loopback with a 2 s scrape of the
// targets /api/v1/prometheus/targets lists; it is stopped at the end of
// the test.
func startPrometheus(t *testing.T, server, dir string) *prometheus {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return &prometheus{skip: "prometheus is not installed (Debian: apt-get install -y --no-install-recommends prometheus)"}
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	mustWrite(t, cfg, fmt.Sprintf(`global:
  scrape_interval: 2s
  scrape_timeout: 1s
scrape_configs:
- job_name: weft
  http_sd_configs:
  - url: http://%s/api/v1/prometheus/targets
    refresh_interval: 2s
`, server))
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "prometheus-data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("prometheus did not stop within 10s of SIGINT")
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	return &prometheus{addr: addr}
}

// check waits until every proxy the control plane announces is a healthy
// Prometheus target, then asks for sum(weft_requests_total).
func (p *prometheus) check(t *testing.T, server string) {
	if p.skip != "" {
		t.Skip(p.skip)
	}
	body, err := httpGet("http://" + server + "/api/v1/prometheus/targets")
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err == nil {
		err = json.Unmarshal([]byte(body), &groups)
	}
	if err != nil || len(groups) != 7 { // 6 sidecars and the gateway
		t.Fatalf("GET /api/v1/prometheus/targets: %v, want 7 target groups:\n%s", err, body)
	}
	want := map[string]string{} // scrape URL → workload
	for _, g := range groups {
		for _, a := range g.Targets {
			want["http://"+a+g.Labels["__metrics_path__"]] = g.Labels["workload"]
		}
	}
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string            `json:"scrapeUrl"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
				Labels    map[string]string `json:"labels"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, err := httpGet("http://" + p.addr + "/api/v1/targets")
		up := map[string]bool{}
		if err == nil && json.Unmarshal([]byte(body), &targets) == nil {
			for _, tg := range targets.Data.ActiveTargets {
				if tg.Health == "up" && want[tg.ScrapeURL] != "" && tg.Labels["workload"] == want[tg.ScrapeURL] {
					up[tg.ScrapeURL] = true
				}
			}
		}
		if len(up) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: %d of %d proxies are healthy targets after 30s (%v):\n%s", len(up), len(want), err, body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var sum float64
	deadline = time.Now().Add(15 * time.Second)
	for {
		sum = promQuery(t, p.addr, "sum(weft_requests_total)")
		if sum > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: sum(weft_requests_total) = %v after 15s", sum)
		}
		time.Sleep(500 * time.Millisecond)
	}
	edges := promQuery(t, p.addr, `count(sum by (source_workload, destination_service) (weft_requests_total{reporter="source"}))`)
	t.Logf("prometheus: %d proxies discovered over HTTP SD, all up; sum(weft_requests_total) = %.0f; %.0f source edges", len(want), sum, edges)
}

// promQuery runs an instant query whose answer is one number (NaN when
// the answer is empty).
func promQuery(t *testing.T, addr, q string) float64 {
	t.Helper()
	body, err := httpGet("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err == nil {
		err = json.Unmarshal([]byte(body), &r)
	}
	if err != nil || r.Status != "success" {
		t.Fatalf("prometheus query %s: %v\n%s", q, err, body)
	}
	if len(r.Data.Result) == 0 {
		return math.NaN()
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("prometheus query %s: value %q: %v", q, s, err)
	}
	return v
}

// shopLoad is an open-loop load on the demo's API through the gateway:
// request i is sent at start + i/rate whatever happened to the others, in
// rounds of four for one user (add an item, read the cart, check out,
// list the products).
type shopLoad struct {
	start time.Time
	stopc chan struct{}
	done  chan struct{}
	once  sync.Once

	mu       sync.Mutex
	sent     int
	failed   int            // 5xx answers and errors
	statuses map[string]int // "<op> <status>" or "<op> error"
	traces   []string       // X-Trace-Id of checkouts answered 200
}

func startShopLoad(gw string, rate float64) *shopLoad {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	l := &shopLoad{start: time.Now(), stopc: make(chan struct{}), done: make(chan struct{}), statuses: map[string]int{}}
	skus := []string{"mug", "tee", "socks", "sticker", "hoodie"}
	go func() {
		defer close(l.done)
		defer tr.CloseIdleConnections()
		var wg sync.WaitGroup
		defer wg.Wait()
		for i := 0; ; i++ {
			due := l.start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
			select {
			case <-l.stopc:
				return
			case <-time.After(time.Until(due)):
			}
			round := i / 4
			user := fmt.Sprintf("load%d", round%8)
			var op, method, path, body string
			switch i % 4 {
			case 0:
				op, method, path, body = "add", "POST", "/api/cart/"+user+"/items", fmt.Sprintf(`{"sku":%q}`, skus[round%len(skus)])
			case 1:
				op, method, path = "cart", "GET", "/api/cart/"+user
			case 2:
				op, method, path = "checkout", "POST", "/api/checkout/"+user
			default:
				op, method, path = "products", "GET", "/api/products"
			}
			wg.Go(func() {
				key, trace, failed := op+" error", "", true
				req, err := http.NewRequestWithContext(context.Background(), method, gw+path, strings.NewReader(body))
				if err == nil {
					var resp *http.Response
					if resp, err = client.Do(req); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						key, failed = fmt.Sprintf("%s %d", op, resp.StatusCode), resp.StatusCode >= 500
						if op == "checkout" && resp.StatusCode == 200 {
							trace = resp.Header.Get("X-Trace-Id")
						}
					}
				}
				l.mu.Lock()
				l.sent++
				if failed {
					l.failed++
				}
				l.statuses[key]++
				if trace != "" {
					l.traces = append(l.traces, trace)
				}
				l.mu.Unlock()
			})
		}
	}()
	return l
}

// stop ends the load and waits for the answers in flight.
func (l *shopLoad) stop() {
	l.once.Do(func() { close(l.stopc) })
	<-l.done
}

// counts returns how many requests were answered (or failed) so far, and
// how many of them failed (5xx or no answer).
func (l *shopLoad) counts() (sent, failed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, l.failed
}

// checkoutTrace returns the trace id of the latest checkout answered 200
// ("" if none yet).
func (l *shopLoad) checkoutTrace() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.traces) == 0 {
		return ""
	}
	return l.traces[len(l.traces)-1]
}

func (l *shopLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l.statuses)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, l.statuses[k]))
	}
	return fmt.Sprintf("%d requests in %s (%s)", l.sent, time.Since(l.start).Round(time.Second), strings.Join(parts, ", "))
}
