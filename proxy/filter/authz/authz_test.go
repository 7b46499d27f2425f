package authz

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
)

type hdrs map[string]string

func (h hdrs) Get(n string) (string, bool) { v, ok := h[n]; return v, ok }

func parseHTTP(t testing.TB, js string) *rbachttpv3.RBAC {
	t.Helper()
	var c rbachttpv3.RBAC
	if err := protojson.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func decode(t testing.TB, js string) *Filter {
	t.Helper()
	f, err := Decode(parseHTTP(t, js))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// denyCfg and allowCfg are what the control plane would emit for a
// workload in namespace shop: DENY rules first, then ALLOW rules.
const denyCfg = `{"rules": {"action": "DENY", "policies": {
  "ns[shop]-policy[no-admin-from-outside]-rule[0]": {
    "permissions": [{"urlPath": {"path": {"prefix": "/admin/"}}}],
    "principals": [{"notId": {"authenticated": {"principalName": {"prefix": "spiffe://weft.local/ns/shop/"}}}}]
  },
  "ns[shop]-policy[no-delete]-rule[0]": {
    "permissions": [{"header": {"name": ":method", "stringMatch": {"exact": "DELETE"}}}],
    "principals": [{"any": true}]
  }
}}}`

const allowCfg = `{"rules": {"action": "ALLOW", "policies": {
  "frontend-reads": {
    "permissions": [{"andRules": {"rules": [
      {"orRules": {"rules": [{"header": {"name": ":method", "stringMatch": {"exact": "GET"}}}, {"header": {"name": ":method", "stringMatch": {"exact": "HEAD"}}}]}},
      {"urlPath": {"path": {"prefix": "/api/"}}}
    ]}}],
    "principals": [{"authenticated": {"principalName": {"exact": "spiffe://weft.local/ns/shop/sa/frontend"}}}]
  },
  "shop-reviews": {
    "permissions": [{"uriTemplate": {"name": "envoy.path.match.uri_template.uri_template_matcher",
      "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "/items/{id}/reviews/**"}}}],
    "principals": [{"authenticated": {"principalName": {"prefix": "spiffe://weft.local/ns/shop/sa/"}}}]
  },
  "admins-by-jwt": {
    "permissions": [{"urlPath": {"path": {"prefix": "/admin/"}}}],
    "principals": [{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "groups"}],
      "value": {"orMatch": {"valueMatchers": [{"stringMatch": {"exact": "admins"}}, {"listMatch": {"oneOf": {"stringMatch": {"exact": "admins"}}}}]}}}}]
  },
  "metrics-port": {
    "permissions": [{"destinationPort": 9090}],
    "principals": [{"any": true}]
  },
  "canary-testers": {
    "permissions": [{"header": {"name": "x-canary", "presentMatch": true}}],
    "principals": [{"andIds": {"ids": [
      {"authenticated": {"principalName": {"suffix": "/sa/tester"}}},
      {"header": {"name": "x-env", "stringMatch": {"exact": "STAGING", "ignoreCase": true}}}
    ]}}]
  },
  "status-regex": {
    "permissions": [{"urlPath": {"path": {"safeRegex": {"regex": "/v[0-9]+/status"}}}}],
    "principals": [{"any": true}]
  },
  "tier-gold": {
    "permissions": [{"urlPath": {"path": {"exact": "/gold"}}}],
    "principals": [{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "plan"}, {"key": "tier"}],
      "value": {"stringMatch": {"exact": "gold"}}}}]
  }
}}}`

const (
	frontend = "spiffe://weft.local/ns/shop/sa/frontend"
	checkout = "spiffe://weft.local/ns/shop/sa/checkout"
	outsider = "spiffe://weft.local/ns/web/sa/frontend"
)

func TestChainEvaluate(t *testing.T) {
	chain := NewChain(decode(t, denyCfg), nil, decode(t, allowCfg))
	for _, tc := range []struct {
		name    string
		req     Request
		allowed bool
		policy  string
		reason  string
	}{
		{"frontend GET /api", Request{PeerPrincipal: frontend, Method: "GET", Path: "/api/cart?x=1", DestinationPort: 8080}, true, "frontend-reads", ReasonAllowedByPolicy},
		{"frontend HEAD /api", Request{PeerPrincipal: frontend, Method: "HEAD", Path: "/api/cart"}, true, "frontend-reads", ReasonAllowedByPolicy},
		{"frontend POST /api: no allow", Request{PeerPrincipal: frontend, Method: "POST", Path: "/api/cart"}, false, "", ReasonNoAllowMatch},
		{"frontend of another namespace", Request{PeerPrincipal: outsider, Method: "GET", Path: "/api/cart"}, false, "", ReasonNoAllowMatch},
		{"no peer identity", Request{Method: "GET", Path: "/api/cart"}, false, "", ReasonNoAllowMatch},
		{"query is not part of url_path", Request{PeerPrincipal: frontend, Method: "GET", Path: "/x?/api/"}, false, "", ReasonNoAllowMatch},
		{"DELETE denied first, even for an allowed caller", Request{PeerPrincipal: frontend, Method: "DELETE", Path: "/api/cart"}, false, "ns[shop]-policy[no-delete]-rule[0]", ReasonDeniedByPolicy},
		{"admin from outside the namespace denied", Request{PeerPrincipal: outsider, Method: "GET", Path: "/admin/users", Claims: map[string]any{"groups": []any{"admins"}}}, false, "ns[shop]-policy[no-admin-from-outside]-rule[0]", ReasonDeniedByPolicy},
		{"admin without peer identity denied by not_id", Request{Method: "GET", Path: "/admin/users", Claims: map[string]any{"groups": "admins"}}, false, "ns[shop]-policy[no-admin-from-outside]-rule[0]", ReasonDeniedByPolicy},
		{"admin claim as array", Request{PeerPrincipal: checkout, Method: "GET", Path: "/admin/users", Claims: map[string]any{"groups": []any{"dev", "admins"}}}, true, "admins-by-jwt", ReasonAllowedByPolicy},
		{"admin claim as string", Request{PeerPrincipal: checkout, Method: "GET", Path: "/admin/users", Claims: map[string]any{"groups": "admins"}}, true, "admins-by-jwt", ReasonAllowedByPolicy},
		{"admin claim missing", Request{PeerPrincipal: checkout, Method: "GET", Path: "/admin/users", Claims: map[string]any{"sub": "bob"}}, false, "", ReasonNoAllowMatch},
		{"admin claim of another value", Request{PeerPrincipal: checkout, Method: "GET", Path: "/admin/users", Claims: map[string]any{"groups": []any{"dev"}}}, false, "", ReasonNoAllowMatch},
		{"no claims at all", Request{PeerPrincipal: checkout, Method: "GET", Path: "/admin/users"}, false, "", ReasonNoAllowMatch},
		{"nested claim", Request{PeerPrincipal: outsider, Path: "/gold", Claims: map[string]any{"plan": map[string]any{"tier": "gold"}}}, true, "tier-gold", ReasonAllowedByPolicy},
		{"nested claim of a non-object", Request{PeerPrincipal: outsider, Path: "/gold", Claims: map[string]any{"plan": "gold"}}, false, "", ReasonNoAllowMatch},
		{"template: one segment then rest", Request{PeerPrincipal: checkout, Path: "/items/42/reviews/7/votes"}, true, "shop-reviews", ReasonAllowedByPolicy},
		{"template: ** matches zero segments", Request{PeerPrincipal: checkout, Path: "/items/42/reviews"}, true, "shop-reviews", ReasonAllowedByPolicy},
		{"template: {id} needs a segment", Request{PeerPrincipal: checkout, Path: "/items//reviews/x"}, false, "", ReasonNoAllowMatch},
		{"template: literal differs", Request{PeerPrincipal: checkout, Path: "/items/42/ratings/x"}, false, "", ReasonNoAllowMatch},
		{"wildcard principal of another namespace", Request{PeerPrincipal: outsider, Path: "/items/42/reviews"}, false, "", ReasonNoAllowMatch},
		{"port rule, L4", Request{DestinationPort: 9090}, true, "metrics-port", ReasonAllowedByPolicy},
		{"port rule, other port", Request{DestinationPort: 9091}, false, "", ReasonNoAllowMatch},
		{"and_ids: both", Request{PeerPrincipal: "spiffe://weft.local/ns/qa/sa/tester", Path: "/x", Headers: hdrs{"x-canary": "", "x-env": "staging"}}, true, "canary-testers", ReasonAllowedByPolicy},
		{"and_ids: header missing", Request{PeerPrincipal: "spiffe://weft.local/ns/qa/sa/tester", Path: "/x", Headers: hdrs{"x-canary": "1"}}, false, "", ReasonNoAllowMatch},
		{"regex path", Request{Path: "/v12/status"}, true, "status-regex", ReasonAllowedByPolicy},
		{"regex is anchored", Request{Path: "/v12/status/x"}, false, "", ReasonNoAllowMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := chain.Evaluate(tc.req)
			if d.Allowed != tc.allowed || d.Policy != tc.policy || d.Reason != tc.reason {
				t.Fatalf("got %+v, want {%v %q %q}", d, tc.allowed, tc.policy, tc.reason)
			}
		})
	}
}

func TestSemantics(t *testing.T) {
	get := Request{PeerPrincipal: frontend, Method: "GET", Path: "/"}
	for _, tc := range []struct {
		name    string
		chain   *Chain
		allowed bool
		reason  string
	}{
		{"no filters: allow", NewChain(), true, ReasonNoPolicy},
		{"nil chain: allow", nil, true, ReasonNoPolicy},
		{"filter without rules: allow", NewChain(decode(t, `{}`)), true, ReasonNoPolicy},
		{"only DENY, not matched: allow", NewChain(decode(t, denyCfg)), true, ReasonNoDenyMatch},
		{"empty ALLOW denies all", NewChain(decode(t, denyCfg), decode(t, `{"rules": {"action": "ALLOW"}}`)), false, ReasonNoAllowMatch},
		{"empty DENY denies nothing", NewChain(decode(t, `{"rules": {"action": "DENY"}}`)), true, ReasonNoDenyMatch},
		{"ALLOW any", NewChain(decode(t, `{"rules": {"policies": {"all": {"permissions": [{"any": true}], "principals": [{"any": true}]}}}}`)), true, ReasonAllowedByPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.chain.Evaluate(get)
			if d.Allowed != tc.allowed || d.Reason != tc.reason {
				t.Fatalf("got %+v, want %v %q", d, tc.allowed, tc.reason)
			}
		})
	}
	var nilFilter *Filter
	if d := nilFilter.Evaluate(get); !d.Allowed || d.Reason != ReasonNoPolicy {
		t.Fatalf("nil filter: %+v", d)
	}
	f := decode(t, allowCfg)
	if f.Action() != Allow || strings.Join(f.Policies(), ",") != "admins-by-jwt,canary-testers,frontend-reads,metrics-port,shop-reviews,status-regex,tier-gold" {
		t.Fatalf("action %v policies %v", f.Action(), f.Policies())
	}
}

