package resource

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
)

func TestDecodeShop(t *testing.T) {
	b, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode("shop.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	count := map[Kind]int{}
	for _, o := range objs {
		count[o.Kind]++
		if o.Namespace != "shop" || o.Source != "shop.yaml" || o.Index == 0 || len(o.Raw) == 0 {
			t.Errorf("%s: namespace %q source %q index %d raw %d bytes", o.Key(), o.Namespace, o.Source, o.Index, len(o.Raw))
		}
	}
	want := map[Kind]int{KindService: 7, KindWorkload: 6, KindBackendPolicy: 1, KindGateway: 1, KindHTTPRoute: 2, KindGRPCRoute: 1, KindTCPRoute: 1}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s: got %d objects, want %d", k, count[k], n)
		}
	}
	fe := objs[1].Workload()
	if fe == nil || *fe.Replicas != 2 || fe.Env.Map()["CART_ADDR"] != "127.0.0.1:9002" || fe.Readiness.Period.Duration != 2*time.Second ||
		fe.Upstreams[0].Namespace != "shop" || fe.Service != "frontend" {
		t.Errorf("frontend workload = %+v", fe)
	}
	bp := objs[8].BackendPolicy()
	if bp == nil || bp.Retries.Backoff.Max.Duration != 500*time.Millisecond || bp.LoadBalancer.Policy != v1alpha1.LBPeakEWMA {
		t.Errorf("backend policy = %+v", bp)
	}
	if r := objs[7].HTTPRoute(); r == nil || *r.Rules[0].BackendRefs[0].Weight != 90 {
		t.Errorf("catalog route = %+v", r)
	}
	if tr := objs[16]; tr.TCPRoute() == nil || tr.APIVersion != GatewayAlphaVersion {
		t.Errorf("tcp route = %+v", tr)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Key
		wantErr []string
	}{
		{
			name: "multi-document with empty and comment-only documents",
			in: "---\n# only a comment\n---\napiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n---\n\n--- # trailing\n" +
				"apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: b, namespace: x}\nspec: {ports: [{port: 81}]}\n",
			want: []Key{{KindService, "default", "a"}, {KindService, "x", "b"}},
		},
		{
			name: "json stream",
			in:   `{"apiVersion":"weft.dev/v1alpha1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":80}]}} {"apiVersion":"weft.dev/v1alpha1","kind":"Workload","metadata":{"name":"a"},"spec":{}}`,
			want: []Key{{KindService, "default", "a"}, {KindWorkload, "default", "a"}},
		},
		{
			name: "list",
			in:   "apiVersion: v1\nkind: List\nitems:\n- apiVersion: weft.dev/v1alpha1\n  kind: Workload\n  metadata: {name: w}\n  spec: {}\n",
			want: []Key{{KindWorkload, "default", "w"}},
		},
		{
			name: "unknown field with path and suggestion",
			in: "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n---\n" +
				"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: catalog}\nspec:\n  parentRefs: [{name: gw}]\n  rules:\n  - backendRefs:\n    - {name: a, port: 80}\n    - {name: b, port: 80, wieght: 5}\n",
			wantErr: []string{`f.yaml: document 2 (HTTPRoute default/catalog): spec.rules[0].backendRefs[1].wieght: unknown field (did you mean "weight"?)`},
		},
		{
			name:    "workload build unknown field",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {build: {golang: ./a}}\n",
			wantErr: []string{`f.yaml: document 1 (Workload default/a): spec.build.golang: unknown field`},
		},
		{
			name:    "case-sensitive field names",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {Ports: [{port: 80}]}\n",
			wantErr: []string{`f.yaml: document 1 (Service default/a): spec.Ports: unknown field (did you mean "ports"?)`},
		},
		{
			name: "wrong types, all reported",
			in:   "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a, labels: {x: 1}}\nspec:\n  ports:\n  - port: \"80\"\n  - port: 1.5\n  - port: 99999999999\n  visibility: [mesh]\n",
			wantErr: []string{
				`document 1 (Service default/a): metadata.labels.x: expected a string, got number 1`,
				`spec.ports[0].port: expected an integer, got string "80"`,
				`spec.ports[1].port: expected an integer, got 1.5`,
				`spec.ports[2].port: 99999999999 is out of range for a 32-bit integer`,
				`spec.visibility: expected a string, got a list`,
			},
		},
		{
			name:    "bad duration",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: BackendPolicy\nmetadata: {name: p}\nspec: {targetRef: {name: a}, connectTimeout: 5}\n",
			wantErr: []string{`document 1 (BackendPolicy default/p): spec.connectTimeout: invalid duration 5: want a string such as "250ms"`},
		},
		{
			name:    "bad duration string",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: BackendPolicy\nmetadata: {name: p}\nspec: {targetRef: {name: a}, retries: {perTryTimeout: 5 seconds}}\n",
			wantErr: []string{`spec.retries.perTryTimeout: invalid duration "5 seconds": want a number with a unit`},
		},
		{
			name:    "env of wrong shape",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: w}\nspec: {env: A=1}\n",
			wantErr: []string{`spec.env: env: want a list of {name, value} or a map of name: value, got "A=1"`},
		},
		{
			name:    "unknown kind",
			in:      "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
			wantErr: []string{`document 1: kind: unknown kind "Pod" (known: Service, Workload, BackendPolicy, FaultInjection, PeerAuthentication, AuthorizationPolicy, RequestAuthentication, AlertRule, Gateway, HTTPRoute, GRPCRoute, TCPRoute)`},
		},
		{
			name:    "wrong apiVersion",
			in:      "apiVersion: weft.dev/v1\nkind: Service\nmetadata: {name: a}\nspec: {}\n",
			wantErr: []string{`document 1 (Service default/a): apiVersion: "weft.dev/v1" is not served for kind Service; use weft.dev/v1alpha1`},
		},
		{
			name:    "missing kind and apiVersion",
			in:      "metadata: {name: a}\n",
			wantErr: []string{`kind: required (one of Service,`, `apiVersion: required`},
		},
		{
			name:    "missing spec",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\n",
			wantErr: []string{`document 1 (Service default/a): spec: required`},
		},
		{
			name:    "not an object",
			in:      "- a\n- b\n",
			wantErr: []string{`f.yaml: document 1: expected an object with apiVersion, kind, metadata and spec, got a list`},
		},
		{
			name:    "yaml syntax error with absolute line",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n---\napiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata:\n  name: b\n    bad: indent\n",
			wantErr: []string{`f.yaml: document 2: line 10: mapping values are not allowed in this context`},
		},
		{
			name:    "duplicate key",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: Service\nkind: Service\nmetadata: {name: a}\nspec: {}\n",
			wantErr: []string{`f.yaml: document 1: line 3: key "kind" already set in map`},
		},
		{
			name:    "list item error path",
			in:      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: weft.dev/v1alpha1\n  kind: Workload\n  metadata: {name: w}\n  spec: {replicas: many}\n",
			wantErr: []string{`document 1 (Workload default/w): items[0].spec.replicas: expected an integer, got string "many"`},
		},
		{
			name:    "errors of several documents",
			in:      "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {x: 1}\n---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: b}\nspec: {zz: 1}\n",
			wantErr: []string{`document 1 (Workload default/a): spec.x: unknown field`, `document 2 (Workload default/b): spec.zz: unknown field`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := Decode("f.yaml", []byte(tc.in))
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, got %d objects", len(objs))
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
					}
				}
				if objs != nil {
					t.Errorf("objects returned with an error: %v", objs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []Key
			for _, o := range objs {
				got = append(got, o.Key())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("object %d: got %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestObjectJSONRoundTrip(t *testing.T) {
	b, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode("shop.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		o.ResourceVersion, o.Generation, o.CreationTimestamp = "7", 2, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		js, err := o.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Object
		if err := back.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s: %v", o.Key(), err)
		}
		if same, err := SameContent(&o, &back); err != nil || !same {
			t.Errorf("%s: round trip changed the object (err %v):\n%s", o.Key(), err, js)
		}
		if back.ResourceVersion != "7" || back.Generation != 2 || !back.CreationTimestamp.Equal(o.CreationTimestamp) {
			t.Errorf("%s: metadata lost: %+v", o.Key(), back)
		}
		// A served document decodes strictly again (`get -o yaml | apply -f -`).
		again, err := Decode("served", js)
		if err != nil {
			t.Fatalf("%s: strict decode of a served document: %v", o.Key(), err)
		}
		if same, _ := SameContent(&o, &again[0]); !same || again[0].ResourceVersion != "7" {
			t.Errorf("%s: strict decode differs", o.Key())
		}
		c := o.DeepCopy()
		if same, _ := SameContent(&o, &c); !same {
			t.Errorf("%s: deep copy differs", o.Key())
		}
	}
}

func TestLookupKind(t *testing.T) {
	for in, want := range map[string]Kind{
		"svc": KindService, "Services": KindService, "wl": KindWorkload, "bp": KindBackendPolicy,
		"httproute": KindHTTPRoute, "HTTPRoute": KindHTTPRoute, "httproutes.gateway.networking.k8s.io": KindHTTPRoute,
		"gtw": KindGateway, "grpcroutes": KindGRPCRoute, "tcproute": KindTCPRoute,
		"pa": KindPeerAuthentication, "authz": KindAuthorizationPolicy, "ap": KindAuthorizationPolicy, "ra": KindRequestAuthentication,
		"peerauthentications.weft.dev": KindPeerAuthentication, "AuthorizationPolicies": KindAuthorizationPolicy, "requestauthentication": KindRequestAuthentication,
	} {
		ki, ok := LookupKind(in)
		if !ok || ki.Kind != want {
			t.Errorf("LookupKind(%q) = %v, %v; want %v", in, ki.Kind, ok, want)
		}
	}
	if _, ok := LookupKind("pods"); ok {
		t.Error("LookupKind(pods) succeeded")
	}
}
