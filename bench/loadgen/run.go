package main

import (
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source of a run. Implementations must be safe for
// concurrent use: every worker goroutine calls them.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// SleepUntil returns once Now() >= t or ctx is done.
	SleepUntil(ctx context.Context, t time.Time)
}

// wallClock is the real Clock. It is safe for concurrent use.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) SleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// Schedule is a fixed-rate send schedule: request i is due at At(i) after the
// start of the run, whatever happened to the requests before it. It is a
// value and safe for concurrent use.
type Schedule struct {
	// Rate is requests per second; it must be > 0.
	Rate float64
}

// At returns the offset from the start of the run at which request i is due.
func (s Schedule) At(i int) time.Duration {
	return time.Duration(math.Round(float64(i) * float64(time.Second) / s.Rate))
}

// Plan describes one run. Exactly one of the open-loop fields (Rate > 0 with
// Requests) or the closed-loop field (Duration, Rate == 0) applies.
type Plan struct {
	// Rate is the open-loop send rate in requests per second; 0 selects the
	// closed loop (each worker sends its next request when the last returns).
	Rate float64
	// Requests is the number of measured requests of an open-loop run.
	Requests int
	// Warmup is the number of requests sent on the schedule before the
	// measured ones, and not recorded (open loop), or, in a closed loop,
	// the time spent sending before measuring.
	Warmup int
	// WarmupDuration is the closed loop's unmeasured lead-in.
	WarmupDuration time.Duration
	// Duration is the measured time of a closed-loop run.
	Duration time.Duration
	// Workers is the number of concurrent senders; at least 1.
	Workers int
}

// DoFunc sends one request and waits for its complete response. It is called
// from many worker goroutines at once and must be safe for that.
type DoFunc func(ctx context.Context) error

// Result is what a run measured. Latencies holds only successful requests,
// sorted ascending.
type Result struct {
	Requests  int           // measured requests sent
	Errors    int           // measured requests that failed
	Elapsed   time.Duration // from the first measured due time to the last completion
	Latencies []time.Duration
	FirstErr  error // the first error seen, for the report
}

// Rate is the achieved completion rate in requests per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Run executes p against do and measures it. In the open loop each request's
// latency runs from its scheduled send time, not from when a worker got
// round to sending it, so a stall is charged to every request it delays
// (no coordinated omission).
func Run(ctx context.Context, p Plan, clk Clock, do DoFunc) Result {
	if p.Workers < 1 {
		p.Workers = 1
	}
	if p.Rate > 0 {
		return runOpen(ctx, p, clk, do)
	}
	return runClosed(ctx, p, clk, do)
}

// Markers in the raw latency slice: a request that failed, and one that was
// never sent because the run was canceled.
const (
	failed  = time.Duration(-1)
	notSent = time.Duration(-2)
)

func runOpen(ctx context.Context, p Plan, clk Clock, do DoFunc) Result {
	sched := Schedule{Rate: p.Rate}
	total := p.Warmup + p.Requests
	lat := make([]time.Duration, p.Requests) // slot i-Warmup is written by one worker only
	for i := range lat {
		lat[i] = notSent
	}
	var (
		next     atomic.Int64
		lastEnd  atomic.Int64 // unix nanoseconds
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	start := clk.Now()
	for range p.Workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= total || ctx.Err() != nil {
					return
				}
				due := start.Add(sched.At(i))
				clk.SleepUntil(ctx, due)
				err := do(ctx)
				end := clk.Now()
				if i < p.Warmup {
					continue
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					lat[i-p.Warmup] = failed
				} else {
					lat[i-p.Warmup] = end.Sub(due)
				}
				for {
					old := lastEnd.Load()
					if end.UnixNano() <= old || lastEnd.CompareAndSwap(old, end.UnixNano()) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	r := collect(lat)
	r.FirstErr = firstErr
	if p.Requests > 0 && lastEnd.Load() != 0 {
		r.Elapsed = time.Unix(0, lastEnd.Load()).Sub(start.Add(sched.At(p.Warmup)))
	}
	return r
}

func runClosed(ctx context.Context, p Plan, clk Clock, do DoFunc) Result {
	start := clk.Now()
	measureFrom := start.Add(p.WarmupDuration)
	stop := measureFrom.Add(p.Duration)
	per := make([][]time.Duration, p.Workers)
	var (
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for w := range p.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := clk.Now()
				if !t0.Before(stop) {
					return
				}
				err := do(ctx)
				t1 := clk.Now()
				if t0.Before(measureFrom) || t1.After(stop) {
					continue
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					per[w] = append(per[w], failed)
				} else {
					per[w] = append(per[w], t1.Sub(t0))
				}
			}
		})
	}
	wg.Wait()
	r := collect(slices.Concat(per...))
	r.FirstErr = firstErr
	r.Elapsed = p.Duration
	return r
}

// collect turns raw per-request latencies (with the failed and notSent
// markers) into a Result with sorted successful latencies.
func collect(raw []time.Duration) Result {
	r := Result{Latencies: make([]time.Duration, 0, len(raw))}
	for _, d := range raw {
		switch d {
		case notSent:
			continue
		case failed:
			r.Errors++
		default:
			r.Latencies = append(r.Latencies, d)
		}
		r.Requests++
	}
	slices.Sort(r.Latencies)
	return r
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, the smallest value such that at least p% of the values are <= it.
// It returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps a product that should be whole but lands a hair above
	// it in floating point from moving the rank one up.
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	rank = max(rank, 1)
	rank = min(rank, n)
	return sorted[rank-1]
}
