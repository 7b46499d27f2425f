package translate

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/filter/authz"
	"github.com/weft-mesh/weft/proxy/filter/jwt"
)

// authObjects decodes YAML documents; each is one second younger than
// the one before it, so document order is age order.
func authObjects(t testing.TB, docs ...string) []resource.Object {
	t.Helper()
	objs, err := resource.Decode("test.yaml", []byte(strings.Join(docs, "---\n")))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range objs {
		objs[i].CreationTimestamp = base.Add(time.Duration(i) * time.Second)
	}
	return objs
}

func pa(ns, name, selector, mode string) string {
	s := "apiVersion: weft.dev/v1alpha1\nkind: PeerAuthentication\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n"
	if selector != "" {
		s += "  selector: {matchLabels: {" + selector + "}}\n"
	}
	if mode != "" {
		s += "  mtls: {mode: " + mode + "}\n"
	} else {
		s += "  mtls: {}\n"
	}
	return s
}

func policy(ns, name, spec string) string {
	return "apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n" + spec
}

func service(ns, name, visibility string) string {
	return "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec: {visibility: " + visibility +
		", ports: [{port: 80, targetPort: 8080}]}\n"
}

func gateway(ns, name, exposure string) string {
	ann := ""
	if exposure != "" {
		ann = ", annotations: {weft.dev/exposure: " + exposure + "}"
	}
	return "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: " + name + ", namespace: " + ns + ann + "}\n" +
		"spec: {gatewayClassName: weft, listeners: [{name: http, port: 8080, protocol: HTTP}]}\n"
}

