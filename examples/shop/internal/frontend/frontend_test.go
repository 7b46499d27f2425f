package frontend

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/cart/carttest"
	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
	"github.com/weft-mesh/weft/examples/shop/internal/checkout"
)

var discard = slog.New(slog.DiscardHandler)

// shop wires a frontend handler to real catalog, cart and checkout
// services on loopback.
type shop struct {
	h    *Handler
	cart *cartpb.Client
}

func newShop(t *testing.T, catalogHandler http.Handler) *shop {
	t.Helper()
	cartClient := carttest.Start(t)
	catSrv := httptest.NewServer(catalogHandler)
	t.Cleanup(catSrv.Close)
	hc := &http.Client{Timeout: 5 * time.Second}
	cat, err := catalog.NewClient(catSrv.URL, hc)
	if err != nil {
		t.Fatal(err)
	}
	coSrv := httptest.NewServer(checkout.NewHandler(checkout.Config{
		Cart: cartClient, Catalog: cat, Logger: discard, NewID: func() string { return "ord-42" },
	}))
	t.Cleanup(coSrv.Close)
	co, err := checkout.NewClient(coSrv.URL, hc)
	if err != nil {
		t.Fatal(err)
	}
	return &shop{h: NewHandler(Config{Catalog: cat, Cart: cartClient, Checkout: co, Logger: discard}), cart: cartClient}
}

