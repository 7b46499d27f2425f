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
// timeouts, retries and connection limits.
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
}

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
}

// SetDefaults fills the spec defaults.
func (p *BackendPolicy) SetDefaults() { p.Spec.SetDefaults() }
