package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock whose time moves only when SleepUntil or advance is
// called. It is safe for concurrent use, but the tests drive it from one
// worker so the outcome is deterministic.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(_ context.Context, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func ms(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }

func TestScheduleAt(t *testing.T) {
	tests := []struct {
		name string
		rate float64
		i    int
		want time.Duration
	}{
		{"first request is due at the start", 1000, 0, 0},
		{"1000 rps spaces requests 1ms apart", 1000, 1, time.Millisecond},
		{"offsets do not drift over many requests", 1000, 100000, 100 * time.Second},
		{"fractional rate", 3, 1, 333333333},
		{"fractional rate, rounding", 3, 2, 666666667},
		{"one per second", 1, 7, 7 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Schedule{Rate: tt.rate}).At(tt.i); got != tt.want {
				t.Errorf("At(%d) at %v rps = %v, want %v", tt.i, tt.rate, got, tt.want)
			}
		})
	}
}

func seq(n int) []time.Duration {
	s := make([]time.Duration, n)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Millisecond
	}
	return s
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single value is every percentile", []time.Duration{7}, 99, 7},
		{"single value p0", []time.Duration{7}, 0, 7},
		{"median of 1..100", seq(100), 50, 50 * time.Millisecond},
		{"p90 of 1..100", seq(100), 90, 90 * time.Millisecond},
		{"p99 of 1..100", seq(100), 99, 99 * time.Millisecond},
		{"p100 is the max", seq(100), 100, 100 * time.Millisecond},
		{"p99.9 of 1..1000", seq(1000), 99.9, 999 * time.Millisecond},
		{"p99 of 1..10 rounds up to the max", seq(10), 99, 10 * time.Millisecond},
		{"median of two is the lower", seq(2), 50, 1 * time.Millisecond},
		{"p51 of two is the upper", seq(2), 51, 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v of %d) = %v, want %v", tt.p, len(tt.sorted), got, tt.want)
			}
		})
	}
}

// serviceTimes returns a DoFunc that advances clk by times[i] on its i-th call
// and fails the calls whose index is in fail.
func serviceTimes(clk *fakeClock, times []time.Duration, fail map[int]bool) DoFunc {
	var mu sync.Mutex
	i := 0
	return func(context.Context) error {
		mu.Lock()
		n := i
		i++
		mu.Unlock()
		if n < len(times) {
			clk.advance(times[n])
		}
		if fail[n] {
			return errors.New("boom")
		}
		return nil
	}
}

func TestRunOpenLoop(t *testing.T) {
	tests := []struct {
		name       string
		plan       Plan
		times      []time.Duration
		fail       map[int]bool
		wantLat    []time.Duration // sorted
		wantErrors int
		wantElapse time.Duration
	}{
		{
			name:       "fast responses are measured from their due time",
			plan:       Plan{Rate: 1000, Requests: 3, Workers: 1},
			times:      []time.Duration{ms(0.2), ms(0.3), ms(0.1)},
			wantLat:    []time.Duration{ms(0.1), ms(0.2), ms(0.3)},
			wantElapse: ms(2.1),
		},
		{
			// A closed-loop tool would report 10ms, 0, 0, 0, 0: the stall is
			// charged only once. Measured from the schedule, each request
			// that waited behind it carries the wait.
			name:       "a stall is charged to every request it delays",
			plan:       Plan{Rate: 1000, Requests: 5, Workers: 1},
			times:      []time.Duration{ms(10), 0, 0, 0, 0},
			wantLat:    []time.Duration{ms(6), ms(7), ms(8), ms(9), ms(10)},
			wantElapse: ms(10),
		},
		{
			name:       "warm-up requests run on the schedule but are not recorded",
			plan:       Plan{Rate: 1000, Requests: 2, Warmup: 2, Workers: 1},
			times:      []time.Duration{ms(5), 0, ms(0.5), 0},
			wantLat:    []time.Duration{ms(2.5), ms(3.5)},
			wantElapse: ms(3.5),
		},
		{
			name:       "failed requests are counted, not measured",
			plan:       Plan{Rate: 100, Requests: 3, Workers: 1},
			times:      []time.Duration{ms(1), ms(2), ms(3)},
			fail:       map[int]bool{1: true},
			wantLat:    []time.Duration{ms(1), ms(3)},
			wantErrors: 1,
			wantElapse: ms(23),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1000, 0)}
			r := Run(context.Background(), tt.plan, clk, serviceTimes(clk, tt.times, tt.fail))
			if r.Requests != tt.plan.Requests {
				t.Errorf("Requests = %d, want %d", r.Requests, tt.plan.Requests)
			}
			if r.Errors != tt.wantErrors {
				t.Errorf("Errors = %d, want %d", r.Errors, tt.wantErrors)
			}
			if !slices.Equal(r.Latencies, tt.wantLat) {
				t.Errorf("Latencies = %v, want %v", r.Latencies, tt.wantLat)
			}
			if r.Elapsed != tt.wantElapse {
				t.Errorf("Elapsed = %v, want %v", r.Elapsed, tt.wantElapse)
			}
			if tt.wantErrors > 0 && (r.FirstErr == nil || r.FirstErr.Error() != "boom") {
				t.Errorf("FirstErr = %v, want boom", r.FirstErr)
			}
		})
	}
}