func (s *shop) do(method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if method == "POST" && strings.Contains(body, "=") {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	return rec
}

func TestAPI(t *testing.T) {
	s := newShop(t, catalog.NewHandler("v2", "catalog-v2-0", discard))
	steps := []struct {
		name, method, path, body string
		code                     int
		want                     string // substring of the answer
	}{
		{"products", "GET", "/api/products", "", 200, `"version":"v2","instance":"catalog-v2-0","products":[{"sku":"mug"`},
		{"empty cart", "GET", "/api/cart/alice", "", 200, `{"user":"alice","items":[]}`},
		{"add", "POST", "/api/cart/alice/items", `{"sku":"mug","qty":2}`, 200, `{"user":"alice","items":[{"sku":"mug","qty":2}]}`},
		{"add default qty", "POST", "/api/cart/alice/items", `{"sku":"hoodie"}`, 200, `{"sku":"hoodie","qty":1}`},
		{"cart", "GET", "/api/cart/alice", "", 200, `{"user":"alice","items":[{"sku":"hoodie","qty":1},{"sku":"mug","qty":2}]}`},
		{"add unknown sku", "POST", "/api/cart/alice/items", `{"sku":"nope","qty":1}`, 404, `{"error":"catalog: get \"nope\": unknown sku"}`},
		{"add bad body", "POST", "/api/cart/alice/items", `{"sku":"mug","qty":"2"}`, 400, `body: want {\"sku\": string, \"qty\": number}`},
		{"add too many", "POST", "/api/cart/alice/items", `{"sku":"mug","qty":98}`, 400, `100 x \"mug\" would exceed 99`},
		{"bad user", "GET", "/api/cart/a.b%20c", "", 400, `user \"a.b c\": want 1-64 letters`},
		{"checkout", "POST", "/api/checkout/alice", "", 200, `{"id":"ord-42","user":"alice","lines":[{"sku":"hoodie","name":"Control plane hoodie","qty":1,"priceCents":5500,"lineCents":5500},{"sku":"mug","name":"Weft mug","qty":2,"priceCents":1200,"lineCents":2400}],"totalCents":7900`},
		{"cart emptied", "GET", "/api/cart/alice", "", 200, `{"user":"alice","items":[]}`},
		{"checkout empty cart", "POST", "/api/checkout/alice", "", 409, `{"error":"checkout: status 409: user \"alice\": cart is empty"}`},
		{"healthz", "GET", "/healthz", "", 200, "ok"},
		{"unknown path", "GET", "/api/nope", "", 404, "404 page not found"},
	}
	for _, st := range steps {
		rec := s.do(st.method, st.path, st.body)
		if rec.Code != st.code || !strings.Contains(rec.Body.String(), st.want) {
			t.Errorf("%s: %s %s = %d %s\nwant %d with %s", st.name, st.method, st.path, rec.Code, rec.Body, st.code, st.want)
		}
	}
	rec := s.do("GET", "/api/products", "")
	if rec.Header().Get(HeaderCatalogVersion) != "v2" || rec.Header().Get(HeaderCatalogInstance) != "catalog-v2-0" {
		t.Errorf("catalog headers %v", rec.Header())
	}
}

func TestPage(t *testing.T) {
	s := newShop(t, catalog.NewHandler("v2", "catalog-v2-0", discard))
	rec := s.do("GET", "/", "")
	body := rec.Body.String()
	for _, want := range []string{
		"Signed in as <b>guest</b>",
		`Catalog served by <b id="catalog-version">v2</b> (catalog-v2-0)`,
		`Control plane hoodie <span class="badge">new</span>`,
		"<td>$55.00</td>",
		"Your cart is empty.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q:\n%s", want, body)
		}
	}
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Errorf("page = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Error("page refers to an external resource")
	}

	// Add to cart with the form, follow the redirect, check out.
	rec = s.do("POST", "/cart", "user=bob&sku=tee&qty=3")
	if rec.Code != 303 || rec.Header().Get("Location") != "/?user=bob" {
		t.Fatalf("POST /cart = %d %v", rec.Code, rec.Header())
	}
	body = s.do("GET", "/?user=bob", "").Body.String()
	for _, want := range []string{"<td>Mesh t-shirt</td><td>3</td><td>$25.00</td>", "<th>$75.00</th>", `<form method="post" action="/checkout"><input type="hidden" name="user" value="bob">`} {
		if !strings.Contains(body, want) {
			t.Errorf("bob's page lacks %q:\n%s", want, body)
		}
	}
	rec = s.do("POST", "/checkout", "user=bob")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `Order <b>ord-42</b> placed: 1 line(s), total <b>$75.00</b>.`) || !strings.Contains(rec.Body.String(), "Your cart is empty.") {
		t.Errorf("POST /checkout = %d\n%s", rec.Code, rec.Body)
	}

	tests := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"bad form qty", "POST", "/cart", "user=bob&sku=tee&qty=x", 400, "invalid form: want user, sku and qty 1-99"},
		{"unknown sku form", "POST", "/cart", "user=bob&sku=nope&qty=1", 404, `catalog: get &#34;nope&#34;: unknown sku`},
		{"checkout empty", "POST", "/checkout", "user=bob", 409, "cart is empty"},
		{"checkout bad user", "POST", "/checkout", "user=", 400, "invalid form: want user"},
		{"bad user in URL", "GET", "/?user=%3Cscript%3E", "", 400, "invalid user name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := s.do(tc.method, tc.path, tc.body)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("= %d, want %d with %q:\n%s", rec.Code, tc.code, tc.want, rec.Body)
			}
			if strings.Contains(rec.Body.String(), "<script>") {
				t.Error("unescaped input on the page")
			}
		})
	}
}

func TestPageCatalogDown(t *testing.T) {
	s := newShop(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
	}))
	rec := s.do("GET", "/", "")
	if rec.Code != 502 || !strings.Contains(rec.Body.String(), `<p class="error">catalog: list: status 503: no healthy upstream</p>`) {
		t.Errorf("= %d\n%s", rec.Code, rec.Body)
	}
	rec = s.do("GET", "/api/products", "")
	if rec.Code != 502 || strings.TrimSpace(rec.Body.String()) != `{"error":"catalog: list: status 503: no healthy upstream"}` {
		t.Errorf("api = %d %s", rec.Code, rec.Body)
	}
}

