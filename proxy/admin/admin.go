// Package admin serves the proxy's admin listener: readiness, Prometheus
// metrics and a config dump. It binds to loopback only.
package admin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Source is what the admin listener reports on. Implementations must be safe
// for concurrent use; methods are called on HTTP handler goroutines.
type Source interface {
	// Ready reports whether the proxy has applied a configuration.
	Ready() bool
	// WritePrometheus writes metrics in the Prometheus text format.
	WritePrometheus(w io.Writer) error
	// WriteConfigDump writes the current configuration as JSON.
	WriteConfigDump(w io.Writer) error
}

// Handler returns the admin HTTP handler.
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !src.Ready() {
			http.Error(w, "NOT READY", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "LIVE\n")
	})
	mux.HandleFunc("GET /stats/prometheus", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		bw := bufio.NewWriter(w)
		if err := src.WritePrometheus(bw); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		bw.Flush()
	})
	mux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := src.WriteConfigDump(w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	// Profiles (loopback only, like the rest of the admin API).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "weft proxy admin: /ready /stats/prometheus /config_dump /debug/pprof/\n")
	})
	return mux
}

// Serve runs the admin listener on addr until ctx is done. The address must
// be a loopback address: the admin API exposes configuration and is never
// meant to be reachable from the network.
func Serve(ctx context.Context, addr string, src Source, started func(net.Addr)) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("admin address %q: must be a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if started != nil {
		started(ln.Addr())
	}
	srv := &http.Server{Handler: Handler(src), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
