//go:build !proxyonly

package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/alert"
	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/telemetry"
)

// fakeHub is an httptest control plane serving canned telemetry answers
// and recording the queries it got.
type fakeHub struct {
	mu      sync.Mutex
	queries map[string]url.Values
}

func (f *fakeHub) query(path string) url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[path]
}

func f64(v float64) *float64 { return &v }

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func startFakeHub(t *testing.T) (*fakeHub, string) {
	f := &fakeHub{queries: map[string]url.Values{}}
	mux := http.NewServeMux()
	record := func(r *http.Request) {
		f.mu.Lock()
		f.queries[r.URL.Path] = r.URL.Query()
		f.mu.Unlock()
	}
	js := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /api/v1/top", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		js(w, telemetry.Top{Time: t0,
			Workloads: []telemetry.WorkloadStats{{Namespace: "shop", Workload: "catalog", Golden: telemetry.Golden{RPS: 10, Requests: 50, SuccessRate: f64(0.8), P50MS: f64(7.5), P99MS: f64(24.625)}}},
			Edges: []telemetry.EdgeStats{
				{SourceNamespace: "shop", SourceWorkload: "edge", DestinationService: "frontend.shop", DestinationNamespace: "shop"},
				{SourceNamespace: "shop", SourceWorkload: "frontend", DestinationService: "catalog.shop", DestinationNamespace: "shop", Golden: telemetry.Golden{RPS: 5, SuccessRate: f64(1), P50MS: f64(37.5), P99MS: f64(1250)}},
			}})
	})
	mux.HandleFunc("GET /api/v1/traces", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		js(w, telemetry.TraceList{Traces: []telemetry.TraceSummary{{TraceID: strings.Repeat("ab", 16), Root: "GET default", RootService: "frontend",
			Start: time.Now().Add(-3 * time.Second), DurationMS: 12.5, Spans: 3, Errors: 1, Services: []string{"catalog", "frontend"}}}})
	})
	mux.HandleFunc("GET /api/v1/traces/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != strings.Repeat("ab", 16) {
			api.WriteError(w, http.StatusNotFound, "trace "+r.PathValue("id")+": not found (never received, or dropped)")
			return
		}
		sp := func(id, parent, svc, kind, name string, from, to time.Duration) telemetry.Span {
			return telemetry.Span{TraceID: strings.Repeat("ab", 16), SpanID: id, ParentSpanID: parent, Service: svc, Namespace: "shop",
				Kind: kind, Name: name, Start: t0.Add(from), End: t0.Add(to), Status: "UNSET"}
		}
		failed := sp("c", "b", "catalog", "SERVER", "GET default", 2*time.Millisecond, 10*time.Millisecond)
		failed.Status, failed.StatusMessage = "ERROR", "503"
		js(w, telemetry.Trace{TraceID: strings.Repeat("ab", 16), Spans: []telemetry.Span{
			sp("a", "", "frontend", "SERVER", "GET default", 0, 20*time.Millisecond),
			sp("b", "a", "frontend", "CLIENT", "GET catalog", time.Millisecond, 11*time.Millisecond),
			failed,
		}})
	})
	mux.HandleFunc("GET /api/v1/tap", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		w.Header().Set("Content-Type", "application/x-ndjson")
		fmt.Fprintln(w, `{"time":"2026-11-25T12:00:00.123Z","kind":"http","reporter":"destination","method":"GET","authority":"catalog.shop","path":"/api/products","status":200,"flags":"-","duration_ms":1.92,"source_workload":"frontend","source_namespace":"shop","destination_workload":"catalog-v1","destination_namespace":"shop","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`)
		fmt.Fprintln(w, `{"time":"2026-11-25T12:00:01Z","kind":"http","reporter":"destination","method":"POST","authority":"catalog.shop","path":"/api/x","status":503,"flags":"UH","duration_ms":0.2,"destination_workload":"catalog-v1","destination_namespace":"shop"}`)
		fmt.Fprintln(w, `not json`)
	})
	mux.HandleFunc("GET /api/v1/logs", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		recs := []telemetry.LogRecord{
			{Seq: 1, Kind: telemetry.LogApp, Namespace: "shop", Workload: "catalog", Instance: "catalog-0", Body: "listing products", Stream: "stdout"},
			{Seq: 2, Kind: telemetry.LogAccess, Namespace: "shop", Workload: "catalog", Instance: "catalog-1.shop", Body: `{"status":200}`},
		}
		if r.URL.Query().Get("follow") == "true" {
			w.Header().Set("Content-Type", "application/x-ndjson")
			for _, rec := range recs {
				json.NewEncoder(w).Encode(rec)
			}
			return
		}
		js(w, telemetry.LogList{Records: recs, Last: 2})
	})
	mux.HandleFunc("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		record(r)
		firing := alert.Alert{Namespace: "shop", Name: "catalog-errors", Target: "service catalog", Metric: "successRate", Op: "<", Threshold: 0.9,
			Severity: "critical", State: alert.Firing, Value: 0.25, Requests: 40, Since: time.Now().Add(-90 * time.Second), Evaluated: time.Now()}
		js(w, alertList{
			Alerts: []alert.Alert{
				firing,
				{Namespace: "shop", Name: "slow", Target: "workload cart", Metric: "latencyP99", Op: ">", Threshold: 250, Severity: "warning", State: alert.Inactive},
				{Namespace: "other", Name: "x", Target: "service y", Metric: "requestRate", Op: ">", Threshold: 100, Severity: "warning", State: alert.Pending, Value: 120, Requests: 7200, Evaluated: time.Now()},
			},
			Events: []alert.Event{{Kind: "firing", Alert: firing}},
		})
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusNotFound, "no API endpoint "+r.URL.Path)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv.Listener.Addr().String()
}