func TestMatchers(t *testing.T) {
	one := func(perm string) *Filter {
		return decode(t, `{"rules": {"policies": {"p": {"permissions": [`+perm+`], "principals": [{"any": true}]}}}}`)
	}
	for _, tc := range []struct {
		name, perm string
		req        Request
		want       bool
	}{
		{"header absent, present_match false", `{"header": {"name": "x-a", "presentMatch": false}}`, Request{Headers: hdrs{}}, true},
		{"header present, present_match false", `{"header": {"name": "x-a", "presentMatch": false}}`, Request{Headers: hdrs{"x-a": "1"}}, false},
		{"inverted exact, other value", `{"header": {"name": "x-a", "stringMatch": {"exact": "1"}, "invertMatch": true}}`, Request{Headers: hdrs{"x-a": "2"}}, true},
		{"inverted exact, absent header never matches", `{"header": {"name": "x-a", "stringMatch": {"exact": "1"}, "invertMatch": true}}`, Request{}, false},
		{"treat missing as empty", `{"header": {"name": "x-a", "stringMatch": {"exact": "1"}, "invertMatch": true, "treatMissingHeaderAsEmpty": true}}`, Request{}, true},
		{"legacy prefix_match", `{"header": {"name": "X-A", "prefixMatch": "ab"}}`, Request{Headers: hdrs{"x-a": "abc"}}, true},
		{"legacy safe_regex_match", `{"header": {"name": "x-a", "safeRegexMatch": {"regex": "[0-9]+"}}}`, Request{Headers: hdrs{"x-a": "123"}}, true},
		{"header without specifier is presence", `{"header": {"name": "x-a"}}`, Request{Headers: hdrs{"x-a": ""}}, true},
		{":path header sees the query", `{"header": {"name": ":path", "stringMatch": {"suffix": "?debug=1"}}}`, Request{Path: "/a?debug=1"}, true},
		{"suffix ignore case", `{"urlPath": {"path": {"suffix": ".PNG", "ignoreCase": true}}}`, Request{Path: "/a/b.png"}, true},
		{"contains ignore case", `{"urlPath": {"path": {"contains": "ADMIN", "ignoreCase": true}}}`, Request{Path: "/x/Admin/y"}, true},
		{"prefix ignore case, short path", `{"urlPath": {"path": {"prefix": "/API/", "ignoreCase": true}}}`, Request{Path: "/ap"}, false},
		{"url_path on TCP never matches", `{"urlPath": {"path": {"prefix": "/"}}}`, Request{}, false},
		{"url_path fragment dropped", `{"urlPath": {"path": {"exact": "/a"}}}`, Request{Path: "/a#frag"}, true},
		{"not_rule", `{"notRule": {"destinationPort": 80}}`, Request{DestinationPort: 81}, true},
		{"port range inclusive start", `{"destinationPortRange": {"start": 8000, "end": 9000}}`, Request{DestinationPort: 8000}, true},
		{"port range exclusive end", `{"destinationPortRange": {"start": 8000, "end": 9000}}`, Request{DestinationPort: 9000}, false},
		{"template exact segments", `{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "/a/*/c"}}}`, Request{Path: "/a/b/c"}, true},
		{"template extra segment", `{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "/a/*/c"}}}`, Request{Path: "/a/b/c/d"}, false},
		{"template trailing slash", `{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "/a/{x=*}"}}}`, Request{Path: "/a/b/"}, false},
		{"template rest var", `{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "/a/{x=**}"}}}`, Request{Path: "/a/b/c?q"}, true},
		{"template shorter path", `{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "/a/*/c"}}}`, Request{Path: "/a/b"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := one(tc.perm).Evaluate(tc.req); d.Allowed != tc.want {
				t.Fatalf("got %+v, want allowed=%v", d, tc.want)
			}
		})
	}
}

