package lb

import (
	"math/rand/v2"
	"slices"
)

// Common holds the settings every policy shares (Envoy's common_lb_config).
// The zero value has panic mode off and locality weighting off; FromCluster
// sets Envoy's defaults.
type Common struct {
	// PanicThreshold is healthy_panic_threshold in percent, 0-100. When the
	// normalized health over all priorities is below 100% and a priority's
	// healthy share is below the threshold, that priority balances over all
	// its members regardless of health. 0 disables panic mode. Envoy's (and
	// FromCluster's) default is 50.
	PanicThreshold float64
	// LocalityWeighted turns on locality weighted load balancing: within a
	// priority, traffic goes to localities in proportion to
	// LocalityWeight × availability. Default off.
	LocalityWeighted bool
}

// overprovision is Envoy's default overprovisioning factor (1.4), in percent.
const overprovision = 140

// group is a set of members that share traffic together: a priority level,
// or one locality of it. share is the fraction of all traffic (0-1].
type group struct {
	share float64
	idx   []int32   // member indices
	w     []float64 // member weights (Weight, 0 → 1)
	equal bool      // all w equal
}

// level is the members of one priority.
type level struct {
	prio         uint32
	all, healthy []int32
	load         float64 // percent of all traffic
	panic        bool
	availPct     int // min(100, 1.4 × healthy/total) in percent
}

// plan applies Envoy's priority, panic and locality rules and returns the
// groups that receive traffic (nil if none).
func (c Common) plan(ms []Member) []group {
	if len(ms) == 0 {
		return nil
	}
	var lv []*level
	byPrio := map[uint32]*level{}
	for i, m := range ms {
		l := byPrio[m.Priority]
		if l == nil {
			l = &level{prio: m.Priority}
			byPrio[m.Priority] = l
			lv = append(lv, l)
		}
		l.all = append(l.all, int32(i))
		if m.Healthy {
			l.healthy = append(l.healthy, int32(i))
		}
	}
	slices.SortFunc(lv, func(a, b *level) int { return int(int64(a.prio) - int64(b.prio)) })

	// Healthy share per level (integer percent as Envoy) and normalized
	// total health.
	total := 0
	for _, l := range lv {
		l.availPct = min(100, overprovision*len(l.healthy)/len(l.all))
		total += l.availPct
	}
	total = min(total, 100)
	if total > 0 {
		// Distribute 100% from the highest priority down, scaled up when
		// the total health is below 100%.
		rem := 100
		first := -1
		for i, l := range lv {
			p := min(rem, l.availPct*100/total)
			l.load = float64(p)
			rem -= p
			if first < 0 && l.availPct > 0 {
				first = i
			}
		}
		if rem > 0 { // rounding
			lv[first].load += float64(rem)
		}
	}
	if total < 100 && c.PanicThreshold > 0 {
		allPanic := true
		for _, l := range lv {
			l.panic = float64(100*len(l.healthy))/float64(len(l.all)) < c.PanicThreshold
			allPanic = allPanic && l.panic
		}
		if allPanic { // Envoy: load by host count when every level panics
			for _, l := range lv {
				l.load = 100 * float64(len(l.all)) / float64(len(ms))
			}
		}
	}

	var gs []group
	for _, l := range lv {
		if l.load <= 0 {
			continue
		}
		cand := l.healthy
		if l.panic {
			cand = l.all
		}
		if len(cand) == 0 {
			continue
		}
		if !c.LocalityWeighted || l.panic {
			gs = append(gs, newGroup(ms, l.load/100, cand))
			continue
		}
		gs = append(gs, localityGroups(ms, l, cand)...)
	}
	return gs
}

// localityGroups splits the candidates of level l by locality, with shares in
// proportion to LocalityWeight × availability, availability being
// min(1, 1.4 × healthy/total) of the locality (Envoy). If no locality of the
// level has a weight, the level stays one group.
func localityGroups(ms []Member, l *level, cand []int32) []group {
	type loc struct {
		name           string
		w              uint32
		total, healthy int
		cand           []int32
	}
	var locs []*loc
	find := func(name string) *loc {
		for _, x := range locs {
			if x.name == name {
				return x
			}
		}
		x := &loc{name: name}
		locs = append(locs, x)
		return x
	}
	for _, i := range l.all {
		x := find(ms[i].Locality)
		x.total++
		if ms[i].Healthy {
			x.healthy++
		}
		x.w = max(x.w, ms[i].LocalityWeight)
	}
	for _, i := range cand {
		x := find(ms[i].Locality)
		x.cand = append(x.cand, i)
	}
	sum := 0.0
	eff := make([]float64, len(locs))
	for k, x := range locs {
		if len(x.cand) == 0 {
			continue
		}
		eff[k] = float64(x.w) * min(1, float64(overprovision*x.healthy)/float64(100*x.total))
		sum += eff[k]
	}
	if sum == 0 {
		return []group{newGroup(ms, l.load/100, cand)}
	}
	var gs []group
	for k, x := range locs {
		if eff[k] > 0 {
			gs = append(gs, newGroup(ms, l.load/100*eff[k]/sum, x.cand))
		}
	}
	return gs
}

func newGroup(ms []Member, share float64, idx []int32) group {
	g := group{share: share, idx: idx, w: make([]float64, len(idx)), equal: true}
	for k, i := range idx {
		g.w[k] = float64(max(ms[i].Weight, 1))
		if g.w[k] != g.w[0] {
			g.equal = false
		}
	}
	return g
}

// flatten merges groups into one weighted list: each member's weight becomes
// share × weight / group weight. With a single group the member weights are
// kept as they are (integers, which lets round robin schedule exactly).
func flatten(gs []group) (idx []int32, w []float64, equal bool) {
	if len(gs) == 1 {
		return gs[0].idx, gs[0].w, gs[0].equal
	}
	equal = true
	for _, g := range gs {
		sum := 0.0
		for _, x := range g.w {
			sum += x
		}
		for k, i := range g.idx {
			idx = append(idx, i)
			w = append(w, g.share*g.w[k]/sum)
			if w[len(w)-1] != w[0] {
				equal = false
			}
		}
	}
	return idx, w, equal
}

// groupSet chooses a group at random in proportion to the shares.
type groupSet struct {
	cum []float64 // cumulative shares
}

func newGroupSet(gs []group) groupSet {
	s := groupSet{cum: make([]float64, len(gs))}
	t := 0.0
	for i, g := range gs {
		t += g.share
		s.cum[i] = t
	}
	return s
}

// choose returns the index of a group.
func (s *groupSet) choose() int {
	if len(s.cum) == 1 {
		return 0
	}
	return searchFloat(s.cum, rand.Float64()*s.cum[len(s.cum)-1])
}

// searchFloat returns the first index i with cum[i] > x (the last if none).
func searchFloat(cum []float64, x float64) int {
	lo, hi := 0, len(cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cum[m] > x {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// weighted samples indices 0..n-1 in proportion to weights.
type weighted struct {
	n   int
	cum []float64 // cumulative weights; nil when all are equal
}

func newWeighted(w []float64, equal bool) weighted {
	s := weighted{n: len(w)}
	if equal {
		return s
	}
	s.cum = make([]float64, len(w))
	t := 0.0
	for i, x := range w {
		t += x
		s.cum[i] = t
	}
	return s
}

func (s *weighted) sample() int {
	if s.cum == nil {
		return rand.IntN(s.n)
	}
	return searchFloat(s.cum, rand.Float64()*s.cum[len(s.cum)-1])
}
