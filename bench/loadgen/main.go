// Command loadgen is weft's benchmark load generator. In open-loop mode
// (-rate > 0) it sends -n requests on a fixed schedule and measures each
// latency from the request's scheduled send time, so a slow response is
// charged to every request queued behind it (wrk cannot hold a fixed rate,
// and a closed loop hides such stalls). With -rate 0 it runs a closed loop
// for -duration to measure maximum throughput (used for gRPC, which wrk and
// h2load do not speak).
//
// -mode handshake measures TLS handshakes rather than requests: every
// request opens a new connection to an https:// target, completes a
// handshake presenting -cert/-key and verifying the server's chain against
// -ca (no host name check: mesh certificates carry a SPIFFE URI only),
// sends one GET with "Connection: close", reads the answer and closes.
// Without -resume there is no session cache, so every handshake is a full
// one; with -resume the workers share one. Latency is connect to last byte.
//
// It prints one line of key=value pairs that bench/run.sh parses:
//
//	mode=http1 requests=10000 errors=0 rate=999.9 p50_us=180 p90_us=240 p99_us=410 p999_us=900 max_us=1200
//
// The handshake mode appends resumed=<connections that resumed a session>
// (counted over the whole run: in a closed loop it may include a few that
// completed after the measured window), tls=<version>, group=<key exchange
// group> and cipher=<suite>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	mode      string
	target    string
	rate      float64
	n         int
	warmup    int
	duration  time.Duration
	warmupDur time.Duration
	workers   int
	conns     int
	size      int
	timeout   time.Duration
	// handshake mode
	certFile, keyFile, caFile string
	curves                    string
	resume                    bool
}

func run(args []string, out io.Writer) error {
	var o options
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&o.mode, "mode", "http1", "protocol: http1, h2c, grpc, or handshake (a new TLS connection per request)")
	fs.StringVar(&o.target, "target", "", "URL (http1, h2c; https:// for handshake) or host:port (grpc)")
	fs.Float64Var(&o.rate, "rate", 1000, "requests per second (open loop); 0 runs a closed loop for -duration")
	fs.IntVar(&o.n, "n", 10000, "measured requests (open loop)")
	fs.IntVar(&o.warmup, "warmup", 1000, "unmeasured requests sent first on the same schedule (open loop)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time (closed loop)")
	fs.DurationVar(&o.warmupDur, "warmup-duration", 3*time.Second, "unmeasured lead-in (closed loop)")
	fs.IntVar(&o.workers, "c", 64, "concurrent requests at most (and HTTP/1.1 connections)")
	fs.IntVar(&o.conns, "conns", 1, "connections for h2c and gRPC (requests are multiplexed over them)")
	fs.IntVar(&o.size, "size", 1024, "expected response body bytes (http1, h2c); -1 skips the check")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&o.certFile, "cert", "", "handshake: client certificate chain (PEM)")
	fs.StringVar(&o.keyFile, "key", "", "handshake: client private key (PEM)")
	fs.StringVar(&o.caFile, "ca", "", "handshake: CAs that verify the server's chain (PEM)")
	fs.StringVar(&o.curves, "curves", "", "handshake: key exchange groups offered, comma-separated (default: Go's)")
	fs.BoolVar(&o.resume, "resume", false, "handshake: keep a session cache, so handshakes resume")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.target == "" {
		return errors.New("-target is required")
	}
	if o.rate < 0 || (o.rate > 0 && o.n < 1) || o.workers < 1 || o.conns < 1 {
		return errors.New("need -rate >= 0, -n >= 1, -c >= 1 and -conns >= 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var hs handshakeStats
	do, closeFn, err := newDoer(o, &hs)
	if err != nil {
		return err
	}
	defer closeFn()
	plan := Plan{Rate: o.rate, Requests: o.n, Warmup: o.warmup, Duration: o.duration, WarmupDuration: o.warmupDur, Workers: o.workers}
	r := Run(ctx, plan, wallClock{}, do)
	line := format(o.mode, r)
	if o.mode == "handshake" {
		line += " " + hs.fields()
	}
	fmt.Fprintln(out, line)
	if r.FirstErr != nil {
		fmt.Fprintf(os.Stderr, "loadgen: %d of %d requests failed, first: %v\n", r.Errors, r.Requests, r.FirstErr)
	}
	if r.Requests > 0 && r.Errors == r.Requests {
		return errors.New("every request failed")
	}
	return nil
}

// format renders r as the key=value line bench/run.sh reads.
func format(mode string, r Result) string {
	us := func(d time.Duration) string { return fmt.Sprintf("%d", d.Microseconds()) }
	l := r.Latencies
	var maxLat time.Duration
	if len(l) > 0 {
		maxLat = l[len(l)-1]
	}
	return strings.Join([]string{
		"mode=" + mode,
		fmt.Sprintf("requests=%d", r.Requests),
		fmt.Sprintf("errors=%d", r.Errors),
		fmt.Sprintf("rate=%.1f", r.Rate()),
		"p50_us=" + us(Percentile(l, 50)),
		"p90_us=" + us(Percentile(l, 90)),
		"p99_us=" + us(Percentile(l, 99)),
		"p999_us=" + us(Percentile(l, 99.9)),
		"max_us=" + us(maxLat),
	}, " ")
}

// newDoer returns the request function for o.mode and a function that
// releases its connections. The handshake mode records into hs.
func newDoer(o options, hs *handshakeStats) (DoFunc, func(), error) {
	switch o.mode {
	case "http1", "h2c":
		return httpDoer(o)
	case "grpc":
		return grpcDoer(o)
	case "handshake":
		return handshakeDoer(o, hs)
	default:
		return nil, nil, fmt.Errorf("-mode %q: want http1, h2c, grpc or handshake", o.mode)
	}
}

func httpDoer(o options) (DoFunc, func(), error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		DisableCompression:  true,
		MaxIdleConns:        o.workers,
		MaxIdleConnsPerHost: o.workers,
		MaxConnsPerHost:     o.workers,
		IdleConnTimeout:     time.Minute,
		Protocols:           new(http.Protocols),
	}
	if o.mode == "h2c" {
		tr.Protocols.SetUnencryptedHTTP2(true)
		tr.MaxConnsPerHost = o.conns
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	client := &http.Client{Transport: tr, Timeout: o.timeout}
	req, err := http.NewRequest(http.MethodGet, o.target, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("-target: %w", err)
	}
	do := func(ctx context.Context) error {
		resp, err := client.Do(req.WithContext(ctx))
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		if o.size >= 0 && n != int64(o.size) {
			return fmt.Errorf("body %d bytes, want %d", n, o.size)
		}
		return nil
	}
	return do, tr.CloseIdleConnections, nil
}

func grpcDoer(o options) (DoFunc, func(), error) {
	conns := make([]*grpc.ClientConn, 0, o.conns)
	clients := make([]healthpb.HealthClient, 0, o.conns)
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	for range o.conns {
		// Each ClientConn dials its own TCP connection.
		c, err := grpc.NewClient(o.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("grpc dial %s: %w", o.target, err)
		}
		conns = append(conns, c)
		clients = append(clients, healthpb.NewHealthClient(c))
	}
	var next atomic.Uint64
	do := func(ctx context.Context) error {
		cl := clients[next.Add(1)%uint64(len(clients))]
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		resp, err := cl.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health status %v", resp.GetStatus())
		}
		return nil
	}
	return do, closeAll, nil
}
