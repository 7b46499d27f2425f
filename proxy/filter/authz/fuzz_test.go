package authz

import (
	"testing"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	"google.golang.org/protobuf/proto"
)

var fuzzReqs = []Request{
	{PeerPrincipal: frontend, Method: "GET", Path: "/api/cart?x=1", Headers: hdrs{"x-canary": "1", "x-env": "staging"}, DestinationPort: 8080},
	{PeerPrincipal: checkout, Method: "DELETE", Path: "/admin/users", Claims: map[string]any{"groups": []any{"admins", 1.0}, "plan": map[string]any{"tier": "gold"}}},
	{Path: "/items/1/reviews", DestinationPort: 9090},
	{},
}

// FuzzDecode: RBAC filter configs as proto bytes never make Decode or
// Evaluate panic, and the same rules as ALLOW and as DENY always give
// opposite answers.
func FuzzDecode(f *testing.F) {
	for _, js := range []string{denyCfg, allowCfg, `{}`, `{"rules": {}}`} {
		b, err := proto.Marshal(parseHTTP(f, js))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c rbachttpv3.RBAC
		if proto.Unmarshal(b, &c) != nil {
			return
		}
		fl, err := Decode(&c)
		if err != nil || c.GetRules() == nil {
			return
		}
		flipped := proto.Clone(&c).(*rbachttpv3.RBAC)
		if c.GetRules().GetAction() == rbacv3.RBAC_ALLOW {
			flipped.Rules.Action = rbacv3.RBAC_DENY
		} else {
			flipped.Rules.Action = rbacv3.RBAC_ALLOW
		}
		ff, err := Decode(flipped)
		if err != nil {
			t.Fatalf("flipped action refused: %v", err)
		}
		for _, r := range fuzzReqs {
			d1, d2 := fl.Evaluate(r), ff.Evaluate(r)
			if d1.Allowed == d2.Allowed || d1.Policy != d2.Policy {
				t.Fatalf("ALLOW and DENY of the same rules agree: %+v %+v", d1, d2)
			}
		}
	})
}

// FuzzEvaluate: arbitrary requests against the test policies never panic,
// decide the same twice, and a denial names a reason.
func FuzzEvaluate(f *testing.F) {
	chain := NewChain(decode(f, denyCfg), decode(f, allowCfg))
	f.Add(frontend, "GET", "/api/cart", "x-env", "staging", uint32(8080), "admins")
	f.Add(checkout, "DELETE", "/items/1/reviews/2", "x-canary", "", uint32(9090), "")
	f.Add("", "", "", "", "", uint32(0), "")
	f.Fuzz(func(t *testing.T, peer, method, path, hname, hval string, port uint32, group string) {
		r := Request{PeerPrincipal: peer, Method: method, Path: path, Headers: hdrs{hname: hval}, DestinationPort: port,
			Claims: map[string]any{"groups": []any{group}, "plan": map[string]any{"tier": group}}}
		d := chain.Evaluate(r)
		if d != chain.Evaluate(r) {
			t.Fatal("not deterministic")
		}
		switch {
		case d.Allowed && d.Reason != ReasonAllowedByPolicy:
			t.Fatalf("allowed with reason %q", d.Reason)
		case !d.Allowed && d.Reason != ReasonDeniedByPolicy && d.Reason != ReasonNoAllowMatch:
			t.Fatalf("denied with reason %q", d.Reason)
		case d.Reason == ReasonDeniedByPolicy && method != "DELETE" && (len(path) < 7 || path[:7] != "/admin/"):
			t.Fatalf("denied by %q without DELETE or /admin/", d.Policy)
		}
	})
}
