package xds

import (
	"sync"
	"time"

	"github.com/weft-mesh/weft/control/registry"
)

// Debounce defaults.
const (
	DefaultDebounceQuiet = 100 * time.Millisecond
	DefaultDebounceMax   = time.Second
)

// change is a set of pending changes: services whose instances changed, or
// everything (a resource change or a registry resync).
type change struct {
	all      bool
	services map[registry.ServiceKey]struct{}
	since    time.Time // when the first change of the batch arrived
}

func (c *change) merge(o change) {
	if c.since.IsZero() || (!o.since.IsZero() && o.since.Before(c.since)) {
		c.since = o.since
	}
	if o.all {
		c.all, c.services = true, nil
	}
	if c.all {
		return
	}
	if c.services == nil {
		c.services = make(map[registry.ServiceKey]struct{}, len(o.services))
	}
	for k := range o.services {
		c.services[k] = struct{}{}
	}
}

// debouncer batches changes: it fires once no change arrived for quiet, or
// max after the first change of the batch, whichever comes first. fire runs
// on the clock's timer goroutine, never concurrently with itself. It is safe
// for concurrent use.
type debouncer struct {
	clock      registry.Clock
	quiet, max time.Duration
	fire       func(change)

	fireMu  sync.Mutex // serialises fire
	mu      sync.Mutex
	pending *change
	first   time.Time
	timer   registry.Timer
	gen     uint64
	stopped bool
}

func newDebouncer(clock registry.Clock, quiet, max time.Duration, fire func(change)) *debouncer {
	if quiet <= 0 {
		quiet = DefaultDebounceQuiet
	}
	if max <= 0 {
		max = DefaultDebounceMax
	}
	if max < quiet {
		max = quiet
	}
	return &debouncer{clock: clock, quiet: quiet, max: max, fire: fire}
}

// add records c and (re)arms the timer.
func (d *debouncer) add(c change) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	now := d.clock.Now()
	if c.since.IsZero() {
		c.since = now
	}
	if d.pending == nil {
		d.pending = &change{}
		d.first = now
	}
	d.pending.merge(c)
	if d.timer != nil {
		d.timer.Stop()
	}
	delay := min(d.quiet, d.first.Add(d.max).Sub(now))
	d.gen++
	gen := d.gen
	d.timer = d.clock.AfterFunc(max(delay, 0), func() { d.flush(gen) })
}

func (d *debouncer) flush(gen uint64) {
	d.fireMu.Lock()
	defer d.fireMu.Unlock()
	d.mu.Lock()
	if d.gen != gen || d.pending == nil || d.stopped {
		d.mu.Unlock()
		return
	}
	c := *d.pending
	d.pending, d.timer = nil, nil
	d.mu.Unlock()
	d.fire(c)
}

// stop cancels a pending batch and waits for a running fire to return.
func (d *debouncer) stop() {
	d.mu.Lock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.pending = nil
	d.mu.Unlock()
	d.fireMu.Lock()
	defer d.fireMu.Unlock()
}
