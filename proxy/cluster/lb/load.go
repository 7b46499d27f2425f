package lb

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Load is the live load state of one endpoint: its in-flight requests and a
// peak-EWMA estimate of its round-trip time. One Load exists per endpoint
// address for as long as any cluster names it (the cluster pool keeps it), so
// successive pickers see the same counts and estimates.
//
// Load is safe for concurrent use. Start and Done never block; reads of the
// estimate (done by pickers) are lock-free.
type Load struct {
	active atomic.Int64
	clock  func() time.Time
	epoch  time.Time
	decay  atomic.Int64 // time constant in ns; set by peak-EWMA pickers

	// The estimate is written under mu and published through a sequence
	// lock (seq is odd while a write is in progress) so that readers never
	// take the mutex.
	mu    sync.Mutex
	seq   atomic.Uint64
	est   atomic.Uint64 // float64 bits, nanoseconds
	stamp atomic.Int64  // ns since epoch of the last sample
}

// Ticket is handed out by Load.Start and given back to Load.Done. It is a
// small value; the zero Ticket is not valid.
type Ticket struct {
	start time.Time
}

// DefaultDecay is the peak-EWMA time constant used when no peak-EWMA policy
// has configured the Load (Finagle's and Linkerd's default).
const DefaultDecay = 10 * time.Second

// failure handling: a failed request must not make an endpoint look fast (a
// fast-failing endpoint would otherwise attract all traffic), so its sample
// is twice the larger of its RTT and the current estimate, capped at
// maxFailSample unless the RTT itself is larger.
const (
	failFactor    = 2
	maxFailSample = 10 * time.Second
)

// NewLoad returns an idle Load whose latencies are measured with clock
// (nil: time.Now). Pickers that read the estimate must use the same clock.
func NewLoad(clock func() time.Time) *Load {
	if clock == nil {
		clock = time.Now
	}
	l := &Load{clock: clock, epoch: clock()}
	l.decay.Store(int64(DefaultDecay))
	return l
}

// Forget drops the latency estimate, as if the endpoint had never been
// measured (an idle unmeasured endpoint costs nothing, so it is tried at
// once). The cluster calls it when an endpoint comes back to health: the
// failures that made it look slow describe the instance that went away,
// not the one that came back (a restarted process, an un-ejected host).
func (l *Load) Forget() {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seq.Load()
	if s == 0 {
		return
	}
	l.seq.Store(s + 1) // readers retry while a write is in progress
	l.est.Store(0)
	l.stamp.Store(0)
	l.seq.Store(0)
}

// Start records the beginning of a request and returns the ticket to pass to
// Done exactly once when it ends.
func (l *Load) Start() Ticket {
	l.active.Add(1)
	return Ticket{start: l.clock()}
}

// Done records the end of the request started with t: it decrements the
// in-flight count and feeds the round-trip time into the peak-EWMA estimate.
// The stored estimate is a moving average of samples: a sample above it
// replaces it at once (peak), a lower one is blended in with weight
// 1-exp(-elapsed/decay), elapsed being the time since the previous sample.
// Readers see the stored estimate decayed towards zero for the time since the
// last sample (see estimate). failed marks a request that ended in an error;
// see failFactor.
func (l *Load) Done(t Ticket, failed bool) {
	l.active.Add(-1)
	now := l.clock()
	rtt := float64(now.Sub(t.start))
	if rtt < 0 {
		rtt = 0
	}
	at := int64(now.Sub(l.epoch))
	tau := float64(l.decay.Load())

	l.mu.Lock()
	s := l.seq.Load()
	cur := math.Float64frombits(l.est.Load())
	st := l.stamp.Load()
	if failed {
		rtt = math.Min(failFactor*math.Max(rtt, cur), math.Max(rtt, float64(maxFailSample)))
	}
	next := rtt
	if s != 0 && rtt < cur { // s == 0: first sample
		w := math.Exp(-float64(max(at-st, 0)) / tau)
		next = cur*w + rtt*(1-w)
	}
	l.seq.Store(s + 1)
	l.est.Store(math.Float64bits(next))
	l.stamp.Store(at)
	l.seq.Store(s + 2)
	l.mu.Unlock()
}

// Active reports the number of requests in flight.
func (l *Load) Active() int64 { return l.active.Load() }

// RTT reports the current latency estimate, decayed to now, and whether any
// sample has been recorded.
func (l *Load) RTT() (time.Duration, bool) {
	e, ok := l.estimate(l.clock())
	return time.Duration(e), ok
}

// setDecay sets the peak-EWMA time constant. Peak-EWMA pickers call it when
// built; with two such clusters sharing an endpoint the latest build wins.
func (l *Load) setDecay(d time.Duration) {
	if l.decay.Load() != int64(d) {
		l.decay.Store(int64(d))
	}
}

// estimate returns the RTT estimate in ns decayed towards zero for the time
// since the last sample (as Finagle and Linkerd do, so that an endpoint that
// was slow is tried again once its estimate has aged), and false when no
// sample was ever recorded.
func (l *Load) estimate(now time.Time) (float64, bool) {
	var s uint64
	var e float64
	var st int64
	for spins := 0; ; spins++ {
		s = l.seq.Load()
		if s&1 == 0 {
			e = math.Float64frombits(l.est.Load())
			st = l.stamp.Load()
			if l.seq.Load() == s {
				break
			}
		}
		if spins > 8 {
			runtime.Gosched()
		}
	}
	if s == 0 {
		return 0, false
	}
	if el := int64(now.Sub(l.epoch)) - st; el > 0 {
		e *= math.Exp(-float64(el) / float64(l.decay.Load()))
	}
	return e, true
}

// cost is the peak-EWMA cost: estimate × (in-flight + 1), with defaultRTT
// (ns) standing in for a busy endpoint that has no sample yet. An estimate that
// has decayed to nothing while requests are pending is penalised (Finagle),
// so that an endpoint that stopped answering does not attract traffic.
func (l *Load) cost(now time.Time, defaultRTT float64) float64 {
	e, ok := l.estimate(now)
	a := l.active.Load()
	if a < 0 {
		a = 0
	}
	if !ok {
		// No sample yet: an idle endpoint costs nothing, so that it is
		// tried (otherwise an endpoint that never served would never be
		// measured, and P2C over two endpoints would starve it); while its
		// first requests are in flight it costs defaultRTT each.
		if a == 0 {
			return 0
		}
		return defaultRTT * float64(a+1)
	}
	if e < 1 && a > 0 {
		return math.MaxFloat64/2 + float64(a)
	}
	return e * float64(a+1)
}
