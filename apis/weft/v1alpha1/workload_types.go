package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Workload defaults.
const (
	DefaultReplicas         int32 = 1
	DefaultServiceAccount         = "default"
	DefaultReadinessPeriod        = time.Second
	DefaultFailureThreshold int32 = 3
)

// Workload is a program the mesh runs (locally with `weft up`) or knows
// about: its command, how many instances, which Service they back, how to
// tell they are ready and which other Services they call.
type Workload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WorkloadSpec `json:"spec"`
	Status *Status      `json:"status,omitempty"`
}

// WorkloadSpec is the desired state of a Workload.
type WorkloadSpec struct {
	// Command is the program and its arguments, run without a shell.
	// Optional: a Workload with neither command nor build is run elsewhere
	// (Kubernetes, a VM) and only declared here. With `weft up`, a relative
	// program path that contains a "/" resolves against the folder of the
	// mesh file, and instances run in that folder.
	Command []string `json:"command,omitempty"`

	// Build says how `weft up` builds the program from source before it
	// starts the instances. When set, Command must be empty: the built
	// binary is the program. Optional.
	Build *Build `json:"build,omitempty"`

	// Args are appended to the program's arguments (after Command[1:], or
	// after the built binary). Optional.
	Args []string `json:"args,omitempty"`

	// Env adds environment variables to every instance. Written either as a
	// list of {name, value} or as a map name: value; stored as a list sorted
	// by name when given as a map.
	Env EnvVars `json:"env,omitempty"`

	// Replicas is the number of instances. Default 1; 0 stops all instances.
	Replicas *int32 `json:"replicas,omitempty"`

	// Service is the Service (same namespace) the instances back. Default:
	// the Workload's name.
	Service string `json:"service,omitempty"`

	// Protocol the application speaks. Default: the protocol of the Service
	// port the application listens on (see Port); "http" if unknown.
	Protocol Protocol `json:"protocol,omitempty"`

	// Port is the Service port (name or number) the application serves.
	// Optional; default: the Service's first port.
	Port *intstr.IntOrString `json:"port,omitempty"`

	// ServiceAccount is the identity of the instances
	// (spiffe://<td>/ns/<namespace>/sa/<serviceAccount>). Default "default".
	ServiceAccount string `json:"serviceAccount,omitempty"`

	// Readiness says how the sidecar checks that an instance is ready before
	// it receives traffic. Optional: without it an instance is ready as soon
	// as its process runs.
	Readiness *Readiness `json:"readiness,omitempty"`

	// Upstreams are the Services this workload calls through a local port
	// of its sidecar (Consul style explicit upstreams).
	Upstreams []Upstream `json:"upstreams,omitempty"`

	// Labels are added to every instance (and used by Service selectors).
	// The label "app" defaults to the Workload's name.
	Labels map[string]string `json:"labels,omitempty"`
}

// Build is how `weft up` builds a Workload's program from source.
type Build struct {
	// Go is a Go package path, as `go build` takes it ("./cmd/catalog" or
	// "example.com/shop/catalog"). A relative path resolves against the
	// folder of the mesh file, where `go build` runs. The binary is written
	// to <state-dir>/bin/<namespace>-<name> and rebuilt on every start of
	// the workload (the Go build cache makes an unchanged build quick).
	// Required.
	Go string `json:"go"`
}

// Readiness is the readiness check of a Workload. Exactly one of HTTPPath
// and TCP is set.
type Readiness struct {
	// HTTPPath is probed with GET; any 2xx or 3xx answer is ready. Must
	// start with "/".
	HTTPPath string `json:"httpPath,omitempty"`

	// TCP: a successful TCP connect is ready.
	TCP bool `json:"tcp,omitempty"`

	// Period between checks. Default 1s.
	Period Duration `json:"period,omitzero"`

	// FailureThreshold is the number of consecutive failures after which a
	// ready instance becomes unready (its sidecar's registration turns
	// unready, so no proxy sends it traffic). Default 3. Under `weft up`, an
	// instance that stays unready for max(5s, 5 × period) is considered hung:
	// it is killed and restarted with the usual backoff.
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
}

// Upstream binds a Service the workload calls to a local port: the sidecar
// listens on 127.0.0.1:Port and forwards to the Service.
type Upstream struct {
	// Service name. Required.
	Service string `json:"service"`

	// Namespace of the Service. Default: the Workload's namespace.
	Namespace string `json:"namespace,omitempty"`

	// Port is the local port the sidecar listens on, 1-65535. Required.
	Port int32 `json:"port"`

	// ServicePort is the port of the Service to reach (name or number).
	// Optional; default: the Service's first port.
	ServicePort *intstr.IntOrString `json:"servicePort,omitempty"`
}

// EnvVar is one environment variable.
type EnvVar struct {
	// Name of the variable. Required.
	Name string `json:"name"`
	// Value of the variable; may be empty.
	Value string `json:"value"`
}

// EnvVars is a list of environment variables that also decodes from a map.
type EnvVars []EnvVar

// UnmarshalJSON accepts [{"name": n, "value": v}, ...] or {n: v, ...}.
func (e *EnvVars) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*e = nil
		return nil
	case len(b) > 0 && b[0] == '{':
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("env as a map: values must be strings: %w", err)
		}
		out := make(EnvVars, 0, len(m))
		for k, v := range m {
			out = append(out, EnvVar{Name: k, Value: v})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
		*e = out
		return nil
	case len(b) > 0 && b[0] == '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("env as a list of {name, value}: %w", err)
		}
		l := make(EnvVars, len(raw))
		for i, r := range raw {
			dec := json.NewDecoder(bytes.NewReader(r))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&l[i]); err != nil {
				return fmt.Errorf("env[%d]: want {name, value} with string values: %w", i, err)
			}
		}
		*e = l
		return nil
	default:
		return fmt.Errorf("env: want a list of {name, value} or a map of name: value, got %s", truncate(b))
	}
}

// Map returns the variables as a map (later entries win).
func (e EnvVars) Map() map[string]string {
	m := make(map[string]string, len(e))
	for _, v := range e {
		m[v.Name] = v.Value
	}
	return m
}

// SetDefaults fills the documented defaults of the spec in place.
func (s *WorkloadSpec) SetDefaults() {
	if s.Replicas == nil {
		r := DefaultReplicas
		s.Replicas = &r
	}
	if s.ServiceAccount == "" {
		s.ServiceAccount = DefaultServiceAccount
	}
	if r := s.Readiness; r != nil {
		if r.Period.IsZero() {
			r.Period = D(DefaultReadinessPeriod)
		}
		if r.FailureThreshold == 0 {
			r.FailureThreshold = DefaultFailureThreshold
		}
	}
}

// SetDefaults fills the spec defaults and those that depend on the name and
// namespace: Service, the "app" label and upstream namespaces.
func (w *Workload) SetDefaults() {
	w.Spec.SetDefaults()
	if w.Spec.Service == "" {
		w.Spec.Service = w.Name
	}
	if _, ok := w.Spec.Labels["app"]; !ok && w.Name != "" {
		if w.Spec.Labels == nil {
			w.Spec.Labels = map[string]string{}
		}
		w.Spec.Labels["app"] = w.Name
	}
	for i := range w.Spec.Upstreams {
		if w.Spec.Upstreams[i].Namespace == "" {
			w.Spec.Upstreams[i].Namespace = w.Namespace
		}
	}
}

// ReplicaCount returns the number of replicas, DefaultReplicas when unset.
func (s *WorkloadSpec) ReplicaCount() int32 {
	if s.Replicas == nil {
		return DefaultReplicas
	}
	return *s.Replicas
}
