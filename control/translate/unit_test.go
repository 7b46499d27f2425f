package translate

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
)

func svcObj(ns, name string, vis v1alpha1.Visibility, ports ...v1alpha1.ServicePort) resource.Object {
	spec := &v1alpha1.ServiceSpec{Ports: ports, Visibility: vis}
	spec.SetDefaults()
	return resource.Object{Kind: resource.KindService, Namespace: ns, Name: name, Spec: spec}
}

func TestVisibility(t *testing.T) {
	objs := []resource.Object{
		svcObj("a", "private", v1alpha1.VisibilityNamespace, v1alpha1.ServicePort{Port: 80}),
		svcObj("a", "public", v1alpha1.VisibilityMesh, v1alpha1.ServicePort{Port: 80}),
		svcObj("b", "local", v1alpha1.VisibilityNamespace, v1alpha1.ServicePort{Port: 80}),
	}
	reg := registry.New(registry.Options{})
	defer reg.Close()
	tests := []struct {
		ns   string
		want []string
	}{
		{"a", []string{"outbound|80||private.a", "outbound|80||public.a"}},
		{"b", []string{"outbound|80||local.b", "outbound|80||public.a"}},
		{"c", []string{"outbound|80||public.a"}},
	}
	for _, tt := range tests {
		t.Run(tt.ns, func(t *testing.T) {
			out, err := Translate(Input{
				Proxy:     xds.ProxyInfo{NodeID: "p." + tt.ns, Namespace: tt.ns, Role: xds.RoleSidecar, HTTPProxyPort: 15001},
				Resources: Index(objs),
				Registry:  reg,
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range out.Clusters {
				got = append(got, c.GetName())
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Fatalf("clusters = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestInvalidOutputIsAnError(t *testing.T) {
	name := gwv1.HTTPHeaderName("bad\nheader")
	objs := []resource.Object{
		svcObj("a", "api", "", v1alpha1.ServicePort{Port: 80}),
		{Kind: resource.KindHTTPRoute, Namespace: "a", Name: "api", Spec: &gwv1.HTTPRouteSpec{
			CommonRouteSpec: gwv1.CommonRouteSpec{ParentRefs: []gwv1.ParentReference{{Kind: ptr(gwv1.Kind("Service")), Name: "api"}}},
			Rules: []gwv1.HTTPRouteRule{{
				Matches:     []gwv1.HTTPRouteMatch{{Headers: []gwv1.HTTPHeaderMatch{{Name: name, Value: "x"}}}},
				BackendRefs: []gwv1.HTTPBackendRef{{BackendRef: gwv1.BackendRef{BackendObjectReference: gwv1.BackendObjectReference{Name: "api"}}}},
			}},
		}},
	}
	reg := registry.New(registry.Options{})
	defer reg.Close()
	_, err := Translate(Input{
		Proxy:     xds.ProxyInfo{NodeID: "web-0.a", Namespace: "a", Role: xds.RoleSidecar, HTTPProxyPort: 15001},
		Resources: Index(objs),
		Registry:  reg,
	})
	const want = `translate "web-0.a": route configuration "http_proxy": invalid RouteConfiguration.VirtualHosts[0]: embedded message failed validation`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error = %v, want prefix %q", err, want)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSourceTranslator(t *testing.T) {
	reg := registry.New(registry.Options{})
	defer reg.Close()
	if err := reg.SetStatic("x", []registry.Instance{{Service: registry.ServiceKey{Namespace: "a", Name: "api"}, Addr: netip.MustParseAddrPort("10.0.0.1:80")}}); err != nil {
		t.Fatal(err)
	}
	var src Source
	tr := src.Translator(reg)
	p := xds.ProxyInfo{NodeID: "p", Namespace: "a", Role: xds.RoleSidecar, HTTPProxyPort: 15001}
	out, err := tr(p)
	if err != nil || len(out.Clusters) != 0 {
		t.Fatalf("before Set: %d clusters, %v", len(out.Clusters), err)
	}
	src.Set([]resource.Object{svcObj("a", "api", "", v1alpha1.ServicePort{Port: 80})})
	out, err = tr(p)
	if err != nil || len(out.Clusters) != 1 || len(out.Endpoints[0].GetEndpoints()) != 1 {
		t.Fatalf("after Set: %+v, %v", out, err)
	}
	if len(out.Services) != 1 || out.Services[0] != (registry.ServiceKey{Namespace: "a", Name: "api"}) {
		t.Fatalf("depends on %v", out.Services)
	}
}

func TestHostMatches(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          bool
	}{
		{"a.example.com", "a.example.com", true},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "a.b.example.com", true},
		{"*.example.com", "example.com", false},
		{"a.example.com", "b.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.host, func(t *testing.T) {
			if got := hostMatches(tt.pattern, tt.host); got != tt.want {
				t.Fatalf("hostMatches(%q, %q) = %v", tt.pattern, tt.host, got)
			}
		})
	}
}

// BenchmarkTranslateSidecar translates the frontend of the shop: what each
// push costs per proxy.
func BenchmarkTranslateSidecar(b *testing.B) {
	in := loadCase(b, "testdata/sidecar_frontend.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Translate(in); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRouteBackends(t *testing.T) {
	objs, err := resource.Decode("routes.yaml", []byte(`
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog-split, namespace: shop}
spec:
  parentRefs: [{group: "", kind: Service, name: catalog, port: 8080}]
  rules:
  - backendRefs: [{name: catalog-v2, port: 8080, weight: 10}, {name: catalog-v1, port: 8080, weight: 90}]
  - matches: [{path: {type: PathPrefix, value: /beta}}]
    backendRefs: [{name: catalog-v2, port: 8080}, {name: ledger, namespace: billing, port: 9000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: cart, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: cart}]
  rules: [{backendRefs: [{name: cart-v1, port: 9090}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: edge, namespace: shop}
spec:
  parentRefs: [{name: public}]
  rules: [{backendRefs: [{name: frontend, port: 8080}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := RouteBackends(objs)
	want := map[string][]string{
		"shop/catalog": {"catalog-v1.shop", "catalog-v2.shop", "ledger.billing"},
		"shop/cart":    {"cart-v1.shop"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("RouteBackends = %v, want %v (a Gateway parent is not a Service)", got, want)
	}
}
