package resource

import (
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
)

// Kind is the kind of a resource, as written in its "kind" field.
type Kind string

// The kinds weft stores.
const (
	KindService        Kind = "Service"
	KindWorkload       Kind = "Workload"
	KindBackendPolicy  Kind = "BackendPolicy"
	KindFaultInjection Kind = "FaultInjection"
	KindGateway        Kind = "Gateway"
	KindHTTPRoute      Kind = "HTTPRoute"
	KindGRPCRoute      Kind = "GRPCRoute"
	KindTCPRoute       Kind = "TCPRoute"

	KindPeerAuthentication    Kind = "PeerAuthentication"
	KindAlertRule             Kind = "AlertRule"
	KindAuthorizationPolicy   Kind = "AuthorizationPolicy"
	KindRequestAuthentication Kind = "RequestAuthentication"
)

// API groups and versions.
const (
	GatewayGroup          = "gateway.networking.k8s.io"
	GatewayAPIVersion     = GatewayGroup + "/v1"
	GatewayAlphaVersion   = GatewayGroup + "/v1alpha2"
	WeftAPIVersion        = v1alpha1.APIVersion
	DefaultNamespace      = "default"
	listKind              = "List"
	listAPIVersion        = "v1"
	maxNameLength         = 63
	maxQualifiedLength    = 253
	maxDocumentsPerDecode = 10000
)

// KindInfo describes one kind: its API versions, names on the command line
// and Go types. KindInfo values are immutable and safe for concurrent use.
type KindInfo struct {
	// Kind is the canonical kind name.
	Kind Kind
	// Group is the API group ("weft.dev", "gateway.networking.k8s.io").
	Group string
	// APIVersions are the accepted apiVersion values; the first is the one
	// written when an object is created in code.
	APIVersions []string
	// Plural is the lower-case plural used in URLs and `weft get`.
	Plural string
	// Aliases are further names `weft get` accepts (short names, singular).
	Aliases []string

	// newObject returns a pointer to the whole typed document (TypeMeta,
	// ObjectMeta, Spec, Status) used for strict decoding.
	newObject func() any
	// parts returns the metadata and spec pointers of a value from newObject.
	parts func(any) (*metav1.ObjectMeta, any)
	// defaults applies kind-specific defaults to a decoded document.
	defaults func(any)
}

