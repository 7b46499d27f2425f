// Package health is weft's active health checking: HTTP, gRPC and TCP
// probes decoded from an Envoy Cluster's health_checks.
//
// Deviation from Envoy: probes run only while an endpoint is failing
// (CoreDNS's probe-while-failing, plugin/pkg/up). Envoy probes every
// endpoint at every interval from every proxy; in a mesh of N sidecars
// calling M endpoints that is N × M probes per interval, most of them
// telling what the traffic already tells. Here an endpoint is probed only
// after it gave a reason: a connect failure (Target.Suspect) or an
// outlier ejection (Checker.Suspect), or when it is still marked unhealthy
// from an earlier cluster build. It is then probed at Interval until
// HealthyThreshold probes pass in a row, which clears it (and lets the
// cluster un-eject it early); UnhealthyThreshold failures in a row mark it
// unhealthy, out of rotation, while the probing goes on. A healthy endpoint
// receives no probe at all. Endpoints start healthy (Envoy starts them
// unhealthy until the first check passes); the control plane's EDS health
// covers instances that are not ready yet.
//
// A Target (one per endpoint address, held by the cluster pool) carries the
// unhealthy mark across cluster rebuilds; a Checker belongs to one cluster
// build and owns its probe goroutines and timers from Start until Stop.
package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Clock is the time source of checkers. Implementations must be safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine once d has elapsed, unless
	// stop is called first; stop reports whether it prevented the call.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the wall clock. Safe for concurrent use.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Target is the active-health state of one endpoint address. It outlives
// cluster builds (the cluster pool holds it). Safe for concurrent use.
type Target struct {
	addr      string
	unhealthy atomic.Bool
	subs      atomic.Pointer[[]*Checker]
}

// NewTarget returns the state of a fresh, healthy endpoint.
func NewTarget(addr string) *Target { return &Target{addr: addr} }

// Addr is the endpoint's address.
func (t *Target) Addr() string { return t.addr }

// Unhealthy reports whether the endpoint failed UnhealthyThreshold probes
// in a row and has not passed HealthyThreshold since.
func (t *Target) Unhealthy() bool { return t.unhealthy.Load() }

// Suspect asks the checkers attached to t to probe it (a connect failure
// was seen). It never blocks; it does nothing without a checker or when
// t is already being probed.
func (t *Target) Suspect() {
	if cs := t.subs.Load(); cs != nil {
		for _, c := range *cs {
			c.Suspect(t)
		}
	}
}

