package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestFaultAndMirror: a route-level fault aborts matching requests with the
// configured status, a listener-level delay holds requests, and a mirror
// cluster receives a copy of each request with the host suffixed -shadow.
func TestFaultAndMirror(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "main") }))
	defer up.Close()
	mirrored := make(chan string, 16)
	shadow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mirrored <- r.Host + " " + r.URL.Path + " " + string(b)
	}))
	defer shadow.Close()
	doc := httpBootstrap(`              - match: {prefix: "/abort", headers: [{name: x-test, present_match: true}]}
                route: {cluster: main}
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
                    abort: {http_status: 418, percentage: {numerator: 100}}
                    headers: [{name: x-test, string_match: {exact: "yes"}}]
              - match: {prefix: "/mirror"}
                route: {cluster: main, request_mirror_policies: [{cluster: shadow}]}
              - match: {prefix: "/"}
                route: {cluster: main}`,
		staticCluster("main", "", up.Listener.Addr().String())+staticCluster("shadow", "", shadow.Listener.Addr().String()))
	doc = strings.Replace(doc, `          http_filters:
          - name: envoy.filters.http.router`, `          http_filters:
          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
              delay: {fixed_delay: 0.2s, percentage: {numerator: 100}}
              headers: [{name: x-delay, present_match: true}]
          - name: envoy.filters.http.router`, 1)
	_, addrs := startProxy(t, doc)
	do := func(method, path string, hdr map[string]string, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addrs["in"]+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, _ := do("GET", "/abort", map[string]string{"x-test": "yes"}, ""); code != 418 {
		t.Fatalf("fault abort: %d, want 418", code)
	}
	if code, body := do("GET", "/abort", map[string]string{"x-test": "no"}, ""); code != 200 || body != "main" {
		t.Fatalf("header not matching: %d %q", code, body)
	}
	start := time.Now()
	if code, _ := do("GET", "/", map[string]string{"x-delay": "1"}, ""); code != 200 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("delay: %d after %v, want 200 after >= 200ms", code, time.Since(start))
	}
	if code, body := do("POST", "/mirror/x", nil, "order-1"); code != 200 || body != "main" {
		t.Fatalf("mirrored request: %d %q", code, body)
	}
	select {
	case got := <-mirrored:
		if want := addrs["in"]; !strings.HasPrefix(got, strings.Split(want, ":")[0]+"-shadow:") || !strings.HasSuffix(got, " /mirror/x order-1") {
			t.Fatalf("mirror got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the mirror cluster never received the copy")
	}
}
