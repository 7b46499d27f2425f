package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Key identifies an object: kind, namespace and name.
type Key struct {
	Kind      Kind
	Namespace string
	Name      string
}

// String formats k as "Kind namespace/name".
func (k Key) String() string { return string(k.Kind) + " " + k.Namespace + "/" + k.Name }

// Object is one stored resource of any kind, with its metadata lifted out
// and its spec typed. Spec holds a pointer to the kind's spec type:
//
//	Service               *v1alpha1.ServiceSpec
//	Workload              *v1alpha1.WorkloadSpec
//	BackendPolicy         *v1alpha1.BackendPolicySpec
//	FaultInjection        *v1alpha1.FaultInjectionSpec
//	PeerAuthentication    *v1alpha1.PeerAuthenticationSpec
//	AlertRule             *v1alpha1.AlertRuleSpec
//	AuthorizationPolicy   *v1alpha1.AuthorizationPolicySpec
//	RequestAuthentication *v1alpha1.RequestAuthenticationSpec
//	Gateway               *gwv1.GatewaySpec
//	HTTPRoute             *gwv1.HTTPRouteSpec
//	GRPCRoute             *gwv1.GRPCRouteSpec
//	TCPRoute              *gwv1.TCPRouteSpec (for v1alpha2 and v1 alike)
//
// Objects handed out by the store and by Decode are shared read-only
// values: do not mutate them (including Spec, Labels and Annotations); use
// DeepCopy first. Status is not kept: it is computed, not stored.
type Object struct {
	Kind       Kind
	APIVersion string
	Namespace  string // "default" when the document names none
	Name       string

	// ResourceVersion is the store revision of the last write of the object
	// (decimal). On apply, a non-empty value must match the stored one.
	ResourceVersion string
	// Generation counts spec changes, starting at 1. Set by the store.
	Generation int64
	// CreationTimestamp is set by the store when the object is created.
	CreationTimestamp time.Time

	Labels      map[string]string
	Annotations map[string]string

	// Spec is the typed spec (see the table above).
	Spec any

	// Raw is the document as received by Decode, converted to JSON. It is
	// not stored; objects read from a store have none.
	Raw json.RawMessage
	// Source and Index say where Decode found the object (file name and
	// 1-based document index), for error messages. Not stored.
	Source string
	Index  int
}

// Key returns the object's key.
func (o *Object) Key() Key { return Key{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name} }

// Service returns the spec of a Service, or nil for another kind.
func (o *Object) Service() *v1alpha1.ServiceSpec { s, _ := o.Spec.(*v1alpha1.ServiceSpec); return s }

// Workload returns the spec of a Workload, or nil for another kind.
func (o *Object) Workload() *v1alpha1.WorkloadSpec { s, _ := o.Spec.(*v1alpha1.WorkloadSpec); return s }

// BackendPolicy returns the spec of a BackendPolicy, or nil.
func (o *Object) BackendPolicy() *v1alpha1.BackendPolicySpec {
	s, _ := o.Spec.(*v1alpha1.BackendPolicySpec)
	return s
}

// FaultInjection returns the spec of a FaultInjection, or nil.
func (o *Object) FaultInjection() *v1alpha1.FaultInjectionSpec {
	s, _ := o.Spec.(*v1alpha1.FaultInjectionSpec)
	return s
}

// AlertRule returns the spec of an AlertRule, or nil.
func (o *Object) AlertRule() *v1alpha1.AlertRuleSpec {
	s, _ := o.Spec.(*v1alpha1.AlertRuleSpec)
	return s
}

// PeerAuthentication returns the spec of a PeerAuthentication, or nil.
func (o *Object) PeerAuthentication() *v1alpha1.PeerAuthenticationSpec {
	s, _ := o.Spec.(*v1alpha1.PeerAuthenticationSpec)
	return s
}

// AuthorizationPolicy returns the spec of an AuthorizationPolicy, or nil.
func (o *Object) AuthorizationPolicy() *v1alpha1.AuthorizationPolicySpec {
	s, _ := o.Spec.(*v1alpha1.AuthorizationPolicySpec)
	return s
}

// RequestAuthentication returns the spec of a RequestAuthentication, or nil.
func (o *Object) RequestAuthentication() *v1alpha1.RequestAuthenticationSpec {
	s, _ := o.Spec.(*v1alpha1.RequestAuthenticationSpec)
	return s
}

// Gateway returns the spec of a Gateway, or nil.
func (o *Object) Gateway() *gwv1.GatewaySpec { s, _ := o.Spec.(*gwv1.GatewaySpec); return s }

// HTTPRoute returns the spec of an HTTPRoute, or nil.
func (o *Object) HTTPRoute() *gwv1.HTTPRouteSpec { s, _ := o.Spec.(*gwv1.HTTPRouteSpec); return s }

