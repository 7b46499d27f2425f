package control

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *Plane, 1)
	stopped := make(chan struct{})
	comp := func(p *Plane) (func(context.Context) error, error) {
		p.API.Handle("GET /api/v1/proxies", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "[]") }))
		return func(ctx context.Context) error { <-ctx.Done(); close(stopped); return ctx.Err() }, nil
	}
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Config{StateDir: dir, APIAddr: "127.0.0.1:0", Version: "v-test", OnReady: func(p *Plane) { ready <- p }}, comp)
	}()
	var p *Plane
	select {
	case p = <-ready:
	case err := <-errc:
		t.Fatal(err)
	}
	base := "http://" + p.APIAddr.String()
	for path, want := range map[string]string{"/healthz": "ok\n", "/api/v1/proxies": "[]", "/api/v1/version": `{"version":"v-test","revision":0}` + "\n"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("GET %s = %q, want %q", path, b, want)
		}
	}

	// A second control plane on the same state directory fails fast.
	err := Run(context.Background(), Config{StateDir: dir, APIAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "is in use by another process") {
		t.Fatalf("second Run: %v", err)
	}

	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
	<-stopped
	if _, err := os.Stat(filepath.Join(dir, "weft.db")); err != nil {
		t.Fatal(err)
	}
}

func TestRunComponentFailure(t *testing.T) {
	boom := errors.New("boom")
	err := Run(context.Background(), Config{StateDir: t.TempDir(), APIAddr: "127.0.0.1:0"},
		func(*Plane) (func(context.Context) error, error) {
			return func(context.Context) error { return boom }, nil
		})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	err = Run(context.Background(), Config{StateDir: t.TempDir(), APIAddr: "127.0.0.1:0"},
		func(*Plane) (func(context.Context) error, error) { return nil, boom })
	if err == nil || err.Error() != "control: component 0: boom" {
		t.Fatalf("setup failure: %v", err)
	}
}