func TestTopOnce(t *testing.T) {
	hub, addr := startFakeHub(t)
	r := run(t, "", "top", "--once", "-n", "shop", "--server", addr)
	want := `WORKLOAD       RPS    SUCCESS   P50      P99
shop/catalog   10.0   80.00%    7.50ms   25ms

EDGE                            RPS   SUCCESS   P50    P99
shop/edge -> frontend.shop      0.0   -         -      -
shop/frontend -> catalog.shop   5.0   100.00%   38ms   1.2s
`
	r.must(t, 0, nil, nil)
	if r.out != want {
		t.Fatalf("top:\n%s\nwant:\n%s", r.out, want)
	}
	if got := hub.query("/api/v1/top").Get("namespace"); got != "shop" {
		t.Fatalf("namespace %q", got)
	}
}

func TestTraces(t *testing.T) {
	hub, addr := startFakeHub(t)
	r := run(t, "", "traces", "--service", "catalog", "--min-duration", "10ms", "--server", addr)
	r.must(t, 0, []string{"TRACE ID", strings.Repeat("ab", 16) + "   frontend: GET default   catalog,frontend   3       1        12ms       3s"}, nil)
	q := hub.query("/api/v1/traces")
	if q.Get("service") != "catalog" || q.Get("minDuration") != "10ms" || q.Get("limit") != "20" {
		t.Fatalf("query %v", q)
	}

	r = run(t, "", "traces", strings.Repeat("ab", 16), "--server", addr)
	r.must(t, 0, []string{
		"trace " + strings.Repeat("ab", 16) + ": 3 spans, 20ms",
		"0ms     20ms      frontend.shop server GET default          |========================================|\n",
		"1ms     10ms        frontend.shop client GET catalog        |..====================..................|\n",
		"2ms     8ms           catalog.shop server GET default !503  |....================....................|\n",
	}, nil)

	r = run(t, "", "traces", strings.Repeat("cd", 16), "--server", addr)
	r.must(t, 1, nil, []string{"error: trace " + strings.Repeat("cd", 16) + ": not found (never received, or dropped)"})
}

func TestTap(t *testing.T) {
	hub, addr := startFakeHub(t)
	r := run(t, "", "tap", "catalog", "--path", "/api", "--server", addr)
	r.must(t, 0, nil, nil)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 3 {
		t.Fatalf("lines %q", lines)
	}
	local := func(s string) string {
		ts, _ := time.Parse(time.RFC3339Nano, s)
		return ts.Local().Format("15:04:05.000")
	}
	want := []string{
		local("2026-11-25T12:00:00.123Z") + " destination GET catalog.shop/api/products 200 1.92ms frontend.shop -> catalog-v1.shop trace=4bf92f3577b34da6a3ce929d0e0e4736",
		local("2026-11-25T12:00:01Z") + " destination POST catalog.shop/api/x 503 0.20ms unknown.unknown -> catalog-v1.shop flags=UH",
		"not json",
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: %q\nwant    %q", i, lines[i], want[i])
		}
	}
	q := hub.query("/api/v1/tap")
	if q.Get("workload") != "catalog" || q.Get("path") != "/api" {
		t.Fatalf("query %v", q)
	}
}

