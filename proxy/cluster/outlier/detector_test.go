package outlier

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster/fakeclock"
)

// rig is a detector over n fresh hosts with a manual clock.
type rig struct {
	clock   *fakeclock.Clock
	hosts   []*Host
	d       *Detector
	changes atomic.Int32
}

func newRig(t *testing.T, n int, mod func(*Config)) *rig {
	t.Helper()
	cfg := Defaults()
	if mod != nil {
		mod(&cfg)
	}
	r := &rig{clock: fakeclock.New()}
	for i := range n {
		r.hosts = append(r.hosts, NewHost(fmt.Sprintf("10.0.0.%d:80", i+1)))
	}
	r.d = NewDetector(&cfg, r.hosts, Options{Clock: r.clock, OnChange: func() { r.changes.Add(1) }})
	r.d.Start()
	t.Cleanup(r.d.Stop)
	return r
}

// report sends results to host i; a bare int is an HTTP status, a Kind a
// local failure.
func (r *rig) report(i int, results ...any) {
	for _, x := range results {
		switch v := x.(type) {
		case int:
			r.hosts[i].Report(Result{Status: v})
		case Kind:
			r.hosts[i].Report(Result{Failure: v})
		}
	}
}

func (r *rig) ejected() []int {
	var out []int
	for i, h := range r.hosts {
		if h.Ejected() {
			out = append(out, i)
		}
	}
	return out
}

func repeat(n int, x any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = x
	}
	return out
}

func cat(xs ...[]any) []any {
	var out []any
	for _, x := range xs {
		out = append(out, x...)
	}
	return out
}

func TestConsecutive(t *testing.T) {
	all := func(c *Config) { c.MaxEjectionPercent = 100 }
	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		results []any
		ejected bool
		reason  Reason
	}{
		{"five 5xx", all, repeat(5, 500), true, Consecutive5xx},
		{"four 5xx", all, repeat(4, 500), false, 0},
		{"success resets", all, cat(repeat(4, 500), []any{200}, repeat(4, 500)), false, 0},
		{"4xx resets", all, cat(repeat(4, 500), []any{404}, repeat(4, 500)), false, 0},
		{"threshold 0 disables", func(c *Config) { all(c); c.Consecutive5xx = 0 }, repeat(20, 500), false, 0},
		{"enforcing 0", func(c *Config) { all(c); c.EnforcingConsecutive5xx = 0 }, repeat(5, 500), false, 0},
		// Gateway failures are detected but not enforced by default.
		{"gateway not enforced", func(c *Config) { all(c); c.Consecutive5xx = 0 }, repeat(5, 503), false, 0},
		{"gateway enforced", func(c *Config) {
			all(c)
			c.Consecutive5xx = 0
			c.EnforcingConsecutiveGatewayFailure = 100
		}, []any{502, 503, 504, 503, 502}, true, ConsecutiveGatewayFailure},
		{"500 resets gateway", func(c *Config) {
			all(c)
			c.Consecutive5xx = 0
			c.EnforcingConsecutiveGatewayFailure = 100
		}, cat(repeat(4, 503), []any{500}, repeat(4, 503)), false, 0},
		// Without the split, local failures count as 503/504.
		{"connect failures as 5xx", all, repeat(5, ConnectFailure), true, Consecutive5xx},
		{"timeouts as gateway", func(c *Config) {
			all(c)
			c.Consecutive5xx = 0
			c.EnforcingConsecutiveGatewayFailure = 100
		}, cat(repeat(3, Timeout), repeat(2, Reset)), true, ConsecutiveGatewayFailure},
		{"split local origin", func(c *Config) {
			all(c)
			c.SplitExternalLocalOriginErrors = true
		}, cat(repeat(3, ConnectFailure), repeat(2, Reset)), true, ConsecutiveLocalOriginFailure},
		{"split: response resets local", func(c *Config) {
			all(c)
			c.SplitExternalLocalOriginErrors = true
		}, cat(repeat(4, Timeout), []any{500}, repeat(4, Timeout)), false, 0},
		{"split: local failures do not count as 5xx", func(c *Config) {
			all(c)
			c.SplitExternalLocalOriginErrors = true
			c.ConsecutiveLocalOriginFailure = 0
		}, repeat(10, ConnectFailure), false, 0},
		{"client cancels never count", all, repeat(50, ClientCancel), false, 0},
		{"client cancels do not reset", all, cat(repeat(4, 500), repeat(10, ClientCancel), []any{500}), true, Consecutive5xx},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, 3, tc.mod)
			r.report(0, tc.results...)
			if got := r.hosts[0].Ejected(); got != tc.ejected {
				t.Fatalf("ejected = %v, want %v", got, tc.ejected)
			}
			if tc.ejected {
				if n := r.d.Stats().Enforced[tc.reason].Load(); n != 1 {
					t.Fatalf("enforced[%s] = %d, want 1", tc.reason, n)
				}
				if n := r.changes.Load(); n != 1 {
					t.Fatalf("OnChange ran %d times, want 1", n)
				}
				if n := r.d.Stats().Active.Load(); n != 1 {
					t.Fatalf("active = %d, want 1", n)
				}
			} else if n := r.changes.Load(); n != 0 {
				t.Fatalf("OnChange ran %d times, want 0", n)
			}
		})
	}
}

