package health

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/weft-mesh/weft/proxy/cluster/fakeclock"
)

// httpBackend is a loopback HTTP server answering status, counting probes.
type httpBackend struct {
	srv    *httptest.Server
	status atomic.Int32
	hits   atomic.Int32
	mu     sync.Mutex
	last   *http.Request
}

func newHTTPBackend(t *testing.T, status int) *httpBackend {
	b := &httpBackend{}
	b.status.Store(int32(status))
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.mu.Lock()
		b.last = r
		b.mu.Unlock()
		w.WriteHeader(int(b.status.Load()))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *httpBackend) addr() string { return b.srv.Listener.Addr().String() }

func httpConfig(ut, ht uint32) *Config {
	c := &Config{Timeout: time.Second, Interval: 5 * time.Second, UnhealthyThreshold: ut, HealthyThreshold: ht, Kind: HTTP}
	c.HTTP.Path, c.HTTP.Method, c.HTTP.Expected = "/healthz", "GET", []StatusRange{{200, 201}}
	return c
}

// events records the checker's callbacks.
type events struct {
	mu                 sync.Mutex
	healthy, unhealthy []string
}

func (e *events) options(clock Clock) Options {
	return Options{
		Clock: clock, ClusterName: "catalog",
		OnHealthy:   func(t *Target) { e.mu.Lock(); e.healthy = append(e.healthy, t.Addr()); e.mu.Unlock() },
		OnUnhealthy: func(t *Target) { e.mu.Lock(); e.unhealthy = append(e.unhealthy, t.Addr()); e.mu.Unlock() },
	}
}

func (e *events) counts() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.healthy), len(e.unhealthy)
}

// TestProbeWhileFailing: a healthy endpoint receives no probe; a suspected
// one is probed at the interval until it passes healthy_threshold probes.
func TestProbeWhileFailing(t *testing.T) {
	good, suspect := newHTTPBackend(t, 200), newHTTPBackend(t, 200)
	clock := fakeclock.New()
	var ev events
	tg, ts := NewTarget(good.addr()), NewTarget(suspect.addr())
	c := NewChecker(httpConfig(2, 3), []*Target{tg, ts}, ev.options(clock))
	c.Start()
	defer c.Stop()
	for range 10 {
		clock.Advance(5 * time.Second)
	}
	if n := good.hits.Load() + suspect.hits.Load(); n != 0 {
		t.Fatalf("%d probes to healthy endpoints, want 0", n)
	}
	ts.Suspect()
	ts.Suspect() // already probing: no second schedule
	clock.Advance(0)
	if n := suspect.hits.Load(); n != 1 {
		t.Fatalf("%d probes after Suspect, want 1", n)
	}
	clock.Advance(5 * time.Second)
	clock.Advance(5 * time.Second)
	if n := suspect.hits.Load(); n != 3 {
		t.Fatalf("%d probes after two intervals, want 3", n)
	}
	if c.Probing(ts) {
		t.Fatal("still probing after healthy_threshold passes")
	}
	if h, u := ev.counts(); h != 1 || u != 0 {
		t.Fatalf("OnHealthy %d, OnUnhealthy %d; want 1, 0", h, u)
	}
	for range 10 {
		clock.Advance(5 * time.Second)
	}
	if n := suspect.hits.Load(); n != 3 || good.hits.Load() != 0 {
		t.Fatalf("probes after recovery: suspect %d (want 3), good %d (want 0)", n, good.hits.Load())
	}
	suspect.mu.Lock()
	host, path, ua := suspect.last.Host, suspect.last.URL.Path, suspect.last.UserAgent()
	suspect.mu.Unlock()
	if host != "catalog" || path != "/healthz" || ua != "weft-health-check" {
		t.Fatalf("probe request: host %q path %q user-agent %q", host, path, ua)
	}
	if st := c.Stats(); st.Probes.Load() != 3 || st.Failures.Load() != 0 || st.Probing.Load() != 0 {
		t.Fatalf("stats: probes %d failures %d probing %d", st.Probes.Load(), st.Failures.Load(), st.Probing.Load())
	}
}

// TestUnhealthyThenHealthy: 503s mark the endpoint unhealthy after
// unhealthy_threshold probes; once it answers 200 for healthy_threshold
// probes the mark is cleared.
func TestUnhealthyThenHealthy(t *testing.T) {
	b := newHTTPBackend(t, 503)
	clock := fakeclock.New()
	var ev events
	tg := NewTarget(b.addr())
	c := NewChecker(httpConfig(3, 2), []*Target{tg}, ev.options(clock))
	c.Start()
	defer c.Stop()
	tg.Suspect()
	clock.Advance(0)
	clock.Advance(5 * time.Second)
	if tg.Unhealthy() {
		t.Fatal("unhealthy after 2 failed probes (threshold 3)")
	}
	clock.Advance(5 * time.Second)
	if !tg.Unhealthy() {
		t.Fatal("healthy after 3 failed probes")
	}
	clock.Advance(5 * time.Second) // 4th failure: no second OnUnhealthy
	if h, u := ev.counts(); h != 0 || u != 1 {
		t.Fatalf("OnHealthy %d, OnUnhealthy %d; want 0, 1", h, u)
	}
	b.status.Store(200)
	clock.Advance(5 * time.Second)
	if !tg.Unhealthy() {
		t.Fatal("cleared after one passed probe (threshold 2)")
	}
	clock.Advance(5 * time.Second)
	if tg.Unhealthy() || c.Probing(tg) {
		t.Fatalf("after 2 passes: unhealthy %v probing %v", tg.Unhealthy(), c.Probing(tg))
	}
	if h, u := ev.counts(); h != 1 || u != 1 {
		t.Fatalf("OnHealthy %d, OnUnhealthy %d; want 1, 1", h, u)
	}
	if n := b.hits.Load(); n != 6 {
		t.Fatalf("%d probes, want 6", n)
	}
}