func TestDecodeAddItem(t *testing.T) {
	tests := []struct {
		name, in string
		sku      string
		qty      int
		err      string
	}{
		{name: "ok", in: `{"sku":"mug","qty":2}`, sku: "mug", qty: 2},
		{name: "default qty", in: `{"sku":"mug"}`, sku: "mug", qty: 1},
		{name: "whitespace", in: " {\"qty\": 99, \"sku\": \"tee\"}\n", sku: "tee", qty: 99},
		{name: "empty", in: ``, err: "body: want {\"sku\": string, \"qty\": number}: EOF"},
		{name: "no sku", in: `{"qty":1}`, err: "sku: required"},
		{name: "bad sku", in: `{"sku":"a/b"}`, err: `sku "a/b": want 1-64 letters`},
		{name: "zero qty", in: `{"sku":"mug","qty":0}`, err: "qty 0: want 1-99"},
		{name: "negative qty", in: `{"sku":"mug","qty":-1}`, err: "qty -1: want 1-99"},
		{name: "fractional qty", in: `{"sku":"mug","qty":1.5}`, err: "cannot unmarshal number 1.5"},
		{name: "unknown field", in: `{"sku":"mug","price":1}`, err: `unknown field "price"`},
		{name: "trailing data", in: `{"sku":"mug"}{"sku":"tee"}`, err: "body: trailing data after the object"},
		{name: "trailing garbage", in: `{"sku":"mug"} x`, err: "body: trailing data after the object"},
		{name: "array", in: `[]`, err: "cannot unmarshal array"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sku, qty, err := DecodeAddItem(strings.NewReader(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || sku != tc.sku || qty != tc.qty {
				t.Fatalf("= %q %d %v", sku, qty, err)
			}
		})
	}
}

func FuzzDecodeAddItem(f *testing.F) {
	for _, s := range []string{`{"sku":"mug","qty":2}`, `{"sku":"mug"}`, `{"qty":1e9,"sku":""}`, `{"sku":"a"} `, `null`, `{"sku":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sku, qty, err := DecodeAddItem(bytes.NewReader(b))
		if err == nil && (!cartpb.ValidName(sku) || qty < 1 || qty > cartpb.MaxQty) {
			t.Fatalf("accepted %q %d from %q", sku, qty, b)
		}
	})
}

func TestMoney(t *testing.T) {
	for in, want := range map[int64]string{0: "$0.00", 5: "$0.05", 1200: "$12.00", 123456: "$1234.56", -250: "-$2.50"} {
		if got := money(in); got != want {
			t.Errorf("money(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestSetup(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env map[string]string
		err string
	}{
		{map[string]string{}, "cart address is empty"},
		{map[string]string{"CART_ADDR": "127.0.0.1:1", "CHECKOUT_URL": "checkout"}, `checkout url "checkout": want http://host[:port]`},
		{map[string]string{"CART_ADDR": "127.0.0.1:1", "CATALOG_URL": "::"}, `catalog url: parse "::": missing protocol scheme`},
	} {
		if _, _, err := Setup(env(tc.env), discard); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Setup(%v) = %v, want %q", tc.env, err, tc.err)
		}
	}
	h, cleanup, err := Setup(env(map[string]string{"CART_ADDR": "127.0.0.1:9002"}), discard)
	if err != nil || h == nil {
		t.Fatal(err)
	}
	cleanup()
}

func BenchmarkPage(b *testing.B) {
	d := pageData{User: "bob", Listing: catalog.Listing{Version: "v2", Instance: "catalog-v2-0", Products: catalog.Products("v2")},
		Cart: []cartLine{{SKU: "mug", Name: "Weft mug", Qty: 2, PriceCents: 1200}}, Total: 2400}
	h := NewHandler(Config{Logger: discard})
	b.ReportAllocs()
	for b.Loop() {
		h.writePage(httptest.NewRecorder(), 200, d)
	}
}
