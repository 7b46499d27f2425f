package shop_test

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

// shopLogs keeps every service's log output, and signals each write. It is
// safe for concurrent use.
type shopLogs struct {
	mu      sync.Mutex
	text    map[string]*strings.Builder
	changed chan struct{} // closed and replaced on every write
}

func newShopLogs() *shopLogs {
	return &shopLogs{text: map[string]*strings.Builder{}, changed: make(chan struct{})}
}

type serviceLog struct {
	logs *shopLogs
	name string
}

func (w serviceLog) Write(p []byte) (int, error) {
	l := w.logs
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.text[w.name]
	if b == nil {
		b = &strings.Builder{}
		l.text[w.name] = b
	}
	b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *shopLogs) writer(name string) io.Writer { return serviceLog{l, name} }

// withLine returns the services that logged a line containing every one
// of subs, sorted, and a channel closed at the next write.
func (l *shopLogs) withLine(subs ...string) ([]string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for name, b := range l.text {
		for line := range strings.Lines(b.String()) {
			if containsAll(line, subs) {
				out = append(out, name)
				break
			}
		}
	}
	slices.Sort(out)
	return out, l.changed
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestOneTracePerRequest: a request that enters the frontend with a
// traceparent reaches every service it involves with the same trace (HTTP
// headers to the catalog and checkout, gRPC metadata to the cart, and on
// from checkout), each of which logs one request line with its trace_id;
// the frontend answers the trace id in X-Trace-Id.
func TestOneTracePerRequest(t *testing.T) {
	logs := newShopLogs()
	base := startShop(t, logs)
	tests := []struct {
		name, method, path, body string
		want                     []string // the services that must log the trace
	}{
		{name: "products", method: "GET", path: "/api/products", want: []string{"catalog-v1", "frontend"}},
		{name: "add to cart", method: "POST", path: "/api/cart/trace/items", body: `{"sku":"mug","qty":1}`, want: []string{"cart", "catalog-v1", "frontend"}},
		{name: "read the cart", method: "GET", path: "/api/cart/trace", want: []string{"cart", "frontend"}},
		{name: "checkout", method: "POST", path: "/api/checkout/trace", want: []string{"cart", "catalog-v2", "checkout", "frontend"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := newTraceID(t)
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("traceparent", "00-"+id+"-00f067aa0ba902b7-01")
			req.Header.Set("tracestate", "shop=test")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s %s = %d %s", tc.method, tc.path, resp.StatusCode, b)
			}
			if got := resp.Header.Get(instance.HeaderTraceID); got != id {
				t.Errorf("%s: %q, want %q", instance.HeaderTraceID, got, id)
			}
			deadline := time.After(5 * time.Second)
			for {
				got, changed := logs.withLine("msg=request", "trace_id="+id)
				if slices.Equal(got, tc.want) {
					break
				}
				select {
				case <-changed:
				case <-deadline:
					t.Fatalf("services that logged trace %s: %v, want %v", id, got, tc.want)
				}
			}
		})
	}
}

func newTraceID(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
