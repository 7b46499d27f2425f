package shop_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/translate"
	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy"
)

// loadMesh decodes and validates mesh.yaml, failing on any error or
// warning.
func loadMesh(t *testing.T) []resource.Object {
	t.Helper()
	raw, err := os.ReadFile("mesh.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := resource.Decode("mesh.yaml", raw)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	warnings, err := resource.Validate(context.Background(), objs, nil)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("validate: warning: %s", w)
	}
	return objs
}

func TestMeshValid(t *testing.T) {
	objs := loadMesh(t)
	count := map[resource.Kind]int{}
	for _, o := range objs {
		count[o.Kind]++
		if o.Namespace != "shop" {
			t.Errorf("%s: namespace %q, want shop", o.Key(), o.Namespace)
		}
	}
	want := map[resource.Kind]int{
		resource.KindGateway: 1, resource.KindHTTPRoute: 2, resource.KindService: 6,
		resource.KindWorkload: 5, resource.KindBackendPolicy: 3,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %s objects, want %d", count[k], k, n)
		}
	}
}

// TestOneMeshFile: weft up reads every *.yaml of the folder.
func TestOneMeshFile(t *testing.T) {
	var yamls []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		yamls = append(yamls, m...)
	}
	if !slices.Equal(yamls, []string{"mesh.yaml"}) {
		t.Errorf("YAML files in examples/shop: %v, want only mesh.yaml", yamls)
	}
}

// TestWorkloadsBuildFromSource: every Workload is built from a package
// main of this folder, without a prebuilt command.
func TestWorkloadsBuildFromSource(t *testing.T) {
	for _, o := range loadMesh(t) {
		w := o.Workload()
		if w == nil {
			continue
		}
		if len(w.Command) > 0 || w.Build == nil {
			t.Errorf("%s: want build.go and no command", o.Key())
			continue
		}
		src, err := os.ReadFile(filepath.Join(w.Build.Go, "main.go"))
		if err != nil {
			t.Errorf("%s: build.go %q: %v", o.Key(), w.Build.Go, err)
			continue
		}
		if !strings.Contains(string(src), "\npackage main\n") {
			t.Errorf("%s: %s/main.go is not package main", o.Key(), w.Build.Go)
		}
		if r := w.Readiness; r == nil || r.HTTPPath != "/healthz" {
			t.Errorf("%s: readiness %+v, want httpPath /healthz", o.Key(), r)
		}
	}
}

// TestAddressesAreUpstreams: every loopback address a Workload passes its
// application is one of its upstream ports (never an instance address),
// and no two Workloads claim the same local port.
func TestAddressesAreUpstreams(t *testing.T) {
	owner := map[int32]string{}
	for _, o := range loadMesh(t) {
		w := o.Workload()
		if w == nil {
			continue
		}
		ups := map[int32]string{}
		for _, u := range w.Upstreams {
			ups[u.Port] = u.Service
			if prev, ok := owner[u.Port]; ok {
				t.Errorf("%s: upstream port %d also used by %s", o.Key(), u.Port, prev)
			}
			owner[u.Port] = o.Name
		}
		for _, e := range w.Env {
			host := strings.TrimPrefix(e.Value, "http://")
			if !strings.HasPrefix(host, "127.0.0.1:") {
				continue
			}
			port, err := strconv.Atoi(strings.TrimPrefix(host, "127.0.0.1:"))
			if err != nil {
				t.Errorf("%s: env %s=%q: %v", o.Key(), e.Name, e.Value, err)
				continue
			}
			svc, ok := ups[int32(port)]
			if !ok {
				t.Errorf("%s: env %s=%q is not an upstream port", o.Key(), e.Name, e.Value)
				continue
			}
			if want := strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(e.Name, "_ADDR"), "_URL")); svc != want {
				t.Errorf("%s: env %s points at upstream %s", o.Key(), e.Name, svc)
			}
		}
	}
}

// staticView is a registry with fixed instances.
type staticView map[registry.ServiceKey][]registry.Instance

