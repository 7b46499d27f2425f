package lb

import (
	"fmt"
	"math"
	"testing"
)

// level builds n members of priority p, the first h healthy, in locality loc
// with locality weight lw.
func lvl(p uint32, n, h int, loc string, lw uint32) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{Load: NewLoad(nil), Priority: p, Healthy: i < h, Locality: loc, LocalityWeight: lw,
			Key: fmt.Sprintf("%s-p%d-%d:80", loc, p, i)}
	}
	return ms
}

func cat(parts ...[]Member) []Member {
	var out []Member
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestPlanPriorities(t *testing.T) {
	tests := []struct {
		name    string
		common  Common
		members []Member
		// want: share of traffic per member index (sum 1); nil: no endpoint.
		want func(i int, m Member) float64
	}{
		{
			name:    "healthy P0 takes all",
			common:  Common{PanicThreshold: 50},
			members: cat(lvl(0, 4, 4, "a", 0), lvl(1, 4, 4, "a", 0)),
			want:    func(i int, m Member) float64 { return b2f(m.Priority == 0) / 4 },
		},
		{
			// 3/4 healthy × 1.4 = 105% → still 100%.
			name:    "overprovisioning hides a small loss",
			common:  Common{PanicThreshold: 50},
			members: cat(lvl(0, 4, 3, "a", 0), lvl(1, 4, 4, "a", 0)),
			want:    func(i int, m Member) float64 { return b2f(m.Priority == 0 && m.Healthy) / 3 },
		},
		{
			// P0 2/4 healthy: 70% stays, 30% spills to P1.
			name:    "spill over",
			common:  Common{PanicThreshold: 50},
			members: cat(lvl(0, 4, 2, "a", 0), lvl(1, 4, 4, "a", 0)),
			want: func(i int, m Member) float64 {
				switch {
				case m.Priority == 0 && m.Healthy:
					return 0.70 / 2
				case m.Priority == 1:
					return 0.30 / 4
				}
				return 0
			},
		},
		{
			name:    "P0 down",
			common:  Common{PanicThreshold: 50},
			members: cat(lvl(0, 4, 0, "a", 0), lvl(1, 4, 4, "a", 0)),
			want:    func(i int, m Member) float64 { return b2f(m.Priority == 1) / 4 },
		},
		{
			// P0 1/4 (35%), P1 1/4 (35%): total 70% scaled to 50/50;
			// both below the 50% panic threshold → total panic: load by
			// host count, every member regardless of health.
			name:    "panic in every level",
			common:  Common{PanicThreshold: 50},
			members: cat(lvl(0, 4, 1, "a", 0), lvl(1, 4, 1, "a", 0)),
			want:    func(i int, m Member) float64 { return 1.0 / 8 },
		},
		{
			// P0 1/4 (35%, panics), P1 3/5 (84%, 60% healthy: no
			// panic). Total 100% → no panic at all: 35% P0 healthy, 65% P1 healthy.
			name:    "enough health below: no panic",
			common:  Common{PanicThreshold: 50},
			members: cat(lvl(0, 4, 1, "a", 0), lvl(1, 5, 3, "a", 0)),
			want: func(i int, m Member) float64 {
				switch {
				case m.Priority == 0 && m.Healthy:
					return 0.35
				case m.Priority == 1 && m.Healthy:
					return 0.65 / 3
				}
				return 0
			},
		},
		{
			// One level 3/10 healthy: 42% < 100, 30% < 50 → panic.
			name:    "single level panic",
			common:  Common{PanicThreshold: 50},
			members: lvl(0, 10, 3, "a", 0),
			want:    func(i int, m Member) float64 { return 0.1 },
		},
		{
			// 6/10 healthy: 84% < 100 but 60% ≥ 50: healthy only.
			name:    "single level above threshold",
			common:  Common{PanicThreshold: 50},
			members: lvl(0, 10, 6, "a", 0),
			want:    func(i int, m Member) float64 { return b2f(m.Healthy) / 6 },
		},
		{
			name:    "all unhealthy, panic on",
			common:  Common{PanicThreshold: 50},
			members: lvl(0, 4, 0, "a", 0),
			want:    func(i int, m Member) float64 { return 0.25 },
		},
		{
			name:    "all unhealthy, panic off",
			common:  Common{},
			members: lvl(0, 4, 0, "a", 0),
		},
		{
			name:    "sparse priority numbers",
			common:  Common{PanicThreshold: 50},
			members: cat(lvl(7, 2, 2, "a", 0), lvl(3, 2, 1, "a", 0)),
			// P3: 1/2 → 70%; P7: 30%.
			want: func(i int, m Member) float64 {
				switch {
				case m.Priority == 3 && m.Healthy:
					return 0.7
				case m.Priority == 7:
					return 0.15
				}
				return 0
			},
		},
		{
			name:    "locality weights",
			common:  Common{PanicThreshold: 50, LocalityWeighted: true},
			members: cat(lvl(0, 2, 2, "r/a/", 1), lvl(0, 2, 2, "r/b/", 3)),
			want: func(i int, m Member) float64 {
				if m.Locality == "r/a/" {
					return 0.25 / 2
				}
				return 0.75 / 2
			},
		},
		{
			// b: 1 of 2 healthy → availability 0.7 → effective 2.1 vs 1.
			name:    "locality availability",
			common:  Common{PanicThreshold: 50, LocalityWeighted: true},
			members: cat(lvl(0, 2, 2, "r/a/", 1), lvl(0, 2, 1, "r/b/", 3)),
			want: func(i int, m Member) float64 {
				if m.Locality == "r/a/" {
					return 1 / 3.1 / 2
				}
				return b2f(m.Healthy) * 2.1 / 3.1
			},
		},
		{
			name:    "locality weight zero gets nothing",
			common:  Common{PanicThreshold: 50, LocalityWeighted: true},
			members: cat(lvl(0, 2, 2, "r/a/", 1), lvl(0, 2, 2, "r/b/", 0)),
			want:    func(i int, m Member) float64 { return b2f(m.Locality == "r/a/") / 2 },
		},
		{
			name:    "no locality weights: weighting off",
			common:  Common{PanicThreshold: 50, LocalityWeighted: true},
			members: cat(lvl(0, 1, 1, "r/a/", 0), lvl(0, 3, 3, "r/b/", 0)),
			want:    func(i int, m Member) float64 { return 0.25 },
		},
		{
			name:    "locality weighting disabled",
			common:  Common{PanicThreshold: 50},
			members: cat(lvl(0, 1, 1, "r/a/", 1), lvl(0, 3, 3, "r/b/", 9)),
			want:    func(i int, m Member) float64 { return 0.25 },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The plan itself, exactly.
			got := make([]float64, len(tc.members))
			for _, g := range tc.common.plan(tc.members) {
				sum := 0.0
				for _, w := range g.w {
					sum += w
				}
				for k, i := range g.idx {
					got[i] += g.share * g.w[k] / sum
				}
			}
			want := make([]float64, len(tc.members))
			for i, m := range tc.members {
				if tc.want != nil {
					want[i] = tc.want(i, m)
				}
			}
			near(t, got, want, 1e-9)

			// Every policy follows it.
			for _, p := range []Policy{
				RoundRobin{tc.common}, Random{tc.common}, LeastRequest{Common: tc.common},
				RingHash{Common: tc.common}, Maglev{Common: tc.common}, PeakEWMA{Common: tc.common},
			} {
				pk := p.Build(tc.members)
				if tc.want == nil {
					if _, err := pk.Pick(PickInfo{}); err == nil {
						t.Fatalf("%s: picked with no eligible member", p.Name())
					}
					continue
				}
				tol := 0.01
				if p.Name() == "ring_hash" {
					tol = 0.06
				}
				s := shares(t, pk, len(tc.members), 50_000, nil)
				for i := range s {
					if math.Abs(s[i]-want[i]) > tol || (want[i] == 0 && s[i] > 0) {
						t.Fatalf("%s: shares %.3f, want %.3f", p.Name(), s, want)
					}
				}
			}
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
