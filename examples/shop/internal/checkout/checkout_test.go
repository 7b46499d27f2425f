package checkout

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/cart/carttest"
	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
)

var discard = slog.New(slog.DiscardHandler)

func catalogClient(t *testing.T, h http.Handler) *catalog.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := catalog.NewClient(srv.URL, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newHandler(c Cart, cat Catalog) *Handler {
	return NewHandler(Config{
		Cart: c, Catalog: cat, Logger: discard,
		NewID: func() string { return "ord-1" },
		Now:   func() time.Time { return fixedNow },
	})
}

func post(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
	return rec
}

func TestCheckout(t *testing.T) {
	ctx := context.Background()
	c := carttest.Start(t)
	h := newHandler(c, catalogClient(t, catalog.NewHandler("v1", "catalog-v1-0", discard)))
	if _, err := c.AddItem(ctx, "alice", "mug", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddItem(ctx, "alice", "hoodie", 1); err != nil {
		t.Fatal(err)
	}
	rec := post(h, "/checkout/alice")
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	want := `{"id":"ord-1","user":"alice","lines":[` +
		`{"sku":"hoodie","name":"Control plane hoodie","qty":1,"priceCents":5500,"lineCents":5500},` +
		`{"sku":"mug","name":"Weft mug","qty":2,"priceCents":1200,"lineCents":2400}],` +
		`"totalCents":7900,"createdAt":"2026-03-01T12:00:00Z"}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("order\n got %s\nwant %s", got, want)
	}
	if got, _ := c.GetCart(ctx, "alice"); len(got.Items) != 0 {
		t.Errorf("cart after checkout %+v, want empty", got)
	}
	// A second checkout finds the cart empty.
	if rec := post(h, "/checkout/alice"); rec.Code != 409 || !strings.Contains(rec.Body.String(), `"error":"user \"alice\": cart is empty"`) {
		t.Errorf("second checkout = %d %s, want 409 cart is empty", rec.Code, rec.Body)
	}
}

func TestCheckoutErrors(t *testing.T) {
	ctx := context.Background()
	down := catalogClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
	}))
	blockedCatalog := catalogClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	tests := []struct {
		name    string
		user    string
		catalog Catalog
		timeout time.Duration
		fill    []string // SKUs in the cart before checkout
		code    int
		err     string
	}{
		{name: "invalid user", user: "a%20b", code: 400, err: `user \"a b\": want 1-64 letters`},
		{name: "unknown sku", user: "u1", fill: []string{"mug", "gone"}, code: 422, err: `price \"gone\": catalog: get \"gone\": unknown sku`},
		{name: "catalog down", user: "u2", fill: []string{"mug"}, catalog: down, code: 502, err: `price \"mug\": catalog: get \"mug\": status 503: upstream connect error`},
		{name: "catalog too slow", user: "u3", fill: []string{"mug"}, catalog: blockedCatalog, timeout: 50 * time.Millisecond, code: 504, err: "context deadline exceeded"},
	}
	c := carttest.Start(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, sku := range tc.fill {
				if _, err := c.AddItem(ctx, tc.user, sku, 1); err != nil {
					t.Fatal(err)
				}
			}
			cat := tc.catalog
			if cat == nil {
				cat = catalogClient(t, catalog.NewHandler("v1", "catalog-v1-0", discard))
			}
			h := NewHandler(Config{Cart: c, Catalog: cat, Timeout: tc.timeout, Logger: discard})
			rec := post(h, "/checkout/"+tc.user)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.err) {
				t.Fatalf("= %d %s, want %d %s", rec.Code, rec.Body, tc.code, tc.err)
			}
			if len(tc.fill) > 0 {
				if got, _ := c.GetCart(ctx, tc.user); len(got.Items) != len(tc.fill) {
					t.Errorf("cart after a failed checkout %+v, want it untouched", got)
				}
			}
		})
	}
	t.Run("cart down", func(t *testing.T) {
		conn, err := cartpb.Dial("127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		h := newHandler(cartpb.NewClient(conn), catalogClient(t, catalog.NewHandler("v1", "x", discard)))
		rec := post(h, "/checkout/bob")
		if rec.Code != 502 || !strings.Contains(rec.Body.String(), `read cart: cart: get cart: rpc error: code = Unavailable`) {
			t.Fatalf("= %d %s, want 502 Unavailable", rec.Code, rec.Body)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		rec := httptest.NewRecorder()
		newHandler(c, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != 200 || rec.Body.String() != "ok\n" {
			t.Errorf("= %d %q", rec.Code, rec.Body)
		}
	})
	t.Run("get not allowed", func(t *testing.T) {
		rec := httptest.NewRecorder()
		newHandler(c, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/checkout/bob", nil))
		if rec.Code != 405 {
			t.Errorf("GET /checkout/bob = %d, want 405", rec.Code)
		}
	})
}

func TestRandomID(t *testing.T) {
	a, b := randomID(), randomID()
	if a == b || len(a) != len("ord-")+12 || !strings.HasPrefix(a, "ord-") {
		t.Errorf("ids %q %q", a, b)
	}
}

func TestClient(t *testing.T) {
	ctx := context.Background()
	c := carttest.Start(t)
	srv := httptest.NewServer(newHandler(c, catalogClient(t, catalog.NewHandler("v1", "x", discard))))
	defer srv.Close()
	cl, err := NewClient(srv.URL+"/", &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddItem(ctx, "bob", "tee", 3); err != nil {
		t.Fatal(err)
	}
	o, err := cl.Checkout(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if o.ID != "ord-1" || o.TotalCents != 7500 || len(o.Lines) != 1 || !o.CreatedAt.Equal(fixedNow) {
		t.Errorf("order %+v", o)
	}
	_, err = cl.Checkout(ctx, "bob")
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 409 || err.Error() != `checkout: status 409: user "bob": cart is empty` {
		t.Errorf("empty cart: %v", err)
	}

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
	}))
	defer plain.Close()
	cl, _ = NewClient(plain.URL, http.DefaultClient)
	if _, err := cl.Checkout(ctx, "bob"); !errors.As(err, &se) || se.Code != 503 || se.Message != "no healthy upstream" {
		t.Errorf("plain-text error: %v", err)
	}
	if _, err := NewClient("checkout.shop", nil); err == nil || err.Error() != `checkout url "checkout.shop": want http://host[:port]` {
		t.Errorf("NewClient(no scheme) = %v", err)
	}
}

func TestSetup(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		env map[string]string
		err string
	}{
		{map[string]string{}, "cart address is empty"},
		{map[string]string{"CART_ADDR": "127.0.0.1:9102", "CATALOG_URL": "catalog"}, `catalog url "catalog": want http://host[:port]`},
	} {
		if _, _, err := Setup(env(tc.env), discard); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Setup(%v) = %v, want %q", tc.env, err, tc.err)
		}
	}
	h, cleanup, err := Setup(env(map[string]string{"CART_ADDR": "127.0.0.1:9102"}), discard)
	if err != nil || h == nil {
		t.Fatal(err)
	}
	cleanup()
}
