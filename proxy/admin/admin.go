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

// Tapper is implemented by sources that can stream access records
// (GET /tap). Tap returns the records (one JSON object each, without a
// newline) of requests whose path starts with pathPrefix until ctx is
// done; the channel is not closed.
type Tapper interface {
	Tap(ctx context.Context, pathPrefix string) <-chan []byte
}

// Handler returns the admin HTTP handler.
func Handler(src Source) http.Handler {
	mux := http.NewServeMux()
	if t, ok := src.(Tapper); ok {
		mux.HandleFunc("GET /tap", func(w http.ResponseWriter, r *http.Request) { serveTap(w, r, t) })
	}
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
		io.WriteString(w, "weft proxy admin: /ready /stats/prometheus /config_dump /tap?path=<prefix> /debug/pprof/\n")
	})
	return mux
}

// serveTap streams the access records of matching requests as NDJSON
// while the client stays connected: GET /tap?path=<prefix> (default "/",
// every request).
func serveTap(w http.ResponseWriter, r *http.Request, t Tapper) {
	prefix := r.URL.Query().Get("path")
	if prefix == "" {
		prefix = "/"
	}
	ctx := r.Context()
	ch := t.Tap(ctx, prefix)
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case rec := <-ch:
			if _, err := w.Write(append(rec, '\n')); err != nil {
				return
			}
			// Write what else is queued before flushing once.
			for more := true; more; {
				select {
				case rec := <-ch:
					if _, err := w.Write(append(rec, '\n')); err != nil {
						return
					}
				default:
					more = false
				}
			}
			if err := rc.Flush(); err != nil {
				return
			}
		}
	}
}

// Serve runs the admin listener on addr until ctx is done. The address must
// be a loopback address: the admin API exposes configuration and is never
// meant to be reachable from the network.
func Serve(ctx context.Context, addr string, src Source, started func(net.Addr)) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	if started != nil {
		started(ln.Addr())
	}
	return ServeListener(ctx, ln, src)
}

// Listen binds the admin address (loopback only), so that its bound
// address is known before serving (it goes into the xDS node metadata as
// admin_addr).
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("admin address %q: must be a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	return ln, nil
}

// ServeListener serves the admin API on ln until ctx is done; streams
// (/tap) end with ctx. It closes ln.
func ServeListener(ctx context.Context, ln net.Listener, src Source) error {
	srv := &http.Server{
		Handler:           Handler(src),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
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