func TestGatewayDetectedNotEnforced(t *testing.T) {
	r := newRig(t, 3, func(c *Config) { c.MaxEjectionPercent = 100; c.Consecutive5xx = 0 })
	r.report(0, repeat(10, 502)...)
	if n := r.d.Stats().Detected[ConsecutiveGatewayFailure].Load(); n != 2 {
		t.Fatalf("detected = %d, want 2 (the counter restarts after each detection)", n)
	}
	if r.hosts[0].Ejected() {
		t.Fatal("ejected with enforcing_consecutive_gateway_failure 0")
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hosts     int
		pct       uint32
		alwaysOne bool
		failing   int
		want      int
		overflow  uint64
	}{
		{"10 hosts 10%", 10, 10, false, 3, 1, 2},
		{"10 hosts 20%", 10, 20, false, 3, 2, 1},
		{"3 hosts 10%: none", 3, 10, false, 2, 0, 2},
		{"3 hosts 10% always one", 3, 10, true, 2, 1, 1},
		{"3 hosts 100%", 3, 100, false, 3, 3, 0},
		{"0%: none", 4, 0, false, 1, 0, 1},
		{"0% always one", 4, 0, true, 2, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.hosts, func(c *Config) { c.MaxEjectionPercent = tc.pct; c.AlwaysEjectOneHost = tc.alwaysOne })
			for i := range tc.failing {
				r.report(i, repeat(5, 500)...)
			}
			if got := len(r.ejected()); got != tc.want {
				t.Fatalf("ejected %v, want %d hosts", r.ejected(), tc.want)
			}
			if got := r.d.Stats().Overflow.Load(); got != tc.overflow {
				t.Fatalf("overflow = %d, want %d", got, tc.overflow)
			}
			if got := r.d.Active(); got != tc.want {
				t.Fatalf("Active() = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestEjectionTime: the ejection lasts base × n (n: ejections in a row),
// capped at max, checked at the interval sweeps; each interval spent in
// service takes one off n.
func TestEjectionTime(t *testing.T) {
	r := newRig(t, 1, func(c *Config) {
		c.MaxEjectionPercent = 100
		c.Interval = 10 * time.Second
		c.BaseEjectionTime = 30 * time.Second
		c.MaxEjectionTime = 70 * time.Second
	})
	h := r.hosts[0]
	// outFor ejects the host (at a sweep boundary) and returns how long it
	// stays out, to the second.
	outFor := func() time.Duration {
		t.Helper()
		r.report(0, repeat(5, 500)...)
		if !h.Ejected() {
			t.Fatal("not ejected")
		}
		var d time.Duration
		for h.Ejected() {
			r.clock.Advance(10 * time.Second)
			d += 10 * time.Second
			if d > 10*time.Minute {
				t.Fatal("never un-ejected")
			}
		}
		return d
	}
	for i, want := range []time.Duration{30 * time.Second, 60 * time.Second, 70 * time.Second, 70 * time.Second} {
		if got := outFor(); got != want {
			t.Fatalf("ejection %d lasted %s, want %s", i+1, got, want)
		}
	}
	if n := h.EjectionCount(); n != 3 {
		t.Fatalf("ejection count %d, want 3 (capped: base × 3 > max)", n)
	}
	// Healthy for a while: the count decays one per interval after the
	// first full interval.
	r.clock.Advance(30 * time.Second)
	if n := h.EjectionCount(); n != 0 {
		t.Fatalf("ejection count %d after 3 healthy intervals, want 0", n)
	}
	if got := outFor(); got != 30*time.Second {
		t.Fatalf("after decay the ejection lasted %s, want 30s", got)
	}
	if n := r.changes.Load(); n != 10 {
		t.Fatalf("OnChange ran %d times, want 10 (5 ejections, 5 returns)", n)
	}
}

func TestUnejectResetsCounters(t *testing.T) {
	r := newRig(t, 1, func(c *Config) { c.MaxEjectionPercent = 100 })
	r.report(0, repeat(5, 500)...)
	r.report(0, repeat(4, 500)...) // while ejected
	if !r.d.Uneject(r.hosts[0]) {
		t.Fatal("Uneject: false for an ejected host")
	}
	if r.d.Uneject(r.hosts[0]) {
		t.Fatal("Uneject: true for a host in service")
	}
	r.report(0, 500)
	if r.hosts[0].Ejected() {
		t.Fatal("re-ejected on one error after un-ejection")
	}
}

func TestSuccessRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rates []int // successes out of volume per host
		vol   int
		mod   func(*Config)
		want  []int
	}{
		{"one outlier", []int{100, 100, 99, 100, 60}, 100, nil, []int{4}},
		{"all alike", []int{95, 95, 95, 95, 95}, 100, nil, nil},
		{"below minimum hosts", []int{100, 100, 100, 60}, 100, nil, nil},
		{"below request volume", []int{99, 99, 99, 99, 50}, 99, nil, nil},
		{"enforcing 0", []int{100, 100, 99, 100, 60}, 100, func(c *Config) { c.EnforcingSuccessRate = 0 }, nil},
		{"smaller stdev factor", []int{100, 100, 98, 100, 96}, 100, func(c *Config) { c.SuccessRateStdevFactor = 1000 }, []int{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, len(tc.rates), func(c *Config) {
				c.MaxEjectionPercent = 100
				c.Consecutive5xx = 0
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			for i, ok := range tc.rates {
				for j := range tc.vol {
					if j < ok {
						r.report(i, 200)
					} else {
						r.report(i, 500)
					}
				}
			}
			if got := r.ejected(); len(got) != 0 {
				t.Fatalf("ejected %v before the sweep", got)
			}
			r.clock.Advance(10 * time.Second)
			if got := r.ejected(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("ejected %v, want %v", got, tc.want)
			}
			// The counts restart each interval: an idle interval ejects nobody else.
			r.clock.Advance(10 * time.Second)
			if got := r.ejected(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("after an idle interval ejected %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFailurePercentage(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failures []int // of 50 requests per host
		mod      func(*Config)
		want     []int
	}{
		{"not enforced by default", []int{0, 0, 0, 0, 45}, nil, nil},
		{"at threshold", []int{0, 0, 0, 0, 43}, func(c *Config) { c.EnforcingFailurePercentage = 100; c.FailurePercentageThreshold = 86 }, []int{4}},
		{"below threshold", []int{0, 0, 0, 0, 42}, func(c *Config) { c.EnforcingFailurePercentage = 100 }, nil},
		{"all failing", []int{50, 50, 50, 50, 50}, func(c *Config) { c.EnforcingFailurePercentage = 100; c.MaxEjectionPercent = 40 }, []int{0, 1}},
		{"minimum hosts", []int{0, 0, 0, 50}, func(c *Config) { c.EnforcingFailurePercentage = 100 }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, len(tc.failures), func(c *Config) {
				c.MaxEjectionPercent = 100
				c.Consecutive5xx = 0
				c.EnforcingSuccessRate = 0
				if tc.mod != nil {
					tc.mod(c)
				}
			})
			for i, f := range tc.failures {
				for j := range 50 {
					if j < f {
						r.report(i, 503)
					} else {
						r.report(i, 200)
					}
				}
			}
			r.clock.Advance(10 * time.Second)
			if got := r.ejected(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("ejected %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLocalOriginRates: with the split, local-origin failures have their
// own success-rate and failure-percentage detection.
func TestLocalOriginRates(t *testing.T) {
	r := newRig(t, 5, func(c *Config) {
		c.MaxEjectionPercent = 100
		c.SplitExternalLocalOriginErrors = true
		c.ConsecutiveLocalOriginFailure = 0
		c.EnforcingFailurePercentageLocalOrigin = 100
	})
	for i := range 5 {
		for j := range 100 {
			if i == 2 && j%10 != 0 {
				r.report(i, Timeout)
			} else {
				r.report(i, 200)
			}
		}
	}
	r.clock.Advance(10 * time.Second)
	if got := r.ejected(); fmt.Sprint(got) != "[2]" {
		t.Fatalf("ejected %v, want [2]", got)
	}
	st := r.d.Stats()
	if st.Enforced[SuccessRateLocalOrigin].Load()+st.Enforced[FailurePercentageLocalOrigin].Load() != 1 {
		t.Fatalf("local-origin rate ejections: sr %d fp %d", st.Enforced[SuccessRateLocalOrigin].Load(), st.Enforced[FailurePercentageLocalOrigin].Load())
	}
	if st.Enforced[SuccessRate].Load() != 0 {
		t.Fatal("external success rate ejected on local-origin failures")
	}
}

// TestCarryOver: a detector replacing another for the same hosts keeps
// their ejection state; the old one no longer acts once stopped.
func TestCarryOver(t *testing.T) {
	r := newRig(t, 2, func(c *Config) { c.MaxEjectionPercent = 100 })
	r.report(0, repeat(5, 500)...)
	cfg := *r.d.Config()
	cfg.Consecutive5xx = 2
	var changes atomic.Int32
	d2 := NewDetector(&cfg, r.hosts, Options{Clock: r.clock, OnChange: func() { changes.Add(1) }})
	d2.Start()
	defer d2.Stop()
	if d2.Active() != 1 || d2.Stats().Active.Load() != 1 {
		t.Fatalf("new detector sees %d ejected, want 1", d2.Active())
	}
	r.d.Stop()
	if r.clock.Pending() != 1 {
		t.Fatalf("%d timers pending, want 1 (the new detector's)", r.clock.Pending())
	}
	before := r.changes.Load()
	r.report(1, 500, 500) // the new threshold (2) applies
	if !r.hosts[1].Ejected() {
		t.Fatal("host 1 not ejected with the new config")
	}
	if changes.Load() != 1 || r.changes.Load() != before {
		t.Fatalf("OnChange: new %d (want 1), old %d more (want 0)", changes.Load(), r.changes.Load()-before)
	}
	r.clock.Advance(30 * time.Second)
	if len(r.ejected()) != 0 {
		t.Fatalf("still ejected after base time: %v", r.ejected())
	}
}

// TestNoDetector: a host without detector counts nothing and never ejects.
func TestNoDetector(t *testing.T) {
	h := NewHost("10.0.0.1:80")
	for range 100 {
		h.Report(Result{Status: 500})
	}
	if h.Ejected() {
		t.Fatal("ejected without a detector")
	}
	if et, _, _, _ := h.takeCounts(); et != 0 {
		t.Fatalf("counted %d requests without a detector", et)
	}
}

func TestResultFailed(t *testing.T) {
	for _, tc := range []struct {
		r    Result
		want bool
	}{
		{Result{Status: 200}, false}, {Result{Status: 0}, false}, {Result{Status: 499}, false},
		{Result{Status: 500}, true}, {Result{Status: 503}, true}, {Result{Status: 600}, false},
		{Result{Failure: ConnectFailure}, true}, {Result{Failure: Reset}, true},
		{Result{Failure: Timeout}, true}, {Result{Failure: ClientCancel, Status: 500}, false},
	} {
		if got := tc.r.Failed(); got != tc.want {
			t.Errorf("%+v.Failed() = %v, want %v", tc.r, got, tc.want)
		}
	}
}

// TestConcurrentReports is for -race: reports from many goroutines while
// sweeps run.
func TestConcurrentReports(t *testing.T) {
	r := newRig(t, 4, func(c *Config) { c.MaxEjectionPercent = 50; c.EnforcingFailurePercentage = 100 })
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				r.report(g%4, []any{200, 500, ConnectFailure, ClientCancel, 503}[(i+g)%5])
			}
		}()
	}
	for range 20 {
		r.clock.Advance(10 * time.Second)
	}
	wg.Wait()
	if n := len(r.ejected()); n > 2 {
		t.Fatalf("%d hosts ejected with max_ejection_percent 50 of 4", n)
	}
}