func TestClaimValues(t *testing.T) {
	one := func(value string, invert bool) *Filter {
		return decode(t, fmt.Sprintf(`{"rules": {"policies": {"p": {"permissions": [{"any": true}], "principals": [{"metadata": {
		  "filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "c"}], "value": %s, "invert": %v}}]}}}}`, value, invert))
	}
	for _, tc := range []struct {
		name, value string
		invert      bool
		claim       any
		want        bool
	}{
		{"string exact", `{"stringMatch": {"exact": "a"}}`, false, "a", true},
		{"string on a list", `{"stringMatch": {"exact": "a"}}`, false, []any{"a"}, false},
		{"list one_of prefix", `{"listMatch": {"oneOf": {"stringMatch": {"prefix": "team-"}}}}`, false, []any{1.0, "team-x"}, true},
		{"list on a string", `{"listMatch": {"oneOf": {"stringMatch": {"exact": "a"}}}}`, false, "a", false},
		{"bool", `{"boolMatch": true}`, false, true, true},
		{"bool mismatch", `{"boolMatch": true}`, false, "true", false},
		{"double exact", `{"doubleMatch": {"exact": 3}}`, false, 3.0, true},
		{"double range", `{"doubleMatch": {"range": {"start": 1, "end": 2}}}`, false, 2.0, false},
		{"null", `{"nullMatch": {}}`, false, nil, true},
		{"present", `{"presentMatch": true}`, false, "x", true},
		{"inverted present, claim absent", `{"presentMatch": true}`, true, absent{}, true},
		{"absent claim", `{"stringMatch": {"exact": "a"}}`, false, absent{}, false},
		{"inverted string", `{"stringMatch": {"exact": "a"}}`, true, "b", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := map[string]any{"other": 1.0}
			if _, ok := tc.claim.(absent); !ok {
				claims["c"] = tc.claim
			}
			if d := one(tc.value, tc.invert).Evaluate(Request{Claims: claims}); d.Allowed != tc.want {
				t.Fatalf("got %+v, want allowed=%v", d, tc.want)
			}
		})
	}
}

