package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// FaultInjection delays or aborts a share of the requests of the route
// rules that reference it, for testing how clients cope. Gateway API has no
// fault filter; an HTTPRoute or GRPCRoute rule references a FaultInjection
// of its own namespace with an ExtensionRef filter:
//
//	filters:
//	- type: ExtensionRef
//	  extensionRef: {group: weft.dev, kind: FaultInjection, name: slow-catalog}
type FaultInjection struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FaultInjectionSpec `json:"spec"`
	Status *Status            `json:"status,omitempty"`
}

// FaultInjectionSpec is the desired state of a FaultInjection. At least
// one of Delay and Abort is set. When both hit one request, the delay
// comes first, then the abort.
type FaultInjectionSpec struct {
	// Delay holds requests back before they are forwarded.
	Delay *FaultDelay `json:"delay,omitempty"`
	// Abort answers requests with an error instead of forwarding them.
	Abort *FaultAbort `json:"abort,omitempty"`
	// Headers restrict the fault to requests carrying all of these
	// headers. Default: every request of the rule.
	Headers []FaultHeaderMatch `json:"headers,omitempty"`
}

// FaultDelay is a fixed delay.
type FaultDelay struct {
	// FixedDelay is how long a request is held. Required, > 0.
	FixedDelay Duration `json:"fixedDelay"`
	// Percent of the requests delayed, 0-100. Default 100.
	Percent *int32 `json:"percent,omitempty"`
}

// FaultAbort is an error answer. Exactly one of HTTPStatus and GRPCStatus
// is set.
type FaultAbort struct {
	// HTTPStatus answered, 200-599.
	HTTPStatus *int32 `json:"httpStatus,omitempty"`
	// GRPCStatus answered (a trailers-only gRPC response), 1-16.
	GRPCStatus *int32 `json:"grpcStatus,omitempty"`
	// Percent of the requests aborted, 0-100. Default 100.
	Percent *int32 `json:"percent,omitempty"`
}

// FaultHeaderMatch matches one request header: exactly one of Value (an
// exact match) and Present is set.
type FaultHeaderMatch struct {
	// Name of the header, case-insensitive. Required.
	Name string `json:"name"`
	// Value the header must equal.
	Value string `json:"value,omitempty"`
	// Present: the header must be present, with any value.
	Present bool `json:"present,omitempty"`
}

// DefaultFaultPercent is the share of requests a delay or abort hits when
// its percent is unset.
const DefaultFaultPercent int32 = 100

// SetDefaults fills the documented defaults of the spec in place.
func (s *FaultInjectionSpec) SetDefaults() {
	if d := s.Delay; d != nil {
		orDefault(&d.Percent, DefaultFaultPercent)
	}
	if a := s.Abort; a != nil {
		orDefault(&a.Percent, DefaultFaultPercent)
	}
}

// SetDefaults fills the spec defaults.
func (f *FaultInjection) SetDefaults() { f.Spec.SetDefaults() }
