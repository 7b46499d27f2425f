package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackendPolicy defaults.
const (
	DefaultConnectTimeout       = 5 * time.Second
	DefaultRetryAttempts  int32 = 2
	DefaultBackoffBase          = 25 * time.Millisecond
	DefaultBackoffMax           = 250 * time.Millisecond
)

// DefaultRetryOn is the retry condition list used when Retries is set
// without RetryOn: failures where the request certainly did not reach the
// application, so a retry is safe for any method.
var DefaultRetryOn = []string{RetryConnectFailure, RetryRefusedStream, RetryUnavailable}

// Retry conditions (Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on).
const (
	Retry5xx               = "5xx"
	RetryGatewayError      = "gateway-error"
	RetryReset             = "reset"
	RetryConnectFailure    = "connect-failure"
	RetryRetriable4xx      = "retriable-4xx"
	RetryRefusedStream     = "refused-stream"
	RetryUnavailable       = "unavailable"        // gRPC
	RetryCancelled         = "cancelled"          // gRPC
	RetryDeadlineExceeded  = "deadline-exceeded"  // gRPC
	RetryResourceExhausted = "resource-exhausted" // gRPC
)

// RetryConditions lists every valid retryOn value.
var RetryConditions = []string{
	Retry5xx, RetryGatewayError, RetryReset, RetryConnectFailure, RetryRetriable4xx,
	RetryRefusedStream, RetryUnavailable, RetryCancelled, RetryDeadlineExceeded, RetryResourceExhausted,
}

// LBPolicy names a load-balancing algorithm.
type LBPolicy string

// Load-balancing policies.
const (
	// LBPeakEWMA: power of two choices weighted by a peak-sensitive moving
	// average of latency (weft's default for HTTP services).
	LBPeakEWMA     LBPolicy = "peak_ewma"
	LBRoundRobin   LBPolicy = "round_robin"
	LBLeastRequest LBPolicy = "least_request"
	LBRandom       LBPolicy = "random"
	LBRingHash     LBPolicy = "ring_hash" // consistent hashing, needs Hash
	LBMaglev       LBPolicy = "maglev"    // consistent hashing, needs Hash
)

// LBPolicies lists the valid policies.
var LBPolicies = []LBPolicy{LBPeakEWMA, LBRoundRobin, LBLeastRequest, LBRandom, LBRingHash, LBMaglev}

// Valid reports whether p is one of LBPolicies.
func (p LBPolicy) Valid() bool {
	for _, q := range LBPolicies {
		if p == q {
			return true
		}
	}
	return false
}

// IsHash reports whether p is a consistent-hashing policy.
func (p LBPolicy) IsHash() bool { return p == LBRingHash || p == LBMaglev }

// BackendPolicy configures how clients reach a Service: load balancing,
// timeouts, retries, connection limits and retry budget, outlier detection
// and active health checking. Slow start and locality-aware failover are
// not configurable yet.
type BackendPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BackendPolicySpec `json:"spec"`
	Status *Status           `json:"status,omitempty"`
}

