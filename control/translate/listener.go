package translate

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/resource"
)

// Listener and route configuration names.
const (
	HTTPProxyName = "http_proxy"
	hcmFilterName = "envoy.filters.network.http_connection_manager"
	tcpFilterName = "envoy.filters.network.tcp_proxy"
	routerName    = "envoy.filters.http.router"
)

// sidecar builds a sidecar's configuration: inbound listener in front of
// the application, one outbound listener per declared upstream, the HTTP
// proxy listener, and the clusters they use.
func (t *translator) sidecar() {
	p := t.in.Proxy
	protocol := v1alpha1.Protocol(p.Protocol)
	if !protocol.Valid() {
		protocol = v1alpha1.ProtocolHTTP
	}
	if p.InstanceAddr.IsValid() && p.AppPort != 0 {
		port := p.InstanceAddr.Port()
		cluster := t.inboundCluster(p.AppPort, protocol)
		name := fmt.Sprintf("inbound_%d", port)
		if protocol.IsHTTP() {
			rc := fmt.Sprintf("inbound|%d", port)
			t.routes = append(t.routes, &routev3.RouteConfiguration{
				Name: rc,
				VirtualHosts: []*routev3.VirtualHost{{
					Name:    "inbound",
					Domains: []string{"*"},
					Routes: []*routev3.Route{{
						Name:  "default",
						Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
						Action: &routev3.Route_Route{Route: &routev3.RouteAction{
							ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster},
							Timeout:          duration(0),
						}},
					}},
				}},
			})
			t.inboundListener(name, p.InstanceAddr.Addr().String(), port,
				[]*listenerv3.Filter{t.hcmWith(name, rc, false, t.inboundHTTPFilters(uint32(port)))})
		} else {
			filters := append(t.inboundNetworkFilters(uint32(port)), tcpProxy(name, []tcpTarget{{cluster: cluster}}))
			t.inboundListener(name, p.InstanceAddr.Addr().String(), port, filters)
		}
	}
	if w := t.in.Resources.workloads[nsName{p.Namespace, p.Workload}]; w != nil {
		for _, up := range w.Workload().Upstreams {
			t.upstream(up)
		}
	}
	if p.HTTPProxyPort != 0 {
		t.httpProxy()
	}
}

// upstream builds the listener 127.0.0.1:<port> bound to one Service.
func (t *translator) upstream(up v1alpha1.Upstream) {
	ns := up.Namespace
	if ns == "" {
		ns = t.in.Proxy.Namespace
	}
	svc := t.in.Resources.services[nsName{ns, up.Service}]
	if svc == nil || !t.in.Resources.VisibleTo(svc, t.in.Proxy) || len(svc.Service().Ports) == 0 {
		return
	}
	port := svc.Service().Ports[0]
	if up.ServicePort != nil {
		sp, ok := svc.Service().Port(up.ServicePort.String())
		if !ok {
			return
		}
		port = sp
	}
	name := fmt.Sprintf("outbound_127.0.0.1_%d", up.Port)
	if !port.Protocol.IsHTTP() {
		t.listener(name, "127.0.0.1", uint16(up.Port), corev3.TrafficDirection_OUTBOUND, tcpProxy(name, t.tcpTargets(svc, port)))
		return
	}
	rc := &routev3.RouteConfiguration{
		Name: fmt.Sprintf("outbound|%d", up.Port),
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    svc.Name + "." + svc.Namespace,
			Domains: []string{"*"},
			Routes:  t.serviceRoutes(svc, port),
		}},
	}
	t.routes = append(t.routes, rc)
	t.listener(name, "127.0.0.1", uint16(up.Port), corev3.TrafficDirection_OUTBOUND, t.hcm(name, rc.Name, usesFault(rc)))
}

// tcpTarget is one weighted cluster of a tcp_proxy.
type tcpTarget struct {
	cluster string
	weight  uint32
}

// tcpTargets are the backends of the first TCPRoute attached to svc:port,
// or svc itself.
func (t *translator) tcpTargets(svc *resource.Object, port v1alpha1.ServicePort) []tcpTarget {
	p := parent{ns: svc.Namespace, name: svc.Name, port: port.Port}
	for _, o := range t.in.Resources.tcpRoutes {
		spec := o.TCPRoute()
		if !p.attaches(o.Namespace, spec.ParentRefs) || len(spec.Rules) == 0 {
			continue
		}
		if ts := t.tcpRuleTargets(o.Namespace, spec.Rules[0]); len(ts) > 0 {
			return ts
		}
	}
	return []tcpTarget{{cluster: t.outboundCluster(svc, port), weight: 1}}
}

func (t *translator) tcpRuleTargets(ns string, rule gwv1.TCPRouteRule) []tcpTarget {
	var out []tcpTarget
	for _, b := range t.resolveBackends(ns, rule.BackendRefs) {
		out = append(out, tcpTarget{cluster: t.outboundCluster(b.svc, b.port), weight: b.weight})
	}
	return out
}

