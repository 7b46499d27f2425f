package jwt

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// issuer is a loopback JWKS endpoint whose key set and health can change.
type issuer struct {
	mu      sync.Mutex
	body    string
	status  int
	fetches atomic.Int32
	srv     *httptest.Server
}

func newIssuer(t *testing.T, body string) *issuer {
	is := &issuer{body: body, status: 200}
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		is.mu.Lock()
		body, status := is.body, is.status
		is.mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) set(body string, status int) {
	is.mu.Lock()
	is.body, is.status = body, status
	is.mu.Unlock()
}

// refreshes returns an OnRefresh hook and the channel it reports on.
func refreshes() (func(error), chan error) {
	ch := make(chan error, 16)
	return func(err error) { ch <- err }, ch
}

func waitRefresh(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second): // a bound on a hang, not a wait for a result
		t.Fatal("no refresh reported")
		return nil
	}
}

func TestFetcherRotationAndLastGood(t *testing.T) {
	k := keysOnce()
	set1 := jwksJSON(t, pubJWK(t, "k1", "", k.rsa1))
	set2 := jwksJSON(t, pubJWK(t, "k2", "", k.ec256))
	is := newIssuer(t, set1)
	clk := &fakeClock{now: now}
	hook, ch := refreshes()
	f := NewJWKSFetcher(is.srv.URL, FetcherOptions{Clock: clk, OnRefresh: hook, Client: is.srv.Client()})
	if f.Keys() != nil {
		t.Fatal("keys before the first fetch")
	}
	f.Start()
	defer f.Stop()
	if err := waitRefresh(t, ch); err != nil {
		t.Fatal(err)
	}
	tok1 := sign(t, "RS256", "k1", k.rsa1, claims(nil))
	tok2 := sign(t, "ES256", "k2", k.ec256, claims(nil))
	check := func(tok, want string) {
		t.Helper()
		_, err := Verify(tok, f.Keys(), Validation{Now: clk.Now()})
		if Reason(err) != want {
			t.Fatalf("reason %q (%v), want %q", Reason(err), err, want)
		}
	}
	check(tok1, "")
	check(tok2, "jwt_unknown_kid")

	// The issuer rotates; the cached set serves until it expires.
	is.set(set2, 200)
	clk.Advance(DefaultCacheDuration - time.Second)
	if n := is.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches before expiry, want 1", n)
	}
	check(tok1, "")
	clk.Advance(time.Second)
	if err := waitRefresh(t, ch); err != nil {
		t.Fatal(err)
	}
	check(tok2, "")
	check(tok1, "jwt_unknown_kid")

	// The issuer fails: the last good set keeps serving; retries back off
	// 1s, 2s, 4s until the issuer answers again.
	is.set("oops", 500)
	clk.Advance(DefaultCacheDuration)
	if err := waitRefresh(t, ch); err == nil || !strings.HasSuffix(err.Error(), "status 500") {
		t.Fatalf("refresh error %v, want status 500", err)
	}
	check(tok2, "")
	clk.Advance(time.Second)
	if err := waitRefresh(t, ch); err == nil {
		t.Fatal("retry succeeded against a failing issuer")
	}
	is.set(`{"keys": []}`, 200) // parses, but holds no key: also a failure
	clk.Advance(2 * time.Second)
	if err := waitRefresh(t, ch); err == nil || !strings.HasSuffix(err.Error(), "jwks: no usable signature-verification key") {
		t.Fatalf("refresh error %v", err)
	}
	check(tok2, "")
	is.set(set1, 200)
	clk.Advance(3 * time.Second)
	if n := is.fetches.Load(); n != 5 {
		t.Fatalf("%d fetches, want 5 (the 4s retry is not due)", n)
	}
	clk.Advance(time.Second)
	if err := waitRefresh(t, ch); err != nil {
		t.Fatal(err)
	}
	check(tok1, "")
	if n := is.fetches.Load(); n != 6 {
		t.Fatalf("%d fetches, want 6", n)
	}
}

func TestFetcherStopCancelsInFlight(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	f := NewJWKSFetcher(srv.URL, FetcherOptions{Clock: &fakeClock{now: now}, Timeout: time.Hour})
	f.Start()
	f.Stop() // returns only once the goroutine has exited
	f.Stop() // idempotent
	if f.Keys() != nil {
		t.Fatal("keys from a cancelled fetch")
	}
}

func TestFetcherRefreshErrors(t *testing.T) {
	big := newIssuer(t, `{"keys": [`+strings.Repeat(" ", 100)+`]}`)
	f := NewJWKSFetcher(big.srv.URL, FetcherOptions{MaxBytes: 50})
	if err := f.Refresh(context.Background()); err == nil || err.Error() != "jwks "+big.srv.URL+": response larger than the limit" {
		t.Fatalf("error %v", err)
	}
	f = NewJWKSFetcher("http://127.0.0.1:1/jwks", FetcherOptions{})
	if err := f.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("error %v", err)
	}
}

// TestFilterRemoteJWKS runs a provider with remote_jwks end to end.
func TestFilterRemoteJWKS(t *testing.T) {
	k := keysOnce()
	is := newIssuer(t, jwksJSON(t, pubJWK(t, "k1", "", k.ec256)))
	clk := &fakeClock{now: now}
	ch := make(chan error, 16)
	cfg := parseCfg(t, `{"providers": {"idp": {"issuer": "https://issuer.example",
		"remoteJwks": {"httpUri": {"uri": "`+is.srv.URL+`/jwks", "cluster": "idp", "timeout": "2s"}, "cacheDuration": "60s"}}},
		"rules": [{"match": {"prefix": "/"}, "requires": {"providerName": "idp"}}]}`)
	f, err := Decode(cfg, Options{Clock: clk, OnRefresh: func(uri string, err error) {
		if uri != is.srv.URL+"/jwks" {
			err = errString("uri " + uri)
		}
		ch <- err
	}})
	if err != nil {
		t.Fatal(err)
	}
	h := hdrs{"authorization": "Bearer " + sign(t, "ES256", "k1", k.ec256, claims(nil))}
	if r := f.Decide(h, "/"); r.Reason != "jwks_unavailable" || r.Status != 401 {
		t.Fatalf("before start: %+v", r)
	}
	f.Start(nil)
	defer f.Stop()
	if err := waitRefresh(t, ch); err != nil {
		t.Fatal(err)
	}
	if r := f.Decide(h, "/"); r.Status != 0 || r.Claims["sub"] != "alice" {
		t.Fatalf("after fetch: %+v", r)
	}
	is.set(jwksJSON(t, pubJWK(t, "k2", "", k.rsa1)), 200)
	clk.Advance(time.Minute) // cache_duration 60s
	if err := waitRefresh(t, ch); err != nil {
		t.Fatal(err)
	}
	if r := f.Decide(h, "/"); r.Reason != "jwt_unknown_kid" {
		t.Fatalf("after rotation: %+v", r)
	}
}