func (t *Target) attach(c *Checker) {
	for {
		old := t.subs.Load()
		next := []*Checker{c}
		if old != nil {
			next = append(next, *old...)
		}
		if t.subs.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (t *Target) detach(c *Checker) {
	for {
		old := t.subs.Load()
		if old == nil {
			return
		}
		var next []*Checker
		for _, x := range *old {
			if x != c {
				next = append(next, x)
			}
		}
		p := &next
		if len(next) == 0 {
			p = nil
		}
		if t.subs.CompareAndSwap(old, p) {
			return
		}
	}
}

// Stats are the counters of one cluster's checking, meant to be kept across
// rebuilds. Safe for concurrent use.
type Stats struct {
	Probes, Failures atomic.Uint64
	// Probing is the number of endpoints being probed now.
	Probing atomic.Int64
}

// Options are the collaborators of a Checker.
type Options struct {
	// Clock schedules the probes; nil: SystemClock.
	Clock Clock
	// TLS is the cluster's upstream TLS (HTTP and gRPC probes use it, TCP
	// probes only connect); nil: plaintext.
	TLS *tls.Config
	// ClusterName is the default HTTP Host and gRPC authority.
	ClusterName string
	// OnHealthy is called when a probed endpoint passed HealthyThreshold
	// probes in a row (its probing stops, its unhealthy mark is cleared);
	// OnUnhealthy when it failed UnhealthyThreshold in a row (it is now
	// marked unhealthy). Both run on a probe goroutine, must not block and
	// must not call Stop. nil: none.
	OnHealthy, OnUnhealthy func(*Target)
	// Stats receives the counters; nil: private.
	Stats *Stats
}

// Checker probes the failing endpoints of one cluster build. Safe for
// concurrent use.
type Checker struct {
	cfg     *Config
	targets map[*Target]bool
	o       Options
	http    *http.Client
	ctx     context.Context
	cancel  context.CancelFunc

	mu      sync.Mutex
	started bool
	stopped bool
	probing map[*Target]*probeState
	wg      sync.WaitGroup
}

type probeState struct {
	pass, fail uint32
	stop       func() bool
}

// NewChecker returns a checker of targets (the endpoints of one cluster).
func NewChecker(cfg *Config, targets []*Target, o Options) *Checker {
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Stats == nil {
		o.Stats = &Stats{}
	}
	c := &Checker{cfg: cfg, o: o, targets: make(map[*Target]bool, len(targets)), probing: map[*Target]*probeState{}}
	for _, t := range targets {
		c.targets[t] = true
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if cfg.Kind == HTTP {
		tr := &http.Transport{DisableKeepAlives: true, Proxy: nil, MaxResponseHeaderBytes: 64 << 10}
		if o.TLS != nil {
			tc := o.TLS.Clone()
			tc.NextProtos = []string{"http/1.1"}
			tr.TLSClientConfig = tc
		}
		c.http = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c
}

// Stats returns the checker's counters.
func (c *Checker) Stats() *Stats { return c.o.Stats }

// Start attaches the checker to its targets and starts probing those still
// marked unhealthy. No-op on a started or stopped checker.
func (c *Checker) Start() {
	c.mu.Lock()
	if c.started || c.stopped {
		c.mu.Unlock()
		return
	}
	c.started = true
	var carried []*Target
	for t := range c.targets {
		t.attach(c)
		if t.Unhealthy() {
			carried = append(carried, t)
		}
	}
	c.mu.Unlock()
	for _, t := range carried {
		c.Suspect(t)
	}
}

// Stop detaches the checker, cancels its timers and in-flight probes and
// waits for its goroutines. Idempotent. Unhealthy marks stay on the targets.
func (c *Checker) Stop() {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return
	}
	c.stopped = true
	for t, st := range c.probing {
		if st.stop != nil {
			st.stop()
		}
		delete(c.probing, t)
		c.o.Stats.Probing.Add(-1)
	}
	c.mu.Unlock()
	for t := range c.targets {
		t.detach(c)
	}
	c.cancel()
	c.wg.Wait()
	if c.http != nil {
		c.http.CloseIdleConnections()
	}
}

// Suspect starts probing t (one of the checker's targets) unless it is
// already probed. The first probe is scheduled at once. Never blocks.
func (c *Checker) Suspect(t *Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started || c.stopped || !c.targets[t] || c.probing[t] != nil {
		return
	}
	st := &probeState{}
	c.probing[t] = st
	c.o.Stats.Probing.Add(1)
	st.stop = c.o.Clock.AfterFunc(0, func() { c.fire(t, st) })
}

// Probing reports whether t is being probed.
func (c *Checker) Probing(t *Target) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probing[t] != nil
}

// fire runs one probe of t on the timer's goroutine and schedules the next.
func (c *Checker) fire(t *Target, st *probeState) {
	c.mu.Lock()
	if c.stopped || c.probing[t] != st {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()

	err := c.probe(t)

	c.mu.Lock()
	if c.stopped || c.probing[t] != st {
		c.mu.Unlock()
		return
	}
	c.o.Stats.Probes.Add(1)
	var cb func(*Target)
	if err == nil {
		st.fail = 0
		st.pass++
		if st.pass >= c.cfg.HealthyThreshold {
			delete(c.probing, t)
			c.o.Stats.Probing.Add(-1)
			t.unhealthy.Store(false)
			cb = c.o.OnHealthy
			c.mu.Unlock()
			if cb != nil {
				cb(t)
			}
			return
		}
	} else {
		c.o.Stats.Failures.Add(1)
		st.pass = 0
		st.fail++
		if st.fail >= c.cfg.UnhealthyThreshold && !t.unhealthy.Swap(true) {
			cb = c.o.OnUnhealthy
		}
	}
	st.stop = c.o.Clock.AfterFunc(c.next(), func() { c.fire(t, st) })
	c.mu.Unlock()
	if cb != nil {
		cb(t)
	}
}

// next is the delay before the next probe: Interval plus jitter.
func (c *Checker) next() time.Duration {
	d := c.cfg.Interval
	if j := c.cfg.IntervalJitter; j > 0 {
		d += time.Duration(rand.Int64N(int64(j)))
	}
	if p := c.cfg.IntervalJitterPercent; p > 0 {
		if j := int64(c.cfg.Interval) * int64(p) / 100; j > 0 {
			d += time.Duration(rand.Int64N(j))
		}
	}
	return d
}

// probe runs one check of t within Timeout.
func (c *Checker) probe(t *Target) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.Timeout)
	defer cancel()
	addr := t.addr
	if c.cfg.AltPort != 0 {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return fmt.Errorf("probe %s: %w", addr, err)
		}
		addr = net.JoinHostPort(host, strconv.Itoa(int(c.cfg.AltPort)))
	}
	switch c.cfg.Kind {
	case HTTP:
		return c.probeHTTP(ctx, addr)
	case GRPC:
		return c.probeGRPC(ctx, addr)
	default:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp probe %s: %w", addr, err)
		}
		return conn.Close()
	}
}

func (c *Checker) probeHTTP(ctx context.Context, addr string) error {
	scheme := "http"
	if c.o.TLS != nil {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, c.cfg.HTTP.Method, scheme+"://"+addr+c.cfg.HTTP.Path, nil)
	if err != nil {
		return fmt.Errorf("http probe %s: %w", addr, err)
	}
	req.Host = c.cfg.HTTP.Host
	if req.Host == "" {
		req.Host = c.o.ClusterName
	}
	req.Header.Set("User-Agent", "weft-health-check")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("http probe %s: %w", addr, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if !c.cfg.expected(resp.StatusCode) {
		return fmt.Errorf("http probe %s: status %d", addr, resp.StatusCode)
	}
	return nil
}

// errNotServing is the failure of a gRPC probe answered with a status
// other than SERVING.
var errNotServing = errors.New("not serving")

func (c *Checker) probeGRPC(ctx context.Context, addr string) error {
	creds := insecure.NewCredentials()
	if c.o.TLS != nil {
		creds = credentials.NewTLS(c.o.TLS.Clone())
	}
	authority := c.cfg.GRPC.Authority
	if authority == "" {
		authority = c.o.ClusterName
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if authority != "" {
		opts = append(opts, grpc.WithAuthority(authority))
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return fmt.Errorf("grpc probe %s: %w", addr, err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: c.cfg.GRPC.ServiceName})
	if err != nil {
		return fmt.Errorf("grpc probe %s: %w", addr, err)
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("grpc probe %s: %s: %w", addr, s, errNotServing)
	}
	return nil
}
