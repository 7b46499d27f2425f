package jwt

import (
	"strings"
	"testing"

	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	"google.golang.org/protobuf/proto"
)

// FuzzParseJWT: parsing and verifying never panic, and nothing verifies
// unless its signing input is one the test keys really signed.
func FuzzParseJWT(f *testing.F) {
	k := keysOnce()
	set, err := ParseJWKS([]byte(stdJWKS(f)))
	if err != nil {
		f.Fatal(err)
	}
	signed := map[string]bool{}
	for _, tok := range []string{
		sign(f, "RS256", "rsa1", k.rsa1, claims(nil)),
		sign(f, "ES256", "ec256", k.ec256, claims(nil)),
		sign(f, "PS384", "", k.rsa2, claims(map[string]any{"aud": []string{"a", "shop"}})),
		sign(f, "ES384", "ec384", k.ec384, claims(nil)),
		sign(f, "EdDSA", "ed", k.ed, claims(nil)),
	} {
		signed[tok[:strings.LastIndexByte(tok, '.')]] = true
		f.Add(tok)
	}
	for _, s := range []string{
		sign(f, "none", "", nil, claims(nil)),
		sign(f, "HS256", "rsa1", []byte("k"), claims(nil)),
		sign(f, "RS256", "rsa1", k.rsaOther, claims(nil)),
		"", ".", "..", "a.b.c", "e30.e30.", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := ParseJWT(raw)
		if err == nil && tok.Claims == nil {
			t.Fatal("parsed without claims")
		}
		c, err := Verify(raw, set, Validation{Now: now})
		if err != nil {
			if c != nil {
				t.Fatal("claims with an error")
			}
			if Reason(err) == "jwt_invalid" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if !signed[raw[:strings.LastIndexByte(raw, '.')]] {
			t.Fatalf("accepted a token the keys never signed: %q", raw)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(stdJWKS(f)))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseJWKS(b)
		if err == nil && s.Len() == 0 {
			t.Fatal("an empty set without an error")
		}
	})
}

// FuzzDecode: any JwtAuthentication proto bytes decode or fail without a
// panic, and a decoded filter decides without one.
func FuzzDecode(f *testing.F) {
	for _, js := range []string{decideCfg, `{"rules": [{"match": {"prefix": "/"}, "requires": {"allowMissing": {}}}]}`} {
		b, err := proto.Marshal(parseCfg(f, js))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c jwtv3.JwtAuthentication
		if proto.Unmarshal(b, &c) != nil {
			return
		}
		flt, err := Decode(&c, Options{Clock: &fakeClock{now: now}})
		if err != nil {
			return
		}
		r := flt.Decide(hdrs{"authorization": "Bearer a.b.c", "cookie": "session=x"}, "/api/v1/x?access_token=y")
		if r.Status == 0 && r.Claims != nil {
			t.Fatal("claims from a token nobody signed")
		}
	})
}
