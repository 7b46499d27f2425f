package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestBodyHandlerKeepAlive(t *testing.T) {
	srv := httptest.NewUnstartedServer(bodyHandler([]byte(strings.Repeat("x", 1024))))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	for i := range 3 {
		resp, err := srv.Client().Get(srv.URL + "/any/path")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(b) != 1024 || resp.ContentLength != 1024 {
			t.Fatalf("request %d: status %d, %d bytes, content-length %d, err %v", i, resp.StatusCode, len(b), resp.ContentLength, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 requests used %d connections, want 1 (keep-alive)", n)
	}
}

func TestRunNeedsAnAddress(t *testing.T) {
	err := run(nil)
	if err == nil || err.Error() != "give at least one of -http1, -h2c, -grpc" {
		t.Errorf("run(nil) = %v", err)
	}
}
