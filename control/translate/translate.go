// Package translate turns what operators declared (weft Services, Workloads,
// BackendPolicies and FaultInjections; Gateway API Gateways and routes) and what the registry
// knows (instances) into the Envoy v3 configuration of one proxy: Listeners,
// RouteConfigurations, Clusters and ClusterLoadAssignments.
//
// Translate is a pure function of its Input: same input, same output, in a
// stable order. Names follow docs/architecture.md ("Contracts").
package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
)

// View is the part of the registry the translator reads.
type View interface {
	// Endpoints returns the instances of a service, sorted by address.
	Endpoints(registry.ServiceKey) []registry.Instance
	// Services returns the services that have instances, sorted.
	Services() []registry.ServiceKey
}

// Input is everything one proxy's configuration depends on.
type Input struct {
	// Proxy is the proxy's identity, from its xDS node.
	Proxy xds.ProxyInfo
	// Resources are the declared objects, indexed with Index.
	Resources *Resources
	// Registry supplies the instances.
	Registry View
	// Mesh holds the mesh-wide settings (trust domain, default mTLS mode).
	Mesh MeshConfig
}

// MeshConfig holds the settings that apply to the whole mesh.
type MeshConfig struct {
	// TrustDomain of the SPIFFE identities; "" means "cluster.local".
	TrustDomain string
	// MTLSMode applies where no PeerAuthentication says otherwise; ""
	// means PERMISSIVE (STRICT under weft up).
	MTLSMode v1alpha1.MTLSMode
	// TrustBundle is the PEM of the CA roots proxies trust, sent as the
	// SDS secret ROOTCA. Empty: the mesh has no CA and every hop is
	// plaintext.
	TrustBundle []byte
	// TraceSampling is the share of requests without a sampling decision
	// that proxies trace, 0 to 1 (HCM tracing.random_sampling, in
	// percent). 0 leaves tracing unset: the proxy's own default applies.
	// weft up: 1; weft control: --trace-sampling, default 0.01.
	TraceSampling float64
}

// trustDomain returns the mesh trust domain with its default.
func (m MeshConfig) trustDomain() string {
	if m.TrustDomain == "" {
		return "cluster.local"
	}
	return m.TrustDomain
}

// Output is the proxy's configuration, sorted by name within each type,
// with the registry services it depends on.
type Output = xds.Resources

// Translate computes the configuration of in.Proxy. It reads in.Registry
// and never modifies its inputs. An error means an output resource failed
// its protoc-gen-validate check: a bug or an input the validation of
// control/resource let through.
func Translate(in Input) (Output, error) {
	if in.Resources == nil {
		in.Resources = Index(nil)
	}
	t := &translator{
		in:       in,
		clusters: map[string]*clusterv3.Cluster{},
		claNames: map[string]*endpointv3.ClusterLoadAssignment{},
		deps:     map[registry.ServiceKey]struct{}{},
	}
	switch in.Proxy.Role {
	case xds.RoleGateway:
		t.gateway()
	default:
		t.sidecar()
	}
	return t.output()
}

// translator holds one Translate call's state.
type translator struct {
	in        Input
	listeners []*listenerv3.Listener
	routes    []*routev3.RouteConfiguration
	clusters  map[string]*clusterv3.Cluster
	claNames  map[string]*endpointv3.ClusterLoadAssignment
	deps      map[registry.ServiceKey]struct{}
	regSvcs   []registry.ServiceKey // lazily read registry.Services()
	regRead   bool
}

// validator is the protoc-gen-validate method of the generated types.
type validator interface{ Validate() error }