var kinds = []KindInfo{
	{
		Kind: KindService, Group: v1alpha1.GroupName, APIVersions: []string{WeftAPIVersion},
		Plural: "services", Aliases: []string{"service", "svc"},
		newObject: func() any { return new(v1alpha1.Service) },
		parts:     func(o any) (*metav1.ObjectMeta, any) { s := o.(*v1alpha1.Service); return &s.ObjectMeta, &s.Spec },
		defaults:  func(o any) { o.(*v1alpha1.Service).SetDefaults() },
	},
	{
		Kind: KindWorkload, Group: v1alpha1.GroupName, APIVersions: []string{WeftAPIVersion},
		Plural: "workloads", Aliases: []string{"workload", "wl"},
		newObject: func() any { return new(v1alpha1.Workload) },
		parts:     func(o any) (*metav1.ObjectMeta, any) { s := o.(*v1alpha1.Workload); return &s.ObjectMeta, &s.Spec },
		defaults:  func(o any) { o.(*v1alpha1.Workload).SetDefaults() },
	},
	{
		Kind: KindBackendPolicy, Group: v1alpha1.GroupName, APIVersions: []string{WeftAPIVersion},
		Plural: "backendpolicies", Aliases: []string{"backendpolicy", "bp"},
		newObject: func() any { return new(v1alpha1.BackendPolicy) },
		parts:     func(o any) (*metav1.ObjectMeta, any) { s := o.(*v1alpha1.BackendPolicy); return &s.ObjectMeta, &s.Spec },
		defaults:  func(o any) { o.(*v1alpha1.BackendPolicy).SetDefaults() },
	},
	{
		Kind: KindFaultInjection, Group: v1alpha1.GroupName, APIVersions: []string{WeftAPIVersion},
		Plural: "faultinjections", Aliases: []string{"faultinjection", "fault", "faults", "fi"},
		newObject: func() any { return new(v1alpha1.FaultInjection) },
		parts: func(o any) (*metav1.ObjectMeta, any) {
			s := o.(*v1alpha1.FaultInjection)
			return &s.ObjectMeta, &s.Spec
		},
		defaults: func(o any) { o.(*v1alpha1.FaultInjection).SetDefaults() },
	},
	{
		Kind: KindPeerAuthentication, Group: v1alpha1.GroupName, APIVersions: []string{WeftAPIVersion},
		Plural: "peerauthentications", Aliases: []string{"peerauthentication", "pa"},
		newObject: func() any { return new(v1alpha1.PeerAuthentication) },
		parts: func(o any) (*metav1.ObjectMeta, any) {
			s := o.(*v1alpha1.PeerAuthentication)
			return &s.ObjectMeta, &s.Spec
		},
		defaults: func(o any) { o.(*v1alpha1.PeerAuthentication).SetDefaults() },
	},
	{
		Kind: KindAuthorizationPolicy, Group: v1alpha1.GroupName, APIVersions: []string{WeftAPIVersion},
		Plural: "authorizationpolicies", Aliases: []string{"authorizationpolicy", "authz", "ap"},
		newObject: func() any { return new(v1alpha1.AuthorizationPolicy) },
		parts: func(o any) (*metav1.ObjectMeta, any) {
			s := o.(*v1alpha1.AuthorizationPolicy)
			return &s.ObjectMeta, &s.Spec
		},
		defaults: func(o any) { o.(*v1alpha1.AuthorizationPolicy).SetDefaults() },
	},
	{
		Kind: KindRequestAuthentication, Group: v1alpha1.GroupName, APIVersions: []string{WeftAPIVersion},
		Plural: "requestauthentications", Aliases: []string{"requestauthentication", "ra"},
		newObject: func() any { return new(v1alpha1.RequestAuthentication) },
		parts: func(o any) (*metav1.ObjectMeta, any) {
			s := o.(*v1alpha1.RequestAuthentication)
			return &s.ObjectMeta, &s.Spec
		},
	},
	{
		Kind: KindAlertRule, Group: v1alpha1.GroupName, APIVersions: []string{WeftAPIVersion},
		Plural: "alertrules", Aliases: []string{"alertrule", "alerts", "alert"},
		newObject: func() any { return new(v1alpha1.AlertRule) },
		parts:     func(o any) (*metav1.ObjectMeta, any) { s := o.(*v1alpha1.AlertRule); return &s.ObjectMeta, &s.Spec },
		defaults:  func(o any) { o.(*v1alpha1.AlertRule).SetDefaults() },
	},
	{
		Kind: KindGateway, Group: GatewayGroup, APIVersions: []string{GatewayAPIVersion, GatewayGroup + "/v1beta1"},
		Plural: "gateways", Aliases: []string{"gateway", "gtw", "gw"},
		newObject: func() any { return new(gwv1.Gateway) },
		parts:     func(o any) (*metav1.ObjectMeta, any) { s := o.(*gwv1.Gateway); return &s.ObjectMeta, &s.Spec },
	},
	{
		Kind: KindHTTPRoute, Group: GatewayGroup, APIVersions: []string{GatewayAPIVersion, GatewayGroup + "/v1beta1"},
		Plural: "httproutes", Aliases: []string{"httproute"},
		newObject: func() any { return new(gwv1.HTTPRoute) },
		parts:     func(o any) (*metav1.ObjectMeta, any) { s := o.(*gwv1.HTTPRoute); return &s.ObjectMeta, &s.Spec },
	},
	{
		Kind: KindGRPCRoute, Group: GatewayGroup, APIVersions: []string{GatewayAPIVersion},
		Plural: "grpcroutes", Aliases: []string{"grpcroute"},
		newObject: func() any { return new(gwv1.GRPCRoute) },
		parts:     func(o any) (*metav1.ObjectMeta, any) { s := o.(*gwv1.GRPCRoute); return &s.ObjectMeta, &s.Spec },
	},
	{
		// v1alpha2.TCPRoute has the same JSON shape as v1.TCPRoute; both
		// decode into the v1 type.
		Kind: KindTCPRoute, Group: GatewayGroup, APIVersions: []string{GatewayAlphaVersion, GatewayAPIVersion},
		Plural: "tcproutes", Aliases: []string{"tcproute"},
		newObject: func() any { return new(gwv1.TCPRoute) },
		parts:     func(o any) (*metav1.ObjectMeta, any) { s := o.(*gwv1.TCPRoute); return &s.ObjectMeta, &s.Spec },
	},
}

// Kinds returns every kind weft stores, in a stable order.
func Kinds() []KindInfo { return append([]KindInfo(nil), kinds...) }

// InfoFor returns the KindInfo of k.
func InfoFor(k Kind) (KindInfo, bool) {
	for _, ki := range kinds {
		if ki.Kind == k {
			return ki, true
		}
	}
	return KindInfo{}, false
}

// LookupKind finds a kind by any name a user may type: the kind
// ("HTTPRoute"), its lower-case form, plural ("httproutes"), alias ("svc")
// or qualified form ("httproutes.gateway.networking.k8s.io"). Matching is
// case-insensitive.
func LookupKind(name string) (KindInfo, bool) {
	n := strings.ToLower(name)
	for _, ki := range kinds {
		if n == strings.ToLower(string(ki.Kind)) || n == ki.Plural {
			return ki, true
		}
		for _, q := range []string{ki.Plural, strings.ToLower(string(ki.Kind))} {
			if n == q+"."+ki.Group {
				return ki, true
			}
		}
		for _, a := range ki.Aliases {
			if n == a {
				return ki, true
			}
		}
	}
	return KindInfo{}, false
}

// KindNames lists the plural names of every kind, sorted, for messages.
func KindNames() []string {
	out := make([]string, 0, len(kinds))
	for _, ki := range kinds {
		out = append(out, ki.Plural)
	}
	sort.Strings(out)
	return out
}

func (ki KindInfo) servesVersion(v string) bool {
	for _, a := range ki.APIVersions {
		if a == v {
			return true
		}
	}
	return false
}
