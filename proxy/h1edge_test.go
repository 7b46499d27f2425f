package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// rawExchange writes raw bytes to addr and returns the parsed response.
func rawExchange(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestBadInput(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())))
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"garbage request line", "HELLO\r\n\r\n", 400},
		{"space before colon", "GET / HTTP/1.1\r\nHost: x\r\nBad : y\r\n\r\n", 400},
		{"smuggling: CL and TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two different lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"oversized header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431},
		{"valid", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := rawExchange(t, addrs["in"], tc.raw)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status >= 400 && !resp.Close {
				t.Errorf("connection kept open after %d", tc.status)
			}
		})
	}
}

func TestExpectContinue(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Expect") != "100-continue" {
			http.Error(w, "no expect", 400)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	}))
	defer up.Close()
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())))
	c, err := net.Dial("tcp", addrs["in"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("want 100 Continue before the body, got %q %v", line, err)
	}
	br.ReadString('\n') // blank line
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "got hello" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

// TestRetries: a 503 from one endpoint is retried on another; a POST body
// is replayed.
func TestRetries(t *testing.T) {
	var badHits, goodHits atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		badHits.Add(1)
		io.Copy(io.Discard, r.Body)
		http.Error(w, "down", 503)
	}))
	defer bad.Close()
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		goodHits.Add(1)
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "good %s", b)
	}))
	defer good.Close()
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route:
                  cluster: backend
                  retry_policy: {retry_on: "5xx", num_retries: 2, retry_back_off: {base_interval: 0.001s}}`,
		staticCluster("backend", "", bad.Listener.Addr().String(), good.Listener.Addr().String())))
	for i := 0; i < 20; i++ {
		resp, err := http.Post("http://"+addrs["in"]+"/", "text/plain", strings.NewReader("order"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "good order" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if badHits.Load() == 0 {
		t.Fatalf("the failing endpoint was never tried; the test proves nothing")
	}
}

// TestUpstreamResetMidBody: the status line was sent, so the proxy can only
// close the client connection; the client must see a truncated body, not a
// clean response.
func TestUpstreamResetMidBody(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}))
	defer up.Close()
	p, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())))
	resp, err := http.Get("http://" + addrs["in"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Fatalf("truncated body read without error")
	}
	var sb strings.Builder
	p.WritePrometheus(&sb)
	if !strings.Contains(sb.String(), `weft_local_replies_total{listener="in",reason="upstream_reset"} 1`) {
		t.Fatalf("reset not counted:\n%s", sb.String())
	}
}
