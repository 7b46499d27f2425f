package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/xds"
)

// serveAPI serves the hub's endpoints on a real loopback server.
func serveAPI(t *testing.T, h *Hub) string {
	t.Helper()
	mux := http.NewServeMux()
	h.RegisterAPI(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func getJSON(t *testing.T, u string, wantStatus int, out any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: %s %s, want %d", u, resp.Status, b, wantStatus)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, b)
	}
}

type apiError struct {
	Error string `json:"error"`
}

func TestAPIMetricsEndpoints(t *testing.T) {
	f := newMeshFixture(t)
	base := serveAPI(t, f.hub)

	var top Top
	getJSON(t, base+TopPath+"?namespace=shop", 200, &top)
	if len(top.Workloads) != 1 || top.Workloads[0].RPS != 10 || !near(top.Workloads[0].P99MS, 24.625) || len(top.Edges) != 2 {
		t.Fatalf("top %+v", top)
	}

	var m MetricsResponse
	getJSON(t, base+MetricsPath+"?edge="+url.QueryEscape("frontend.shop->catalog.shop")+"&since=1m", 200, &m)
	if m.Interval != "5s" || len(m.Series) != 1 || m.Series[0].SourceWorkload != "frontend" || len(m.Series[0].Points) != 1 || m.Series[0].Points[0].RPS != 5 {
		t.Fatalf("metrics %+v", m)
	}

	var topo Topology
	getJSON(t, base+TopologyPath, 200, &topo)
	var nodes []string
	for _, n := range topo.Nodes {
		nodes = append(nodes, n.ID+":"+n.Kind)
	}
	if want := []string{"shop/catalog:workload", "shop/edge:gateway", "shop/frontend:workload", "shop/legacy:workload"}; !slices.Equal(nodes, want) {
		t.Fatalf("nodes %v, want %v", nodes, want)
	}
	if len(topo.Edges) != 2 || topo.Edges[1].Source != "shop/frontend" || topo.Edges[1].Target != "shop/catalog" || topo.Edges[1].RPS != 5 ||
		topo.Edges[0].Target != "shop/frontend" || topo.Nodes[2].Proxies != 2 || topo.Nodes[0].RPS != 10 {
		t.Fatalf("topology %+v", topo)
	}

	var targets []TargetGroup
	getJSON(t, base+TargetsPath, 200, &targets)
	if len(targets) != 4 {
		t.Fatalf("targets %+v", targets)
	}
	want := TargetGroup{Targets: []string{f.catalog.addr()}, Labels: map[string]string{"__metrics_path__": "/stats/prometheus", "namespace": "shop", "workload": "catalog", "node": "catalog-0.shop"}}
	if got, _ := json.Marshal(targets[0]); string(got) != mustJSON(want) {
		t.Fatalf("target %s, want %s", got, mustJSON(want))
	}

	for _, tc := range []struct{ query, want string }{
		{"?since=yesterday", `since: "yesterday" is neither a duration (15m) nor an RFC 3339 time`},
		{"?workload=a&edge=b->c", "give workload or edge, not both"},
		{"?edge=frontend", `edge: "frontend": want <source workload>[.<namespace>]-><destination service>`},
	} {
		var e apiError
		getJSON(t, base+MetricsPath+tc.query, 400, &e)
		if e.Error != tc.want {
			t.Errorf("%s: error %q, want %q", tc.query, e.Error, tc.want)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestAPITraces(t *testing.T) {
	clk := newFakeClock()
	h := New(Options{Clock: clk})
	t0 := clk.Now()
	h.AddSpans([]Span{
		span(traceID(1), "00000000000000a1", "", "frontend", t0, 300*time.Millisecond),
		span(traceID(1), "00000000000000a2", "00000000000000a1", "catalog", t0.Add(time.Millisecond), 200*time.Millisecond),
		span(traceID(2), "00000000000000b1", "", "cart", t0.Add(time.Second), 10*time.Millisecond),
	})
	base := serveAPI(t, h)
	var list TraceList
	getJSON(t, base+TracesPath+"?service=catalog&minDuration=100ms&limit=5", 200, &list)
	if len(list.Traces) != 1 || list.Traces[0].TraceID != traceID(1) || list.Traces[0].Spans != 2 || list.Traces[0].DurationMS != 300 {
		t.Fatalf("traces %+v", list)
	}
	var tr Trace
	getJSON(t, base+TracesPath+"/"+traceID(1), 200, &tr)
	if len(tr.Spans) != 2 || tr.Spans[1].ParentSpanID != "00000000000000a1" {
		t.Fatalf("trace %+v", tr)
	}
	for _, tc := range []struct {
		path   string
		status int
		want   string
	}{
		{TracesPath + "/" + traceID(7), 404, "trace " + traceID(7) + ": not found (never received, or dropped)"},
		{TracesPath + "/xyz", 400, `trace id "xyz": want 32 hex digits`},
		{TracesPath + "?minDuration=soon", 400, `minDuration: "soon" is not a duration (250ms)`},
		{TracesPath + "?limit=-1", 400, `limit: "-1" is not a positive integer`},
	} {
		var e apiError
		getJSON(t, base+tc.path, tc.status, &e)
		if e.Error != tc.want {
			t.Errorf("%s: error %q, want %q", tc.path, e.Error, tc.want)
		}
	}
}

func TestAPILogs(t *testing.T) {
	clk := newFakeClock()
	h := New(Options{Clock: clk})
	h.AddLogs([]LogRecord{
		logRec("shop", "catalog", traceID(1), "list products", clk.Now()),
		logRec("shop", "cart", "", "add item", clk.Now()),
	})
	base := serveAPI(t, h)
	var list LogList
	getJSON(t, base+LogsPath+"?workload=catalog.shop", 200, &list)
	if !slices.Equal(bodies(list.Records), []string{"list products"}) || list.Last != 2 {
		t.Fatalf("logs %+v", list)
	}
	getJSON(t, base+LogsPath+"?trace="+traceID(1)+"&since=1m&q=LIST", 200, &list)
	if len(list.Records) != 1 {
		t.Fatalf("logs by trace %+v", list)
	}
	getJSON(t, base+LogsPath+"?workload=nobody", 200, &list)
	if list.Records == nil || len(list.Records) != 0 {
		t.Fatalf("no logs must be an empty list: %+v", list)
	}
	for _, tc := range []struct{ query, want string }{
		{"?follow=maybe", `follow: "maybe" is not true or false`},
		{"?after=-3", `after: "-3" is not a sequence number`},
		{"?limit=0", `limit: "0" is not a positive integer`},
	} {
		var e apiError
		getJSON(t, base+LogsPath+tc.query, 400, &e)
		if e.Error != tc.want {
			t.Errorf("%s: error %q, want %q", tc.query, e.Error, tc.want)
		}
	}

	// Follow: the matching backlog, then new records as they arrive.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+LogsPath+"?workload=cart&follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != ndjsonType {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	next := func() LogRecord {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("stream ended: %v", sc.Err())
		}
		var rec LogRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	if r := next(); r.Body != "add item" {
		t.Fatalf("backlog %+v", r)
	}
	h.AddLogs([]LogRecord{logRec("shop", "catalog", "", "not for this follower", clk.Now())})
	h.AddLogs([]LogRecord{logRec("shop", "cart", "", "checkout", clk.Now())})
	if r := next(); r.Body != "checkout" || r.Seq != 4 {
		t.Fatalf("followed %+v", r)
	}
}

// TestAPIFollowEndsWhenTheHubStops: a stopping hub ends its streams, so
// the API can shut down at once.
func TestAPIFollowEndsWhenTheHubStops(t *testing.T) {
	clk := newFakeClock()
	h := New(Options{Clock: clk})
	base := serveAPI(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	resp, err := http.Get(base + LogsPath + "?follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 0 {
		t.Fatalf("stream body %q, %v", b, err)
	}
}

func TestAPITap(t *testing.T) {
	a, b, other := newFakeProxy(t), newFakeProxy(t), newFakeProxy(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	proxies := []xds.ProxyStatus{
		{ID: "catalog-0.shop", Namespace: "shop", Workload: "catalog", AdminAddr: a.addr()},
		{ID: "catalog-1.shop", Namespace: "shop", Workload: "catalog", AdminAddr: b.addr()},
		{ID: "catalog-2.shop", Namespace: "shop", Workload: "catalog", AdminAddr: dead.Listener.Addr().String()},
		{ID: "cart-0.shop", Namespace: "shop", Workload: "cart", AdminAddr: other.addr()},
		{ID: "ledger-0.billing", Namespace: "billing", Workload: "ledger", AdminAddr: dead.Listener.Addr().String()},
	}
	h := New(Options{Proxies: ProxiesFunc(func() []xds.ProxyStatus { return proxies })})
	base := serveAPI(t, h)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+TapPath+"?workload=catalog.shop&path=/api", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("tap: %s", resp.Status)
	}
	for _, fp := range []*fakeProxy{a, b} {
		if p := <-fp.path; p != "/api" {
			t.Fatalf("proxy tapped with path %q", p)
		}
	}
	a.taps <- `{"path":"/api/a"}`
	sc := bufio.NewScanner(resp.Body)
	var got []string
	if !sc.Scan() {
		t.Fatal(sc.Err())
	}
	got = append(got, sc.Text())
	b.taps <- `{"path":"/api/b"}`
	if !sc.Scan() {
		t.Fatal(sc.Err())
	}
	got = append(got, sc.Text())
	if !slices.Equal(got, []string{`{"path":"/api/a"}`, `{"path":"/api/b"}`}) {
		t.Fatalf("lines %q", got)
	}
	// Both proxies' streams end: so does the merged one.
	close(a.taps)
	close(b.taps)
	if sc.Scan() {
		t.Fatalf("extra line %q", sc.Text())
	}

	for _, tc := range []struct {
		query  string
		status int
		want   string
	}{
		{"", 400, "workload is required"},
		{"?workload=nobody", 404, `workload "nobody": no connected proxy with an admin address`},
		{"?workload=catalog&namespace=billing", 404, `workload "catalog": no connected proxy with an admin address`},
		{"?workload=ledger", 502, "tap: proxy ledger-0.billing: Get"},
	} {
		var e apiError
		getJSON(t, base+TapPath+tc.query, tc.status, &e)
		if !strings.HasPrefix(e.Error, tc.want) {
			t.Errorf("%s: error %q, want prefix %q", tc.query, e.Error, tc.want)
		}
	}
}