func (v staticView) Endpoints(k registry.ServiceKey) []registry.Instance { return v[k] }
func (v staticView) Services() []registry.ServiceKey {
	var out []registry.ServiceKey
	for k := range v {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b registry.ServiceKey) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// view registers the instances weft up would start for objs.
func view(objs []resource.Object) staticView {
	v := staticView{}
	port := uint16(20000)
	for _, o := range objs {
		w := o.Workload()
		if w == nil {
			continue
		}
		k := registry.ServiceKey{Namespace: o.Namespace, Name: w.Service}
		for range w.ReplicaCount() {
			port++
			v[k] = append(v[k], registry.Instance{Service: k, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port), Labels: w.Labels})
		}
	}
	return v
}

func sidecar(objs []resource.Object, workload string) xds.ProxyInfo {
	for _, o := range objs {
		if w := o.Workload(); w != nil && o.Name == workload {
			return xds.ProxyInfo{
				NodeID: workload + "-0.shop", Service: w.Service, Namespace: "shop", Workload: workload,
				Role: xds.RoleSidecar, InstanceAddr: netip.MustParseAddrPort("127.0.0.1:30000"), AppPort: 30001,
				HTTPProxyPort: 30002, Protocol: string(w.Protocol), Labels: w.Labels,
			}
		}
	}
	panic("no workload " + workload)
}

// TestMeshTranslates: the translator turns mesh.yaml into the listeners
// and routes the demo relies on, with the 90/10 split and the retries on
// every path to the catalog.
func TestMeshTranslates(t *testing.T) {
	objs := loadMesh(t)
	res, reg := translate.Index(objs), view(objs)
	tr := func(p xds.ProxyInfo) translate.Output {
		t.Helper()
		out, err := translate.Translate(translate.Input{Proxy: p, Resources: res, Registry: reg})
		if err != nil {
			t.Fatalf("translate %s: %v", p.NodeID, err)
		}
		return out
	}
	route := func(out translate.Output, rc, vhostDomain string) []*routev3.Route {
		t.Helper()
		for _, r := range out.Routes {
			if r.GetName() != rc {
				continue
			}
			for _, vh := range r.GetVirtualHosts() {
				if slices.Contains(vh.GetDomains(), vhostDomain) {
					return vh.GetRoutes()
				}
			}
		}
		t.Fatalf("no route configuration %q with domain %q", rc, vhostDomain)
		return nil
	}
	checkCatalogSplit := func(name string, rs []*routev3.Route) {
		t.Helper()
		a := rs[0].GetRoute()
		var got []string
		for _, c := range a.GetWeightedClusters().GetClusters() {
			got = append(got, c.GetName()+"="+strconv.Itoa(int(c.GetWeight().GetValue())))
		}
		want := []string{"outbound|80||catalog-v1.shop=90", "outbound|80||catalog-v2.shop=10"}
		if !slices.Equal(got, want) {
			t.Errorf("%s: catalog split %v, want %v", name, got, want)
		}
		if rp := a.GetRetryPolicy(); rp.GetNumRetries().GetValue() != 2 || !strings.Contains(rp.GetRetryOn(), "5xx") {
			t.Errorf("%s: catalog retry policy %v, want 2 retries on 5xx", name, rp)
		}
	}

	t.Run("gateway", func(t *testing.T) {
		out := tr(xds.ProxyInfo{NodeID: "edge.shop", Service: "edge", Workload: "edge", Namespace: "shop", Role: xds.RoleGateway})
		rs := route(out, "gateway_edge_8080", "*")
		if got := rs[0].GetRoute().GetCluster(); got != "outbound|80||frontend.shop" {
			t.Errorf("gateway routes to %q, want the frontend", got)
		}
		// The demo's gateway stays on loopback (Gateway spec.addresses).
		for _, l := range out.Listeners {
			if l.GetName() == "gateway_edge_8080" {
				if a := l.GetAddress().GetSocketAddress().GetAddress(); a != "127.0.0.1" {
					t.Errorf("gateway listens on %s, want 127.0.0.1", a)
				}
			}
		}
	})
	t.Run("frontend", func(t *testing.T) {
		out := tr(sidecar(objs, "frontend"))
		checkCatalogSplit("http_proxy catalog.shop", route(out, translate.HTTPProxyName, "catalog.shop"))
		if got := route(out, translate.HTTPProxyName, "checkout.shop")[0].GetRoute().GetRetryPolicy().GetRetryOn(); got != "connect-failure,refused-stream" {
			t.Errorf("checkout retryOn %q, want connect-failure,refused-stream", got)
		}
		if got := route(out, "outbound|9002", "*")[0].GetRoute().GetCluster(); got != "outbound|50051||cart.shop" {
			t.Errorf("upstream 9002 routes to %q, want the cart", got)
		}
	})
	t.Run("checkout", func(t *testing.T) {
		out := tr(sidecar(objs, "checkout"))
		checkCatalogSplit("upstream 9101", route(out, "outbound|9101", "*"))
		if got := route(out, "outbound|9102", "*")[0].GetRoute().GetCluster(); got != "outbound|50051||cart.shop" {
			t.Errorf("upstream 9102 routes to %q, want the cart", got)
		}
	})
	t.Run("endpoints", func(t *testing.T) {
		out := tr(sidecar(objs, "checkout"))
		n := map[string]int{}
		for _, cla := range out.Endpoints {
			for _, le := range cla.GetEndpoints() {
				n[cla.GetClusterName()] += len(le.GetLbEndpoints())
			}
		}
		if n["outbound|80||catalog-v1.shop"] != 2 || n["outbound|80||catalog-v2.shop"] != 1 {
			t.Errorf("catalog endpoints %v, want 2 in v1 and 1 in v2", n)
		}
	})
	t.Run("catalog recovery", func(t *testing.T) {
		out := tr(sidecar(objs, "frontend"))
		seen := 0
		for _, c := range out.Clusters {
			if !strings.HasPrefix(c.GetName(), "outbound|80||catalog-v") {
				continue
			}
			seen++
			od := c.GetOutlierDetection()
			if od.GetConsecutiveGatewayFailure().GetValue() != 2 || od.GetEnforcingConsecutiveGatewayFailure().GetValue() != 100 || od.GetMaxEjectionPercent().GetValue() != 50 {
				t.Errorf("%s: outlier detection %v, want ejection after 2 gateway errors, up to 50%%", c.GetName(), od)
			}
			if hc := c.GetHealthChecks(); len(hc) != 1 || hc[0].GetHttpHealthCheck().GetPath() != "/healthz" {
				t.Errorf("%s: health checks %v, want GET /healthz", c.GetName(), hc)
			}
		}
		if seen != 2 {
			t.Errorf("saw %d catalog version clusters, want 2", seen)
		}
	})
	// Every proxy weft up starts must accept its configuration (a NACK
	// would leave the demo on no configuration at all).
	for _, name := range []string{"edge", "frontend", "catalog-v1", "catalog-v2", "cart", "checkout"} {
		t.Run("proxy accepts "+name, func(t *testing.T) {
			info := xds.ProxyInfo{NodeID: "edge.shop", Service: "edge", Workload: "edge", Namespace: "shop", Role: xds.RoleGateway}
			if name != "edge" {
				info = sidecar(objs, name)
			}
			acceptedByProxy(t, tr(info))
		})
	}
}

