package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var discard = slog.New(slog.DiscardHandler)

func TestHandler(t *testing.T) {
	tests := []struct {
		name, version, method, path string
		code                        int
		body                        string // substring of the answer
	}{
		{name: "list v1", version: "v1", method: "GET", path: "/products", code: 200, body: `"version":"v1","instance":"catalog-v1-0","products":[{"sku":"mug","name":"Weft mug","priceCents":1200}`},
		{name: "list v2 has badges", version: "v2", method: "GET", path: "/products", code: 200, body: `{"sku":"hoodie","name":"Control plane hoodie","priceCents":5500,"badge":"new"}`},
		{name: "get", version: "v1", method: "GET", path: "/products/tee", code: 200, body: `{"sku":"tee","name":"Mesh t-shirt","priceCents":2500}`},
		{name: "get v2 badge", version: "v2", method: "GET", path: "/products/sticker", code: 200, body: `"badge":"new"`},
		{name: "unknown sku", version: "v1", method: "GET", path: "/products/nope", code: 404, body: `{"error":"unknown sku \"nope\""}`},
		{name: "healthz", version: "v1", method: "GET", path: "/healthz", code: 200, body: "ok"},
		{name: "post not allowed", version: "v1", method: "POST", path: "/products", code: 405},
		{name: "unknown path", version: "v1", method: "GET", path: "/nope", code: 404, body: "404 page not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(tc.version, "catalog-"+tc.version+"-0", discard)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("body %s, want it to contain %s", rec.Body, tc.body)
			}
			if got := rec.Header().Get(HeaderVersion); got != tc.version {
				t.Errorf("%s: %q, want %q", HeaderVersion, got, tc.version)
			}
			if got := rec.Header().Get(HeaderInstance); got != "catalog-"+tc.version+"-0" {
				t.Errorf("%s: %q", HeaderInstance, got)
			}
		})
	}
}

func TestProductsVersions(t *testing.T) {
	v1, v2 := Products("v1"), Products("v2")
	if len(v1) != len(v2) {
		t.Fatalf("v1 has %d products, v2 %d: versions must sell the same SKUs", len(v1), len(v2))
	}
	badges := 0
	for i := range v1 {
		if v1[i].SKU != v2[i].SKU || v1[i].PriceCents != v2[i].PriceCents {
			t.Errorf("product %d differs: %+v vs %+v (prices must match across versions)", i, v1[i], v2[i])
		}
		if v1[i].Badge != "" {
			t.Errorf("v1 %s has badge %q", v1[i].SKU, v1[i].Badge)
		}
		if v2[i].Badge == "new" {
			badges++
		}
	}
	if badges == 0 {
		t.Error("v2 shows no new badge")
	}
	v1[0].Name = "changed"
	if Products("v1")[0].Name == "changed" {
		t.Error("Products returned the shared slice")
	}
}