// httpProxy builds the listener an application reaches with HTTP_PROXY:
// one virtual host per reachable Service port, named <svc>, <svc>.<ns> and
// <svc>.<ns>.svc with ":<port>", and without a port for the Service's first
// HTTP port. The bare <svc> names are only for the proxy's own namespace.
func (t *translator) httpProxy() {
	rc := &routev3.RouteConfiguration{Name: HTTPProxyName}
	for _, svc := range t.in.Resources.serviceLst {
		if !t.in.Resources.VisibleTo(svc, t.in.Proxy) {
			continue
		}
		first := true
		for _, port := range svc.Service().Ports {
			if !port.Protocol.IsHTTP() {
				continue
			}
			names := []string{svc.Name + "." + svc.Namespace, svc.Name + "." + svc.Namespace + ".svc"}
			if svc.Namespace == t.in.Proxy.Namespace {
				names = append([]string{svc.Name}, names...)
			}
			var domains []string
			if first {
				domains = append(domains, names...)
			}
			for _, n := range names {
				domains = append(domains, n+":"+strconv.Itoa(int(port.Port)))
			}
			first = false
			rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
				Name:    fmt.Sprintf("%s.%s:%d", svc.Name, svc.Namespace, port.Port),
				Domains: domains,
				Routes:  t.serviceRoutes(svc, port),
			})
		}
	}
	t.routes = append(t.routes, rc)
	t.listener(HTTPProxyName, "127.0.0.1", t.in.Proxy.HTTPProxyPort, corev3.TrafficDirection_OUTBOUND, t.hcm(HTTPProxyName, HTTPProxyName, usesFault(rc)))
}

// gateway builds a gateway proxy's configuration from the Gateway named by
// the proxy's workload (or, failing that, its service) in its namespace:
// one listener per port of the Gateway's HTTP and TCP listeners.
func (t *translator) gateway() {
	p := t.in.Proxy
	gw := t.in.Resources.gateways[nsName{p.Namespace, p.Workload}]
	if gw == nil {
		gw = t.in.Resources.gateways[nsName{p.Namespace, p.Service}]
	}
	if gw == nil {
		return
	}
	byPort := map[int32][]gwv1.Listener{}
	var ports []int32
	for _, l := range gw.Gateway().Listeners {
		if _, ok := byPort[int32(l.Port)]; !ok {
			ports = append(ports, int32(l.Port))
		}
		byPort[int32(l.Port)] = append(byPort[int32(l.Port)], l)
	}
	slices.Sort(ports)
	// The Gateway's first IPAddress address, if any, is where it listens
	// (127.0.0.1 keeps a local demo off the network); else every address.
	bind := "0.0.0.0"
	for _, a := range gw.Gateway().Addresses {
		if (a.Type == nil || *a.Type == gwv1.IPAddressType) && net.ParseIP(a.Value) != nil {
			bind = a.Value
			break
		}
	}
	for _, port := range ports {
		ls := byPort[port]
		par := parent{gateway: true, ns: gw.Namespace, name: gw.Name, port: port, sections: map[string]bool{}}
		for _, l := range ls {
			par.sections[string(l.Name)] = true
		}
		name := fmt.Sprintf("gateway_%s_%d", gw.Name, port)
		switch ls[0].Protocol {
		case gwv1.HTTPProtocolType:
			rc := t.gatewayRoutes(name, par, ls)
			t.routes = append(t.routes, rc)
			t.listener(name, bind, uint16(port), corev3.TrafficDirection_INBOUND, t.hcmWith(name, name, usesFault(rc), t.inboundHTTPFilters(uint32(port))))
		case gwv1.TCPProtocolType:
			var targets []tcpTarget
			for _, o := range t.in.Resources.tcpRoutes {
				spec := o.TCPRoute()
				if par.attaches(o.Namespace, spec.ParentRefs) && len(spec.Rules) > 0 {
					if targets = t.tcpRuleTargets(o.Namespace, spec.Rules[0]); len(targets) > 0 {
						break
					}
				}
			}
			if len(targets) > 0 {
				t.listener(name, bind, uint16(port), corev3.TrafficDirection_INBOUND, tcpProxy(name, targets))
			}
		}
		// HTTPS, TLS and UDP listeners need certificates (SDS) or UDP
		// support: not yet translated.
	}
}

