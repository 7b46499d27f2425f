package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
)

// Names and type URLs of the extensions the translator configures.
const (
	PeakEWMAName      = "weft.lb.peak_ewma"
	PeakEWMATypeURL   = "type.googleapis.com/weft.lb.v1.PeakEwma"
	PeakEWMADecay     = "10s"
	PeakEWMADefaulRTT = "1ms"

	httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// outboundClusterName is "outbound|<port>||<service>.<namespace>".
func outboundClusterName(svc *resource.Object, port int32) string {
	return fmt.Sprintf("outbound|%d||%s.%s", port, svc.Name, svc.Namespace)
}

// inboundClusterName is "inbound|<port>||".
func inboundClusterName(port uint16) string { return fmt.Sprintf("inbound|%d||", port) }

// mustAny packs m deterministically (stable bytes, stable version hashes).
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		panic(fmt.Sprintf("translate: pack %T: %v", m, err)) // only for messages that cannot fail
	}
	return a
}

func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

// outboundCluster adds the EDS cluster of svc:port and its load assignment
// (once) and returns the cluster's name.
func (t *translator) outboundCluster(svc *resource.Object, port v1alpha1.ServicePort) string {
	name := outboundClusterName(svc, port.Port)
	if _, ok := t.clusters[name]; ok {
		return name
	}
	policy := t.in.Resources.policies[nsName{svc.Namespace, svc.Name}]
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
		ConnectTimeout:       durationpb.New(v1alpha1.DefaultConnectTimeout),
	}
	var lb v1alpha1.LBPolicy
	if policy != nil {
		c.ConnectTimeout = durationpb.New(policy.ConnectTimeout.Or(v1alpha1.DefaultConnectTimeout))
		if policy.LoadBalancer != nil {
			lb = policy.LoadBalancer.Policy
		}
		clusterResilience(c, policy)
	}
	if lb == "" && port.Protocol.IsHTTP() {
		lb = v1alpha1.LBPeakEWMA
	}
	var slow *v1alpha1.SlowStart
	if policy != nil && policy.LoadBalancer != nil {
		slow = policy.LoadBalancer.SlowStart
	}
	switch lb {
	case v1alpha1.LBPeakEWMA:
		c.LoadBalancingPolicy = peakEWMA(slow)
	case v1alpha1.LBRoundRobin, "":
		c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
		if slow != nil {
			c.LbConfig = &clusterv3.Cluster_RoundRobinLbConfig_{RoundRobinLbConfig: &clusterv3.Cluster_RoundRobinLbConfig{SlowStartConfig: slowStartConfig(slow)}}
		}
	case v1alpha1.LBLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
		if slow != nil {
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{SlowStartConfig: slowStartConfig(slow)}}
		}
	case v1alpha1.LBRandom:
		c.LbPolicy = clusterv3.Cluster_RANDOM
	case v1alpha1.LBRingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
	case v1alpha1.LBMaglev:
		c.LbPolicy = clusterv3.Cluster_MAGLEV
	}
	if port.Protocol == v1alpha1.ProtocolHTTP2 || port.Protocol == v1alpha1.ProtocolGRPC {
		c.TypedExtensionProtocolOptions = http2Options()
	}
	ins := t.endpoints(svc)
	c.TransportSocket = t.upstreamTransportSocket(ins)
	t.clusters[name] = c
	t.claNames[name] = t.loadAssignment(name, ins)
	return name
}

func u32(p *int32) *wrapperspb.UInt32Value {
	if p == nil {
		return nil
	}
	return wrapperspb.UInt32(uint32(*p))
}

// peakEWMA is weft's typed load-balancing extension with its defaults
// written out, and the slow start fields when slow is set.
func peakEWMA(slow *v1alpha1.SlowStart) *clusterv3.LoadBalancingPolicy {
	ts := &xdstypev3.TypedStruct{
		TypeUrl: PeakEWMATypeURL,
		Value: &structpb.Struct{Fields: map[string]*structpb.Value{
			"decay":       structpb.NewStringValue(PeakEWMADecay),
			"default_rtt": structpb.NewStringValue(PeakEWMADefaulRTT),
		}},
	}
	if slow != nil {
		f := ts.Value.Fields
		f["slow_start_window"] = structpb.NewStringValue(slow.Window.Duration.String())
		if slow.Aggression != nil {
			f["slow_start_aggression"] = structpb.NewNumberValue(*slow.Aggression)
		}
		if slow.MinWeightPercent != nil {
			f["slow_start_min_weight_percent"] = structpb.NewNumberValue(float64(*slow.MinWeightPercent))
		}
	}
	return &clusterv3.LoadBalancingPolicy{Policies: []*clusterv3.LoadBalancingPolicy_Policy{{
		TypedExtensionConfig: &corev3.TypedExtensionConfig{Name: PeakEWMAName, TypedConfig: mustAny(ts)},
	}}}
}

func http2Options() map[string]*anypb.Any {
	opts := &httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	}
	return map[string]*anypb.Any{httpProtocolOptionsKey: mustAny(opts)}
}