// GRPCRoute returns the spec of a GRPCRoute, or nil.
func (o *Object) GRPCRoute() *gwv1.GRPCRouteSpec { s, _ := o.Spec.(*gwv1.GRPCRouteSpec); return s }

// TCPRoute returns the spec of a TCPRoute, or nil.
func (o *Object) TCPRoute() *gwv1.TCPRouteSpec { s, _ := o.Spec.(*gwv1.TCPRouteSpec); return s }

// metadata is the stored and served form of the metadata: the subset of
// metav1.ObjectMeta that weft keeps, without the null creationTimestamp.
type metadata struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	Generation        int64             `json:"generation,omitempty"`
	CreationTimestamp string            `json:"creationTimestamp,omitempty"`
}

type document struct {
	APIVersion string          `json:"apiVersion"`
	Kind       Kind            `json:"kind"`
	Metadata   metadata        `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
}

// MarshalJSON writes the object as a Kubernetes-style document
// {apiVersion, kind, metadata, spec}.
func (o Object) MarshalJSON() ([]byte, error) {
	spec, err := json.Marshal(o.Spec)
	if err != nil {
		return nil, fmt.Errorf("marshal %s spec: %w", o.Key(), err)
	}
	d := document{
		APIVersion: o.APIVersion,
		Kind:       o.Kind,
		Metadata: metadata{
			Name: o.Name, Namespace: o.Namespace, Labels: o.Labels, Annotations: o.Annotations,
			ResourceVersion: o.ResourceVersion, Generation: o.Generation,
		},
		Spec: spec,
	}
	if !o.CreationTimestamp.IsZero() {
		d.Metadata.CreationTimestamp = o.CreationTimestamp.UTC().Format(time.RFC3339)
	}
	return json.Marshal(d)
}

// UnmarshalJSON reads a document written by MarshalJSON (by the store or the
// API). It is lenient: unknown fields are ignored and no defaults are
// applied. Use Decode for user input.
func (o *Object) UnmarshalJSON(b []byte) error {
	var d document
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("decode object: %w", err)
	}
	ki, ok := InfoFor(d.Kind)
	if !ok {
		return fmt.Errorf("decode object: unknown kind %q", d.Kind)
	}
	_, spec := ki.parts(ki.newObject())
	if len(d.Spec) > 0 && !bytes.Equal(d.Spec, []byte("null")) {
		if err := json.Unmarshal(d.Spec, spec); err != nil {
			return fmt.Errorf("decode %s %s/%s spec: %w", d.Kind, d.Metadata.Namespace, d.Metadata.Name, err)
		}
	}
	var created time.Time
	if d.Metadata.CreationTimestamp != "" {
		t, err := time.Parse(time.RFC3339, d.Metadata.CreationTimestamp)
		if err != nil {
			return fmt.Errorf("decode %s %s/%s: creationTimestamp: %w", d.Kind, d.Metadata.Namespace, d.Metadata.Name, err)
		}
		created = t
	}
	*o = Object{
		Kind: d.Kind, APIVersion: d.APIVersion,
		Namespace: d.Metadata.Namespace, Name: d.Metadata.Name,
		ResourceVersion: d.Metadata.ResourceVersion, Generation: d.Metadata.Generation,
		CreationTimestamp: created,
		Labels:            d.Metadata.Labels, Annotations: d.Metadata.Annotations,
		Spec: spec,
	}
	return nil
}

// SpecJSON returns the canonical JSON of the spec (map keys sorted), the
// form used to decide whether a spec changed.
func (o *Object) SpecJSON() ([]byte, error) { return json.Marshal(o.Spec) }

// SameContent reports whether a and b have equal specs, labels and
// annotations: applying b over a changes nothing.
func SameContent(a, b *Object) (bool, error) {
	if a.APIVersion != b.APIVersion || !maps.Equal(a.Labels, b.Labels) || !maps.Equal(a.Annotations, b.Annotations) {
		return false, nil
	}
	return SameSpec(a, b)
}

// SameSpec reports whether a and b have equal specs.
func SameSpec(a, b *Object) (bool, error) {
	ja, err := a.SpecJSON()
	if err != nil {
		return false, err
	}
	jb, err := b.SpecJSON()
	if err != nil {
		return false, err
	}
	return bytes.Equal(ja, jb), nil
}

// DeepCopy returns a copy of o that shares nothing mutable with it.
func (o *Object) DeepCopy() Object {
	c := *o
	c.Labels = maps.Clone(o.Labels)
	c.Annotations = maps.Clone(o.Annotations)
	c.Raw = bytes.Clone(o.Raw)
	if o.Spec != nil {
		if ki, ok := InfoFor(o.Kind); ok {
			_, spec := ki.parts(ki.newObject())
			if b, err := json.Marshal(o.Spec); err == nil && json.Unmarshal(b, spec) == nil {
				c.Spec = spec
			}
		}
	}
	return c
}