func TestRunOpenLoopConcurrentSendsEveryRequestOnce(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	var mu sync.Mutex
	calls := 0
	do := func(context.Context) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return nil
	}
	r := Run(context.Background(), Plan{Rate: 1e6, Requests: 500, Warmup: 50, Workers: 8}, clk, do)
	if calls != 550 || r.Requests != 500 || len(r.Latencies) != 500 || r.Errors != 0 {
		t.Fatalf("calls=%d requests=%d latencies=%d errors=%d, want 550/500/500/0", calls, r.Requests, len(r.Latencies), r.Errors)
	}
}

func TestRunClosedLoop(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	// Every request takes 1ms; 2ms of warm-up and 5ms measured with one
	// worker: requests starting at 2,3,4,5,6ms are recorded.
	do := func(context.Context) error { clk.advance(time.Millisecond); return nil }
	r := Run(context.Background(), Plan{WarmupDuration: ms(2), Duration: ms(5), Workers: 1}, clk, do)
	if r.Requests != 5 || r.Errors != 0 {
		t.Fatalf("requests=%d errors=%d, want 5/0", r.Requests, r.Errors)
	}
	if got := r.Rate(); got != 1000 {
		t.Errorf("Rate() = %v, want 1000", got)
	}
	if p := Percentile(r.Latencies, 99); p != time.Millisecond {
		t.Errorf("p99 = %v, want 1ms", p)
	}
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	r := Run(ctx, Plan{Rate: 1000, Requests: 10, Workers: 2}, clk, func(context.Context) error {
		t.Error("request sent after cancel")
		return nil
	})
	if r.Requests != 0 || len(r.Latencies) != 0 {
		t.Errorf("after cancel: requests=%d latencies=%v, want none", r.Requests, r.Latencies)
	}
}

func TestFormat(t *testing.T) {
	r := Result{Requests: 4, Errors: 1, Elapsed: 2 * time.Second, Latencies: []time.Duration{ms(1), ms(2), ms(3)}}
	got := format("http1", r)
	want := "mode=http1 requests=4 errors=1 rate=2.0 p50_us=2000 p90_us=3000 p99_us=3000 p999_us=3000 max_us=3000"
	if got != want {
		t.Errorf("format = %q, want %q", got, want)
	}
}

func TestRunFlagsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", nil, "-target is required"},
		{"bad mode", []string{"-target", "x", "-mode", "quic"}, `-mode "quic": want http1, h2c, grpc or handshake`},
		{"zero workers", []string{"-target", "x", "-c", "0"}, "need -rate >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(tt.args, &strings.Builder{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%v) error = %v, want containing %q", tt.args, err, tt.want)
			}
		})
	}
}
