package resource

import (
	"testing"
)

const (
	paHead   = "apiVersion: weft.dev/v1alpha1\nkind: PeerAuthentication\nmetadata: {name: pa, namespace: shop}\nspec:\n"
	authHead = "apiVersion: weft.dev/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: ap, namespace: shop}\nspec:\n"
	raHead   = "apiVersion: weft.dev/v1alpha1\nkind: RequestAuthentication\nmetadata: {name: ra, namespace: shop}\nspec:\n"
	jwksOK   = `{"keys": [{"kty": "EC", "crv": "P-256", "x": "a", "y": "b"}]}`
)

func TestValidateAuth(t *testing.T) {
	runValidateCases(t, []validateCase{
		{name: "peer authentication ok", in: paHead + "  selector: {matchLabels: {app: cart}}\n  mtls: {mode: STRICT}\n"},
		{name: "peer authentication defaults to UNSET", in: paHead + "  {}\n"},
		{
			name: "peer authentication errors",
			in:   paHead + "  selector: {matchLabels: {\"bad key!\": x}}\n  mtls: {mode: strict}\n",
			wantErr: []string{
				`f.yaml: document 1 (PeerAuthentication shop/pa): spec.mtls.mode: must be one of UNSET, STRICT, PERMISSIVE, DISABLE, got "strict"`,
				`spec.selector.matchLabels["bad key!"]: invalid label key "bad key!"`,
			},
		},
		{
			name:     "two namespace-wide peer authentications",
			existing: "apiVersion: weft.dev/v1alpha1\nkind: PeerAuthentication\nmetadata: {name: old, namespace: shop}\nspec: {mtls: {mode: PERMISSIVE}}\n",
			in:       paHead + "  mtls: {mode: STRICT}\n",
			wantWarn: []string{`(PeerAuthentication shop/pa): spec.selector: PeerAuthentication shop/old also applies to the whole namespace; only the oldest of them takes effect`},
		},
		{
			name: "authorization policy ok",
			in: authHead + "  selector: {matchLabels: {app: cart}}\n  action: DENY\n  rules:\n" +
				"  - from:\n    - source: {principals: [cluster.local/ns/shop/sa/frontend, \"*/sa/admin\", \"cluster.local/ns/ops/*\"], notNamespaces: [dev, \"test-*\", \"*-sandbox\", \"*\"]}\n" +
				"    - source: {requestPrincipals: [\"https://issuer.example/alice\", \"*\", \"https://issuer.example/*\"]}\n" +
				"    to:\n    - operation: {methods: [GET, HEAD, \"*\"], paths: [/cart, \"/api/*\", \"*.png\", \"*\", \"/users/{*}/orders\", \"/files/{**}\"], ports: [\"8080\"], hosts: [\"shop.example.com\", \"*.example.com\", \"example.com:8080\"]}\n" +
				"    when:\n    - {key: \"request.headers[x-user]\", values: [alice]}\n    - {key: \"request.auth.claims[groups]\", values: [admins]}\n" +
				"    - {key: \"request.auth.claims[realm][role]\", notValues: [guest]}\n    - {key: source.namespace, values: [shop]}\n    - {key: destination.port, values: [\"9090\"]}\n" +
				"    - {key: request.auth.principal, values: [\"iss/sub\"]}\n    - {key: request.auth.audiences, values: [shop]}\n  - {}\n",
		},
		{name: "allow nothing", in: authHead + "  {}\n"},
		{
			name: "authorization policy errors",
			in: authHead + "  action: AUDIT\n  rules:\n" +
				"  - from:\n    - source: {}\n    - source: {principals: [\"spiffe://cluster.local/ns/a/sa/b\", \"*a*\", \"\", \"a/*/b\"], namespaces: [Shop, \"sh*op\", \"*Dev\"], requestPrincipals: [alice, \"iss/\"]}\n" +
				"    to:\n    - operation: {}\n    - operation: {methods: [get, \"GE T\"], paths: [cart, \"api/*\", \"/a?b\", \"/users/{*}.json\", \"/a/{**}/b\", \"/a/*/{*}\", \"{*}\"], ports: [\"0\", http, \"65536\"], hosts: [\"a b\", \"*a*\"]}\n" +
				"    when:\n    - {key: source.ip, values: [1.2.3.4]}\n    - {key: \"request.headers[x-a]\"}\n    - {key: \"request.headers[bad header]\", values: [x]}\n    - {key: \"request.auth.claims[]\", values: [x]}\n" +
				"    - {key: destination.port, values: [http]}\n    - {values: [x]}\n    - {key: source.principal, notValues: [\"spiffe://x\"]}\n",
			wantErr: []string{
				`f.yaml: document 1 (AuthorizationPolicy shop/ap): spec.action: must be one of ALLOW, DENY, got "AUDIT"`,
				`spec.rules[0].from[0].source: must not be empty: set principals, namespaces or requestPrincipals (or their not- forms)`,
				`spec.rules[0].from[1].source.principals[0]: write the identity without "spiffe://" ("<trust-domain>/ns/<namespace>/sa/<service-account>"), got "spiffe://cluster.local/ns/a/sa/b"`,
				`spec.rules[0].from[1].source.principals[1]: "*a*": "*" is allowed only once, at the start (suffix match) or at the end (prefix match)`,
				`spec.rules[0].from[1].source.principals[2]: must not be empty`,
				`spec.rules[0].from[1].source.principals[3]: "a/*/b": "*" is allowed only once`,
				`spec.rules[0].from[1].source.namespaces[0]: must be a DNS-1123 label`,
				`spec.rules[0].from[1].source.namespaces[1]: "sh*op": "*" is allowed only once`,
				`spec.rules[0].from[1].source.namespaces[2]: must be a namespace name (lower-case letters, digits and '-'), optionally with a leading or trailing "*", got "*Dev"`,
				`spec.rules[0].from[1].source.requestPrincipals[0]: must be "<issuer>/<subject>" (or use "*"), got "alice"`,
				`spec.rules[0].from[1].source.requestPrincipals[1]: must be "<issuer>/<subject>" (or use "*"), got "iss/"`,
				`spec.rules[0].to[0].operation: must not be empty: set methods, paths, ports or hosts (or their not- forms)`,
				`spec.rules[0].to[1].operation.methods[0]: must be an upper-case HTTP method such as GET or POST (or "*"), got "get"`,
				`spec.rules[0].to[1].operation.methods[1]: must be an upper-case HTTP method such as GET or POST (or "*"), got "GE T"`,
				`spec.rules[0].to[1].operation.paths[0]: must start with "/" (or "*" for a suffix match), got "cart"`,
				`spec.rules[0].to[1].operation.paths[1]: must start with "/" (or "*" for a suffix match), got "api/*"`,
				`spec.rules[0].to[1].operation.paths[2]: must be a path without query, fragment or spaces, got "/a?b"`,
				`spec.rules[0].to[1].operation.paths[3]: "/users/{*}.json": segment "{*}.json": a template segment must be exactly "{*}" or "{**}", and "*" cannot be combined with them`,
				`spec.rules[0].to[1].operation.paths[4]: "/a/{**}/b": "{**}" must be the last segment`,
				`spec.rules[0].to[1].operation.paths[5]: "/a/*/{*}": segment "*"`,
				`spec.rules[0].to[1].operation.paths[6]: a path template must start with "/", got "{*}"`,
				`spec.rules[0].to[1].operation.ports[0]: must be a port number in 1-65535, got "0"`,
				`spec.rules[0].to[1].operation.ports[1]: must be a port number in 1-65535, got "http"`,
				`spec.rules[0].to[1].operation.ports[2]: must be a port number in 1-65535, got "65536"`,
				`spec.rules[0].to[1].operation.hosts[0]: must be a host name, optionally with a port and a leading or trailing "*", got "a b"`,
				`spec.rules[0].to[1].operation.hosts[1]: "*a*": "*" is allowed only once`,
				`spec.rules[0].when[0].key: unknown key "source.ip": want one of request.headers[<name>], request.auth.claims[<claim>], request.auth.principal, request.auth.audiences, request.auth.presenter, source.principal, source.namespace, destination.port`,
				`spec.rules[0].when[1]: set values or notValues`,
				`spec.rules[0].when[2].key: must be a valid HTTP header name, got "bad header"`,
				`spec.rules[0].when[3].key: request.auth.claims[]: want request.auth.claims[<name>], each name non-empty and in brackets`,
				`spec.rules[0].when[4].values[0]: must be a port number in 1-65535, got "http"`,
				`spec.rules[0].when[5].key: required: one of request.headers[<name>]`,
				`spec.rules[0].when[6].notValues[0]: write the identity without "spiffe://"`,
			},
		},
		{
			name:     "principal that matches no identity is a warning",
			in:       authHead + "  rules: [{from: [{source: {principals: [frontend]}}]}]\n",
			wantWarn: []string{`spec.rules[0].from[0].source.principals[0]: "frontend" does not look like "<trust-domain>/ns/<namespace>/sa/<service-account>" and will match no weft identity`},
		},
		{
			name: "request authentication ok",
			in: raHead + "  selector: {matchLabels: {app: cart}}\n  jwtRules:\n  - {issuer: \"https://issuer.example\", jwksUri: \"https://issuer.example/.well-known/jwks.json\", audiences: [shop]}\n" +
				"  - {issuer: local, jwksUri: \"http://127.0.0.1:8080/jwks\", fromHeaders: [{name: x-token}], fromCookies: [session]}\n" +
				"  - {issuer: dev, jwksUri: \"http://localhost/jwks\"}\n  - issuer: inline\n    jwks: '" + jwksOK + "'\n    forwardOriginalToken: true\n",
		},
		{
			name: "request authentication errors",
			in: raHead + "  jwtRules:\n  - {issuer: a, jwksUri: \"https://a.example/k\", jwks: '" + jwksOK + "'}\n  - {issuer: a}\n  - {jwksUri: \"http://issuer.example/k\"}\n" +
				"  - {issuer: b, jwksUri: \"ftp://issuer.example/k\"}\n  - {issuer: c, jwksUri: \"/k\"}\n  - {issuer: d, jwks: '{\"keys\": []}'}\n  - {issuer: e, jwks: 'nope'}\n" +
				"  - {issuer: f, jwks: '{\"keys\": [{\"kid\": \"1\"}]}'}\n  - {issuer: g, jwksUri: \"https://g.example/k\", audiences: [\"\"], fromHeaders: [{name: \"\"}, {name: \"x y\"}], fromCookies: [\"a;b\"]}\n",
			wantErr: []string{
				`f.yaml: document 1 (RequestAuthentication shop/ra): spec.jwtRules[0]: set either jwksUri or jwks, not both`,
				`spec.jwtRules[1].issuer: duplicate issuer "a" (also spec.jwtRules[0])`,
				`spec.jwtRules[1]: set jwksUri (where the issuer's keys are fetched) or jwks (the keys inline)`,
				`spec.jwtRules[2].issuer: required: the "iss" of the tokens`,
				`spec.jwtRules[2].jwksUri: must use https (http is allowed only to a loopback host), got "http://issuer.example/k"`,
				`spec.jwtRules[3].jwksUri: must be an https URL, got "ftp://issuer.example/k"`,
				`spec.jwtRules[4].jwksUri: must be an absolute https URL without user info or fragment, got "/k"`,
				`spec.jwtRules[5].jwks: must be a JWK set: want a non-empty "keys" array of objects`,
				`spec.jwtRules[6].jwks: must be a JWK set (JSON object with "keys"): invalid character`,
				`spec.jwtRules[7].jwks: keys[0]: "kty" is required`,
				`spec.jwtRules[8].audiences[0]: must not be empty`,
				`spec.jwtRules[8].fromHeaders[0].name: required`,
				`spec.jwtRules[8].fromHeaders[1].name: must be a valid HTTP header name, got "x y"`,
				`spec.jwtRules[8].fromCookies[0]: must be a cookie name (an HTTP token), got "a;b"`,
			},
		},
		{name: "request authentication needs rules", in: raHead + "  jwtRules: []\n", wantErr: []string{`(RequestAuthentication shop/ra): spec.jwtRules: at least one rule is required`}},
		{name: "gateway exposure ok", in: "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, annotations: {weft.dev/exposure: intranet}}\nspec: {gatewayClassName: weft, listeners: [{name: http, port: 8080, protocol: HTTP}]}\n"},
		{
			name:    "gateway exposure refused",
			in:      "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge, annotations: {weft.dev/exposure: public}}\nspec: {gatewayClassName: weft, listeners: [{name: http, port: 8080, protocol: HTTP}]}\n",
			wantErr: []string{`(Gateway default/edge): metadata.annotations["weft.dev/exposure"]: must be one of internet, intranet, got "public"`},
		},
	})
}
