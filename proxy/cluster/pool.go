package cluster

import (
	"sync"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster/lb"
)

// Endpoint is the long-lived state of one upstream address: its load (in-flight
// requests, latency estimate) and, later, its outlier and health state. The
// same *Endpoint is handed to every cluster build that names the address, so
// that state survives config updates (Caddy's usage pool). Safe for concurrent
// use.
type Endpoint struct {
	Addr string
	Load *lb.Load
}

// Pool holds Endpoints keyed by address with reference counts. Safe for
// concurrent use.
type Pool struct {
	clock func() time.Time
	mu    sync.Mutex
	m     map[string]*poolEntry
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
	return &Pool{clock: clock, m: make(map[string]*poolEntry)}
}

// acquire returns the endpoint for addr, creating it if needed, and takes a reference.
func (p *Pool) acquire(addr string) *Endpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.m[addr]
	if e == nil {
		e = &poolEntry{ep: &Endpoint{Addr: addr, Load: lb.NewLoad(p.clock)}}
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
