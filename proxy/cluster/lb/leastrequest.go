package lb

import (
	"math"
	"math/rand/v2"
	"time"
)

// LeastRequest prefers members with fewer requests in flight, as Envoy's
// LEAST_REQUEST:
//   - when all members of a group have the same weight, it samples
//     ChoiceCount members at random and takes the one with the fewest active
//     requests (power of two choices by default);
//   - otherwise it aims at Envoy's effective weight
//     weight / (active+1)^ActiveRequestBias: it samples a member in
//     proportion to its weight and accepts it with probability
//     1/(active+1)^bias, up to ChoiceCount tries, falling back to the
//     least-loaded sample. With bias 0 this is plain weighted random.
//
// Members need a non-nil Load. LeastRequest is safe for concurrent use.
type LeastRequest struct {
	Common
	// ChoiceCount is the number of members sampled per pick; 0 means 2.
	ChoiceCount uint32
	// ActiveRequestBias is the exponent of the active-request penalty for
	// weighted members; FromCluster's default is Envoy's 1.0.
	ActiveRequestBias float64
}

// Name implements Policy.
func (LeastRequest) Name() string { return "least_request" }

// Build implements Policy.
func (p LeastRequest) Build(ms []Member) Picker {
	gs := p.plan(ms)
	if len(gs) == 0 {
		return noPicker{}
	}
	lp := &lrPicker{gs: newGroupSet(gs), choices: int(max(p.ChoiceCount, 2)), bias: p.ActiveRequestBias}
	lp.sets = make([]memberSet, len(gs))
	for i, g := range gs {
		lp.sets[i] = newMemberSet(ms, g)
	}
	return lp
}

// memberSet is a group bound to the members' Loads.
type memberSet struct {
	idx   []int32
	loads []*Load
	s     weighted
	equal bool
}

func newMemberSet(ms []Member, g group) memberSet {
	s := memberSet{idx: g.idx, loads: make([]*Load, len(g.idx)), s: newWeighted(g.w, g.equal), equal: g.equal}
	for k, i := range g.idx {
		s.loads[k] = ms[i].Load
	}
	return s
}

type lrPicker struct {
	gs      groupSet
	sets    []memberSet
	choices int
	bias    float64
}

func (p *lrPicker) Pick(PickInfo) (int, error) {
	s := &p.sets[p.gs.choose()]
	if len(s.idx) == 1 {
		return int(s.idx[0]), nil
	}
	if s.equal {
		best, ba := -1, int64(math.MaxInt64)
		for range p.choices {
			k := s.s.sample()
			if a := s.loads[k].Active(); a < ba {
				best, ba = k, a
			}
		}
		return int(s.idx[best]), nil
	}
	best, bp := -1, -1.0
	for range p.choices {
		k := s.s.sample()
		a := max(s.loads[k].Active(), 0)
		if a == 0 || p.bias == 0 {
			return int(s.idx[k]), nil
		}
		var pr float64
		if p.bias == 1 {
			pr = 1 / float64(a+1)
		} else {
			pr = 1 / math.Pow(float64(a+1), p.bias)
		}
		if rand.Float64() < pr {
			return int(s.idx[k]), nil
		}
		if pr > bp {
			best, bp = k, pr
		}
	}
	return int(s.idx[best]), nil
}

// PeakEWMA is the latency-aware policy of Finagle and Linkerd: it samples two
// members (distinct when weights are equal, in proportion to weight
// otherwise) and takes the one with the lower cost
// rtt_estimate × (active+1). The estimate is peak-sensitive: a sample above
// it replaces it at once, lower samples decay it with time constant Decay,
// and it decays towards zero while no samples arrive, so that a slow member
// is tried again later. Members without samples cost DefaultRTT.
//
// Members need a non-nil Load created with the same clock as Clock.
// PeakEWMA is safe for concurrent use.
type PeakEWMA struct {
	Common
	// Decay is the time constant of the moving average; 0 means 10s.
	Decay time.Duration
	// DefaultRTT is the estimate of a member with no sample; 0 means 1ms.
	DefaultRTT time.Duration
	// Clock reads the time for decaying estimates; nil means time.Now.
	Clock func() time.Time
}

// Default peak-EWMA settings.
const (
	DefaultPeakEWMADecay = DefaultDecay
	DefaultPeakEWMARTT   = time.Millisecond
)

// Name implements Policy.
func (PeakEWMA) Name() string { return "peak_ewma" }

// Build implements Policy. It also sets Decay on the members' Loads.
func (p PeakEWMA) Build(ms []Member) Picker {
	gs := p.plan(ms)
	if len(gs) == 0 {
		return noPicker{}
	}
	decay := p.Decay
	if decay <= 0 {
		decay = DefaultPeakEWMADecay
	}
	rtt := p.DefaultRTT
	if rtt <= 0 {
		rtt = DefaultPeakEWMARTT
	}
	clock := p.Clock
	if clock == nil {
		clock = time.Now
	}
	for _, m := range ms {
		if m.Load != nil {
			m.Load.setDecay(decay)
		}
	}
	pp := &ewmaPicker{gs: newGroupSet(gs), clock: clock, rtt: float64(rtt)}
	pp.sets = make([]memberSet, len(gs))
	for i, g := range gs {
		pp.sets[i] = newMemberSet(ms, g)
	}
	return pp
}

type ewmaPicker struct {
	gs    groupSet
	sets  []memberSet
	clock func() time.Time
	rtt   float64
}

func (p *ewmaPicker) Pick(PickInfo) (int, error) {
	s := &p.sets[p.gs.choose()]
	n := len(s.idx)
	if n == 1 {
		return int(s.idx[0]), nil
	}
	var a, b int
	if s.equal {
		a = rand.IntN(n)
		b = rand.IntN(n - 1)
		if b >= a {
			b++
		}
	} else {
		a, b = s.s.sample(), s.s.sample()
	}
	now := p.clock()
	if s.loads[b].cost(now, p.rtt) < s.loads[a].cost(now, p.rtt) {
		a = b
	}
	return int(s.idx[a]), nil
}
