package instance

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestListenAddr(t *testing.T) {
	tests := []struct {
		name, port, want, err string
	}{
		{name: "port", port: "8081", want: "127.0.0.1:8081"},
		{name: "zero picks a free port", port: "0", want: "127.0.0.1:0"},
		{name: "unset", port: "", err: "$PORT is not set"},
		{name: "not a number", port: "http", err: `$PORT "http": want a port number 0-65535`},
		{name: "too large", port: "65536", err: `$PORT "65536": want a port number 0-65535`},
		{name: "negative", port: "-1", err: `$PORT "-1": want a port number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ListenAddr(env(map[string]string{"PORT": tc.port}))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ListenAddr = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestGetenv(t *testing.T) {
	e := env(map[string]string{"SET": "x"})
	if got := Getenv(e, "SET", "d"); got != "x" {
		t.Errorf("Getenv(SET) = %q", got)
	}
	if got := Getenv(e, "UNSET", "d"); got != "d" {
		t.Errorf("Getenv(UNSET) = %q, want the default", got)
	}
}

// TestServeDrainsOnShutdown: cancelling the context stops the server, and a
// request in flight still gets its answer.
func TestServeDrainsOnShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, 5*time.Second, slog.New(slog.DiscardHandler)) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond): // shutdown must wait: give it a chance to be wrong
	}
	close(release)
	if g := <-got; g != "done" {
		t.Errorf("in-flight request got %q, want done", g)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after a clean shutdown", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepts after shutdown")
	}
}

// TestServeH2C: the same port speaks HTTP/1.1 and HTTP/2 with prior
// knowledge (what gRPC clients and the sidecar's grpc cluster use).
func TestServeH2C(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.Proto)
		}), 5*time.Second, slog.New(slog.DiscardHandler))
	}()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	for _, tc := range []struct {
		name   string
		client *http.Client
		want   string
	}{
		{"http1", &http.Client{Transport: &http.Transport{}}, "HTTP/1.1"},
		{"h2c", &http.Client{Transport: &http.Transport{Protocols: &h2, TLSClientConfig: &tls.Config{}}}, "HTTP/2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := tc.client.Get("http://" + ln.Addr().String() + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer tc.client.CloseIdleConnections()
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if string(b) != tc.want {
				t.Errorf("proto %q, want %q", b, tc.want)
			}
		})
	}
}

func TestRun(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ok := func(func(string) string, *slog.Logger) (http.Handler, func(), error) {
		return http.NotFoundHandler(), nil, nil
	}
	t.Run("serves until cancelled and cleans up", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cleaned := false
		setup := func(func(string) string, *slog.Logger) (http.Handler, func(), error) {
			return http.NotFoundHandler(), func() { cleaned = true }, nil
		}
		addrs := make(chan net.Addr, 1)
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, "test", env(map[string]string{"PORT": "0"}), setup, log, func(a net.Addr) { addrs <- a })
		}()
		a := <-addrs
		if !strings.HasPrefix(a.String(), "127.0.0.1:") {
			t.Errorf("listening on %s, want loopback only", a)
		}
		resp, err := http.Get("http://" + a.String() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !cleaned {
			t.Error("cleanup did not run")
		}
	})
	tests := []struct {
		name  string
		env   map[string]string
		setup Setup
		err   string
	}{
		{name: "no port", env: nil, setup: ok, err: "$PORT is not set"},
		{name: "setup fails", env: map[string]string{"PORT": "0"}, err: "test: setup: boom",
			setup: func(func(string) string, *slog.Logger) (http.Handler, func(), error) {
				return nil, nil, errors.New("boom")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), "test", env(tc.env), tc.setup, log, nil)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
	t.Run("port taken", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		err = run(context.Background(), "test", env(map[string]string{"PORT": port}), ok, log, nil)
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("err %v, want address already in use", err)
		}
	})
}

// TestServeCutsBusyConnections: a request still running after the grace
// period is cut and Serve returns.
func TestServeCutsBusyConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, time.Millisecond, slog.New(slog.DiscardHandler)) }()
	clientErr := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	<-entered
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if err := <-clientErr; err == nil {
		t.Error("the busy request got an answer, want its connection cut")
	}
}
