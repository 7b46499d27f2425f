// Package instance is what every shop service does to run as an instance
// under `weft up`: read its port from $PORT, listen on 127.0.0.1 only (the
// sidecar is the instance's front door), serve HTTP/1.1 and unencrypted
// HTTP/2 (gRPC) on that one port, and stop gracefully on SIGTERM or Ctrl-C.
package instance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// DefaultGrace is how long Serve waits for requests in flight on shutdown.
const DefaultGrace = 5 * time.Second

// ListenAddr returns 127.0.0.1:$PORT from getenv. PORT must be a number in
// 0-65535 (0 picks a free port, useful when run by hand).
func ListenAddr(getenv func(string) string) (string, error) {
	v := getenv("PORT")
	if v == "" {
		return "", errors.New("$PORT is not set (weft up sets it; by hand: PORT=8080)")
	}
	p, err := strconv.ParseUint(v, 10, 16)
	if err != nil {
		return "", fmt.Errorf("$PORT %q: want a port number 0-65535", v)
	}
	return net.JoinHostPort("127.0.0.1", strconv.FormatUint(p, 10)), nil
}

// NewServer returns an HTTP server for h with the shop's timeouts, speaking
// HTTP/1.1 and HTTP/2 with prior knowledge (h2c), so that one port serves
// both the JSON API and gRPC. h is wrapped with Observe (trace context,
// X-Trace-Id, one log line per request).
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           Observe(h, logger),
		Protocols:         &p,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// Serve serves h on ln until ctx is done, then shuts the server down,
// waiting up to grace for requests in flight and closing the connections
// still busy after that. It returns nil once stopped, an error if serving
// failed. Serve closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration, logger *slog.Logger) error {
	srv := NewServer(h, logger)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// Clients kept connections busy past the grace period: cut them.
		logger.Warn("shutdown: grace period over, closing connections", "grace", grace)
		err = srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("shutdown %s: %w", ln.Addr(), err)
	}
	return nil
}

// Setup builds a service's handler from its environment. The returned
// cleanup (may be nil) runs after the server stopped.
type Setup func(getenv func(string) string, logger *slog.Logger) (h http.Handler, cleanup func(), err error)

// Main runs a service as a process: logger with a component attribute,
// signal handling, listen on ListenAddr, Serve. It exits the process with
// status 1 on error and never returns.
func Main(component string, setup Setup) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil)).With(
		"component", component, "instance", os.Getenv("WEFT_INSTANCE"))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, component, os.Getenv, setup, logger, nil)
	stop()
	if err != nil {
		logger.Error("exit", "err", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// run is Main without the process: onListen (may be nil) is called with the
// listening address before serving.
func run(ctx context.Context, component string, getenv func(string) string, setup Setup, logger *slog.Logger, onListen func(net.Addr)) error {
	addr, err := ListenAddr(getenv)
	if err != nil {
		return err
	}
	h, cleanup, err := setup(getenv, logger)
	if err != nil {
		return fmt.Errorf("%s: setup: %w", component, err)
	}
	if cleanup != nil {
		defer cleanup()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	logger.Info("listening", "addr", ln.Addr().String())
	if onListen != nil {
		onListen(ln.Addr())
	}
	if err := Serve(ctx, ln, h, DefaultGrace, logger); err != nil {
		return fmt.Errorf("%s: %w", component, err)
	}
	logger.Info("stopped")
	return nil
}

// Getenv returns getenv(key), or def when that is empty.
func Getenv(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
