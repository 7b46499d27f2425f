package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster/health"
	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/cluster/outlier"
)

// Endpoint is the long-lived state of one upstream address: its load
// (in-flight requests, latency estimate), its outlier state (counters,
// ejection) and its active-health mark. The same *Endpoint is handed to every
// cluster build that names the address, so that state survives config
// updates (Caddy's usage pool). Safe for concurrent use.
type Endpoint struct {
	Addr    string
	Load    *lb.Load
	Outlier *outlier.Host
	Health  *health.Target
	// down is set while the endpoint is out of rotation (unhealthy in EDS,
	// ejected, or failing its health checks).
	down atomic.Bool
	// since is when the endpoint (re)entered rotation, Unix nanoseconds:
	// the start of its slow start.
	since atomic.Int64
}

// noteHealth records whether the endpoint is in rotation; on its return
// the latency estimate is forgotten (see lb.Load.Forget), so peak EWMA
// tries the endpoint again at once instead of waiting for the old failures
// to decay.
func (e *Endpoint) noteHealth(healthy bool, now time.Time) {
	if healthy {
		if e.down.Swap(false) {
			e.Load.Forget()
			e.since.Store(now.UnixNano())
		}
		return
	}
	e.down.Store(true)
}

// Finish ends a request to e started with t := e.Load.Start(): it feeds the
// load estimate (a failure per r.Failed()) and the outlier detection, and
// has the endpoint probed after a connect failure. Call it exactly once per
// ticket, on the request's goroutine; it does not allocate and blocks only
// for the picker rebuild of an ejection it causes.
func (e *Endpoint) Finish(t lb.Ticket, r outlier.Result) {
	e.Load.Done(t, r.Failed())
	e.Outlier.Report(r)
	if r.Failure == outlier.ConnectFailure {
		e.Health.Suspect()
	}
}

// Clock is the time source of a pool's endpoints and of the outlier
// detectors and health checkers of the clusters built on it. Implementations
// must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine once d has elapsed, unless
	// stop is called first; stop reports whether it prevented the call.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// wallTimers is a Clock with the given Now and real timers.
type wallTimers struct{ now func() time.Time }

func (w wallTimers) Now() time.Time { return w.now() }

func (wallTimers) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Pool holds Endpoints keyed by address with reference counts. Safe for
// concurrent use.
type Pool struct {
	clock  func() time.Time
	timers Clock
	mu     sync.Mutex
	m      map[string]*poolEntry
}

type poolEntry struct {
	ep   *Endpoint
	refs int
}

// NewPool returns an empty pool; clock feeds the latency estimators (nil: time.Now).
func NewPool(clock func() time.Time) *Pool {
	if clock == nil {
		clock = time.Now
	}
	return &Pool{clock: clock, timers: wallTimers{clock}, m: make(map[string]*poolEntry)}
}

// NewPoolClock returns an empty pool whose latency estimators, ejection
// times and probe schedules all follow c (tests pass a manual clock).
func NewPoolClock(c Clock) *Pool {
	return &Pool{clock: c.Now, timers: c, m: make(map[string]*poolEntry)}
}

// acquire returns the endpoint for addr, creating it if needed, and takes a reference.
func (p *Pool) acquire(addr string) *Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.m[addr]
	if e == nil {
		e = &poolEntry{ep: &Endpoint{
			Addr: addr, Load: lb.NewLoad(p.clock),
			Outlier: outlier.NewHost(addr), Health: health.NewTarget(addr),
		}}
		e.ep.since.Store(p.clock().UnixNano())
		p.m[addr] = e
	}
	e.refs++
	return e.ep
}

// release drops one reference; the endpoint is forgotten when none remain.
func (p *Pool) release(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.m[addr]; e != nil {
		e.refs--
		if e.refs <= 0 {
			delete(p.m, addr)
		}
	}
}

// Len reports how many endpoints the pool holds.
func (p *Pool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
