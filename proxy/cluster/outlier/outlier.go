// Package outlier is passive outlier detection with Envoy's semantics
// (envoy.config.cluster.v3.OutlierDetection): every request's result is
// reported to its endpoint's Host; consecutive 5xx, consecutive gateway
// failures and consecutive local-origin failures eject the host at once, and
// a Detector per cluster sweeps every Interval for success-rate and
// failure-percentage outliers and returns hosts whose ejection time is over.
//
// The shape follows grpc-go's outlier detection balancer: detection wraps the
// load balancer instead of living inside it. Ejected hosts are handed to the
// picker as unhealthy members (lb.Member.Healthy false), so lb's panic
// threshold routes to all members when too many are out.
//
// A Host is long-lived: it belongs to the cluster pool's Endpoint, keyed by
// address, so that counters and ejection state survive config updates. A
// Detector belongs to one cluster build; while a rebuilt cluster replaces the
// old one both detectors are attached to the same hosts, and the newest
// attached config decides the thresholds.
//
// Deviations from Envoy: ejection is checked against the hosts of one
// cluster, not per priority (as Envoy); a host named by two clusters shares
// one ejection state (the endpoint is the same process).
package outlier

import (
	"sync"
	"sync/atomic"
	"time"
)

// Kind is the local-origin class of a request failure.
type Kind uint8

const (
	// None: the upstream answered (Result.Status holds the status; 0 means
	// a connection that succeeded without an HTTP status, e.g. a tunnel).
	None Kind = iota
	// ConnectFailure: the connection to the endpoint could not be opened.
	ConnectFailure
	// Reset: the connection or stream broke before a complete response head.
	Reset
	// Timeout: no response head before the (per-try) timeout.
	Timeout
	// ClientCancel: the downstream went away; never counts against the
	// endpoint.
	ClientCancel
)

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case ConnectFailure:
		return "connect_failure"
	case Reset:
		return "reset"
	case Timeout:
		return "timeout"
	case ClientCancel:
		return "client_cancel"
	}
	return "unknown"
}

// Result is the outcome of one request to an endpoint.
type Result struct {
	// Status is the upstream HTTP status (for gRPC, the HTTP status the
	// grpc-status maps to); used when Failure is None.
	Status int
	// Failure is the local-origin failure, None when a response head arrived.
	Failure Kind
}

// Failed reports whether r is a failure of the endpoint: a local-origin
// failure other than a client cancel, or a 5xx status.
func (r Result) Failed() bool {
	switch r.Failure {
	case None:
		return r.Status >= 500 && r.Status <= 599
	case ClientCancel:
		return false
	}
	return true
}

// Reason says why a host was ejected. The names are Envoy's stat suffixes.
type Reason uint8

const (
	Consecutive5xx Reason = iota
	ConsecutiveGatewayFailure
	ConsecutiveLocalOriginFailure
	SuccessRate
	SuccessRateLocalOrigin
	FailurePercentage
	FailurePercentageLocalOrigin
	NumReasons // number of reasons, for arrays indexed by Reason
)

var reasonNames = [NumReasons]string{
	"consecutive_5xx", "consecutive_gateway_failure", "consecutive_local_origin_failure",
	"success_rate", "local_origin_success_rate", "failure_percentage", "local_origin_failure_percentage",
}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Stats are the outlier counters of one cluster, meant to be kept across its
// rebuilds (cluster.Stats holds one). Safe for concurrent use.
type Stats struct {
	// Enforced counts ejections that happened, by reason.
	Enforced [NumReasons]atomic.Uint64
	// Detected counts outliers found, enforced or not, by reason.
	Detected [NumReasons]atomic.Uint64
	// Overflow counts ejections refused by max_ejection_percent.
	Overflow atomic.Uint64
	// Active is the number of hosts of the cluster ejected now.
	Active atomic.Int64
}

// Clock is the time source of detectors. Implementations must be safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f on its own goroutine once d has elapsed, unless
	// stop is called first; stop reports whether it prevented the call.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the wall clock. Safe for concurrent use.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Host is the outlier state of one endpoint address: consecutive-failure
// counters, the request counts of the current interval, and the ejection
// state. It is created by the cluster pool and outlives cluster builds.
// Safe for concurrent use; Report never blocks on a healthy path and does not
// allocate.
type Host struct {
	addr string

	cons5xx, consGateway, consLocal atomic.Uint32
	// Request counts of the current interval, external and local origin:
	// total in the high 32 bits, failures in the low 32 bits.
	ext, local atomic.Uint64
	ejected    atomic.Bool

	subs atomic.Pointer[subscribers]

	// Ejection bookkeeping, guarded by mu.
	mu          sync.Mutex
	ejectedAt   time.Time
	backoff     uint32 // ejection time multiplier
	jitter      time.Duration
	lastUneject time.Time
}