// gatewayRoutes builds the route configuration of one Gateway port: a
// virtual host per hostname a route names (limited to the listeners'
// hostnames), and "*" for routes without hostnames.
func (t *translator) gatewayRoutes(name string, par parent, ls []gwv1.Listener) *routev3.RouteConfiguration {
	var listenerHosts []string
	anyHost := false
	for _, l := range ls {
		if l.Hostname == nil || *l.Hostname == "" {
			anyHost = true
		} else {
			listenerHosts = append(listenerHosts, string(*l.Hostname))
		}
	}
	allowed := func(h string) bool {
		if anyHost {
			return true
		}
		for _, lh := range listenerHosts {
			if hostMatches(lh, h) || hostMatches(h, lh) {
				return true
			}
		}
		return false
	}
	// Collect the hostnames named by attached routes.
	hostSet := map[string]bool{}
	collect := func(hs []gwv1.Hostname) {
		for _, h := range hs {
			if allowed(string(h)) {
				hostSet[string(h)] = true
			}
		}
	}
	for _, o := range t.in.Resources.httpRoutes {
		if par.attaches(o.Namespace, o.HTTPRoute().ParentRefs) {
			collect(o.HTTPRoute().Hostnames)
		}
	}
	for _, o := range t.in.Resources.grpcRoutes {
		if par.attaches(o.Namespace, o.GRPCRoute().ParentRefs) {
			collect(o.GRPCRoute().Hostnames)
		}
	}
	hosts := make([]string, 0, len(hostSet))
	for h := range hostSet {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	rc := &routev3.RouteConfiguration{Name: name}
	for _, h := range hosts {
		es := t.routeEntries(par, func(hs []gwv1.Hostname) bool {
			return slices.Contains(hs, gwv1.Hostname(h))
		})
		if len(es) == 0 {
			continue
		}
		sortEntries(es)
		rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{
			Name:    h,
			Domains: []string{h, h + ":" + strconv.Itoa(int(par.port))},
			Routes:  entryRoutes(es),
		})
	}
	// Routes without hostnames take the listeners' hostnames, or any host.
	es := t.routeEntries(par, func(hs []gwv1.Hostname) bool { return len(hs) == 0 })
	if len(es) > 0 {
		sortEntries(es)
		domains := []string{"*"}
		if !anyHost {
			domains = nil
			for _, lh := range listenerHosts {
				if !hostSet[lh] {
					domains = append(domains, lh, lh+":"+strconv.Itoa(int(par.port)))
				}
			}
		}
		if len(domains) > 0 {
			rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: "default", Domains: domains, Routes: entryRoutes(es)})
		}
	}
	return rc
}

func entryRoutes(es []entry) []*routev3.Route {
	out := make([]*routev3.Route, len(es))
	for i, e := range es {
		out[i] = e.route
	}
	return out
}

// hostMatches reports whether host is matched by pattern, which may start
// with "*." (one or more labels).
func hostMatches(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
	}
	return pattern == host
}

func (t *translator) listener(name, ip string, port uint16, dir corev3.TrafficDirection, filter *listenerv3.Filter) {
	t.listeners = append(t.listeners, &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(ip, uint32(port)),
		TrafficDirection: dir,
		FilterChains:     []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{filter}}},
	})
}

// hcm is an HTTP connection manager reading its routes over ADS. With
// fault, the fault filter (empty: routes configure it) precedes the router,
// as Envoy requires for typed_per_filter_config to take effect.
func (t *translator) hcm(statPrefix, routeConfig string, fault bool) *listenerv3.Filter {
	return t.hcmWith(statPrefix, routeConfig, fault, nil)
}

// hcmWith is hcm with the auth filters (JWT, RBAC) first. Every HTTP
// connection manager carries the mesh's trace sampling ratio.
func (t *translator) hcmWith(statPrefix, routeConfig string, fault bool, auth []*hcmv3.HttpFilter) *listenerv3.Filter {
	filters := slices.Clone(auth)
	if fault {
		filters = append(filters, &hcmv3.HttpFilter{
			Name:       FaultFilterName,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&faultv3.HTTPFault{})},
		})
	}
	filters = append(filters, &hcmv3.HttpFilter{
		Name:       routerName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(&routerv3.Router{})},
	})
	m := &hcmv3.HttpConnectionManager{
		StatPrefix: statPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: routeConfig,
			ConfigSource:    adsSource(),
		}},
		HttpFilters: filters,
		Tracing:     t.tracing(),
	}
	return &listenerv3.Filter{Name: hcmFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(m)}}
}

// tracing is the HCM tracing of the mesh's TraceSampling; nil when it is
// 0 (unset) or out of range.
func (t *translator) tracing() *hcmv3.HttpConnectionManager_Tracing {
	r := t.in.Mesh.TraceSampling
	if !(r > 0 && r <= 1) {
		return nil
	}
	return &hcmv3.HttpConnectionManager_Tracing{RandomSampling: &typev3.Percent{Value: r * 100}}
}

func tcpProxy(statPrefix string, targets []tcpTarget) *listenerv3.Filter {
	p := &tcpv3.TcpProxy{StatPrefix: statPrefix}
	if len(targets) == 1 {
		p.ClusterSpecifier = &tcpv3.TcpProxy_Cluster{Cluster: targets[0].cluster}
	} else {
		wc := &tcpv3.TcpProxy_WeightedCluster{}
		for _, tg := range targets {
			wc.Clusters = append(wc.Clusters, &tcpv3.TcpProxy_WeightedCluster_ClusterWeight{Name: tg.cluster, Weight: tg.weight})
		}
		p.ClusterSpecifier = &tcpv3.TcpProxy_WeightedClusters{WeightedClusters: wc}
	}
	return &listenerv3.Filter{Name: tcpFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(p)}}
}
