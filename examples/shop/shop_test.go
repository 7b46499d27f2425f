package shop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/cart"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
	"github.com/weft-mesh/weft/examples/shop/internal/checkout"
	"github.com/weft-mesh/weft/examples/shop/internal/frontend"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

// service is one shop service started in-process the way its command
// starts it: its Setup reads the environment, instance.Serve serves it.
type service struct {
	name  string
	setup instance.Setup
	env   map[string]string
	ln    net.Listener
}

func (s *service) addr() string { return s.ln.Addr().String() }

// startShop runs all services in-process on loopback ports, wired to each
// other directly (no mesh): the frontend sees catalog v1, checkout sees
// catalog v2. Their logs go to logs (nil: discarded). It returns the
// frontend's base URL.
func startShop(t *testing.T, logs *shopLogs) string {
	t.Helper()
	svcs := map[string]*service{
		"catalog-v1": {setup: catalog.Setup, env: map[string]string{"VERSION": "v1", "WEFT_INSTANCE": "catalog-v1-0"}},
		"catalog-v2": {setup: catalog.Setup, env: map[string]string{"VERSION": "v2", "WEFT_INSTANCE": "catalog-v2-0"}},
		"cart":       {setup: cart.Setup},
		"checkout":   {setup: checkout.Setup},
		"frontend":   {setup: frontend.Setup},
	}
	for name, s := range svcs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.name, s.ln = name, ln
	}
	svcs["checkout"].env = map[string]string{"CART_ADDR": svcs["cart"].addr(), "CATALOG_URL": "http://" + svcs["catalog-v2"].addr()}
	svcs["frontend"].env = map[string]string{
		"CART_ADDR":    svcs["cart"].addr(),
		"CATALOG_URL":  "http://" + svcs["catalog-v1"].addr(),
		"CHECKOUT_URL": "http://" + svcs["checkout"].addr(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		name string
		err  error
	}
	done := make(chan result, len(svcs))
	for _, s := range svcs {
		logger := slog.New(slog.DiscardHandler)
		if logs != nil {
			logger = slog.New(slog.NewTextHandler(logs.writer(s.name), nil))
		}
		h, cleanup, err := s.setup(func(k string) string { return s.env[k] }, logger)
		if err != nil {
			t.Fatalf("%s: setup: %v", s.name, err)
		}
		go func() {
			err := instance.Serve(ctx, s.ln, h, 5*time.Second, logger)
			if cleanup != nil {
				cleanup()
			}
			done <- result{s.name, err}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range svcs {
			if r := <-done; r.err != nil {
				t.Errorf("%s: %v", r.name, r.err)
			}
		}
	})
	return "http://" + svcs["frontend"].addr()
}

func call(t *testing.T, method, u, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestBuySomething buys through the frontend's JSON API and HTML forms with
// every service running and talking to the others over loopback.
func TestBuySomething(t *testing.T) {
	base := startShop(t, nil)

	code, hdr, body := call(t, "GET", base+"/api/products", "", "")
	if code != 200 || hdr.Get("x-catalog-version") != "v1" {
		t.Fatalf("GET /api/products = %d %v %s", code, hdr, body)
	}
	var l catalog.Listing
	if err := json.Unmarshal([]byte(body), &l); err != nil || len(l.Products) == 0 {
		t.Fatalf("listing %s: %v", body, err)
	}

	for _, item := range []string{`{"sku":"mug","qty":2}`, `{"sku":"hoodie","qty":1}`} {
		if code, _, body := call(t, "POST", base+"/api/cart/alice/items", "application/json", item); code != 200 {
			t.Fatalf("add %s = %d %s", item, code, body)
		}
	}
	if _, _, body := call(t, "GET", base+"/api/cart/alice", "", ""); strings.TrimSpace(body) != `{"user":"alice","items":[{"sku":"hoodie","qty":1},{"sku":"mug","qty":2}]}` {
		t.Errorf("cart %s", body)
	}
	code, _, body = call(t, "POST", base+"/api/checkout/alice", "", "")
	if code != 200 {
		t.Fatalf("checkout = %d %s", code, body)
	}
	var o checkout.Order
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		t.Fatal(err)
	}
	if o.User != "alice" || o.TotalCents != 2*1200+5500 || len(o.Lines) != 2 || !strings.HasPrefix(o.ID, "ord-") {
		t.Errorf("order %+v", o)
	}
	if _, _, body := call(t, "GET", base+"/api/cart/alice", "", ""); strings.TrimSpace(body) != `{"user":"alice","items":[]}` {
		t.Errorf("cart after checkout %s", body)
	}

	// The same through the page's forms.
	form := "application/x-www-form-urlencoded"
	code, hdr, _ = call(t, "POST", base+"/cart", form, url.Values{"user": {"bob"}, "sku": {"tee"}, "qty": {"2"}}.Encode())
	if code != http.StatusSeeOther || hdr.Get("Location") != "/?user=bob" {
		t.Fatalf("form add = %d %v", code, hdr)
	}
	if _, _, page := call(t, "GET", base+"/?user=bob", "", ""); !strings.Contains(page, "<td>Mesh t-shirt</td><td>2</td>") || !strings.Contains(page, `id="catalog-version">v1<`) {
		t.Errorf("bob's page:\n%s", page)
	}
	code, _, page := call(t, "POST", base+"/checkout", form, "user=bob")
	if code != 200 || !strings.Contains(page, fmt.Sprintf("total <b>%s</b>", "$50.00")) {
		t.Errorf("form checkout = %d:\n%s", code, page)
	}
	if code, _, body := call(t, "POST", base+"/api/checkout/bob", "", ""); code != http.StatusConflict {
		t.Errorf("second checkout = %d %s, want 409", code, body)
	}
}