// subscribers is the immutable set of detectors attached to a host; cfg is
// the config of the most recently attached one.
type subscribers struct {
	cfg *Config
	ds  []*Detector
}

// NewHost returns the state of a fresh endpoint.
func NewHost(addr string) *Host { return &Host{addr: addr} }

// Addr is the endpoint's address.
func (h *Host) Addr() string { return h.addr }

// Ejected reports whether the host is ejected now.
func (h *Host) Ejected() bool { return h.ejected.Load() }

// EjectionCount is the ejection time multiplier: the number of recent
// ejections, decremented for each interval the host stays healthy.
func (h *Host) EjectionCount() uint32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.backoff
}

const (
	one     = 1 << 32 // one request in a packed count
	failBit = 1       // one failure in a packed count
)

// Report records the result of one request. Consecutive-failure ejections
// happen inside Report, on the caller's goroutine, which then also runs the
// detectors' OnChange callbacks. Without an attached detector it does
// nothing.
func (h *Host) Report(r Result) {
	s := h.subs.Load()
	if s == nil || r.Failure == ClientCancel {
		return
	}
	cfg := s.cfg
	code := r.Status
	switch r.Failure {
	case ConnectFailure, Reset, Timeout:
		if cfg.SplitExternalLocalOriginErrors {
			h.local.Add(one | failBit)
			if n := h.consLocal.Add(1); n == cfg.ConsecutiveLocalOriginFailure {
				h.consecutive(s, ConsecutiveLocalOriginFailure)
			}
			return
		}
		code = 503
		if r.Failure == Timeout {
			code = 504
		}
	default:
		if cfg.SplitExternalLocalOriginErrors {
			h.local.Add(one)
			if h.consLocal.Load() != 0 {
				h.consLocal.Store(0)
			}
		}
	}
	if code < 500 || code > 599 {
		h.ext.Add(one)
		if h.cons5xx.Load() != 0 {
			h.cons5xx.Store(0)
		}
		if h.consGateway.Load() != 0 {
			h.consGateway.Store(0)
		}
		return
	}
	h.ext.Add(one | failBit)
	if code >= 502 && code <= 504 {
		if n := h.consGateway.Add(1); n == cfg.ConsecutiveGatewayFailure {
			h.consecutive(s, ConsecutiveGatewayFailure)
		}
	} else if h.consGateway.Load() != 0 {
		h.consGateway.Store(0)
	}
	if n := h.cons5xx.Add(1); n == cfg.Consecutive5xx {
		h.consecutive(s, Consecutive5xx)
	}
}

// consecutive hands a consecutive-failure detection to the attached
// detectors and resets the counter (Envoy resets it whether or not the host
// was ejected, so that the next run of failures is detected again).
func (h *Host) consecutive(s *subscribers, r Reason) {
	changed := false
	for _, d := range s.ds {
		if d.detect(h, r) {
			changed = true
			break
		}
	}
	switch r {
	case Consecutive5xx:
		h.cons5xx.Store(0)
	case ConsecutiveGatewayFailure:
		h.consGateway.Store(0)
	case ConsecutiveLocalOriginFailure:
		h.consLocal.Store(0)
	}
	if changed {
		notifyHosts(h)
	}
}

func (h *Host) attach(d *Detector) {
	for {
		old := h.subs.Load()
		next := &subscribers{cfg: d.cfg, ds: []*Detector{d}}
		if old != nil {
			next.ds = append(next.ds, old.ds...)
		}
		if h.subs.CompareAndSwap(old, next) {
			return
		}
	}
}

func (h *Host) detach(d *Detector) {
	for {
		old := h.subs.Load()
		if old == nil {
			return
		}
		var next *subscribers
		for _, x := range old.ds {
			if x == d {
				continue
			}
			if next == nil {
				next = &subscribers{cfg: x.cfg}
			}
			next.ds = append(next.ds, x)
		}
		if h.subs.CompareAndSwap(old, next) {
			return
		}
	}
}

// resetCounters clears the consecutive counters (on un-ejection, so that a
// host does not go out again on a few errors).
func (h *Host) resetCounters() {
	h.cons5xx.Store(0)
	h.consGateway.Store(0)
	h.consLocal.Store(0)
}

// takeCounts returns and clears the counts of the interval that ended:
// total and failed, external and local origin.
func (h *Host) takeCounts() (extTotal, extFailed, locTotal, locFailed uint64) {
	e, l := h.ext.Swap(0), h.local.Swap(0)
	return e >> 32, e & (one - 1), l >> 32, l & (one - 1)
}