func newClient(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL+"/", &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClient(t *testing.T) {
	c := newClient(t, NewHandler("v2", "catalog-v2-0", discard))
	ctx := context.Background()
	l, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != "v2" || l.Instance != "catalog-v2-0" || len(l.Products) != len(products) {
		t.Errorf("List = %+v", l)
	}
	p, err := c.Get(ctx, "hoodie")
	if err != nil {
		t.Fatal(err)
	}
	if p != (Product{SKU: "hoodie", Name: "Control plane hoodie", PriceCents: 5500, Badge: "new"}) {
		t.Errorf("Get = %+v", p)
	}
	_, err = c.Get(ctx, "nope")
	if !errors.Is(err, ErrUnknownSKU) || err.Error() != `catalog: get "nope": unknown sku` {
		t.Errorf("Get(nope) = %v, want unknown sku", err)
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		err     string
		unknown bool
	}{
		{name: "404 from a proxy is not an unknown sku", err: `catalog: get "mug": status 404: no route`,
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no route", 404) }},
		{name: "503", err: `catalog: get "mug": status 503: no healthy upstream`,
			handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no healthy upstream", 503) }},
		{name: "bad json", err: `catalog: get "mug": decode answer: invalid character`,
			handler: func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "{nope") }},
		{name: "long error body is truncated", err: `status 500: ` + strings.Repeat("x", 200),
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(500)
				_, _ = io.WriteString(w, strings.Repeat("x", 1000))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newClient(t, tc.handler).Get(context.Background(), "mug")
			if err == nil || !strings.Contains(err.Error(), tc.err) || errors.Is(err, ErrUnknownSKU) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			if strings.Contains(err.Error(), strings.Repeat("x", 201)) {
				t.Error("error body not truncated")
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.List(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v, want context canceled", err)
		}
	})
}

func TestNewClient(t *testing.T) {
	for _, tc := range []struct{ url, err string }{
		{"catalog.shop", `catalog url "catalog.shop": want http://host[:port]`},
		{"ftp://catalog.shop", `catalog url "ftp://catalog.shop": want http://host[:port]`},
		{"http://", `catalog url "http://": want http://host[:port]`},
		{"http://[::1", `catalog url: parse "http://[::1": missing ']' in host`},
	} {
		_, err := NewClient(tc.url, http.DefaultClient)
		if err == nil || err.Error() != tc.err {
			t.Errorf("NewClient(%q) = %v, want %q", tc.url, err, tc.err)
		}
	}
	c, err := NewClient("http://catalog.shop/base/", http.DefaultClient)
	if err != nil || c.base.String() != "http://catalog.shop/base" {
		t.Errorf("NewClient = %v, %v", c.base, err)
	}
}

func TestSetup(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	h, _, err := Setup(env(map[string]string{"VERSION": "v2", "WEFT_INSTANCE": "catalog-v2-0"}), discard)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/products", nil))
	var l Listing
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil || l.Version != "v2" || l.Instance != "catalog-v2-0" {
		t.Errorf("listing %+v, %v", l, err)
	}
	if _, _, err := Setup(env(map[string]string{"VERSION": "v3"}), discard); err == nil || err.Error() != `VERSION "v3": want v1 or v2` {
		t.Errorf("Setup(v3) = %v", err)
	}
}

func BenchmarkList(b *testing.B) {
	h := NewHandler("v2", "catalog-v2-0", discard)
	req := httptest.NewRequest("GET", "/products", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// TestFailureKnob: POST /admin/fail makes the API answer a 5xx while
// /healthz passes, until status=0; bad statuses are refused.
func TestFailureKnob(t *testing.T) {
	h := NewHandler("v1", "catalog-v1-0", discard)
	do := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, strings.TrimSpace(rec.Body.String())
	}
	steps := []struct {
		name, method, path string
		code               int
		body               string // substring of the answer
	}{
		{name: "healthy", method: "GET", path: "/products", code: 200, body: `"version":"v1"`},
		{name: "knob reads 0", method: "GET", path: "/admin/fail", code: 200, body: `{"status":0}`},
		{name: "fail with the default 500", method: "POST", path: "/admin/fail", code: 200, body: `{"status":500}`},
		{name: "list fails", method: "GET", path: "/products", code: 500, body: `failure injected`},
		{name: "get fails", method: "GET", path: "/products/mug", code: 500, body: `failure injected`},
		{name: "healthz still passes", method: "GET", path: "/healthz", code: 200, body: "ok"},
		{name: "fail with 503", method: "POST", path: "/admin/fail?status=503", code: 200, body: `{"status":503}`},
		{name: "list answers 503", method: "GET", path: "/products", code: 503, body: `failure injected`},
		{name: "refuses a 4xx", method: "POST", path: "/admin/fail?status=404", code: 400, body: `status \"404\": want 500-599, or 0 to stop failing`},
		{name: "refuses junk", method: "POST", path: "/admin/fail?status=x", code: 400, body: `status \"x\": want 500-599`},
		{name: "still failing after refusals", method: "GET", path: "/products", code: 503},
		{name: "recover", method: "POST", path: "/admin/fail?status=0", code: 200, body: `{"status":0}`},
		{name: "healthy again", method: "GET", path: "/products/mug", code: 200, body: `"sku":"mug"`},
	}
	for _, s := range steps {
		code, body := do(s.method, s.path)
		if code != s.code || !strings.Contains(body, s.body) {
			t.Fatalf("%s: %s %s = %d %s; want %d and %q", s.name, s.method, s.path, code, body, s.code, s.body)
		}
	}
}
