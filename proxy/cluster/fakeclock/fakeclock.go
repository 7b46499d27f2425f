// Package fakeclock is a manual clock for tests of time-driven code
// (outlier detection intervals, health probe schedules, ejection times):
// timers fire, in order and on the caller's goroutine, when Advance passes
// their time. It matches the Clock interfaces of proxy/cluster,
// proxy/cluster/outlier and proxy/cluster/health.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a manual Clock: timers fire, in order and on the caller's
// goroutine, when Advance passes their time. Safe for concurrent use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*timer
	armed  chan struct{} // closed and replaced when a timer is armed
}

type timer struct {
	at   time.Time
	f    func()
	done bool
}

// New returns a clock at a fixed instant.
func New() *Clock { return &Clock{now: time.Unix(1_700_000_000, 0), armed: make(chan struct{})} }

// Armed returns a channel that is closed when the next timer is armed:
// a test takes it, checks Pending, and waits on it if it must.
func (c *Clock) Armed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.armed
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Clock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	close(c.armed)
	c.armed = make(chan struct{})
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.done {
			return false
		}
		t.done = true
		return true
	}
}

// Advance moves the clock by d, running every timer that falls due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *timer
		for _, t := range c.timers {
			if !t.done && !t.at.After(target) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		next.done = true
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
	}
}

// Pending reports how many timers have not fired or been stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}