// TestProbeKinds runs one probe of each kind against real loopback servers.
func TestProbeKinds(t *testing.T) {
	ok, fail := newHTTPBackend(t, 200), newHTTPBackend(t, 503)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := grpchealth.NewServer()
	hs.SetServingStatus("shop.Catalog", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	tcpOpen, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcpOpen.Close() })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	grpcCfg := func(svc string) *Config {
		c := &Config{Timeout: 2 * time.Second, Interval: time.Second, UnhealthyThreshold: 1, HealthyThreshold: 1, Kind: GRPC}
		c.GRPC.ServiceName = svc
		return c
	}
	tcpCfg := &Config{Timeout: time.Second, Interval: time.Second, UnhealthyThreshold: 1, HealthyThreshold: 1, Kind: TCP}
	expect503 := httpConfig(1, 1)
	expect503.HTTP.Expected = []StatusRange{{200, 300}, {503, 504}}
	for _, tc := range []struct {
		name    string
		cfg     *Config
		addr    string
		wantErr string
	}{
		{"http 200", httpConfig(1, 1), ok.addr(), ""},
		{"http 503", httpConfig(1, 1), fail.addr(), "status 503"},
		{"http 503 expected", expect503, fail.addr(), ""},
		{"http refused", httpConfig(1, 1), closedAddr, "connection refused"},
		{"grpc serving", grpcCfg("shop.Catalog"), lis.Addr().String(), ""},
		{"grpc server", grpcCfg(""), lis.Addr().String(), ""},
		{"grpc not serving", grpcCfg("shop.Cart"), lis.Addr().String(), "NOT_SERVING: not serving"},
		{"grpc unknown service", grpcCfg("shop.None"), lis.Addr().String(), "NotFound"},
		{"grpc refused", grpcCfg(""), closedAddr, "Unavailable"},
		{"tcp open", tcpCfg, tcpOpen.Addr().String(), ""},
		{"tcp closed", tcpCfg, closedAddr, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewChecker(tc.cfg, nil, Options{ClusterName: "catalog"})
			defer c.Stop()
			err := c.probe(NewTarget(tc.addr))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("probe: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("probe err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestAltPort probes another port of the endpoint's host.
func TestAltPort(t *testing.T) {
	b := newHTTPBackend(t, 200)
	_, port, _ := net.SplitHostPort(b.addr())
	cfg := httpConfig(1, 1)
	p, _ := net.LookupPort("tcp", port)
	cfg.AltPort = uint32(p)
	c := NewChecker(cfg, nil, Options{})
	defer c.Stop()
	if err := c.probe(NewTarget("127.0.0.1:1")); err != nil {
		t.Fatalf("probe on alt_port: %v", err)
	}
}

// TestCarryOverAndStop: a new checker keeps probing an endpoint the old
// one marked unhealthy; Stop cancels everything.
func TestCarryOverAndStop(t *testing.T) {
	b := newHTTPBackend(t, 503)
	clock := fakeclock.New()
	tg := NewTarget(b.addr())
	var ev events
	c1 := NewChecker(httpConfig(1, 1), []*Target{tg}, ev.options(clock))
	c1.Start()
	tg.Suspect()
	clock.Advance(0)
	if !tg.Unhealthy() {
		t.Fatal("not unhealthy")
	}
	c2 := NewChecker(httpConfig(1, 1), []*Target{tg}, ev.options(clock))
	c2.Start()
	if !c2.Probing(tg) {
		t.Fatal("new checker does not probe the unhealthy endpoint")
	}
	c1.Stop()
	if clock.Pending() != 1 {
		t.Fatalf("%d timers pending, want 1 (c2's)", clock.Pending())
	}
	b.status.Store(200)
	clock.Advance(0)
	if tg.Unhealthy() || c2.Probing(tg) {
		t.Fatal("new checker did not clear the endpoint")
	}
	tg.Suspect()
	c2.Stop()
	if clock.Pending() != 0 || c2.Stats().Probing.Load() != 0 {
		t.Fatalf("after Stop: %d timers pending, probing %d", clock.Pending(), c2.Stats().Probing.Load())
	}
	before := b.hits.Load()
	tg.Suspect() // detached: nothing
	clock.Advance(time.Minute)
	if b.hits.Load() != before {
		t.Fatal("probe after Stop")
	}
}

// TestStopCancelsProbe: Stop returns while a probe waits on a server that
// never answers (real clock).
func TestStopCancelsProbe(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := lis.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	cfg := httpConfig(1, 1)
	cfg.Timeout = time.Minute
	tg := NewTarget(lis.Addr().String())
	c := NewChecker(cfg, []*Target{tg}, Options{})
	c.Start()
	tg.Suspect()
	conn := <-accepted // the probe is in flight
	defer conn.Close()
	done := make(chan struct{})
	go func() { c.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return with a probe in flight")
	}
	if tg.Unhealthy() {
		t.Fatal("a cancelled probe counted as a failure")
	}
}
