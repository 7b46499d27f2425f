package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestOutlierEjection: an endpoint answering 503 is ejected after
// consecutive_5xx failures and then receives nothing; the ejection is
// counted.
func TestOutlierEjection(t *testing.T) {
	var badHits atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		http.Error(w, "down", 503)
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer good.Close()
	p, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`,
		staticCluster("backend", "    outlier_detection: {consecutive_5xx: 3, max_ejection_percent: 50, base_ejection_time: 60s}\n",
			bad.Listener.Addr().String(), good.Listener.Addr().String())))
	get := func() int {
		resp, err := http.Get("http://" + addrs["in"] + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; i < 20; i++ {
		get()
	}
	if n := badHits.Load(); n != 3 {
		t.Fatalf("the failing endpoint got %d requests, want exactly 3 (then ejected)", n)
	}
	for i := 0; i < 50; i++ {
		if code := get(); code != 200 {
			t.Fatalf("after ejection: %d", code)
		}
	}
	var sb strings.Builder
	p.WritePrometheus(&sb)
	for _, want := range []string{`weft_cluster_outlier_ejections_total{cluster="backend",reason="consecutive_5xx"} 1`, `weft_cluster_outlier_ejections_active{cluster="backend"} 1`} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
