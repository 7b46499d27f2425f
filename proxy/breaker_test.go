package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCircuitBreakers: max_requests refuses the request over the limit with
// 503 and x-weft-overflow, and max_retries 0 stops retries; both counted.
func TestCircuitBreakers(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "slow")
	}))
	defer slow.Close()
	var failing atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failing.Add(1)
		http.Error(w, "down", 503)
	}))
	defer bad.Close()
	limits := func(extra string) string {
		return "    circuit_breakers: {thresholds: [{" + extra + "}]}\n"
	}
	p, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/slow"}
                route: {cluster: slow}
              - match: {prefix: "/bad"}
                route: {cluster: bad, retry_policy: {retry_on: "5xx", num_retries: 3}}`,
		staticCluster("slow", limits("max_requests: 1"), slow.Listener.Addr().String())+
			staticCluster("bad", limits("max_retries: 0"), bad.Listener.Addr().String())))

	first := make(chan int)
	go func() {
		resp, err := http.Get("http://" + addrs["in"] + "/slow")
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	<-entered // the first request holds the only slot
	resp, err := http.Get("http://" + addrs["in"] + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Weft-Overflow") != "max_requests" {
		t.Fatalf("over the limit: %d overflow=%q", resp.StatusCode, resp.Header.Get("X-Weft-Overflow"))
	}
	close(release)
	if code := <-first; code != 200 {
		t.Fatalf("the admitted request got %d", code)
	}

	resp, err = http.Get("http://" + addrs["in"] + "/bad")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || failing.Load() != 1 {
		t.Fatalf("with max_retries 0: status %d after %d upstream attempts, want 503 after 1", resp.StatusCode, failing.Load())
	}
	var sb strings.Builder
	p.WritePrometheus(&sb)
	for _, want := range []string{`weft_cluster_overflows_total{cluster="slow"} 1`, `weft_cluster_retry_overflows_total{cluster="bad"} 1`} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
