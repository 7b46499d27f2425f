// Package v1alpha1 holds the Go types of the weft resource kinds under the
// API version weft.dev/v1alpha1: Service, Workload, BackendPolicy and
// FaultInjection.
//
// Every kind has the Kubernetes shape {apiVersion, kind, metadata, spec,
// status} so that the same YAML works with `weft apply` and, later, as a CRD.
// JSON field names are camelCase. Durations are strings such as "250ms"
// (see Duration).
//
// Defaults: every spec has a SetDefaults method that fills the documented
// defaults in place; the object-level SetDefaults also fills the defaults that
// depend on the object's name. control/resource applies them when it decodes,
// so stored objects and everything downstream (translator, runtime) see
// defaulted values.
//
// Values of these types are plain data and are not safe for concurrent
// mutation; treat stored objects as read-only and copy before changing.
package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

const (
	// GroupName is the API group of the weft kinds.
	GroupName = "weft.dev"
	// Version is the API version of this package.
	Version = "v1alpha1"
	// APIVersion is the apiVersion value of the weft kinds: "weft.dev/v1alpha1".
	APIVersion = GroupName + "/" + Version
)

// Kind names.
const (
	KindService        = "Service"
	KindWorkload       = "Workload"
	KindBackendPolicy  = "BackendPolicy"
	KindFaultInjection = "FaultInjection"
)

// Status is the observed state the control plane reports for a weft object.
// It is ignored on apply.
type Status struct {
	// ObservedGeneration is the metadata.generation the conditions describe.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions follow the Kubernetes condition conventions.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
