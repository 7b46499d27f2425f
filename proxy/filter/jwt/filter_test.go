package jwt

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
)

type hdrs map[string]string

func (h hdrs) Get(n string) (string, bool) { v, ok := h[n]; return v, ok }

// parseCfg decodes protojson; "$JWKS" is replaced by the standard JWKS as
// a JSON string.
func parseCfg(t testing.TB, js string) *jwtv3.JwtAuthentication {
	t.Helper()
	q, _ := json.Marshal(stdJWKS(t))
	js = strings.ReplaceAll(js, "$JWKS", string(q))
	var c jwtv3.JwtAuthentication
	if err := protojson.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

const decideCfg = `{
  "providers": {
    "people": {
      "issuer": "https://issuer.example", "audiences": ["shop"],
      "localJwks": {"inlineString": $JWKS},
      "claimToHeaders": [{"headerName": "X-User", "claimName": "sub"}, {"headerName": "x-tier", "claimName": "plan.tier"}]
    },
    "partners": {
      "issuer": "https://partners.example",
      "localJwks": {"inlineString": $JWKS},
      "fromHeaders": [{"name": "X-Partner-Token"}], "forward": true
    },
    "cookie": {
      "issuer": "https://issuer.example",
      "localJwks": {"inlineString": $JWKS},
      "fromCookies": ["session"]
    },
    "remote": {
      "issuer": "https://issuer.example",
      "remoteJwks": {"httpUri": {"uri": "http://127.0.0.1:1/jwks", "cluster": "idp", "timeout": "1s"}}
    }
  },
  "bypassCorsPreflight": true,
  "requirementMap": {"either": {"requiresAny": {"requirements": [{"providerName": "people"}, {"providerName": "partners"}]}}},
  "rules": [
    {"match": {"path": "/healthz"}},
    {"match": {"prefix": "/public"}, "requires": {"requiresAny": {"requirements": [{"providerName": "people"}, {"allowMissing": {}}]}}},
    {"match": {"prefix": "/lenient"}, "requires": {"allowMissingOrFailed": {}}},
    {"match": {"prefix": "/optional"}, "requires": {"allowMissing": {}}},
    {"match": {"pathSeparatedPrefix": "/both"}, "requires": {"requiresAll": {"requirements": [{"providerName": "people"}, {"providerName": "partners"}]}}},
    {"match": {"prefix": "/either"}, "requirementName": "either"},
    {"match": {"prefix": "/web"}, "requires": {"providerName": "cookie"}},
    {"match": {"prefix": "/remote"}, "requires": {"providerName": "remote"}},
    {"match": {"prefix": "/billing"}, "requires": {"providerAndAudiences": {"providerName": "people", "audiences": ["billing"]}}},
    {"match": {"prefix": "/ADMIN", "caseSensitive": false, "headers": [{"name": "x-env", "stringMatch": {"exact": "prod"}}]}, "requires": {"providerName": "people"}},
    {"match": {"safeRegex": {"regex": "/api/v[0-9]+/.*"}}, "requires": {"providerName": "people"}}
  ]
}`

func TestDecide(t *testing.T) {
	k := keysOnce()
	f, err := Decode(parseCfg(t, decideCfg), Options{Clock: &fakeClock{now: now}})
	if err != nil {
		t.Fatal(err)
	}
	good := sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"plan": map[string]any{"tier": "gold"}}))
	es := sign(t, "ES256", "ec256", k.ec256, claims(nil))
	partner := sign(t, "ES256", "ec256", k.ec256, claims(map[string]any{"iss": "https://partners.example", "sub": "acme"}))
	expired := sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"exp": now.Add(-time.Hour).Unix()}))
	forged := sign(t, "RS256", "rsa1", k.rsaOther, claims(nil))
	billing := sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"aud": "billing"}))
	bearer := func(tok string) hdrs { return hdrs{"authorization": "Bearer " + tok} }
	for _, tc := range []struct {
		name, path string
		h          hdrs
		status     int
		reason     string
		provider   string
		sub        string // expected sub claim ("" : no claims)
		remove     string
	}{
		{"valid RS256 bearer", "/api/v1/cart", bearer(good), 0, "jwt_verified", "people", "alice", "authorization"},
		{"valid ES256, lower-case scheme, trailing junk", "/api/v2/cart", hdrs{"authorization": "bearer " + es + ", x"}, 0, "jwt_verified", "people", "alice", "authorization"},
		{"token in the access_token param", "/api/v1/cart?x=1&access_token=" + es, hdrs{}, 0, "jwt_verified", "people", "alice", ""},
		{"missing", "/api/v1/cart", hdrs{}, 401, "jwt_missing", "people", "", ""},
		{"other scheme is missing", "/api/v1/cart", hdrs{"authorization": "Basic YTpi"}, 401, "jwt_missing", "people", "", ""},
		{"expired", "/api/v1/cart", bearer(expired), 401, "jwt_expired", "people", "", ""},
		{"forged", "/api/v1/cart", bearer(forged), 401, "jwt_bad_signature", "people", "", ""},
		{"garbage", "/api/v1/cart", bearer("abc"), 401, "jwt_malformed", "people", "", ""},
		{"audience mismatch answers 403", "/api/v1/cart", bearer(billing), 403, "jwt_audience_mismatch", "people", "", ""},
		{"provider_and_audiences overrides the audience", "/billing/x", bearer(billing), 0, "jwt_verified", "people", "alice", "authorization"},
		{"provider_and_audiences refuses the provider's own", "/billing/x", bearer(good), 403, "jwt_audience_mismatch", "people", "", ""},
		{"no requirement on /healthz", "/healthz", hdrs{}, 0, "no_requirement", "", "", ""},
		{"no rule matches", "/other", bearer(forged), 0, "no_requirement", "", "", ""},
		{"allow_missing: none", "/public/a", hdrs{}, 0, "jwt_missing", "people", "", ""},
		{"allow_missing: valid", "/public/a", bearer(good), 0, "jwt_verified", "people", "alice", "authorization"},
		{"allow_missing: invalid refused", "/public/a", bearer(forged), 401, "jwt_bad_signature", "people", "", ""},
		{"allow_missing: other issuer counts as missing", "/public/a", bearer(partner), 0, "jwt_issuer_mismatch", "people", "", ""},
		{"top-level allow_missing verifies with any provider", "/optional", hdrs{"x-partner-token": partner}, 0, "jwt_verified", "partners", "acme", ""},
		{"top-level allow_missing refuses a forgery", "/optional", bearer(forged), 401, "jwt_bad_signature", "people", "", ""},
		{"allow_missing_or_failed lets a forgery through unverified", "/lenient", bearer(forged), 0, "jwt_bad_signature", "people", "", ""},
		{"requires_all: both", "/both/x", hdrs{"authorization": "Bearer " + good, "x-partner-token": partner}, 0, "jwt_verified", "people", "alice", "authorization"},
		{"requires_all: one missing", "/both", bearer(good), 401, "jwt_missing", "partners", "", ""},
		{"path_separated_prefix does not match /bothx", "/bothx", hdrs{}, 0, "no_requirement", "", "", ""},
		{"requirement_name: second provider", "/either", hdrs{"x-partner-token": partner}, 0, "jwt_verified", "partners", "acme", ""},
		{"requirement_name: the issuer-matching failure is reported", "/either", hdrs{"x-partner-token": expired}, 401, "jwt_issuer_mismatch", "partners", "", ""},
		{"cookie", "/web/home", hdrs{"cookie": "theme=dark; session=" + es}, 0, "jwt_verified", "cookie", "alice", ""},
		{"cookie ignores the bearer header", "/web/home", bearer(es), 401, "jwt_missing", "cookie", "", ""},
		{"remote JWKS never fetched", "/remote", bearer(es), 401, "jwks_unavailable", "remote", "", ""},
		{"case-insensitive prefix and header match", "/admin/users", hdrs{"authorization": "Bearer " + good, "x-env": "prod"}, 0, "jwt_verified", "people", "alice", "authorization"},
		{"header match fails: rule skipped", "/admin/users", hdrs{"x-env": "dev"}, 0, "no_requirement", "", "", ""},
		{"CORS preflight bypasses", "/api/v1/cart", hdrs{":method": "OPTIONS", "origin": "https://a", "access-control-request-method": "POST"}, 0, "cors_preflight", "", "", ""},
		{"OPTIONS without CORS headers is checked", "/api/v1/cart", hdrs{":method": "OPTIONS"}, 401, "jwt_missing", "people", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.Decide(tc.h, tc.path)
			if r.Status != tc.status || r.Reason != tc.reason || r.Provider != tc.provider || r.RemoveHeader != tc.remove {
				t.Fatalf("got status %d reason %q provider %q remove %q (err %v); want %d %q %q %q",
					r.Status, r.Reason, r.Provider, r.RemoveHeader, r.Err, tc.status, tc.reason, tc.provider, tc.remove)
			}
			sub, _ := r.Claims["sub"].(string)
			if sub != tc.sub {
				t.Fatalf("sub claim %q, want %q", sub, tc.sub)
			}
			if (r.Err != nil) != (tc.reason != "jwt_verified" && tc.reason != "no_requirement" && tc.reason != "cors_preflight") {
				t.Fatalf("Err %v with reason %q", r.Err, r.Reason)
			}
		})
	}
	r := f.Decide(bearer(good), "/api/v1/x")
	want := []HeaderValue{{"x-user", "alice"}, {"x-tier", "gold"}}
	if len(r.SetHeaders) != 2 || r.SetHeaders[0] != want[0] || r.SetHeaders[1] != want[1] {
		t.Fatalf("claim_to_headers %v, want %v", r.SetHeaders, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ name, cfg, err string }{
		{"unknown top-level field", `{"filterStateRules": {"name": "x"}}`, "filter_state_rules: unsupported by weft"},
		{"no key source", `{"providers": {"p": {"issuer": "i"}}}`, `providers["p"]: local_jwks or remote_jwks required`},
		{"unsupported provider field", `{"providers": {"p": {"localJwks": {"inlineString": $JWKS}, "subjects": {"exact": "a"}}}}`, `providers["p"].subjects: unsupported by weft`},
		{"bad inline JWKS", `{"providers": {"p": {"localJwks": {"inlineString": "{}"}}}}`, `providers["p"].local_jwks: jwks: keys: missing`},
		{"missing JWKS file", `{"providers": {"p": {"localJwks": {"filename": "/nonexistent/jwks.json"}}}}`, `providers["p"].local_jwks.filename: open /nonexistent/jwks.json: no such file or directory`},
		{"remote retry policy", `{"providers": {"p": {"remoteJwks": {"httpUri": {"uri": "https://a/j", "cluster": "c", "timeout": "1s"}, "retryPolicy": {}}}}}`, `providers["p"].remote_jwks.retry_policy: unsupported by weft`},
		{"remote bad URI", `{"providers": {"p": {"remoteJwks": {"httpUri": {"uri": "ftp://a/j", "cluster": "c", "timeout": "1s"}}}}}`, `providers["p"].remote_jwks.http_uri.uri: want an http(s) URL, got "ftp://a/j"`},
		{"remote zero cache duration", `{"providers": {"p": {"remoteJwks": {"httpUri": {"uri": "https://a/j", "cluster": "c", "timeout": "1s"}, "cacheDuration": "0s"}}}}`, `providers["p"].remote_jwks.cache_duration: must be positive`},
		{"from_headers without a name", `{"providers": {"p": {"localJwks": {"inlineString": $JWKS}, "fromHeaders": [{"valuePrefix": "x"}]}}}`, `providers["p"].from_headers[0].name: required`},
		{"claim_to_headers path", `{"providers": {"p": {"localJwks": {"inlineString": $JWKS}, "claimToHeaders": [{"headerName": "x"}]}}}`, `providers["p"].claim_to_headers[0]: header_name and claim_name required`},
		{"unknown provider", `{"rules": [{"match": {"prefix": "/"}, "requires": {"providerName": "q"}}]}`, `rules[0].requires.provider_name: unknown provider "q"`},
		{"unknown requirement name", `{"rules": [{"match": {"prefix": "/"}, "requirementName": "q"}]}`, `rules[0].requirement_name: "q" not in requirement_map`},
		{"rule without match", `{"rules": [{}]}`, `rules[0].match: required`},
		{"rule query match", `{"rules": [{"match": {"prefix": "/", "queryParameters": [{"name": "a"}]}}]}`, `rules[0].match.query_parameters: unsupported by weft`},
		{"rule bad regex", `{"rules": [{"match": {"safeRegex": {"regex": "("}}}]}`, "rules[0].match.safe_regex.regex: error parsing regexp: missing closing ): `^(?:()$`"},
		{"rule header regex", `{"rules": [{"match": {"prefix": "/", "headers": [{"name": "a", "safeRegexMatch": {"regex": "x"}}]}}]}`, `rules[0].match.headers[0].safe_regex_match: unsupported by weft`},
		{"requires_any of one", `{"providers": {"p": {"localJwks": {"inlineString": $JWKS}}}, "rules": [{"match": {"prefix": "/"}, "requires": {"requiresAny": {"requirements": [{"providerName": "p"}]}}}]}`, `rules[0].requires.requires_any.requirements: at least 2 required`},
		{"allow_missing in requires_all", `{"providers": {"p": {"localJwks": {"inlineString": $JWKS}}}, "rules": [{"match": {"prefix": "/"}, "requires": {"requiresAll": {"requirements": [{"providerName": "p"}, {"allowMissing": {}}]}}}]}`, `rules[0].requires.requires_all.requirements[1]: allow_missing is meaningless in requires_all`},
		{"extract_only_without_validation", `{"rules": [{"match": {"prefix": "/"}, "requires": {"extractOnlyWithoutValidation": {}}}]}`, `rules[0].requires: requirement type unsupported by weft`},
		{"empty requirement", `{"rules": [{"match": {"prefix": "/"}, "requires": {}}]}`, `rules[0].requires: a requirement is required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(parseCfg(t, tc.cfg), Options{})
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func TestDecodeAny(t *testing.T) {
	a, err := anypb.New(parseCfg(t, `{"providers": {"p": {"localJwks": {"inlineString": $JWKS}, "payloadInMetadata": "jwt_payload", "jwtCacheConfig": {"jwtCacheSize": 10}}}, "statPrefix": "x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeAny(a, Options{}); err != nil {
		t.Fatal(err)
	}
	bad := &anypb.Any{TypeUrl: "type.googleapis.com/envoy.config.route.v3.Route"}
	if _, err := DecodeAny(bad, Options{}); err == nil || !strings.HasPrefix(err.Error(), "envoy.filters.http.jwt_authn: proto") || !strings.Contains(err.Error(), "mismatched message type") {
		t.Fatalf("error %v", err)
	}
}

func BenchmarkDecideES256(b *testing.B) {
	k := keysOnce()
	f, err := Decode(parseCfg(b, decideCfg), Options{Clock: &fakeClock{now: now}})
	if err != nil {
		b.Fatal(err)
	}
	h := hdrs{"authorization": "Bearer " + sign(b, "ES256", "ec256", k.ec256, claims(nil))}
	b.ReportAllocs()
	for b.Loop() {
		if r := f.Decide(h, "/api/v1/cart"); r.Status != 0 {
			b.Fatal(r.Reason)
		}
	}
}
