// Command backend is the application behind the proxies in weft's benchmark.
// It answers every HTTP request with a fixed body (1 KB by default) over
// HTTP/1.1 with keep-alive (-http1), over cleartext HTTP/2 with prior
// knowledge (-h2c), and serves the standard gRPC health service, unary Check
// answering SERVING (-grpc). Each address is optional; it runs until SIGTERM
// or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	h1Addr := fs.String("http1", "", "HTTP/1.1 listen address")
	h2cAddr := fs.String("h2c", "", "h2c (HTTP/2 prior knowledge) listen address")
	grpcAddr := fs.String("grpc", "", "gRPC listen address (grpc.health.v1.Health)")
	size := fs.Int("size", 1024, "response body bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *h1Addr == "" && *h2cAddr == "" && *grpcAddr == "" {
		return errors.New("give at least one of -http1, -h2c, -grpc")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	body := []byte(strings.Repeat("x", *size))
	handler := bodyHandler(body)
	errc := make(chan error, 3)
	var servers []*http.Server
	serveHTTP := func(addr string, p *http.Protocols) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		srv := &http.Server{Handler: handler, Protocols: p, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
		servers = append(servers, srv)
		go func() { errc <- srv.Serve(ln) }()
		return nil
	}
	if *h1Addr != "" {
		p := new(http.Protocols)
		p.SetHTTP1(true)
		if err := serveHTTP(*h1Addr, p); err != nil {
			return err
		}
	}
	if *h2cAddr != "" {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		if err := serveHTTP(*h2cAddr, p); err != nil {
			return err
		}
	}
	var gs *grpc.Server
	if *grpcAddr != "" {
		ln, err := net.Listen("tcp", *grpcAddr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", *grpcAddr, err)
		}
		gs = grpc.NewServer()
		hs := health.NewServer()
		hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(gs, hs)
		go func() { errc <- gs.Serve(ln) }()
	}
	log.Printf("backend ready: http1=%q h2c=%q grpc=%q body=%d bytes", *h1Addr, *h2cAddr, *grpcAddr, *size)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(shutdownCtx) //nolint:errcheck // best effort at exit
	}
	if gs != nil {
		gs.Stop()
	}
	return err
}

// bodyHandler answers every request with 200 and body, with a Content-Length
// so HTTP/1.1 connections stay alive.
func bodyHandler(body []byte) http.Handler {
	length := strconv.Itoa(len(body))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/plain"}
		h["Content-Length"] = []string{length}
		w.WriteHeader(http.StatusOK)
		w.Write(body) //nolint:errcheck // the client went away; nothing to do
	})
}
