package lb

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestWeightedDistribution(t *testing.T) {
	clock := newFakeClock()
	weights := []uint32{1, 2, 3, 4}
	want := []float64{0.1, 0.2, 0.3, 0.4}
	tol := map[string]float64{"ring_hash": 0.04} // arcs of a 1024-entry ring vary
	for _, p := range allPolicies(clock.Now) {
		t.Run(p.Name(), func(t *testing.T) {
			ms := healthy(clock.Now, 4, weights...)
			pk := p.Build(ms)
			got := shares(t, pk, len(ms), 100_000, nil)
			tl, ok := tol[p.Name()]
			if !ok {
				tl = 0.01
			}
			near(t, got, want, tl)
		})
	}
}

func TestEqualDistribution(t *testing.T) {
	clock := newFakeClock()
	for _, p := range allPolicies(clock.Now) {
		t.Run(p.Name(), func(t *testing.T) {
			ms := healthy(clock.Now, 10)
			got := shares(t, p.Build(ms), len(ms), 100_000, nil)
			want := make([]float64, 10)
			for i := range want {
				want[i] = 0.1
			}
			tl := 0.01
			if p.Name() == "ring_hash" {
				tl = 0.03
			}
			near(t, got, want, tl)
		})
	}
}

func TestRoundRobinSequence(t *testing.T) {
	tests := []struct {
		name    string
		weights []uint32
		cycle   int
	}{
		{"equal", nil, 3},
		{"weighted", []uint32{1, 2, 3}, 6},
		{"gcd", []uint32{10, 20, 30}, 6},
		{"zero is one", []uint32{0, 1, 2}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := healthy(nil, 3, tc.weights...)
			p := RoundRobin{}.Build(ms)
			var seq []int
			for range 5 * tc.cycle {
				i, err := p.Pick(PickInfo{})
				if err != nil {
					t.Fatal(err)
				}
				seq = append(seq, i)
			}
			// Every window of one cycle holds each member exactly in
			// proportion to its weight.
			for s := 0; s+tc.cycle <= len(seq); s++ {
				var c [3]int
				for _, i := range seq[s : s+tc.cycle] {
					c[i]++
				}
				for i := range c {
					w := 1
					if tc.weights != nil {
						w = int(max(tc.weights[i], 1))
						if tc.name == "gcd" {
							w /= 10
						}
					}
					if c[i] != w {
						t.Fatalf("window %d of %v: member %d picked %d times, want %d", s, seq, i, c[i], w)
					}
				}
			}
		})
	}
}

