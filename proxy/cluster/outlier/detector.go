package outlier

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Options are the collaborators of a Detector.
type Options struct {
	// Clock drives the interval sweep and ejection times; nil: SystemClock.
	Clock Clock
	// OnChange is called after the ejection state of one of the detector's
	// hosts changed. It runs on the goroutine that caused the change: the
	// request that reported the failure (Host.Report), the interval timer,
	// or the caller of Uneject. It must not block and must not call Stop;
	// rebuilding a picker is the intended use. Calls may overlap; the
	// callee reads the hosts' current state. nil: none.
	OnChange func()
	// Stats receives the counters; nil: a private Stats.
	Stats *Stats
	// Roll returns a number in [0, 100) compared with the enforcing
	// percentages; nil: math/rand/v2.
	Roll func() uint32
}

// Detector is the outlier detector of one cluster build: it decides
// ejections over its hosts and runs the interval sweep on a timer it owns
// from Start until Stop. Safe for concurrent use.
type Detector struct {
	cfg      *Config
	hosts    []*Host
	clock    Clock
	onChange func()
	stats    *Stats
	roll     func() uint32

	mu       sync.Mutex
	started  bool
	stopped  bool
	stop     func() bool
	inflight sync.WaitGroup // interval sweeps and OnChange calls in progress
}

// NewDetector returns a detector over hosts (the members of one cluster,
// which must not be changed afterwards) with configuration cfg.
func NewDetector(cfg *Config, hosts []*Host, o Options) *Detector {
	d := &Detector{cfg: cfg, hosts: hosts, clock: o.Clock, onChange: o.OnChange, stats: o.Stats, roll: o.Roll}
	if d.clock == nil {
		d.clock = SystemClock{}
	}
	if d.stats == nil {
		d.stats = &Stats{}
	}
	if d.roll == nil {
		d.roll = func() uint32 { return rand.Uint32N(100) }
	}
	return d
}

// Config returns the detector's configuration.
func (d *Detector) Config() *Config { return d.cfg }

// Stats returns the detector's counters.
func (d *Detector) Stats() *Stats { return d.stats }

// Start attaches the detector to its hosts (from now on their reports are
// judged with its config) and starts the interval sweep. It is a no-op on a
// started or stopped detector.
func (d *Detector) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started || d.stopped {
		return
	}
	d.started = true
	for _, h := range d.hosts {
		h.attach(d)
	}
	d.stats.Active.Store(int64(d.countEjected()))
	d.stop = d.clock.AfterFunc(d.cfg.Interval, d.tick)
}

// Stop detaches the detector from its hosts, stops the sweep and waits for
// a sweep or OnChange call in progress. Idempotent. Ejection state stays on
// the hosts for the next detector.
func (d *Detector) Stop() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	stop := d.stop
	d.mu.Unlock()
	for _, h := range d.hosts {
		h.detach(d)
	}
	if stop != nil {
		stop()
	}
	d.inflight.Wait()
}

// Active returns the number of the detector's hosts ejected now.
func (d *Detector) Active() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.countEjected()
}

// Uneject returns h to service at once (a passed active health check) and
// reports whether it was ejected. Its consecutive counters are cleared; its
// ejection count is kept, so that a host that fails again is ejected for
// longer.
func (d *Detector) Uneject(h *Host) bool {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return false
	}
	ok := d.unejectLocked(h, d.clock.Now())
	d.stats.Active.Store(int64(d.countEjected()))
	d.mu.Unlock()
	if ok {
		notifyHosts(h)
	}
	return ok
}

// detect is called by Host.Report for a consecutive-failure detection; it
// reports whether h was ejected.
func (d *Detector) detect(h *Host, r Reason) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started || d.stopped {
		return false
	}
	return d.ejectLocked(h, r, d.clock.Now())
}

// changed runs OnChange unless the detector is stopped.
func (d *Detector) changed() {
	if d.onChange == nil {
		return
	}
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.inflight.Add(1)
	d.mu.Unlock()
	defer d.inflight.Done()
	d.onChange()
}

func (d *Detector) countEjected() int {
	n := 0
	for _, h := range d.hosts {
		if h.ejected.Load() {
			n++
		}
	}
	return n
}

func (c *Config) enforcing(r Reason) uint32 {
	switch r {
	case Consecutive5xx:
		return c.EnforcingConsecutive5xx
	case ConsecutiveGatewayFailure:
		return c.EnforcingConsecutiveGatewayFailure
	case ConsecutiveLocalOriginFailure:
		return c.EnforcingConsecutiveLocalOriginFailure
	case SuccessRate:
		return c.EnforcingSuccessRate
	case SuccessRateLocalOrigin:
		return c.EnforcingLocalOriginSuccessRate
	case FailurePercentage:
		return c.EnforcingFailurePercentage
	case FailurePercentageLocalOrigin:
		return c.EnforcingFailurePercentageLocalOrigin
	}
	return 0
}