// BackendPolicySpec is the desired state of a BackendPolicy. Every field but
// TargetRef is optional; unset means the documented default.
type BackendPolicySpec struct {
	// TargetRef is the Service (same namespace) the policy applies to.
	// Required.
	TargetRef TargetRef `json:"targetRef"`

	// LoadBalancer picks the algorithm. Default: peak_ewma for http, http2
	// and grpc ports, round_robin for tcp ports (decided by the translator
	// when LoadBalancer or its Policy is unset).
	LoadBalancer *LoadBalancer `json:"loadBalancer,omitempty"`

	// ConnectTimeout bounds the TCP (and TLS) connect to one endpoint.
	// Default 5s.
	ConnectTimeout Duration `json:"connectTimeout,omitzero"`

	// RequestTimeout bounds a whole request including retries; HTTPRoute
	// timeouts take precedence. Default: none (no timeout).
	RequestTimeout Duration `json:"requestTimeout,omitzero"`

	// IdleTimeout closes upstream connections idle this long. Default: 1h
	// (Envoy's default).
	IdleTimeout Duration `json:"idleTimeout,omitzero"`

	// Retries of failed requests. Default: no retries.
	Retries *Retries `json:"retries,omitempty"`

	// ConnectionLimits is a circuit breaker on the client side. Default:
	// Envoy's defaults (1024 of each, 3 concurrent retries).
	ConnectionLimits *ConnectionLimits `json:"connectionLimits,omitempty"`

	// RetryBudget bounds the retries in flight to the Service by a share
	// of the requests in flight, instead of the fixed
	// connectionLimits.maxRetries (set one or the other). Default: no
	// budget (maxRetries applies).
	RetryBudget *RetryBudget `json:"retryBudget,omitempty"`

	// OutlierDetection ejects endpoints that fail (passive health
	// checking, from the responses to real requests). Default: off.
	OutlierDetection *OutlierDetection `json:"outlierDetection,omitempty"`

	// HealthCheck probes endpoints actively. weft's proxy probes an
	// endpoint only while it is failing (ejected or marked unhealthy),
	// not all the time, so N clients of M endpoints do not flood the
	// mesh; a passing probe returns the endpoint to rotation. Default: off.
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`
}

// TargetRef names the object a policy attaches to.
type TargetRef struct {
	// Group of the target. Default "weft.dev"; "" and "core" are accepted
	// for a Service too.
	Group string `json:"group,omitempty"`
	// Kind of the target. Default "Service" (the only kind supported).
	Kind string `json:"kind,omitempty"`
	// Name of the target. Required.
	Name string `json:"name"`
}

// LoadBalancer selects the load-balancing algorithm.
type LoadBalancer struct {
	// Policy is one of peak_ewma, round_robin, least_request, random,
	// ring_hash, maglev. Default: see BackendPolicySpec.LoadBalancer.
	Policy LBPolicy `json:"policy,omitempty"`

	// Hash says what a consistent-hashing policy hashes. Required for
	// ring_hash and maglev, not allowed for the others.
	Hash *HashPolicy `json:"hash,omitempty"`

	// SlowStart ramps up the share of an instance that has just entered
	// rotation (new, restarted, or back from ejection) over a window,
	// instead of sending it its full share at once (Envoy's
	// slow_start_config). For peak_ewma, round_robin and least_request.
	SlowStart *SlowStart `json:"slowStart,omitempty"`
}

// SlowStart is a ramp-up window: an instance's weight is multiplied by
// max(minWeightPercent/100, (age/window)^(1/aggression)) until age reaches
// window.
type SlowStart struct {
	// Window is how long the ramp-up lasts. Required, > 0.
	Window Duration `json:"window"`
	// Aggression shapes the ramp: 1 (default) is linear; above 1 the
	// share grows faster at first.
	Aggression *float64 `json:"aggression,omitempty"`
	// MinWeightPercent is the share an instance gets at the start, as a
	// percentage of its full weight, 0-100. Default 10.
	MinWeightPercent *int32 `json:"minWeightPercent,omitempty"`
}

// SlowStart defaults.
const (
	DefaultSlowStartAggression       = 1.0
	DefaultSlowStartMinWeightPercent = int32(10)
)

// HashPolicy says what a request is hashed on. Exactly one field is set.
type HashPolicy struct {
	// Header is the name of a request header to hash.
	Header string `json:"header,omitempty"`
	// Cookie is the name of a cookie to hash.
	Cookie string `json:"cookie,omitempty"`
	// SourceIP hashes the client's address.
	SourceIP bool `json:"sourceIP,omitempty"`
}

// Retries configures request retries.
type Retries struct {
	// Attempts is the number of retries after the first try, 0-10.
	// Default 2.
	Attempts *int32 `json:"attempts,omitempty"`

	// PerTryTimeout bounds each try. Default: none (the request timeout).
	PerTryTimeout Duration `json:"perTryTimeout,omitzero"`

	// RetryOn lists the conditions that trigger a retry: 5xx,
	// gateway-error, reset, connect-failure, retriable-4xx, refused-stream,
	// and for gRPC unavailable, cancelled, deadline-exceeded,
	// resource-exhausted. Default: connect-failure, refused-stream,
	// unavailable.
	RetryOn []string `json:"retryOn,omitempty"`

	// Backoff between retries: exponential with full jitter.
	// Default base 25ms, max 250ms.
	Backoff *Backoff `json:"backoff,omitempty"`
}

// Backoff is an exponential backoff.
type Backoff struct {
	// Base interval. Default 25ms.
	Base Duration `json:"base,omitzero"`
	// Max interval, >= Base. Default 10 x Base (250ms with the default base).
	Max Duration `json:"max,omitzero"`
}

// ConnectionLimits bound what one client proxy sends to the Service (all
// endpoints together). Unset fields keep Envoy's defaults.
type ConnectionLimits struct {
	// MaxConnections to all endpoints. Default 1024.
	MaxConnections *int32 `json:"maxConnections,omitempty"`
	// MaxPendingRequests waiting for a connection. Default 1024.
	MaxPendingRequests *int32 `json:"maxPendingRequests,omitempty"`
	// MaxRequests in flight (HTTP/2 and gRPC). Default 1024.
	MaxRequests *int32 `json:"maxRequests,omitempty"`
	// MaxRetries in flight. Default 3.
	MaxRetries *int32 `json:"maxRetries,omitempty"`
}

// RetryBudget is Envoy's retry budget: at most
// max(MinRetryConcurrency, Percent% of the requests in flight) retries may
// be in flight at once.
type RetryBudget struct {
	// Percent of the active requests that may be retries, 0-100.
	// Default 20.
	Percent *int32 `json:"percent,omitempty"`
	// MinRetryConcurrency is the number of concurrent retries always
	// allowed, whatever the load. Default 3.
	MinRetryConcurrency *int32 `json:"minRetryConcurrency,omitempty"`
}

// OutlierDetection configures passive health checking. Every detector is
// off unless set, except consecutive5xx (default 5, as Envoy). An ejected
// endpoint is out of rotation for baseEjectionTime × the number of times
// it was ejected in a row, capped at maxEjectionTime.
type OutlierDetection struct {
	// Consecutive5xx ejects an endpoint after this many 5xx answers in a
	// row (connect failures and resets count as 503 unless
	// consecutiveLocalOriginFailures is set). Default 5; 0 turns the
	// detector off.
	Consecutive5xx *int32 `json:"consecutive5xx,omitempty"`
	// ConsecutiveGatewayErrors ejects after this many gateway errors in a
	// row (502, 503, 504, connect failure, reset). Default: off.
	ConsecutiveGatewayErrors *int32 `json:"consecutiveGatewayErrors,omitempty"`
	// ConsecutiveLocalOriginFailures ejects after this many failures of
	// the proxy itself in a row (connect failure, reset, timeout), counted
	// apart from the endpoint's answers. Default: off.
	ConsecutiveLocalOriginFailures *int32 `json:"consecutiveLocalOriginFailures,omitempty"`

	// Interval between sweeps of the success-rate and failure-percentage
	// detectors and un-ejections. Default 10s.
	Interval Duration `json:"interval,omitzero"`
	// BaseEjectionTime is the ejection time of a first ejection.
	// Default 30s.
	BaseEjectionTime Duration `json:"baseEjectionTime,omitzero"`
	// MaxEjectionTime caps the ejection time, >= baseEjectionTime.
	// Default 300s, or baseEjectionTime when that is longer.
	MaxEjectionTime Duration `json:"maxEjectionTime,omitzero"`
	// MaxEjectionPercent of the endpoints that may be ejected at once,
	// 1-100. Default 10.
	MaxEjectionPercent *int32 `json:"maxEjectionPercent,omitempty"`

	// SuccessRate ejects endpoints whose success rate is far below the
	// others'. Default: off.
	SuccessRate *SuccessRateDetection `json:"successRate,omitempty"`
	// FailurePercentage ejects endpoints whose share of failures is above
	// a threshold. Default: off.
	FailurePercentage *FailurePercentageDetection `json:"failurePercentage,omitempty"`

	// PanicThreshold is the share of healthy endpoints, in percent (0-100),
	// under which the proxy ignores health and ejections and spreads
	// requests over every endpoint. 0 turns panic mode off. Default 50.
	PanicThreshold *int32 `json:"panicThreshold,omitempty"`
}

// SuccessRateDetection ejects an endpoint whose success rate over the last
// interval is below mean - stdev × stdevFactor/1000 of the endpoints with
// enough requests.
type SuccessRateDetection struct {
	// MinimumHosts with at least requestVolume requests needed for the
	// detector to run. Default 5.
	MinimumHosts *int32 `json:"minimumHosts,omitempty"`
	// RequestVolume is the number of requests an endpoint needs in an
	// interval to be judged. Default 100.
	RequestVolume *int32 `json:"requestVolume,omitempty"`
	// StdevFactor in thousandths: 1900 means 1.9 standard deviations.
	// Default 1900.
	StdevFactor *int32 `json:"stdevFactor,omitempty"`
}

// FailurePercentageDetection ejects an endpoint whose failures over the
// last interval are at least threshold percent of its requests.
type FailurePercentageDetection struct {
	// Threshold in percent, 1-100. Default 85.
	Threshold *int32 `json:"threshold,omitempty"`
	// MinimumHosts with at least requestVolume requests needed for the
	// detector to run. Default 5.
	MinimumHosts *int32 `json:"minimumHosts,omitempty"`
	// RequestVolume is the number of requests an endpoint needs in an
	// interval to be judged. Default 50.
	RequestVolume *int32 `json:"requestVolume,omitempty"`
}

// HealthCheck is an active probe of each endpoint. Exactly one of HTTP,
// GRPC and TCP is set. Probes go to the endpoint's sidecar, which passes
// them to the application.
type HealthCheck struct {
	// HTTP probes GET path and expects one of expectedStatuses.
	HTTP *HTTPHealthCheck `json:"http,omitempty"`
	// GRPC calls grpc.health.v1.Health/Check and expects SERVING.
	GRPC *GRPCHealthCheck `json:"grpc,omitempty"`
	// TCP only connects.
	TCP bool `json:"tcp,omitempty"`

	// Interval between probes of a failing endpoint. Default 5s.
	Interval Duration `json:"interval,omitzero"`
	// Timeout of one probe, <= interval. Default 1s.
	Timeout Duration `json:"timeout,omitzero"`
	// UnhealthyThreshold is the number of failed probes in a row that mark
	// an endpoint unhealthy. Default 2.
	UnhealthyThreshold *int32 `json:"unhealthyThreshold,omitempty"`
	// HealthyThreshold is the number of passed probes in a row that mark
	// it healthy again. Default 1.
	HealthyThreshold *int32 `json:"healthyThreshold,omitempty"`
}

// HTTPHealthCheck is an HTTP probe.
type HTTPHealthCheck struct {
	// Path requested, starting with '/'. Required.
	Path string `json:"path"`
	// ExpectedStatuses are the HTTP statuses (100-599) that pass.
	// Default [200].
	ExpectedStatuses []int32 `json:"expectedStatuses,omitempty"`
}

// GRPCHealthCheck is a gRPC health-checking-protocol probe.
type GRPCHealthCheck struct {
	// Service name sent in the HealthCheckRequest. Default "" (the server
	// as a whole).
	Service string `json:"service,omitempty"`
}

// Defaults of the resilience settings.
const (
	DefaultRetryBudgetPercent             int32 = 20
	DefaultRetryBudgetMinRetryConcurrency int32 = 3

	DefaultConsecutive5xx           int32 = 5
	DefaultOutlierInterval                = 10 * time.Second
	DefaultBaseEjectionTime               = 30 * time.Second
	DefaultMaxEjectionTime                = 300 * time.Second
	DefaultMaxEjectionPercent       int32 = 10
	DefaultPanicThreshold           int32 = 50
	DefaultSuccessRateMinimumHosts  int32 = 5
	DefaultSuccessRateRequestVolume int32 = 100
	DefaultSuccessRateStdevFactor   int32 = 1900
	DefaultFailurePercentThreshold  int32 = 85
	DefaultFailurePercentMinHosts   int32 = 5
	DefaultFailurePercentVolume     int32 = 50

	DefaultHealthInterval           = 5 * time.Second
	DefaultHealthTimeout            = 1 * time.Second
	DefaultUnhealthyThreshold int32 = 2
	DefaultHealthyThreshold   int32 = 1
	DefaultExpectedStatus     int32 = 200
)

// orDefault sets *p to def when it is nil.
func orDefault(p **int32, def int32) {
	if *p == nil {
		v := def
		*p = &v
	}
}

// SetDefaults fills the documented defaults of the spec in place. Defaults
// that depend on the target's protocol (the load-balancing policy) are left
// to the translator.
func (s *BackendPolicySpec) SetDefaults() {
	if s.TargetRef.Group == "" {
		s.TargetRef.Group = GroupName
	}
	if s.TargetRef.Kind == "" {
		s.TargetRef.Kind = KindService
	}
	if s.ConnectTimeout.IsZero() {
		s.ConnectTimeout = D(DefaultConnectTimeout)
	}
	if r := s.Retries; r != nil {
		if r.Attempts == nil {
			a := DefaultRetryAttempts
			r.Attempts = &a
		}
		if len(r.RetryOn) == 0 {
			r.RetryOn = append([]string(nil), DefaultRetryOn...)
		}
		if r.Backoff == nil {
			r.Backoff = &Backoff{}
		}
		if r.Backoff.Base.IsZero() {
			r.Backoff.Base = D(DefaultBackoffBase)
		}
		if r.Backoff.Max.IsZero() {
			r.Backoff.Max = D(10 * r.Backoff.Base.Duration)
		}
	}
	if lb := s.LoadBalancer; lb != nil && lb.SlowStart != nil {
		if lb.SlowStart.Aggression == nil {
			a := DefaultSlowStartAggression
			lb.SlowStart.Aggression = &a
		}
		orDefault(&lb.SlowStart.MinWeightPercent, DefaultSlowStartMinWeightPercent)
	}
	if b := s.RetryBudget; b != nil {
		orDefault(&b.Percent, DefaultRetryBudgetPercent)
		orDefault(&b.MinRetryConcurrency, DefaultRetryBudgetMinRetryConcurrency)
	}
	if o := s.OutlierDetection; o != nil {
		o.SetDefaults()
	}
	if h := s.HealthCheck; h != nil {
		h.SetDefaults()
	}
}

// SetDefaults fills the documented defaults in place.
func (o *OutlierDetection) SetDefaults() {
	orDefault(&o.Consecutive5xx, DefaultConsecutive5xx)
	if o.Interval.IsZero() {
		o.Interval = D(DefaultOutlierInterval)
	}
	if o.BaseEjectionTime.IsZero() {
		o.BaseEjectionTime = D(DefaultBaseEjectionTime)
	}
	if o.MaxEjectionTime.IsZero() {
		o.MaxEjectionTime = D(max(DefaultMaxEjectionTime, o.BaseEjectionTime.Duration))
	}
	orDefault(&o.MaxEjectionPercent, DefaultMaxEjectionPercent)
	orDefault(&o.PanicThreshold, DefaultPanicThreshold)
	if sr := o.SuccessRate; sr != nil {
		orDefault(&sr.MinimumHosts, DefaultSuccessRateMinimumHosts)
		orDefault(&sr.RequestVolume, DefaultSuccessRateRequestVolume)
		orDefault(&sr.StdevFactor, DefaultSuccessRateStdevFactor)
	}
	if fp := o.FailurePercentage; fp != nil {
		orDefault(&fp.Threshold, DefaultFailurePercentThreshold)
		orDefault(&fp.MinimumHosts, DefaultFailurePercentMinHosts)
		orDefault(&fp.RequestVolume, DefaultFailurePercentVolume)
	}
}

// SetDefaults fills the documented defaults in place.
func (h *HealthCheck) SetDefaults() {
	if h.Interval.IsZero() {
		h.Interval = D(DefaultHealthInterval)
	}
	if h.Timeout.IsZero() {
		h.Timeout = D(DefaultHealthTimeout)
	}
	orDefault(&h.UnhealthyThreshold, DefaultUnhealthyThreshold)
	orDefault(&h.HealthyThreshold, DefaultHealthyThreshold)
	if h.HTTP != nil && len(h.HTTP.ExpectedStatuses) == 0 {
		h.HTTP.ExpectedStatuses = []int32{DefaultExpectedStatus}
	}
}

// SetDefaults fills the spec defaults.
func (p *BackendPolicy) SetDefaults() { p.Spec.SetDefaults() }
