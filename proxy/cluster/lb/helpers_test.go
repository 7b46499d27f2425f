package lb

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock. Safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// healthy returns n healthy members with the given weights (cycled; none: 1).
func healthy(clock func() time.Time, n int, weights ...uint32) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{Load: NewLoad(clock), Healthy: true, Key: addr(i)}
		if len(weights) > 0 {
			ms[i].Weight = weights[i%len(weights)]
		}
	}
	return ms
}

func addr(i int) string { return fmt.Sprintf("10.0.%d.%d:8080", i/250, i%250+1) }

// shares picks n times and returns the fraction each member got.
func shares(t testing.TB, p Picker, members, n int, info func(int) PickInfo) []float64 {
	t.Helper()
	c := make([]float64, members)
	for i := range n {
		var pi PickInfo
		if info != nil {
			pi = info(i)
		}
		k, err := p.Pick(pi)
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		c[k]++
	}
	for i := range c {
		c[i] /= float64(n)
	}
	return c
}

// near fails unless got and want agree within tol (absolute) for every index.
func near(t testing.TB, got, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol {
			t.Fatalf("shares %.4f, want %.4f ±%.3f (index %d)", got, want, tol, i)
		}
	}
}

// allPolicies returns one of every policy with Envoy's defaults.
func allPolicies(clock func() time.Time) []Policy {
	com := Common{PanicThreshold: DefaultPanicThreshold}
	return []Policy{
		RoundRobin{com},
		Random{com},
		LeastRequest{Common: com, ChoiceCount: 2, ActiveRequestBias: 1},
		RingHash{Common: com},
		Maglev{Common: com},
		PeakEWMA{Common: com, Clock: clock},
	}
}