type absent struct{}

func TestNetwork(t *testing.T) {
	parse := func(js string) *rbacnetv3.RBAC {
		var c rbacnetv3.RBAC
		if err := protojson.Unmarshal([]byte(js), &c); err != nil {
			t.Fatal(err)
		}
		return &c
	}
	f, err := DecodeNetwork(parse(`{"statPrefix": "tcp", "rules": {"policies": {"db": {
	  "permissions": [{"destinationPort": 5432}],
	  "principals": [{"authenticated": {"principalName": {"prefix": "spiffe://weft.local/ns/shop/sa/"}}}]}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  Request
		want bool
	}{
		{"shop caller on 5432", Request{PeerPrincipal: checkout, DestinationPort: 5432}, true},
		{"outsider on 5432", Request{PeerPrincipal: outsider, DestinationPort: 5432}, false},
		{"plaintext on 5432", Request{DestinationPort: 5432}, false},
		{"shop caller on 6379", Request{PeerPrincipal: checkout, DestinationPort: 6379}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := f.Evaluate(tc.req); d.Allowed != tc.want {
				t.Fatalf("got %+v, want allowed=%v", d, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, cfg, err string }{
		{"header in TCP", `{"rules": {"policies": {"p": {"permissions": [{"header": {"name": "a"}}], "principals": [{"any": true}]}}}}`,
			`rules.policies["p"].permissions[0].header: an HTTP matcher cannot be used in a network (TCP) RBAC filter`},
		{"claims in TCP", `{"rules": {"policies": {"p": {"permissions": [{"any": true}], "principals": [{"orIds": {"ids": [{"any": true}, {"metadata": {}}]}}]}}}}`,
			`rules.policies["p"].principals[0].or_ids.ids[1].metadata: an HTTP matcher cannot be used in a network (TCP) RBAC filter`},
		{"continuous enforcement", `{"enforcementType": "CONTINUOUS"}`, "enforcement_type: only ONE_TIME_ON_FIRST_BYTE is supported by weft"},
		{"delay_deny", `{"delayDeny": "1s"}`, "delay_deny: unsupported by weft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeNetwork(parse(tc.cfg)); err == nil || err.Error() != tc.err {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
	a, _ := anypb.New(parse(`{"rules": {"action": "DENY"}}`))
	if f, err := DecodeNetworkAny(a); err != nil || f.Action() != Deny {
		t.Fatalf("DecodeNetworkAny: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	pol := func(perm, prin string) string {
		return `{"rules": {"policies": {"p": {"permissions": [` + perm + `], "principals": [` + prin + `]}}}}`
	}
	const anyID = `{"any": true}`
	for _, tc := range []struct{ name, cfg, err string }{
		{"shadow rules", `{"shadowRules": {}}`, "shadow_rules: unsupported by weft"},
		{"matcher", `{"matcher": {}}`, "matcher: unsupported by weft"},
		{"LOG action", `{"rules": {"action": "LOG"}}`, "rules.action: LOG is unsupported by weft"},
		{"audit logging", `{"rules": {"auditLoggingOptions": {"auditCondition": "ON_DENY"}}}`, "rules.audit_logging_options: unsupported by weft"},
		{"CEL condition", `{"rules": {"policies": {"p": {"permissions": [{"any": true}], "principals": [{"any": true}], "condition": {"id": "1"}}}}}`, `rules.policies["p"].condition: unsupported by weft`},
		{"no permissions", `{"rules": {"policies": {"p": {"principals": [{"any": true}]}}}}`, `rules.policies["p"].permissions: at least one required`},
		{"no principals", `{"rules": {"policies": {"p": {"permissions": [{"any": true}]}}}}`, `rules.policies["p"].principals: at least one required`},
		{"first error by policy name", `{"rules": {"policies": {"b": {}, "a": {"permissions": [{"any": true}]}}}}`, `rules.policies["a"].principals: at least one required`},
		{"empty permission", pol(`{}`, anyID), `rules.policies["p"].permissions[0]: a rule is required`},
		{"any false", pol(`{"any": false}`, anyID), `rules.policies["p"].permissions[0].any: must be true`},
		{"destination_ip", pol(`{"destinationIp": {"addressPrefix": "10.0.0.0", "prefixLen": 8}}`, anyID), `rules.policies["p"].permissions[0].destination_ip: unsupported by weft`},
		{"requested_server_name", pol(`{"andRules": {"rules": [{"any": true}, {"requestedServerName": {"exact": "a"}}]}}`, anyID), `rules.policies["p"].permissions[0].and_rules.rules[1].requested_server_name: unsupported by weft`},
		{"empty and_rules", pol(`{"andRules": {}}`, anyID), `rules.policies["p"].permissions[0].and_rules.rules: at least one required`},
		{"port too large", pol(`{"destinationPort": 70000}`, anyID), `rules.policies["p"].permissions[0].destination_port: 70000 is not a port`},
		{"port range reversed", pol(`{"destinationPortRange": {"start": 9, "end": 9}}`, anyID), `rules.policies["p"].permissions[0].destination_port_range: want 0 <= start < end <= 65536, got [9, 9)`},
		{"header without name", pol(`{"notRule": {"header": {"exactMatch": "a"}}}`, anyID), `rules.policies["p"].permissions[0].not_rule.header.name: required`},
		{"header range", pol(`{"header": {"name": "a", "rangeMatch": {"start": 1, "end": 2}}}`, anyID), `rules.policies["p"].permissions[0].header.range_match: unsupported by weft`},
		{"bad regex", pol(`{"urlPath": {"path": {"safeRegex": {"regex": "a("}}}}`, anyID), "rules.policies[\"p\"].permissions[0].url_path.path.safe_regex.regex: error parsing regexp: missing closing ): `^(?:a()$`"},
		{"regex with ignore_case", pol(`{"urlPath": {"path": {"safeRegex": {"regex": "a"}, "ignoreCase": true}}}`, anyID), `rules.policies["p"].permissions[0].url_path.path.ignore_case: not allowed with safe_regex`},
		{"empty prefix", pol(`{"urlPath": {"path": {"prefix": ""}}}`, anyID), `rules.policies["p"].permissions[0].url_path.path: empty pattern`},
		{"url_path without path", pol(`{"urlPath": {}}`, anyID), `rules.policies["p"].permissions[0].url_path.path: required`},
		{"custom string matcher", pol(`{"urlPath": {"path": {"custom": {"name": "x"}}}}`, anyID), `rules.policies["p"].permissions[0].url_path.path.custom: unsupported by weft`},
		{"template of another type", pol(`{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/google.protobuf.Empty"}}}`, anyID), `rules.policies["p"].permissions[0].uri_template.typed_config: want an envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig`},
		{"template ** not last", pol(`{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "/a/**/b"}}}`, anyID), `rules.policies["p"].permissions[0].uri_template.typed_config.path_template: "/a/**/b": ** must be the last segment`},
		{"template partial wildcard", pol(`{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "/a/*.png"}}}`, anyID), `rules.policies["p"].permissions[0].uri_template.typed_config.path_template: "/a/*.png": segment "*.png" mixes text and wildcards`},
		{"template relative", pol(`{"uriTemplate": {"name": "t", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", "pathTemplate": "a"}}}`, anyID), `rules.policies["p"].permissions[0].uri_template.typed_config.path_template: "a" must start with /`},
		{"source_ip", pol(anyID, `{"sourceIp": {"addressPrefix": "10.0.0.0"}}`), `rules.policies["p"].principals[0].source_ip: unsupported by weft`},
		{"empty or_ids", pol(anyID, `{"orIds": {}}`), `rules.policies["p"].principals[0].or_ids.ids: at least one required`},
		{"empty principal", pol(anyID, `{"notId": {}}`), `rules.policies["p"].principals[0].not_id: an identifier is required`},
		{"metadata of another filter", pol(anyID, `{"metadata": {"filter": "istio_authn", "path": [{"key": "request.auth.claims"}, {"key": "groups"}], "value": {"presentMatch": true}}}`), `rules.policies["p"].principals[0].metadata.filter: only "envoy.filters.http.jwt_authn" (JWT claims) is supported by weft, got "istio_authn"`},
		{"metadata of another key", pol(anyID, `{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "payload"}, {"key": "groups"}], "value": {"presentMatch": true}}}`), `rules.policies["p"].principals[0].metadata.path: want ["jwt_payload", <claim>, ...]`},
		{"metadata without value", pol(anyID, `{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "groups"}]}}`), `rules.policies["p"].principals[0].metadata.value: required`},
		{"list without one_of", pol(anyID, `{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "g"}], "value": {"listMatch": {}}}}`), `rules.policies["p"].principals[0].metadata.value.list_match.one_of: required`},
		{"or_match of one", pol(anyID, `{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "g"}], "value": {"orMatch": {"valueMatchers": [{"boolMatch": true}]}}}}`), `rules.policies["p"].principals[0].metadata.value.or_match.value_matchers: at least 2 required`},
		{"present_match false", pol(anyID, `{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "g"}], "value": {"presentMatch": false}}}`), `rules.policies["p"].principals[0].metadata.value.present_match: must be true (use invert for absence)`},
		{"authenticated regex", pol(anyID, `{"authenticated": {"principalName": {"safeRegex": {"regex": "["}}}}`), "rules.policies[\"p\"].principals[0].authenticated.principal_name.safe_regex.regex: error parsing regexp: missing closing ]: `[)$`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(parseHTTP(t, tc.cfg))
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error %v\nwant  %s", err, tc.err)
			}
		})
	}
	if _, err := DecodeAny(&anypb.Any{TypeUrl: "type.googleapis.com/envoy.config.route.v3.Route"}); err == nil ||
		!strings.HasPrefix(err.Error(), "envoy.filters.http.rbac: proto") || !strings.Contains(err.Error(), "mismatched message type") {
		t.Fatalf("DecodeAny: %v", err)
	}
}

func TestNestingLimit(t *testing.T) {
	perm := `{"any": true}`
	for range maxDepth + 2 {
		perm = `{"notRule": ` + perm + `}`
	}
	_, err := Decode(parseHTTP(t, `{"rules": {"policies": {"p": {"permissions": [`+perm+`], "principals": [{"any": true}]}}}}`))
	if err == nil || !strings.HasSuffix(err.Error(), ": nested deeper than 32") {
		t.Fatalf("error %v", err)
	}
}

// TestEvaluateNoAllocs holds Evaluate to its hot-path promise.
func TestEvaluateNoAllocs(t *testing.T) {
	chain := NewChain(decode(t, denyCfg), decode(t, allowCfg))
	reqs := []Request{
		{PeerPrincipal: frontend, Method: "GET", Path: "/api/cart?x=1", Headers: hdrs{"x-env": "prod"}},
		{PeerPrincipal: checkout, Method: "GET", Path: "/admin/users", Claims: map[string]any{"groups": []any{"dev", "admins"}}},
		{PeerPrincipal: checkout, Path: "/items/42/reviews/7"},
		{Path: "/v12/status"},
		{PeerPrincipal: outsider, Method: "POST", Path: "/nothing", Headers: hdrs{"x-canary": "1"}},
	}
	for _, r := range reqs {
		if n := testing.AllocsPerRun(100, func() { chain.Evaluate(r) }); n != 0 {
			t.Errorf("%s %s: %v allocs", r.Method, r.Path, n)
		}
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	chain := NewChain(decode(t, denyCfg), decode(t, allowCfg))
	req := Request{PeerPrincipal: frontend, Method: "GET", Path: "/api/cart"}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if d := chain.Evaluate(req); !d.Allowed {
					t.Error("denied")
					return
				}
			}
		})
	}
	wg.Wait()
}