// endpoints returns the instances backing svc and records the registry
// services they came from:
//   - with a selector, every instance of the Service's namespace whose
//     labels include the selector;
//   - with a Workload whose instances register under another service name
//     (Workload.spec.service), those instances carrying the Workload's
//     labels;
//   - otherwise the instances registered under the Service's own name.
func (t *translator) endpoints(svc *resource.Object) []registry.Instance {
	spec := svc.Service()
	if len(spec.Selector) > 0 {
		t.deps[registry.ServiceKey{Namespace: svc.Namespace, Name: xds.AnyService}] = struct{}{}
		var out []registry.Instance
		for _, k := range t.registryServices() {
			if k.Namespace != svc.Namespace {
				continue
			}
			for _, in := range t.in.Registry.Endpoints(k) {
				if hasLabels(in.Labels, spec.Selector) {
					out = append(out, in)
				}
			}
		}
		slices.SortFunc(out, func(a, b registry.Instance) int { return a.Addr.Compare(b.Addr) })
		return slices.CompactFunc(out, func(a, b registry.Instance) bool { return a.Addr == b.Addr })
	}
	key := registry.ServiceKey{Namespace: svc.Namespace, Name: svc.Name}
	var want map[string]string
	if w := t.in.Resources.workloads[nsName{svc.Namespace, spec.Workload}]; w != nil && w.Workload().Service != svc.Name && w.Workload().Service != "" {
		key.Name, want = w.Workload().Service, w.Workload().Labels
	}
	t.deps[key] = struct{}{}
	ins := t.in.Registry.Endpoints(key)
	if len(want) == 0 {
		return ins
	}
	out := ins[:0:0]
	for _, in := range ins {
		if hasLabels(in.Labels, want) {
			out = append(out, in)
		}
	}
	return out
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// loadAssignment groups instances by locality (sorted); unready instances
// are sent as UNHEALTHY so that proxies keep their state but send nothing.
func (t *translator) loadAssignment(cluster string, ins []registry.Instance) *endpointv3.ClusterLoadAssignment {
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: cluster}
	byLoc := map[registry.Locality][]*endpointv3.LbEndpoint{}
	for _, in := range ins {
		ep := &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(in.Addr.Addr().String(), uint32(in.Addr.Port()))}},
			HealthStatus:   corev3.HealthStatus_HEALTHY,
		}
		if in.Unready {
			ep.HealthStatus = corev3.HealthStatus_UNHEALTHY
		}
		if in.Weight > 0 {
			ep.LoadBalancingWeight = wrapperspb.UInt32(in.Weight)
		}
		ep.Metadata = endpointMetadata(in)
		byLoc[in.Locality] = append(byLoc[in.Locality], ep)
	}
	locs := make([]registry.Locality, 0, len(byLoc))
	for l := range byLoc {
		locs = append(locs, l)
	}
	slices.SortFunc(locs, func(a, b registry.Locality) int {
		return cmp.Or(cmp.Compare(a.Region, b.Region), cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.SubZone, b.SubZone))
	})
	for _, l := range locs {
		lle := &endpointv3.LocalityLbEndpoints{LbEndpoints: byLoc[l], Priority: localityPriority(t.in.Proxy.Locality, l)}
		if l != (registry.Locality{}) {
			lle.Locality = &corev3.Locality{Region: l.Region, Zone: l.Zone, SubZone: l.SubZone}
		}
		cla.Endpoints = append(cla.Endpoints, lle)
	}
	return cla
}

// EndpointMetadataKey is the filter_metadata key under which every
// LbEndpoint of a sidecar's instance carries the instance's workload,
// namespace and service account (docs/observability.md): the source
// sidecar labels its metrics, access logs and spans with them.
const EndpointMetadataKey = "weft"

// endpointMetadata is the "weft" filter metadata of a sidecar's instance;
// nil for instances that no session registered (static entries).
func endpointMetadata(in registry.Instance) *corev3.Metadata {
	if !strings.HasPrefix(in.Source, "session/") {
		return nil
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{EndpointMetadataKey: {Fields: map[string]*structpb.Value{
		"workload":        structpb.NewStringValue(in.Workload),
		"namespace":       structpb.NewStringValue(in.Service.Namespace),
		"service_account": structpb.NewStringValue(in.Identity),
	}}}}
}

// localityPriority is locality-aware failover, as Istio's: endpoints in the
// proxy's own zone get priority 0, the rest of its region 1, other regions
// 2. The proxy's priority load balancing sends everything to priority 0 while
// enough of it is healthy and spills over as its healthy share falls (Envoy's
// overprovisioning factor 1.4: below ~71% healthy). A proxy without a
// locality, or endpoints without one, stay at priority 0.
func localityPriority(self, ep registry.Locality) uint32 {
	switch {
	case self.Region == "" || ep.Region == "":
		return 0
	case self.Region != ep.Region:
		return 2
	case self.Zone != "" && self.Zone != ep.Zone:
		return 1
	}
	return 0
}

// inboundCluster is the static cluster in front of the local application.
func (t *translator) inboundCluster(appPort uint16, protocol v1alpha1.Protocol) string {
	name := inboundClusterName(appPort)
	c := &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(v1alpha1.DefaultConnectTimeout),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: socketAddress("127.0.0.1", uint32(appPort)),
			}}}},
		}}},
	}
	if protocol == v1alpha1.ProtocolHTTP2 || protocol == v1alpha1.ProtocolGRPC {
		c.TypedExtensionProtocolOptions = http2Options()
	}
	t.clusters[name] = c
	return name
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       ip,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}

func duration(d time.Duration) *durationpb.Duration { return durationpb.New(d) }

// slowStartConfig is Envoy's slow_start_config of slow.
func slowStartConfig(slow *v1alpha1.SlowStart) *clusterv3.Cluster_SlowStartConfig {
	c := &clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(slow.Window.Duration)}
	if slow.Aggression != nil {
		c.Aggression = &corev3.RuntimeDouble{DefaultValue: *slow.Aggression, RuntimeKey: "weft.slow_start.aggression"}
	}
	if slow.MinWeightPercent != nil {
		c.MinWeightPercent = &typev3.Percent{Value: float64(*slow.MinWeightPercent)}
	}
	return c
}