func TestLogsFromTheHub(t *testing.T) {
	hub, addr := startFakeHub(t)
	// No weft up runtime endpoint: weft logs falls back to the hub.
	r := run(t, "", "logs", "catalog", "-n", "shop", "--server", addr)
	r.must(t, 0, nil, nil)
	if r.out != "[catalog-0] listing products\n[catalog-1.shop] {\"status\":200}\n" {
		t.Fatalf("logs:\n%s", r.out)
	}
	if q := hub.query("/api/v1/logs"); q.Get("workload") != "catalog" || q.Get("namespace") != "shop" || q.Has("follow") {
		t.Fatalf("query %v", q)
	}
	// --trace without a workload: every workload, tagged with it.
	r = run(t, "", "logs", "--trace", "4bf92f3577b34da6a3ce929d0e0e4736", "--since", "15m", "--server", addr)
	r.must(t, 0, []string{"[catalog/catalog-0] listing products\n"}, nil)
	if q := hub.query("/api/v1/logs"); q.Get("trace") != "4bf92f3577b34da6a3ce929d0e0e4736" || q.Get("since") != "15m" || q.Has("workload") {
		t.Fatalf("query %v", q)
	}
	// -f streams NDJSON; --instance filters.
	r = run(t, "", "logs", "catalog", "-f", "--instance", "catalog-0", "--server", addr)
	r.must(t, 0, nil, nil)
	if r.out != "[catalog-0] listing products\n" || hub.query("/api/v1/logs").Get("follow") != "true" {
		t.Fatalf("follow: %q %v", r.out, hub.query("/api/v1/logs"))
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"logs"}, "weft: give a WORKLOAD, or --trace ID"},
		{[]string{"logs", "catalog", "--since", "yesterday"}, `weft: --since: "yesterday" is neither a duration (15m) nor an RFC 3339 time`},
		{[]string{"logs", "catalog", "--sidecar"}, "error: --sidecar: the control plane at http://" + addr + " is not run by weft up, so it holds no sidecar output"},
		{[]string{"logs", "catalog", "--sidecar", "--trace", "x"}, "error: --sidecar cannot be combined with --trace or --since"},
	} {
		r := run(t, "", append(tc.args, "--server", addr)...)
		if r.code != 1 || !strings.Contains(r.err, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, r.code, r.err, tc.want)
		}
	}
}

// TestGetAlerts: `weft get alerts` shows the rules' states (the rules
// themselves are `weft get alertrules`), by namespace, by name, as JSON.
func TestGetAlerts(t *testing.T) {
	_, addr := startFakeHub(t)
	r := run(t, "", "get", "alerts", "-n", "shop", "--server", addr)
	r.must(t, 0, []string{
		"NAME             TARGET            CONDITION           VALUE   REQUESTS   STATE      SINCE   SEVERITY\n",
		"catalog-errors   service catalog   successRate < 0.9   0.25    40         firing     1m      critical\n",
		"slow             workload cart     latencyP99 > 250    -       0          inactive   -       warning\n",
	}, nil)
	if strings.Contains(r.out, "other") {
		t.Errorf("another namespace's alert shown:\n%s", r.out)
	}
	r = run(t, "", "get", "alert", "x", "-n", "other", "--server", addr)
	r.must(t, 0, []string{"x      service y   requestRate > 100   120     7200       pending"}, nil)
	if strings.Contains(r.out, "catalog-errors") {
		t.Errorf("get alert x shows others:\n%s", r.out)
	}
	r = run(t, "", "get", "alerts", "-A", "-o", "json", "--server", addr)
	r.must(t, 0, nil, nil)
	var list alertList
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || len(list.Alerts) != 3 || len(list.Events) != 1 || list.Events[0].Alert.State != alert.Firing {
		t.Fatalf("json: %v\n%s", err, r.out)
	}
	r = run(t, "", "get", "alert", "nope", "-n", "shop", "--server", addr)
	r.must(t, 1, nil, []string{`alert "nope" not found in namespace shop (is there an AlertRule of that name?)`})
}

func TestTelemetryCommandsUnreachable(t *testing.T) {
	t.Setenv(serverEnv, "127.0.0.1:1")
	for _, args := range [][]string{{"top", "--once"}, {"traces"}, {"tap", "web"}} {
		r := run(t, "", args...)
		if r.code != 1 || !strings.Contains(r.err, "error: cannot reach the weft control plane at http://127.0.0.1:1") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.err)
		}
	}
}

func TestControlTelemetryFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--trace-sampling", "1.5"}, "weft: --trace-sampling: 1.5 is not a share from 0 to 1"},
		{[]string{"--trace-sampling", "-0.1"}, "weft: --trace-sampling: -0.1 is not a share from 0 to 1"},
		{[]string{"--telemetry-retention", "0s"}, "weft: --telemetry-max-spans, --telemetry-max-logs and --telemetry-retention must be positive"},
		{[]string{"--telemetry-max-logs", "0"}, "weft: --telemetry-max-spans, --telemetry-max-logs and --telemetry-retention must be positive"},
	} {
		r := run(t, "", append([]string{"control", "--state-dir", dir, "--api-addr", "127.0.0.1:0", "--xds-addr", "127.0.0.1:0"}, tc.args...)...)
		if r.code != 1 || !strings.Contains(r.err, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, r.code, r.err, tc.want)
		}
	}
}