func (t *translator) output() (Output, error) {
	var out Output
	out.Listeners = t.listeners
	out.Routes = t.routes
	if t.mtlsEnabled() {
		out.Secrets = append(out.Secrets, t.rootCASecret())
	}
	for _, c := range t.clusters {
		out.Clusters = append(out.Clusters, c)
	}
	for _, c := range t.claNames {
		out.Endpoints = append(out.Endpoints, c)
	}
	slices.SortFunc(out.Listeners, func(a, b *listenerv3.Listener) int { return strings.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(out.Routes, func(a, b *routev3.RouteConfiguration) int { return strings.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(out.Clusters, func(a, b *clusterv3.Cluster) int { return strings.Compare(a.GetName(), b.GetName()) })
	slices.SortFunc(out.Endpoints, func(a, b *endpointv3.ClusterLoadAssignment) int {
		return strings.Compare(a.GetClusterName(), b.GetClusterName())
	})
	for k := range t.deps {
		out.Services = append(out.Services, k)
	}
	slices.SortFunc(out.Services, compareKeys)
	check := func(kind, name string, v validator) error {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("translate %q: %s %q: %w", t.in.Proxy.NodeID, kind, name, err)
		}
		return nil
	}
	for _, l := range out.Listeners {
		if err := check("listener", l.GetName(), l); err != nil {
			return Output{}, err
		}
	}
	for _, r := range out.Routes {
		if err := check("route configuration", r.GetName(), r); err != nil {
			return Output{}, err
		}
	}
	for _, c := range out.Clusters {
		if err := check("cluster", c.GetName(), c); err != nil {
			return Output{}, err
		}
	}
	for _, c := range out.Endpoints {
		if err := check("cluster load assignment", c.GetClusterName(), c); err != nil {
			return Output{}, err
		}
	}
	for _, s := range out.Secrets {
		if err := check("secret", s.GetName(), s); err != nil {
			return Output{}, err
		}
	}
	return out, nil
}

func compareKeys(a, b registry.ServiceKey) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// nsName is a namespaced object name.
type nsName struct{ ns, name string }

// Resources is an immutable index of declared objects, built once per store
// revision and shared by every proxy's translation. It is safe for
// concurrent use.
type Resources struct {
	services   map[nsName]*resource.Object
	workloads  map[nsName]*resource.Object
	gateways   map[nsName]*resource.Object
	policies   map[nsName]*v1alpha1.BackendPolicySpec // by target Service
	faults     map[nsName]*v1alpha1.FaultInjectionSpec
	serviceLst []*resource.Object // sorted by namespace, name
	httpRoutes []*resource.Object // sorted by creation, namespace, name
	grpcRoutes []*resource.Object
	tcpRoutes  []*resource.Object
	gatewayLst []*resource.Object // sorted by namespace, name
	// The auth kinds, each sorted by creation, namespace, name.
	peerAuths    []*resource.Object
	authzs       []*resource.Object
	requestAuths []*resource.Object
}

// Index builds the Resources of objs. The objects are shared, not copied:
// they must not be modified afterwards.
func Index(objs []resource.Object) *Resources {
	r := &Resources{
		services:  map[nsName]*resource.Object{},
		workloads: map[nsName]*resource.Object{},
		gateways:  map[nsName]*resource.Object{},
		policies:  map[nsName]*v1alpha1.BackendPolicySpec{},
		faults:    map[nsName]*v1alpha1.FaultInjectionSpec{},
	}
	var policyObjs []*resource.Object
	for i := range objs {
		o := &objs[i]
		k := nsName{o.Namespace, o.Name}
		switch o.Kind {
		case resource.KindService:
			if o.Service() != nil {
				r.services[k] = o
				r.serviceLst = append(r.serviceLst, o)
			}
		case resource.KindWorkload:
			if o.Workload() != nil {
				r.workloads[k] = o
			}
		case resource.KindGateway:
			if o.Gateway() != nil {
				r.gateways[k] = o
				r.gatewayLst = append(r.gatewayLst, o)
			}
		case resource.KindPeerAuthentication:
			if o.PeerAuthentication() != nil {
				r.peerAuths = append(r.peerAuths, o)
			}
		case resource.KindAuthorizationPolicy:
			if o.AuthorizationPolicy() != nil {
				r.authzs = append(r.authzs, o)
			}
		case resource.KindRequestAuthentication:
			if o.RequestAuthentication() != nil {
				r.requestAuths = append(r.requestAuths, o)
			}
		case resource.KindBackendPolicy:
			if o.BackendPolicy() != nil {
				policyObjs = append(policyObjs, o)
			}
		case resource.KindFaultInjection:
			if f := o.FaultInjection(); f != nil {
				r.faults[k] = f
			}
		case resource.KindHTTPRoute:
			if o.HTTPRoute() != nil {
				r.httpRoutes = append(r.httpRoutes, o)
			}
		case resource.KindGRPCRoute:
			if o.GRPCRoute() != nil {
				r.grpcRoutes = append(r.grpcRoutes, o)
			}
		case resource.KindTCPRoute:
			if o.TCPRoute() != nil {
				r.tcpRoutes = append(r.tcpRoutes, o)
			}
		}
	}
	byAge := func(a, b *resource.Object) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	}
	byName := func(a, b *resource.Object) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	}
	slices.SortFunc(r.serviceLst, byName)
	slices.SortFunc(r.gatewayLst, byName)
	slices.SortFunc(r.peerAuths, byAge)
	slices.SortFunc(r.authzs, byAge)
	slices.SortFunc(r.requestAuths, byAge)
	slices.SortFunc(r.httpRoutes, byAge)
	slices.SortFunc(r.grpcRoutes, byAge)
	slices.SortFunc(r.tcpRoutes, byAge)
	// The oldest policy of a target wins (resource validation rejects
	// conflicts; this keeps the choice stable regardless).
	slices.SortFunc(policyObjs, byAge)
	for _, o := range policyObjs {
		spec := o.BackendPolicy()
		k := nsName{o.Namespace, spec.TargetRef.Name}
		if _, dup := r.policies[k]; !dup {
			r.policies[k] = spec
		}
	}
	return r
}

// registryServices returns the registry's services, read once per call.
func (t *translator) registryServices() []registry.ServiceKey {
	if !t.regRead {
		t.regSvcs, t.regRead = t.in.Registry.Services(), true
	}
	return t.regSvcs
}