// ejectLocked ejects h for reason r if max_ejection_percent and the
// enforcing percentage allow it (Envoy's DetectorImpl::ejectHost). d.mu is
// held.
func (d *Detector) ejectLocked(h *Host, r Reason, now time.Time) bool {
	if h.ejected.Load() {
		return false
	}
	d.stats.Detected[r].Add(1)
	active := d.countEjected()
	if 100*(active+1) > int(d.cfg.MaxEjectionPercent)*len(d.hosts) && !(d.cfg.AlwaysEjectOneHost && active == 0) {
		d.stats.Overflow.Add(1)
		return false
	}
	if e := d.cfg.enforcing(r); e == 0 || e < 100 && d.roll() >= e {
		return false
	}
	h.mu.Lock()
	if h.ejected.Load() { // ejected meanwhile by another cluster's detector
		h.mu.Unlock()
		return false
	}
	h.ejected.Store(true)
	h.ejectedAt = now
	if d.cfg.BaseEjectionTime*time.Duration(h.backoff) < d.cfg.MaxEjectionTime {
		h.backoff++
	}
	h.jitter = 0
	if j := d.cfg.MaxEjectionTimeJitter; j > 0 {
		h.jitter = time.Duration(rand.Int64N(int64(j) + 1))
	}
	h.mu.Unlock()
	d.stats.Enforced[r].Add(1)
	d.stats.Active.Store(int64(active + 1))
	return true
}

// unejectLocked returns h to service. d.mu is held.
func (d *Detector) unejectLocked(h *Host, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ejected.Load() {
		return false
	}
	h.resetCounters()
	h.lastUneject = now
	h.ejected.Store(false)
	return true
}

// tick is the interval sweep (Envoy's DetectorImpl::onIntervalTimer):
// un-eject hosts whose time is over, decay the ejection count of hosts
// that stayed in, then success-rate and failure-percentage detection over
// the counts of the interval that ended.
func (d *Detector) tick() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.inflight.Add(1)
	defer d.inflight.Done()
	now := d.clock.Now()
	var changed []*Host
	type sample struct {
		h               *Host
		total, failures uint64
	}
	ext := make([]sample, 0, len(d.hosts))
	loc := make([]sample, 0, len(d.hosts))
	for _, h := range d.hosts {
		et, ef, lt, lf := h.takeCounts()
		h.mu.Lock()
		ejected := h.ejected.Load()
		expired := ejected && now.Sub(h.ejectedAt) >= d.cfg.ejectionTime(h.backoff)+h.jitter
		if !ejected && h.backoff > 0 && !h.lastUneject.IsZero() && now.Sub(h.lastUneject) >= d.cfg.Interval {
			h.backoff--
		}
		h.mu.Unlock()
		if expired && d.unejectLocked(h, now) {
			changed = append(changed, h)
			continue
		}
		if !ejected {
			ext = append(ext, sample{h, et, ef})
			loc = append(loc, sample{h, lt, lf})
		}
	}
	sweep := func(ss []sample, srReason, fpReason Reason) {
		srHosts, fpHosts := 0, 0
		var sum float64
		for _, s := range ss {
			if s.total >= uint64(d.cfg.SuccessRateRequestVolume) && s.total > 0 {
				srHosts++
				sum += rate(s.total, s.failures)
			}
			if s.total >= uint64(d.cfg.FailurePercentageRequestVolume) && s.total > 0 {
				fpHosts++
			}
		}
		if srHosts > 0 && srHosts >= int(d.cfg.SuccessRateMinimumHosts) {
			mean := sum / float64(srHosts)
			var variance float64
			for _, s := range ss {
				if s.total >= uint64(d.cfg.SuccessRateRequestVolume) && s.total > 0 {
					variance += math.Pow(rate(s.total, s.failures)-mean, 2)
				}
			}
			stdev := math.Sqrt(variance / float64(srHosts))
			threshold := mean - float64(d.cfg.SuccessRateStdevFactor)/1000*stdev
			for _, s := range ss {
				if s.total >= uint64(d.cfg.SuccessRateRequestVolume) && s.total > 0 && rate(s.total, s.failures) < threshold {
					if d.ejectLocked(s.h, srReason, now) {
						changed = append(changed, s.h)
					}
				}
			}
		}
		if fpHosts > 0 && fpHosts >= int(d.cfg.FailurePercentageMinimumHosts) {
			for _, s := range ss {
				if s.total >= uint64(d.cfg.FailurePercentageRequestVolume) && s.total > 0 &&
					100-rate(s.total, s.failures) >= float64(d.cfg.FailurePercentageThreshold) {
					if d.ejectLocked(s.h, fpReason, now) {
						changed = append(changed, s.h)
					}
				}
			}
		}
	}
	sweep(ext, SuccessRate, FailurePercentage)
	if d.cfg.SplitExternalLocalOriginErrors {
		sweep(loc, SuccessRateLocalOrigin, FailurePercentageLocalOrigin)
	}
	d.stats.Active.Store(int64(d.countEjected()))
	d.stop = d.clock.AfterFunc(d.cfg.Interval, d.tick)
	d.mu.Unlock()
	notifyHosts(changed...)
}

// rate is the success rate in percent.
func rate(total, failures uint64) float64 {
	return 100 * float64(total-min(failures, total)) / float64(total)
}

// notifyHosts runs OnChange once on every detector attached to any of hs.
func notifyHosts(hs ...*Host) {
	var seen []*Detector
	for _, h := range hs {
		s := h.subs.Load()
		if s == nil {
			continue
		}
		for _, d := range s.ds {
			dup := false
			for _, x := range seen {
				dup = dup || x == d
			}
			if !dup {
				seen = append(seen, d)
			}
		}
	}
	for _, d := range seen {
		d.changed()
	}
}
