package xds

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/registry"
)

func TestDebouncer(t *testing.T) {
	svc := func(name string) change {
		return change{services: map[registry.ServiceKey]struct{}{{Namespace: "ns", Name: name}: {}}}
	}
	tests := []struct {
		name      string
		quiet     time.Duration
		max       time.Duration
		adds      []time.Duration // times of single-service changes
		all       bool            // one of the changes is "everything"
		wantFires []time.Duration // times at which fire ran
		wantSvcs  []int           // services per fire
	}{
		{
			name:      "one change fires after the quiet period",
			adds:      []time.Duration{0},
			wantFires: []time.Duration{100 * time.Millisecond},
			wantSvcs:  []int{1},
		},
		{
			name:      "changes within the quiet period merge",
			adds:      []time.Duration{0, 50 * time.Millisecond, 120 * time.Millisecond},
			wantFires: []time.Duration{220 * time.Millisecond},
			wantSvcs:  []int{3},
		},
		{
			name:      "a steady stream is capped at the maximum delay",
			adds:      everyN(50*time.Millisecond, 30), // 0 .. 1.45s
			wantFires: []time.Duration{time.Second, 1550 * time.Millisecond},
			wantSvcs:  []int{20, 10}, // the change at 1s comes after the fire
		},
		{
			name:      "separate bursts fire separately",
			adds:      []time.Duration{0, 500 * time.Millisecond},
			wantFires: []time.Duration{100 * time.Millisecond, 600 * time.Millisecond},
			wantSvcs:  []int{1, 1},
		},
		{
			name:      "custom quiet and max",
			quiet:     10 * time.Millisecond,
			max:       25 * time.Millisecond,
			adds:      everyN(5*time.Millisecond, 10),
			wantFires: []time.Duration{25 * time.Millisecond, 50 * time.Millisecond},
			wantSvcs:  []int{5, 5},
		},
		{
			name:      "everything absorbs services",
			adds:      []time.Duration{0, 10 * time.Millisecond},
			all:       true,
			wantFires: []time.Duration{110 * time.Millisecond},
			wantSvcs:  []int{-1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newManualClock()
			start := clock.Now()
			var fires []time.Duration
			var svcs []int
			var sinces []time.Time
			d := newDebouncer(clock, tt.quiet, tt.max, func(c change) {
				fires = append(fires, clock.Now().Sub(start))
				sinces = append(sinces, c.since)
				if c.all {
					svcs = append(svcs, -1)
				} else {
					svcs = append(svcs, len(c.services))
				}
			})
			defer d.stop()
			// Walk time in 5ms steps, adding changes when due.
			adds := slices.Clone(tt.adds)
			for now := time.Duration(0); now <= 3*time.Second; now += 5 * time.Millisecond {
				if now > 0 {
					clock.Advance(5 * time.Millisecond)
				}
				for len(adds) > 0 && adds[0] == now {
					c := svc(now.String())
					if tt.all && len(adds) == 1 {
						c = change{all: true}
					}
					d.add(c)
					adds = adds[1:]
				}
			}
			if !slices.Equal(fires, tt.wantFires) || !slices.Equal(svcs, tt.wantSvcs) {
				t.Fatalf("fires at %v with %v services; want %v with %v", fires, svcs, tt.wantFires, tt.wantSvcs)
			}
			if !sinces[0].Equal(start.Add(tt.adds[0])) {
				t.Fatalf("first batch since %v, want the first change's time", sinces[0].Sub(start))
			}
		})
	}
}

func everyN(step time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i) * step
	}
	return out
}

func TestDebouncerStop(t *testing.T) {
	clock := newManualClock()
	fired := false
	d := newDebouncer(clock, 0, 0, func(change) { fired = true })
	d.add(change{all: true})
	d.stop()
	clock.Advance(time.Hour)
	d.add(change{all: true})
	clock.Advance(time.Hour)
	if fired {
		t.Fatal("a stopped debouncer fired")
	}
}

func TestChangeMerge(t *testing.T) {
	k := func(n string) registry.ServiceKey { return registry.ServiceKey{Namespace: "ns", Name: n} }
	c := change{}
	c.merge(change{services: map[registry.ServiceKey]struct{}{k("a"): {}}, since: time.Unix(20, 0)})
	c.merge(change{services: map[registry.ServiceKey]struct{}{k("b"): {}}, since: time.Unix(10, 0)})
	if got := slices.SortedFunc(maps.Keys(c.services), func(a, b registry.ServiceKey) int { return cmpKey(a, b) }); len(got) != 2 || !c.since.Equal(time.Unix(10, 0)) {
		t.Fatalf("merged = %v since %v", got, c.since)
	}
	c.merge(change{all: true})
	if !c.all || c.services != nil {
		t.Fatalf("after merging all: %+v", c)
	}
}

func cmpKey(a, b registry.ServiceKey) int {
	if a.String() < b.String() {
		return -1
	}
	if a.String() > b.String() {
		return 1
	}
	return 0
}
