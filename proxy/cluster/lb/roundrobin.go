package lb

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
)

// RoundRobin is weighted round robin. Build precomputes a smooth schedule
// (each member appears in proportion to its weight, spread evenly, as
// earliest-deadline-first would order it); pickers walk it with one atomic
// counter that starts at a random offset, so that many sidecars do not all
// start with the same endpoint. RoundRobin is safe for concurrent use.
type RoundRobin struct{ Common }

// Name implements Policy.
func (RoundRobin) Name() string { return "round_robin" }

// Build implements Policy.
func (p RoundRobin) Build(ms []Member) Picker {
	gs := p.plan(ms)
	if len(gs) == 0 {
		return noPicker{}
	}
	idx, w, equal := flatten(gs)
	rr := &rrPicker{seq: schedule(idx, w, equal)}
	rr.next.Store(rand.Uint64N(uint64(len(rr.seq))))
	return rr
}

type rrPicker struct {
	seq  []int32
	next atomic.Uint64
}

func (p *rrPicker) Pick(PickInfo) (int, error) {
	n := p.next.Add(1)
	return int(p.seq[n%uint64(len(p.seq))]), nil
}

// maxSchedule bounds the schedule length (or 4 entries per member if more);
// weights that do not fit exactly are rounded to it.
const maxSchedule = 1 << 16

// schedule returns a cyclic sequence of member indices in which each member
// appears in proportion to its weight, interleaved: the k-th appearance of
// member i is ordered by the deadline (k+½)/q_i.
func schedule(idx []int32, w []float64, equal bool) []int32 {
	if equal {
		return slices.Clone(idx)
	}
	q := quantize(w, max(maxSchedule, 4*len(w)))
	type slot struct {
		d float64
		i int32
	}
	var ss []slot
	for k, n := range q {
		for j := range n {
			ss = append(ss, slot{(float64(j) + 0.5) / float64(n), int32(k)})
		}
	}
	slices.SortFunc(ss, func(a, b slot) int {
		if c := cmp.Compare(a.d, b.d); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	seq := make([]int32, len(ss))
	for k, s := range ss {
		seq[k] = idx[s.i]
	}
	return seq
}

// quantize turns weights into positive integer counts: exact (divided by
// their gcd) when the weights are integers summing to at most limit,
// otherwise rounded proportionally to a total of about limit.
func quantize(w []float64, limit int) []int {
	q := make([]int, len(w))
	exact := true
	g, sum := 0, 0
	for i, x := range w {
		if x != math.Trunc(x) || x < 1 || x > float64(limit) {
			exact = false
			break
		}
		q[i] = int(x)
		g = gcd(g, q[i])
	}
	if exact {
		for i := range q {
			q[i] /= g
			sum += q[i]
		}
		if sum <= limit {
			return q
		}
	}
	total := 0.0
	for _, x := range w {
		total += x
	}
	for i, x := range w {
		q[i] = max(1, int(math.Round(x*float64(limit)/total)))
	}
	return q
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Random picks members at random in proportion to their weights. Safe for
// concurrent use.
type Random struct{ Common }

// Name implements Policy.
func (Random) Name() string { return "random" }

// Build implements Policy.
func (p Random) Build(ms []Member) Picker {
	gs := p.plan(ms)
	if len(gs) == 0 {
		return noPicker{}
	}
	idx, w, equal := flatten(gs)
	return &randomPicker{idx: idx, s: newWeighted(w, equal)}
}

type randomPicker struct {
	idx []int32
	s   weighted
}

func (p *randomPicker) Pick(PickInfo) (int, error) {
	return int(p.idx[p.s.sample()]), nil
}