// benchChain builds 10 policies × 5 permissions, none of which the
// benchmark request matches before the last policy.
func benchChain(b *testing.B) *Chain {
	var ps []string
	for i := range 10 {
		var perms []string
		for j := range 5 {
			perms = append(perms, fmt.Sprintf(`{"andRules": {"rules": [{"header": {"name": ":method", "stringMatch": {"exact": "GET"}}}, {"urlPath": {"path": {"prefix": "/svc%d/op%d/"}}}]}}`, i, j))
		}
		ps = append(ps, fmt.Sprintf(`"p%02d": {"permissions": [%s], "principals": [{"authenticated": {"principalName": {"prefix": "spiffe://weft.local/ns/n%d/"}}}, {"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "jwt_payload"}, {"key": "groups"}], "value": {"listMatch": {"oneOf": {"stringMatch": {"exact": "g%d"}}}}}}]}`,
			i, strings.Join(perms, ","), i, i))
	}
	allow := decode(b, `{"rules": {"action": "ALLOW", "policies": {`+strings.Join(ps, ",")+`}}}`)
	deny := decode(b, `{"rules": {"action": "DENY", "policies": {"d": {"permissions": [{"header": {"name": ":method", "stringMatch": {"exact": "DELETE"}}}], "principals": [{"any": true}]}}}}`)
	return NewChain(deny, allow)
}

func BenchmarkEvaluate(b *testing.B) {
	chain := benchChain(b)
	for _, bc := range []struct {
		name string
		req  Request
		want bool
	}{
		{"last policy, last rule", Request{PeerPrincipal: "spiffe://weft.local/ns/n9/sa/x", Method: "GET", Path: "/svc9/op4/item", Headers: hdrs{}}, true},
		{"by claim", Request{PeerPrincipal: "spiffe://weft.local/ns/other/sa/x", Method: "GET", Path: "/svc9/op4/item", Claims: map[string]any{"groups": []any{"a", "g9"}}}, true},
		{"no match", Request{PeerPrincipal: "spiffe://weft.local/ns/n9/sa/x", Method: "POST", Path: "/svc9/op4/item"}, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := chain.Evaluate(bc.req); d.Allowed != bc.want {
					b.Fatal(d)
				}
			}
		})
	}
}
