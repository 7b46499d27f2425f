package telemetry

import (
	"sync"
	"time"
)

// fakeClock is a Clock moved by hand; its tickers fire on Tick.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []chan time.Time
	// tickerMade receives once per NewTicker call.
	tickerMade chan struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), tickerMade: make(chan struct{}, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) NewTicker(time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time)
	c.tickers = append(c.tickers, ch)
	c.tickerMade <- struct{}{}
	return ch, func() {}
}

// Tick delivers the current time to every ticker (blocking until taken).
func (c *fakeClock) Tick() {
	c.mu.Lock()
	ts, now := append([]chan time.Time(nil), c.tickers...), c.now
	c.mu.Unlock()
	for _, ch := range ts {
		ch <- now
	}
}