func TestMTLSMode(t *testing.T) {
	tests := []struct {
		name   string
		docs   []string
		labels map[string]string
		def    v1alpha1.MTLSMode
		want   v1alpha1.MTLSMode
	}{
		{name: "no policy, no default", want: v1alpha1.MTLSPermissive},
		{name: "mesh default", def: v1alpha1.MTLSStrict, want: v1alpha1.MTLSStrict},
		{name: "UNSET default is permissive", def: v1alpha1.MTLSUnset, want: v1alpha1.MTLSPermissive},
		{name: "mesh-wide policy beats the default", docs: []string{pa("weft-system", "m", "", "DISABLE")}, def: v1alpha1.MTLSStrict, want: v1alpha1.MTLSDisable},
		{name: "selector in the root namespace is not mesh-wide", docs: []string{pa("weft-system", "m", "app: cart", "DISABLE")}, labels: map[string]string{"app": "cart"}, def: v1alpha1.MTLSStrict, want: v1alpha1.MTLSStrict},
		{name: "namespace beats mesh", docs: []string{pa("weft-system", "m", "", "DISABLE"), pa("shop", "wide", "", "STRICT")}, want: v1alpha1.MTLSStrict},
		{name: "workload beats namespace", docs: []string{pa("shop", "wide", "", "STRICT"), pa("shop", "w", "app: cart", "PERMISSIVE")}, labels: map[string]string{"app": "cart"}, want: v1alpha1.MTLSPermissive},
		{name: "selector not matching", docs: []string{pa("shop", "wide", "", "STRICT"), pa("shop", "w", "app: cart", "PERMISSIVE")}, labels: map[string]string{"app": "web"}, want: v1alpha1.MTLSStrict},
		{name: "UNSET workload falls through", docs: []string{pa("weft-system", "m", "", "STRICT"), pa("shop", "w", "app: cart", "")}, labels: map[string]string{"app": "cart"}, want: v1alpha1.MTLSStrict},
		{name: "UNSET namespace falls through", docs: []string{pa("shop", "wide", "", "UNSET")}, def: v1alpha1.MTLSDisable, want: v1alpha1.MTLSDisable},
		{name: "oldest wins within a level", docs: []string{pa("shop", "old", "", "DISABLE"), pa("shop", "new", "", "STRICT")}, want: v1alpha1.MTLSDisable},
		{name: "other namespace ignored", docs: []string{pa("ops", "wide", "", "STRICT")}, want: v1alpha1.MTLSPermissive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Index(authObjects(t, tt.docs...))
			if got := r.MTLSMode("shop", tt.labels, tt.def); got != tt.want {
				t.Errorf("MTLSMode = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestVisibleTo(t *testing.T) {
	r := Index(authObjects(t,
		service("shop", "ns-only", "namespace"), service("shop", "mesh", "mesh"), service("shop", "intra", "intranet"), service("shop", "inet", "internet"),
		gateway("gw", "edge", ""), gateway("gw", "lan", "intranet"), gateway("gw", "pub", "internet"),
	))
	if got := r.GatewayExposure("gw", "lan"); got != "intranet" {
		t.Errorf("GatewayExposure(lan) = %s", got)
	}
	if got := r.GatewayExposure("gw", "nope"); got != "internet" {
		t.Errorf("GatewayExposure(unknown) = %s", got)
	}
	proxies := map[string]xds.ProxyInfo{
		"sidecar in shop": {Namespace: "shop", Role: xds.RoleSidecar},
		"sidecar in ops":  {Namespace: "ops", Role: xds.RoleSidecar},
		"edge gateway":    {Namespace: "gw", Workload: "edge", Role: xds.RoleGateway},
		"lan gateway":     {Namespace: "gw", Workload: "lan", Role: xds.RoleGateway},
		"pub gateway":     {Namespace: "gw", Workload: "pub", Role: xds.RoleGateway},
		"undeclared gw":   {Namespace: "gw", Workload: "x", Role: xds.RoleGateway},
	}
	want := map[string]string{
		"sidecar in shop": "ns-only mesh intra inet",
		"sidecar in ops":  "mesh intra inet",
		"edge gateway":    "inet",
		"lan gateway":     "intra inet",
		"pub gateway":     "inet",
		"undeclared gw":   "inet",
	}
	for name, p := range proxies {
		var got []string
		for _, svc := range r.serviceLst {
			if r.VisibleTo(svc, p) {
				got = append(got, svc.Name)
			}
		}
		// serviceLst is sorted by name: inet intra mesh ns-only.
		w := strings.Fields(want[name])
		var sorted []string
		for _, n := range []string{"inet", "intra", "mesh", "ns-only"} {
			for _, x := range w {
				if x == n {
					sorted = append(sorted, n)
				}
			}
		}
		if strings.Join(got, " ") != strings.Join(sorted, " ") {
			t.Errorf("%s sees %v, want %v", name, got, sorted)
		}
	}
}

// hdrs is an authz.Headers and jwt.Headers.
type hdrs map[string]string

func (h hdrs) Get(n string) (string, bool) { v, ok := h[n]; return v, ok }

// validateAny runs protoc-gen-validate on the message inside a.
func validateAny(t testing.TB, a *anypb.Any) {
	t.Helper()
	m, err := a.UnmarshalNew()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.(validator).Validate(); err != nil {
		t.Fatalf("%s: %v", a.GetTypeUrl(), err)
	}
}

// httpChain decodes the filters as weft's proxy does: the jwt filter (if
// any) and the RBAC chain.
func httpChain(t testing.TB, fs []*hcmv3.HttpFilter) (*jwt.Filter, *authz.Chain, []string) {
	t.Helper()
	var (
		jf    *jwt.Filter
		rbacs []*authz.Filter
		names []string
	)
	for _, f := range fs {
		if err := f.Validate(); err != nil {
			t.Fatal(err)
		}
		validateAny(t, f.GetTypedConfig())
		names = append(names, f.GetName())
		switch f.GetName() {
		case JWTFilterName:
			var err error
			if jf, err = jwt.DecodeAny(f.GetTypedConfig(), jwt.Options{Clock: fixedClock{}}); err != nil {
				t.Fatal(err)
			}
		case RBACFilterName:
			rf, err := authz.DecodeAny(f.GetTypedConfig())
			if err != nil {
				t.Fatal(err)
			}
			rbacs = append(rbacs, rf)
			names[len(names)-1] += map[authz.Action]string{authz.Allow: "/ALLOW", authz.Deny: "/DENY"}[rf.Action()]
		default:
			t.Fatalf("unexpected filter %s", f.GetName())
		}
	}
	return jf, authz.NewChain(rbacs...), names
}

// fixedClock is a jwt.Clock stopped at the test's time.
type fixedClock struct{}

var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func (fixedClock) Now() time.Time                       { return testNow }
func (fixedClock) After(time.Duration) <-chan time.Time { return nil }

const (
	td       = "weft.local"
	frontend = "spiffe://weft.local/ns/shop/sa/frontend"
	opsCall  = "spiffe://weft.local/ns/ops/sa/batch"
	shopX    = "spiffe://weft.local/ns/shop/sa/x"
)

func cartProxy(protocol string) xds.ProxyInfo {
	return xds.ProxyInfo{
		NodeID: "cart-0.shop", Namespace: "shop", Service: "cart", Workload: "cart", ServiceAccount: "cart",
		Role: xds.RoleSidecar, Labels: map[string]string{"app": "cart"}, Protocol: protocol,
		InstanceAddr: netip.MustParseAddrPort("10.0.0.5:15006"), AppPort: 8080,
	}
}

func cartTranslator(p xds.ProxyInfo, objs []resource.Object, mode v1alpha1.MTLSMode) *translator {
	return &translator{in: Input{Proxy: p, Resources: Index(objs), Mesh: MeshConfig{TrustDomain: td, MTLSMode: mode, TrustBundle: []byte("test roots")}}}
}

var httpPolicies = []string{
	service("shop", "cart", "mesh"),
	gateway("gw", "edge", ""),
	policy("shop", "no-delete", "  action: DENY\n  rules: [{to: [{operation: {methods: [DELETE]}}]}]\n"),
	policy("shop", "admin-from-outside", "  action: DENY\n  rules: [{from: [{source: {notNamespaces: [shop]}}], to: [{operation: {paths: [\"/admin/*\"]}}]}]\n"),
	policy("shop", "frontend-reads", "  rules: [{from: [{source: {principals: [weft.local/ns/shop/sa/frontend]}}], to: [{operation: {methods: [GET, HEAD], paths: [\"/api/*\"]}}]}]\n"),
	policy("shop", "orders", "  rules: [{from: [{source: {namespaces: [ops]}}], to: [{operation: {paths: [\"/users/{*}/orders\"]}}]}]\n"),
	policy("shop", "jwt-admins", "  selector: {matchLabels: {app: cart}}\n  rules: [{to: [{operation: {paths: [\"/admin/*\"]}}], when: [{key: \"request.auth.claims[groups]\", values: [admins]}]}]\n"),
	policy("shop", "other-port", "  rules: [{to: [{operation: {ports: [\"9999\"]}}]}]\n"),
	policy("shop", "app-port", "  rules: [{from: [{source: {principals: [\"*\"]}}], to: [{operation: {ports: [\"8080\"], paths: [/health]}}]}]\n"),
	policy("shop", "alice", "  rules: [{from: [{source: {requestPrincipals: [\"https://issuer.example/alice\"]}}], to: [{operation: {paths: [/me]}}]}]\n"),
	policy("shop", "multi", "  rules:\n  - {from: [{source: {principals: [\"*/sa/a\"]}}], to: [{operation: {paths: [/a]}}]}\n  - {from: [{source: {principals: [\"*/sa/b\"]}}], to: [{operation: {paths: [/b]}}]}\n"),
	policy("shop", "hosts", "  rules: [{to: [{operation: {hosts: [\"*.shop.example\"], notPaths: [\"/private/*\"]}}], when: [{key: \"request.headers[x-tenant]\", values: [\"acme*\"]}]}]\n"),
	policy("shop", "other-workload", "  selector: {matchLabels: {app: web}}\n  rules: [{}]\n"),
	policy("ops", "other-namespace", "  rules: [{}]\n"),
}

func TestInboundHTTPFilters(t *testing.T) {
	tr := cartTranslator(cartProxy("http"), authObjects(t, httpPolicies...), v1alpha1.MTLSStrict)
	fs := tr.inboundHTTPFilters(15006)
	_, chain, names := httpChain(t, fs)
	if got := strings.Join(names, " "); got != RBACFilterName+"/DENY "+RBACFilterName+"/ALLOW" {
		t.Fatalf("filters = %s", got)
	}
	tests := []struct {
		name    string
		req     authz.Request
		allowed bool
		policy  string
	}{
		{"frontend reads the api", authz.Request{PeerPrincipal: frontend, Method: "GET", Path: "/api/items?x=1"}, true, "shop/frontend-reads"},
		{"frontend cannot post", authz.Request{PeerPrincipal: frontend, Method: "POST", Path: "/api/items"}, false, ""},
		{"nobody deletes", authz.Request{PeerPrincipal: frontend, Method: "DELETE", Path: "/api/items"}, false, "shop/no-delete"},
		{"ops reads orders", authz.Request{PeerPrincipal: opsCall, Method: "GET", Path: "/users/42/orders"}, true, "shop/orders"},
		{"template is one segment", authz.Request{PeerPrincipal: opsCall, Method: "GET", Path: "/users/42/x/orders"}, false, ""},
		{"plaintext caller is not in the mesh", authz.Request{Method: "GET", Path: "/api/items"}, false, "visibility/cart"},
		{"gateway cannot reach a mesh service", authz.Request{PeerPrincipal: "spiffe://weft.local/ns/gw/sa/edge", Method: "GET", Path: "/api/items"}, false, "visibility/cart"},
		{"admin from outside is denied first", authz.Request{PeerPrincipal: opsCall, Method: "GET", Path: "/admin/x", Claims: map[string]any{"groups": []any{"admins"}}}, false, "shop/admin-from-outside"},
		{"admin by claim list", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/admin/x", Claims: map[string]any{"groups": []any{"dev", "admins"}}}, true, "shop/jwt-admins"},
		{"admin by claim string", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/admin/x", Claims: map[string]any{"groups": "admins"}}, true, "shop/jwt-admins"},
		{"admin without claim", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/admin/x"}, false, ""},
		{"port resolved to the app port", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/health", DestinationPort: 15006}, true, "shop/app-port"},
		{"request principal", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/me", Claims: map[string]any{"iss": "https://issuer.example", "sub": "alice"}}, true, "shop/alice"},
		{"other request principal", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/me", Claims: map[string]any{"iss": "https://issuer.example", "sub": "bob"}}, false, ""},
		{"multi rule 0", authz.Request{PeerPrincipal: "spiffe://weft.local/ns/x/sa/a", Method: "GET", Path: "/a"}, true, "shop/multi[0]"},
		{"multi rule 1", authz.Request{PeerPrincipal: "spiffe://weft.local/ns/x/sa/b", Method: "GET", Path: "/b"}, true, "shop/multi[1]"},
		{"multi rules do not cross", authz.Request{PeerPrincipal: "spiffe://weft.local/ns/x/sa/a", Method: "GET", Path: "/b"}, false, ""},
		{"host and header", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/x", Headers: hdrs{":authority": "API.shop.example", "x-tenant": "acme-1"}}, true, "shop/hosts"},
		{"not path", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/private/x", Headers: hdrs{":authority": "api.shop.example", "x-tenant": "acme-1"}}, false, ""},
		{"header mismatch", authz.Request{PeerPrincipal: shopX, Method: "GET", Path: "/x", Headers: hdrs{":authority": "api.shop.example", "x-tenant": "globex"}}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := chain.Evaluate(tt.req)
			if d.Allowed != tt.allowed || d.Policy != tt.policy {
				t.Errorf("decision = %+v, want allowed=%v policy=%q", d, tt.allowed, tt.policy)
			}
		})
	}
}

func TestInboundHTTPFiltersNone(t *testing.T) {
	tests := []struct {
		name string
		p    xds.ProxyInfo
		docs []string
		mode v1alpha1.MTLSMode
		noCA bool
	}{
		{name: "no policies, no service", p: cartProxy("http")},
		{name: "internet service", p: cartProxy("http"), docs: []string{service("shop", "cart", "internet")}},
		{name: "mTLS disabled", p: cartProxy("http"), docs: []string{service("shop", "cart", "mesh")}, mode: v1alpha1.MTLSDisable},
		{name: "no CA", p: cartProxy("http"), docs: []string{service("shop", "cart", "mesh")}, mode: v1alpha1.MTLSStrict, noCA: true},
		{name: "disabled by PeerAuthentication", p: cartProxy("http"), docs: []string{service("shop", "cart", "mesh"), pa("shop", "disable-cart", "app: cart", "DISABLE")}, mode: v1alpha1.MTLSStrict},
		{name: "policies of other workloads", p: cartProxy("http"), docs: []string{policy("shop", "w", "  selector: {matchLabels: {app: web}}\n  rules: [{}]\n"), policy("ops", "o", "  action: DENY\n  rules: [{}]\n")}},
		{name: "gateway has no visibility rule", p: xds.ProxyInfo{Namespace: "shop", Service: "cart", Workload: "edge", Role: xds.RoleGateway}, docs: []string{service("shop", "cart", "mesh")}},
		{name: "deny rule on another port", p: cartProxy("http"), docs: []string{policy("shop", "d", "  action: DENY\n  rules: [{to: [{operation: {ports: [\"1\"]}}]}]\n")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := cartTranslator(tt.p, authObjects(t, tt.docs...), tt.mode)
			if tt.noCA {
				tr.in.Mesh.TrustBundle = nil
			}
			if fs := tr.inboundHTTPFilters(15006); fs != nil {
				t.Errorf("filters = %v, want nil", fs)
			}
			if fs := tr.inboundNetworkFilters(15006); fs != nil {
				t.Errorf("network filters = %v, want nil", fs)
			}
		})
	}
}

func TestVisibilityRule(t *testing.T) {
	gws := []string{gateway("gw", "edge", ""), gateway("gw", "lan", "intranet"), gateway("shop", "local", "intranet")}
	tests := []struct {
		visibility string
		peer       string
		allowed    bool
	}{
		{"namespace", shopX, true},
		{"namespace", opsCall, false},
		{"namespace", "", false},
		{"namespace", "spiffe://weft.local/ns/shop/sa/local", false}, // a gateway, though in the namespace
		{"namespace", "spiffe://other.domain/ns/shop/sa/x", false},
		{"mesh", opsCall, true},
		{"mesh", "", false},
		{"mesh", "spiffe://weft.local/ns/gw/sa/lan", false},
		{"mesh", "spiffe://weft.local/ns/gw/sa/edge", false},
		{"intranet", opsCall, true},
		{"intranet", "", false},
		{"intranet", "spiffe://weft.local/ns/gw/sa/lan", true},
		{"intranet", "spiffe://weft.local/ns/gw/sa/edge", false},
		{"internet", "", true},
		{"internet", "spiffe://weft.local/ns/gw/sa/edge", true},
	}
	// Under STRICT the table holds as written; under PERMISSIVE plaintext
	// callers (no peer) pass: only out-of-scope certificates are denied.
	for _, mode := range []v1alpha1.MTLSMode{v1alpha1.MTLSStrict, v1alpha1.MTLSPermissive} {
		for _, tt := range tests {
			allowed := tt.allowed || (mode == v1alpha1.MTLSPermissive && tt.peer == "")
			t.Run(string(mode)+" "+tt.visibility+" "+tt.peer, func(t *testing.T) {
				objs := authObjects(t, append([]string{service("shop", "cart", tt.visibility)}, gws...)...)
				tr := cartTranslator(cartProxy("http"), objs, mode)
				_, chain, _ := httpChain(t, tr.inboundHTTPFilters(15006))
				d := chain.Evaluate(authz.Request{PeerPrincipal: tt.peer, Method: "GET", Path: "/"})
				if d.Allowed != allowed || (!d.Allowed && d.Policy != "visibility/cart") {
					t.Errorf("decision = %+v, want allowed=%v", d, allowed)
				}
				// The same rule guards a TCP listener.
				nchain := networkChain(t, cartTranslator(cartProxy("tcp"), objs, mode).inboundNetworkFilters(15006))
				if nd := nchain.Evaluate(authz.Request{PeerPrincipal: tt.peer, DestinationPort: 15006}); nd.Allowed != allowed {
					t.Errorf("tcp decision = %+v, want allowed=%v", nd, allowed)
				}
			})
		}
	}
}

func networkChain(t testing.TB, fs []*listenerv3.Filter) *authz.Chain {
	t.Helper()
	var rbacs []*authz.Filter
	for _, f := range fs {
		if err := f.Validate(); err != nil {
			t.Fatal(err)
		}
		validateAny(t, f.GetTypedConfig())
		if f.GetName() != RBACNetworkFilterName {
			t.Fatalf("unexpected filter %s", f.GetName())
		}
		rf, err := authz.DecodeNetworkAny(f.GetTypedConfig())
		if err != nil {
			t.Fatal(err)
		}
		rbacs = append(rbacs, rf)
	}
	return authz.NewChain(rbacs...)
}

func TestInboundNetworkFilters(t *testing.T) {
	tests := []struct {
		name     string
		policies []string
		peer     string
		allowed  bool
		policy   string
	}{
		{name: "ports resolve", policies: []string{policy("shop", "p", "  rules: [{from: [{source: {namespaces: [ops]}}], to: [{operation: {ports: [\"80\"]}}]}]\n")}, peer: opsCall, allowed: true, policy: "shop/p"},
		{name: "other namespace", policies: []string{policy("shop", "p", "  rules: [{from: [{source: {namespaces: [ops]}}]}]\n")}, peer: shopX, allowed: false},
		{name: "HTTP fields make an ALLOW rule never match", policies: []string{policy("shop", "p", "  rules: [{from: [{source: {namespaces: [ops]}}], to: [{operation: {methods: [GET]}}]}]\n")}, peer: opsCall, allowed: false},
		{name: "request principals too", policies: []string{policy("shop", "p", "  rules: [{from: [{source: {namespaces: [ops], requestPrincipals: [\"*\"]}}]}]\n")}, peer: opsCall, allowed: false},
		{name: "HTTP conditions too", policies: []string{policy("shop", "p", "  rules: [{when: [{key: \"request.headers[x]\", values: [v]}]}]\n")}, peer: opsCall, allowed: false},
		{
			name: "HTTP fields are ignored in a DENY rule",
			policies: []string{
				policy("shop", "d", "  action: DENY\n  rules: [{from: [{source: {namespaces: [ops]}}], to: [{operation: {paths: [/x], notMethods: [GET]}}]}]\n"),
			},
			peer: opsCall, allowed: false, policy: "shop/d",
		},
		{
			name:     "DENY rule with L4 conditions",
			policies: []string{policy("shop", "d", "  action: DENY\n  rules: [{when: [{key: source.namespace, values: [ops]}, {key: destination.port, notValues: [\"1\"]}]}]\n")},
			peer:     shopX, allowed: true,
		},
		{
			name:     "source principal condition",
			policies: []string{policy("shop", "a", "  rules: [{when: [{key: source.principal, values: [\"weft.local/ns/ops/*\"]}]}]\n")},
			peer:     opsCall, allowed: true, policy: "shop/a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := authObjects(t, append([]string{service("shop", "cart", "internet")}, tt.policies...)...)
			chain := networkChain(t, cartTranslator(cartProxy("tcp"), objs, v1alpha1.MTLSStrict).inboundNetworkFilters(15006))
			d := chain.Evaluate(authz.Request{PeerPrincipal: tt.peer, DestinationPort: 15006})
			if d.Allowed != tt.allowed || d.Policy != tt.policy {
				t.Errorf("decision = %+v, want allowed=%v policy=%q", d, tt.allowed, tt.policy)
			}
		})
	}
}

func TestMatchValues(t *testing.T) {
	tests := []struct {
		name    string
		from    string
		peer    string
		claims  map[string]any
		allowed bool
	}{
		{"principal prefix", "principals: [\"weft.local/ns/ops/*\"]", opsCall, nil, true},
		{"principal suffix", "principals: [\"*/sa/batch\"]", opsCall, nil, true},
		{"principal exact miss", "principals: [weft.local/ns/ops/sa/web]", opsCall, nil, false},
		{"any principal", "principals: [\"*\"]", opsCall, nil, true},
		{"any principal needs one", "principals: [\"*\"]", "", nil, false},
		{"namespace exact is not a prefix", "namespaces: [op]", opsCall, nil, false},
		{"namespace prefix", "namespaces: [\"op*\"]", opsCall, nil, true},
		{"namespace suffix", "namespaces: [\"*ps\"]", opsCall, nil, true},
		{"namespace suffix miss", "namespaces: [\"*op\"]", opsCall, nil, false},
		{"namespace suffix is not the sa", "namespaces: [\"*tch\"]", opsCall, nil, false},
		{"any namespace", "namespaces: [\"*\"]", opsCall, nil, true},
		{"namespace of another trust domain", "namespaces: [ops]", "spiffe://other/ns/ops/sa/batch", nil, false},
		{"not namespaces", "notNamespaces: [shop]", opsCall, nil, true},
		{"not namespaces miss", "notNamespaces: [\"o*\"]", opsCall, nil, false},
		{"request principal any token", "requestPrincipals: [\"*\"]", "", map[string]any{"iss": "a", "sub": "b"}, true},
		{"request principal no token", "requestPrincipals: [\"*\"]", "", nil, false},
		{"request principal any subject", "requestPrincipals: [\"https://i.example/*\"]", "", map[string]any{"iss": "https://i.example", "sub": "b"}, true},
		{"request principal subject prefix", "requestPrincipals: [\"https://i.example/svc-*\"]", "", map[string]any{"iss": "https://i.example", "sub": "svc-1"}, true},
		{"request principal subject prefix miss", "requestPrincipals: [\"https://i.example/svc-*\"]", "", map[string]any{"iss": "https://i.example", "sub": "user-1"}, false},
		{"request principal any issuer", "requestPrincipals: [\"*/alice\"]", "", map[string]any{"iss": "x", "sub": "alice"}, true},
		{"request principal issuer suffix", "requestPrincipals: [\"*.example/alice\"]", "", map[string]any{"iss": "https://i.example", "sub": "alice"}, true},
		{"not request principals without token", "notRequestPrincipals: [\"*\"]", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := authObjects(t, policy("shop", "p", "  rules: [{from: [{source: {"+tt.from+"}}]}]\n"))
			_, chain, _ := httpChain(t, cartTranslator(cartProxy("http"), objs, v1alpha1.MTLSStrict).inboundHTTPFilters(15006))
			d := chain.Evaluate(authz.Request{PeerPrincipal: tt.peer, Method: "GET", Path: "/", Claims: tt.claims})
			if d.Allowed != tt.allowed {
				t.Errorf("decision = %+v, want allowed=%v", d, tt.allowed)
			}
		})
	}
}

func TestAllowNothing(t *testing.T) {
	objs := authObjects(t, policy("shop", "nothing", "  {}\n"), policy("shop", "d", "  action: DENY\n"))
	tr := cartTranslator(cartProxy("http"), objs, v1alpha1.MTLSStrict)
	_, chain, names := httpChain(t, tr.inboundHTTPFilters(15006))
	if len(names) != 1 || names[0] != RBACFilterName+"/ALLOW" {
		t.Fatalf("filters = %v, want one ALLOW filter", names)
	}
	if d := chain.Evaluate(authz.Request{PeerPrincipal: frontend, Method: "GET", Path: "/"}); d.Allowed || d.Reason != authz.ReasonNoAllowMatch {
		t.Errorf("decision = %+v, want denied", d)
	}
}

// es256 is a test issuer: a P-256 key, its JWKS, and a token signer.
type es256 struct {
	key *ecdsa.PrivateKey
}

func (k es256) jwks(t testing.TB) string {
	t.Helper()
	b, err := k.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return `{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "x": "` + enc(b[1:33]) + `", "y": "` + enc(b[33:]) + `"}]}`
}

func (k es256) sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding.EncodeToString
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := enc([]byte(`{"alg":"ES256","typ":"JWT","kid":"k1"}`)) + "." + enc(payload)
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k.key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc(sig)
}

func TestJWTAuthn(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := es256{key}
	ra := func(name, selector, rules string) string {
		s := "apiVersion: weft.dev/v1alpha1\nkind: RequestAuthentication\nmetadata: {name: " + name + ", namespace: shop}\nspec:\n"
		if selector != "" {
			s += "  selector: {matchLabels: {" + selector + "}}\n"
		}
		return s + "  jwtRules:\n" + rules
	}
	jwksJSON, _ := json.Marshal(iss.jwks(t))
	objs := authObjects(t,
		ra("people", "app: cart", "  - {issuer: \"https://issuer.example\", audiences: [shop], jwks: "+string(jwksJSON)+"}\n"),
		ra("partners", "", "  - {issuer: partner, jwksUri: \"https://partner.example/jwks\", fromHeaders: [{name: x-partner-token}], forwardOriginalToken: true}\n"),
		ra("web-only", "app: web", "  - {issuer: web, jwksUri: \"https://web.example/jwks\"}\n"),
		policy("shop", "alice", "  rules: [{from: [{source: {requestPrincipals: [\"https://issuer.example/alice\"]}}], when: [{key: request.auth.audiences, values: [shop]}]}]\n"),
	)
	tr := cartTranslator(cartProxy("http"), objs, v1alpha1.MTLSStrict)
	fs := tr.inboundHTTPFilters(15006)
	jf, chain, names := httpChain(t, fs)
	if got := strings.Join(names, " "); got != JWTFilterName+" "+RBACFilterName+"/ALLOW" {
		t.Fatalf("filters = %s", got)
	}
	cfg := tr.jwtAuthn()
	var provNames []string
	for n := range cfg.GetProviders() {
		provNames = append(provNames, n)
	}
	if len(provNames) != 2 || cfg.GetProviders()["shop/people/0"] == nil || cfg.GetProviders()["shop/partners/0"] == nil {
		t.Fatalf("providers = %v", provNames)
	}
	remote := cfg.GetProviders()["shop/partners/0"].GetRemoteJwks()
	if remote.GetHttpUri().GetCluster() != JWKSCluster || remote.GetHttpUri().GetTimeout().AsDuration() != 5*time.Second || remote.GetCacheDuration().AsDuration() != 5*time.Minute {
		t.Errorf("remote jwks = %v", remote)
	}
	exp := float64(testNow.Add(time.Hour).Unix())
	tests := []struct {
		name    string
		headers hdrs
		status  int
		allowed bool
	}{
		{"no token passes jwt, not the policy", hdrs{}, 0, false},
		{"alice", hdrs{"authorization": "Bearer " + iss.sign(t, map[string]any{"iss": "https://issuer.example", "sub": "alice", "aud": "shop", "exp": exp})}, 0, true},
		{"alice with audience list", hdrs{"authorization": "Bearer " + iss.sign(t, map[string]any{"iss": "https://issuer.example", "sub": "alice", "aud": []string{"x", "shop"}, "exp": exp})}, 0, true},
		{"bob", hdrs{"authorization": "Bearer " + iss.sign(t, map[string]any{"iss": "https://issuer.example", "sub": "bob", "aud": "shop", "exp": exp})}, 0, false},
		{"expired", hdrs{"authorization": "Bearer " + iss.sign(t, map[string]any{"iss": "https://issuer.example", "sub": "alice", "aud": "shop", "exp": float64(testNow.Add(-time.Hour).Unix())})}, 401, false},
		{"garbage", hdrs{"authorization": "Bearer x.y.z"}, 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := jf.Decide(tt.headers, "/orders")
			if res.Status != tt.status {
				t.Fatalf("jwt status = %d (%s, %v), want %d", res.Status, res.Reason, res.Err, tt.status)
			}
			if res.Status != 0 {
				return
			}
			d := chain.Evaluate(authz.Request{PeerPrincipal: frontend, Method: "GET", Path: "/orders", Headers: tt.headers, Claims: res.Claims})
			if d.Allowed != tt.allowed {
				t.Errorf("decision = %+v, want allowed=%v", d, tt.allowed)
			}
		})
	}
}

func TestAuthFiltersDeterministic(t *testing.T) {
	objs := authObjects(t, httpPolicies...)
	a := cartTranslator(cartProxy("http"), objs, v1alpha1.MTLSStrict).inboundHTTPFilters(15006)
	for range 5 {
		b := cartTranslator(cartProxy("http"), objs, v1alpha1.MTLSStrict).inboundHTTPFilters(15006)
		if len(a) != len(b) {
			t.Fatalf("%d filters, then %d", len(a), len(b))
		}
		for i := range a {
			if !proto.Equal(a[i], b[i]) {
				t.Fatalf("filter %d differs between calls", i)
			}
		}
	}
}

func BenchmarkInboundHTTPFilters(b *testing.B) {
	objs := authObjects(b, httpPolicies...)
	tr := cartTranslator(cartProxy("http"), objs, v1alpha1.MTLSStrict)
	b.ReportAllocs()
	for b.Loop() {
		if fs := tr.inboundHTTPFilters(15006); len(fs) != 2 {
			b.Fatal(len(fs))
		}
	}
}

// FuzzAuthzTranslate checks that every AuthorizationPolicy and
// RequestAuthentication that validation accepts translates into filters
// that pass Envoy's validation and weft's proxy decodes, on HTTP and TCP
// listeners.
func FuzzAuthzTranslate(f *testing.F) {
	for _, s := range httpPolicies[2:] {
		f.Add(s)
	}
	f.Add(policy("shop", "p", "  action: DENY\n  rules: [{from: [{source: {notRequestPrincipals: [\"*x\"], namespaces: [\"*-a\"]}}], to: [{operation: {notHosts: [\"a*\"], paths: [\"/{**}\"]}}], when: [{key: \"request.auth.claims[a][b]\", notValues: [\"*\"]}, {key: request.auth.presenter, values: [x]}]}]\n"))
	f.Add("apiVersion: weft.dev/v1alpha1\nkind: RequestAuthentication\nmetadata: {name: r, namespace: shop}\nspec:\n  jwtRules: [{issuer: a, jwks: '{\"keys\":[{\"kty\":\"RSA\"}]}', fromCookies: [c]}]\n")
	f.Add("apiVersion: weft.dev/v1alpha1\nkind: RequestAuthentication\nmetadata: {name: r, namespace: shop}\nspec:\n  jwtRules: [{issuer: a, jwksUri: \"http://[::1]:9/k\", audiences: [x], fromHeaders: [{name: x-t, prefix: \"T \"}], fromCookies: [c]}, {issuer: b, jwksUri: \"https://b/k\"}]\n")
	f.Fuzz(func(t *testing.T, doc string) {
		objs, err := resource.Decode("fuzz", []byte(doc))
		if err != nil {
			return
		}
		if _, err := resource.Validate(context.Background(), objs, nil); err != nil {
			return
		}
		inlineKeys := false // validation only checks the shape of inline key sets
		for _, o := range objs {
			if ra := o.RequestAuthentication(); ra != nil {
				for _, r := range ra.JWTRules {
					inlineKeys = inlineKeys || r.JWKS != ""
				}
			}
		}
		for _, proto := range []string{"http", "tcp"} {
			tr := cartTranslator(cartProxy(proto), objs, v1alpha1.MTLSStrict)
			for _, f := range tr.inboundHTTPFilters(15006) {
				if err := f.Validate(); err != nil {
					t.Fatal(err)
				}
				m, err := f.GetTypedConfig().UnmarshalNew()
				if err != nil {
					t.Fatal(err)
				}
				if err := m.(validator).Validate(); err != nil {
					t.Fatalf("%s: %v", f.GetName(), err)
				}
				switch f.GetName() {
				case RBACFilterName:
					if _, err := authz.DecodeAny(f.GetTypedConfig()); err != nil {
						t.Fatalf("proxy refuses %s: %v", f.GetName(), err)
					}
				case JWTFilterName:
					if _, err := jwt.DecodeAny(f.GetTypedConfig(), jwt.Options{Clock: fixedClock{}}); err != nil && !inlineKeys {
						t.Fatalf("proxy refuses %s: %v", f.GetName(), err)
					}
				}
			}
			for _, f := range tr.inboundNetworkFilters(15006) {
				validateAny(t, f.GetTypedConfig())
				if _, err := authz.DecodeNetworkAny(f.GetTypedConfig()); err != nil {
					t.Fatalf("proxy refuses %s: %v", f.GetName(), err)
				}
			}
		}
	})
}