// acceptedByProxy pushes out to a real proxy (listeners on ephemeral
// loopback ports) in the xDS order CDS, EDS, LDS, RDS.
func acceptedByProxy(t *testing.T, out translate.Output) {
	t.Helper()
	p := proxy.New(proxy.Options{
		Logger: slog.New(slog.DiscardHandler),
		Listen: func(string, string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") },
	})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	pack := func(ms map[string]proto.Message) map[string]*anypb.Any {
		set := map[string]*anypb.Any{}
		for name, m := range ms {
			a, err := anypb.New(m)
			if err != nil {
				t.Fatal(err)
			}
			set[name] = a
		}
		return set
	}
	cds, eds, lds, rds := map[string]proto.Message{}, map[string]proto.Message{}, map[string]proto.Message{}, map[string]proto.Message{}
	for _, c := range out.Clusters {
		cds[c.GetName()] = c
	}
	for _, c := range out.Endpoints {
		eds[c.GetClusterName()] = c
	}
	for _, l := range out.Listeners {
		lds[l.GetName()] = l
	}
	for _, r := range out.Routes {
		rds[r.GetName()] = r
	}
	for _, step := range []struct {
		typeURL string
		set     map[string]proto.Message
	}{{resourcev3.ClusterType, cds}, {resourcev3.EndpointType, eds}, {resourcev3.ListenerType, lds}, {resourcev3.RouteType, rds}} {
		if err := p.Update(step.typeURL, pack(step.set)); err != nil {
			t.Fatalf("proxy refused %s: %v", step.typeURL, err)
		}
	}
}