func TestRoundRobinSmooth(t *testing.T) {
	// Weights 1 and 9: the light member must not come after a long burst
	// of the heavy one twice in a row; no run of the heavy member is
	// longer than 9.
	p := RoundRobin{}.Build(healthy(nil, 2, 9, 1))
	run, longest := 0, 0
	for range 1000 {
		i, _ := p.Pick(PickInfo{})
		if i == 0 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest > 9 {
		t.Fatalf("heavy member ran %d times in a row, want at most 9", longest)
	}
}

func TestRoundRobinRandomStart(t *testing.T) {
	ms := healthy(nil, 10)
	first := map[int]bool{}
	for range 100 {
		i, _ := RoundRobin{}.Build(ms).Pick(PickInfo{})
		first[i] = true
	}
	if len(first) < 5 {
		t.Fatalf("100 new pickers started on only %d distinct members", len(first))
	}
}

func TestRoundRobinQuantized(t *testing.T) {
	// Weights that cannot be scheduled exactly within maxSchedule are
	// rounded, keeping the proportions.
	ms := healthy(nil, 3, 1_000_000_007, 2_000_000_014, 3)
	got := shares(t, RoundRobin{}.Build(ms), 3, 3*maxSchedule, nil)
	near(t, got, []float64{1.0 / 3, 2.0 / 3, 0}, 0.001)
	if got[2] == 0 {
		t.Fatal("tiny weight never picked; every member must keep one slot")
	}
}

func TestLeastRequestPrefersIdle(t *testing.T) {
	tests := []struct {
		name    string
		policy  LeastRequest
		weights []uint32
		busy    []int // members with 9 requests in flight
		want    []float64
	}{
		// P2C over 2: the busy member only wins when sampled twice.
		{"p2c", LeastRequest{ChoiceCount: 2, ActiveRequestBias: 1}, nil, []int{1}, []float64{0.75, 0.25}},
		// choice_count 4: busy needs 4 samples in a row.
		{"choice count 4", LeastRequest{ChoiceCount: 4, ActiveRequestBias: 1}, nil, []int{1}, []float64{1 - 1.0/16, 1.0 / 16}},
		// Weighted 1:2, heavy busy: accepted with p=1/10, else a second
		// try, else the heavy sample as fallback: 2/3 × (0.1 + 0.9 × 2/3).
		{"weighted", LeastRequest{ChoiceCount: 2, ActiveRequestBias: 1}, []uint32{1, 2}, []int{1}, []float64{1 - 2.0/3*0.7, 2.0 / 3 * 0.7}},
		// bias 0: weights only.
		{"weighted bias 0", LeastRequest{ChoiceCount: 2}, []uint32{1, 2}, []int{1}, []float64{1.0 / 3, 2.0 / 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := healthy(nil, len(tc.want), tc.weights...)
			for _, b := range tc.busy {
				for range 9 {
					ms[b].Load.Start()
				}
			}
			near(t, shares(t, tc.policy.Build(ms), len(ms), 100_000, nil), tc.want, 0.01)
		})
	}
}

func TestPeakEWMAMovesAwayAndBack(t *testing.T) {
	clock := newFakeClock()
	ms := healthy(clock.Now, 2) // 0: A (slow), 1: B (fast)
	a, b := ms[0].Load, ms[1].Load
	sample := func(l *Load, rtt time.Duration) {
		tk := l.Start()
		clock.Advance(rtt)
		l.Done(tk, false)
	}
	p := PeakEWMA{Clock: clock.Now}.Build(ms)
	only := func(phase string, want int) {
		t.Helper()
		for range 100 {
			if i, _ := p.Pick(PickInfo{}); i != want {
				t.Fatalf("%s: picked %d, want %d", phase, i, want)
			}
		}
	}
	// No samples: both cost default_rtt; traffic is shared.
	got := shares(t, p, 2, 10_000, nil)
	near(t, got, []float64{0.5, 0.5}, 0.03)

	sample(a, 100*time.Millisecond)
	sample(b, time.Millisecond)
	only("after a slow sample", 1)

	// B busy: cost 1ms × 201 > 100ms, so A takes the traffic.
	var tks []Ticket
	for range 200 {
		tks = append(tks, b.Start())
	}
	only("fast endpoint saturated", 0)
	for _, tk := range tks {
		b.Done(tk, false)
	}
	sample(b, time.Millisecond)

	// 30s later A's estimate has decayed to 100ms·e⁻³ ≈ 5ms: still slower
	// than B, which kept receiving 1ms samples.
	for range 30 {
		clock.Advance(time.Second)
		sample(b, time.Millisecond)
	}
	only("30s later", 1)
	// 60s later A's estimate is 100ms·e⁻⁶ ≈ 0.25ms: A is tried again.
	for range 30 {
		clock.Advance(time.Second)
		sample(b, time.Millisecond)
	}
	only("60s later", 0)
}

func TestLoadEstimate(t *testing.T) {
	clock := newFakeClock()
	l := NewLoad(clock.Now)
	if _, ok := l.RTT(); ok {
		t.Fatal("new load reports a sample")
	}
	run := func(rtt time.Duration, failed bool) {
		tk := l.Start()
		if l.Active() != 1 {
			t.Fatalf("active %d during request, want 1", l.Active())
		}
		clock.Advance(rtt)
		l.Done(tk, failed)
		if l.Active() != 0 {
			t.Fatalf("active %d after request, want 0", l.Active())
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	check := func(step string, want float64) {
		t.Helper()
		got, ok := l.RTT()
		if !ok || ms(got) < want*0.999 || ms(got) > want*1.001 {
			t.Fatalf("%s: rtt %v, want %.3fms", step, got, want)
		}
	}
	run(10*time.Millisecond, false)
	check("first sample", 10)
	run(100*time.Millisecond, false)
	check("peak replaces at once", 100)
	// 10s (one time constant) idle, then a 10ms request (ending 10.01s
	// after the peak): blend with w = e^(-10.01/10).
	clock.Advance(10 * time.Second)
	run(10*time.Millisecond, false)
	w := 0.36751297 // e^(-1.001)
	check("decayed blend", 100*w+10*(1-w))
	// Idle: the estimate decays towards zero at read time.
	before, _ := l.RTT()
	clock.Advance(10 * time.Second)
	check("idle decay", ms(before)*0.36787944)
	// A fast failure never makes the endpoint look faster: the estimate
	// at least doubles.
	cur, _ := l.RTT()
	run(time.Millisecond, true)
	if got, _ := l.RTT(); got < 2*cur {
		t.Fatalf("after a failure: rtt %v, want at least %v", got, 2*cur)
	}
}

func TestLoadStaleEstimatePenalty(t *testing.T) {
	clock := newFakeClock()
	l := NewLoad(clock.Now)
	tk := l.Start()
	clock.Advance(time.Millisecond)
	l.Done(tk, false)
	clock.Advance(time.Hour) // estimate underflows to ~0
	if c := l.cost(clock.Now(), 1e6); c > 1e-100 {
		t.Fatalf("idle decayed cost %v, want ~0", c)
	}
	l.Start()
	if c := l.cost(clock.Now(), 1e6); c < 1e300 {
		t.Fatalf("cost %v with pending requests and no estimate, want a penalty", c)
	}
}

func TestNoEndpoint(t *testing.T) {
	for _, p := range allPolicies(nil) {
		for name, ms := range map[string][]Member{
			"empty":                    nil,
			"all unhealthy, panic off": {{Load: NewLoad(nil), Key: "a:1"}, {Load: NewLoad(nil), Key: "b:1"}},
		} {
			t.Run(p.Name()+"/"+name, func(t *testing.T) {
				if name != "empty" {
					p = withPanic(p, 0)
				}
				if _, err := p.Build(ms).Pick(PickInfo{}); !errors.Is(err, ErrNoEndpoint) {
					t.Fatalf("err %v, want ErrNoEndpoint", err)
				}
			})
		}
	}
}

func withPanic(p Policy, th float64) Policy {
	switch p := p.(type) {
	case RoundRobin:
		p.PanicThreshold = th
		return p
	case Random:
		p.PanicThreshold = th
		return p
	case LeastRequest:
		p.PanicThreshold = th
		return p
	case RingHash:
		p.PanicThreshold = th
		return p
	case Maglev:
		p.PanicThreshold = th
		return p
	case PeakEWMA:
		p.PanicThreshold = th
		return p
	}
	panic("unknown policy")
}

func TestConcurrentPickAndLoad(t *testing.T) {
	for _, p := range allPolicies(nil) {
		t.Run(p.Name(), func(t *testing.T) {
			ms := healthy(nil, 16, 1, 2, 3)
			ms[3].Healthy = false
			pk := p.Build(ms)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 2000 {
						k, err := pk.Pick(PickInfo{Hash: uint64(g*7919 + i), HasHash: i%2 == 0})
						if err != nil {
							t.Error(err)
							return
						}
						tk := ms[k].Load.Start()
						ms[k].Load.Done(tk, i%10 == 0)
						_, _ = ms[k].Load.RTT()
					}
				})
			}
			// Rebuilding while picking shares the Loads.
			for range 5 {
				_ = p.Build(ms)
			}
			wg.Wait()
			for i, m := range ms {
				if a := m.Load.Active(); a != 0 {
					t.Fatalf("member %d: %d active after all requests ended", i, a)
				}
			}
		})
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	clock := newFakeClock()
	for _, p := range allPolicies(clock.Now) {
		for _, n := range []int{10, 1000} {
			ms := healthy(clock.Now, n, 1, 2)
			pk := p.Build(ms)
			info := PickInfo{Hash: rand.Uint64(), HasHash: true}
			if a := testing.AllocsPerRun(100, func() { _, _ = pk.Pick(info) }); a != 0 {
				t.Errorf("%s over %d members: %v allocs per pick, want 0", p.Name(), n, a)
			}
		}
	}
	l := NewLoad(clock.Now)
	if a := testing.AllocsPerRun(100, func() { l.Done(l.Start(), false) }); a != 0 {
		t.Errorf("Load.Start/Done: %v allocs, want 0", a)
	}
}

// TestPeakEWMANoStarvation: with two equal endpoints and one request at a
// time (P2C over two always compares both), the endpoint that has no sample
// yet must still be tried, and equal endpoints share the traffic. Before
// unsampled endpoints cost nothing while idle, the first endpoint to be
// measured took ~400 requests of every 401.
func TestPeakEWMANoStarvation(t *testing.T) {
	clock := newFakeClock()
	ms := healthy(clock.Now, 2)
	p := PeakEWMA{Clock: clock.Now}.Build(ms)
	hits := [2]int{}
	for range 1000 {
		i, err := p.Pick(PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		hits[i]++
		tk := ms[i].Load.Start()
		clock.Advance(300 * time.Microsecond)
		ms[i].Load.Done(tk, false)
	}
	if hits[0] < 300 || hits[1] < 300 {
		t.Fatalf("equal endpoints got %v of 1000 sequential requests", hits)
	}
}

// TestLoadForget: after Forget an endpoint counts as never measured, so an
// idle one costs nothing and peak EWMA picks it over a measured one.
func TestLoadForget(t *testing.T) {
	clock := newFakeClock()
	ms := healthy(clock.Now, 2)
	for _, m := range ms {
		tk := m.Load.Start()
		clock.Advance(time.Millisecond)
		m.Load.Done(tk, false)
	}
	// Endpoint 0 failed hard: it looks slow.
	tk := ms[0].Load.Start()
	clock.Advance(2 * time.Second)
	ms[0].Load.Done(tk, true)
	p := PeakEWMA{Clock: clock.Now}.Build(ms)
	if i, _ := p.Pick(PickInfo{}); i != 1 {
		t.Fatalf("picked %d before Forget, want the fast endpoint 1", i)
	}
	ms[0].Load.Forget()
	if _, ok := ms[0].Load.RTT(); ok {
		t.Fatal("estimate still present after Forget")
	}
	if i, _ := p.Pick(PickInfo{}); i != 0 {
		t.Fatalf("picked %d after Forget, want the forgotten endpoint 0", i)
	}
}
