package jwt

import (
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	k := keysOnce()
	set, err := ParseJWKS([]byte(stdJWKS(t)))
	if err != nil {
		t.Fatal(err)
	}
	v := Validation{Issuer: "https://issuer.example", Audiences: []string{"shop", "admin"}, Now: now}
	good := sign(t, "RS256", "rsa1", k.rsa1, claims(nil))
	h, p, _ := strings.Cut(good, ".")
	p, s, _ := strings.Cut(p, ".")
	tampered := sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"sub": "mallory"}))
	_, tp, _ := strings.Cut(tampered, ".")
	tp, _, _ = strings.Cut(tp, ".")
	for _, tc := range []struct {
		name, token, reason string
		v                   *Validation
	}{
		{"RS256", good, "", nil},
		{"RS384 with a kid-less key", sign(t, "RS384", "rsa2", k.rsa2, claims(nil)), "", nil},
		{"RS512", sign(t, "RS512", "rsa2", k.rsa2, claims(nil)), "", nil},
		{"PS256", sign(t, "PS256", "rsa2", k.rsa2, claims(nil)), "", nil},
		{"ES256", sign(t, "ES256", "ec256", k.ec256, claims(nil)), "", nil},
		{"ES384", sign(t, "ES384", "ec384", k.ec384, claims(nil)), "", nil},
		{"EdDSA", sign(t, "EdDSA", "ed", k.ed, claims(nil)), "", nil},
		{"no kid: every fitting key is tried", sign(t, "RS256", "", k.rsa2, claims(nil)), "", nil},
		{"aud array holding an allowed audience", sign(t, "ES256", "ec256", k.ec256, claims(map[string]any{"aud": []string{"x", "admin"}})), "", nil},
		{"expired within the 60s leeway", sign(t, "ES256", "ec256", k.ec256, claims(map[string]any{"exp": now.Add(-59 * time.Second).Unix()})), "", nil},
		{"nbf within the leeway", sign(t, "ES256", "ec256", k.ec256, claims(map[string]any{"nbf": now.Add(59 * time.Second).Unix()})), "", nil},
		{"no exp, not required", sign(t, "ES256", "ec256", k.ec256, claims(map[string]any{"exp": nil})), "", nil},
		{"no exp, required", sign(t, "ES256", "ec256", k.ec256, claims(map[string]any{"exp": nil})), "jwt_exp_required", &Validation{Now: now, RequireExp: true}},
		{"expired", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"exp": now.Add(-61 * time.Second).Unix()})), "jwt_expired", nil},
		{"expired, no leeway", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"exp": now.Add(-time.Second).Unix()})), "jwt_expired", &Validation{Now: now, Leeway: -1}},
		{"not yet valid", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"nbf": now.Add(2 * time.Minute).Unix()})), "jwt_not_yet_valid", nil},
		{"wrong issuer", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"iss": "https://evil.example"})), "jwt_issuer_mismatch", nil},
		{"no issuer", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"iss": nil})), "jwt_issuer_mismatch", nil},
		{"wrong audience", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"aud": "billing"})), "jwt_audience_mismatch", nil},
		{"aud array without an allowed audience", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"aud": []string{"billing"}})), "jwt_audience_mismatch", nil},
		{"no aud", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"aud": nil})), "jwt_audience_mismatch", nil},
		{"aud not a string", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"aud": 7})), "jwt_malformed", nil},
		{"exp not a number", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"exp": "tomorrow"})), "jwt_malformed", nil},
		{"alg none, no signature", sign(t, "none", "", nil, claims(nil)), "jwt_unsupported_alg", nil},
		{"alg none with the signature of a valid token", h[:0] + enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + p + "." + s, "jwt_unsupported_alg", nil},
		{"HS256 keyed with the RSA public modulus", sign(t, "HS256", "rsa1", k.rsa1.N.Bytes(), claims(nil)), "jwt_unsupported_alg", nil},
		{"crit header", enc.EncodeToString([]byte(`{"alg":"RS256","kid":"rsa1","crit":["exp"]}`)) + "." + p + "." + s, "jwt_unsupported_alg", nil},
		{"bad signature: payload swapped", h + "." + tp + "." + s, "jwt_bad_signature", nil},
		{"bad signature: other key, same kid", sign(t, "RS256", "rsa1", k.rsaOther, claims(nil)), "jwt_bad_signature", nil},
		{"bad signature: ES256 of the wrong length", sign(t, "ES256", "ec256", k.ec256, claims(nil)) + "AAAA", "jwt_bad_signature", nil},
		{"unknown kid", sign(t, "RS256", "nope", k.rsa1, claims(nil)), "jwt_unknown_kid", nil},
		{"kid of a key of another type", sign(t, "RS256", "ec256", k.rsa1, claims(nil)), "jwt_unknown_kid", nil},
		{"kid of a key bound to another alg", sign(t, "RS384", "rsa1", k.rsa1, claims(nil)), "jwt_unknown_kid", nil},
		{"ES384 kid on a P-256 key", sign(t, "ES384", "ec256", k.ec384, claims(nil)), "jwt_unknown_kid", nil},
		{"empty", "", "jwt_malformed", nil},
		{"two parts", h + "." + p, "jwt_malformed", nil},
		{"four parts", good + ".x", "jwt_malformed", nil},
		{"empty header", "." + p + "." + s, "jwt_malformed", nil},
		{"padded base64", h + "=." + p + "." + s, "jwt_malformed", nil},
		{"standard base64 alphabet", strings.ReplaceAll(good, "_", "/"), "jwt_malformed", nil},
		{"header not JSON", enc.EncodeToString([]byte("alg")) + "." + p + "." + s, "jwt_malformed", nil},
		{"header without alg", enc.EncodeToString([]byte(`{"kid":"rsa1"}`)) + "." + p + "." + s, "jwt_malformed", nil},
		{"payload a JSON array", h + "." + enc.EncodeToString([]byte(`["a"]`)) + "." + s, "jwt_malformed", nil},
		{"payload null", h + "." + enc.EncodeToString([]byte(`null`)) + "." + s, "jwt_malformed", nil},
		{"signature not base64", h + "." + p + ".***", "jwt_malformed", nil},
		{"too large", h + "." + strings.Repeat("A", MaxTokenSize) + "." + s, "jwt_too_large", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vv := v
			if tc.v != nil {
				vv = *tc.v
			}
			c, err := Verify(tc.token, set, vv)
			if got := Reason(err); got != tc.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.reason)
			}
			if tc.reason == "" && c["sub"] != "alice" {
				t.Fatalf("claims %v", c)
			}
			if tc.reason != "" && c != nil {
				t.Fatalf("claims returned with an error: %v", c)
			}
		})
	}
}

func TestVerifyErrorText(t *testing.T) {
	k := keysOnce()
	set, _ := ParseJWKS([]byte(stdJWKS(t)))
	for _, tc := range []struct{ name, token, want string }{
		{"expired", sign(t, "RS256", "rsa1", k.rsa1, claims(map[string]any{"exp": now.Add(-time.Hour).Unix()})),
			"jwt_expired: exp 1772362800, now 1772366400"},
		{"unknown kid", sign(t, "ES256", "k9", k.ec256, claims(nil)), `jwt_unknown_kid: no ES256 key with kid "k9"`},
		{"alg", sign(t, "HS512", "", []byte("s"), claims(nil)), `jwt_unsupported_alg: "HS512"`},
		{"parts", "a.b", "jwt_malformed: want three dot-separated parts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.token, set, Validation{Now: now})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := Verify(sign(t, "RS256", "rsa1", k.rsa1, claims(nil)), nil, Validation{Now: now}); Reason(err) != "jwks_unavailable" {
		t.Fatalf("nil set: %v", err)
	}
	if Reason(nil) != "" || Reason(errString("x")) != "jwt_invalid" {
		t.Fatal("Reason of nil / foreign error")
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestParseJWKS(t *testing.T) {
	k := keysOnce()
	small := pubJWK(t, "s", "", k.rsa1)
	small["n"] = enc.EncodeToString(k.rsa1.N.Bytes()[:100])
	offCurve := pubJWK(t, "c", "", k.ec256)
	offCurve["y"] = offCurve["x"]
	shortX := pubJWK(t, "c", "", k.ec256)
	shortX["x"] = "AAAA"
	evenE := pubJWK(t, "e", "", k.rsa1)
	evenE["e"] = enc.EncodeToString([]byte{1, 0, 0})
	enc1 := pubJWK(t, "e", "", k.rsa1)
	enc1["use"] = "enc"
	for _, tc := range []struct {
		name, doc string
		keys      int
		err       string
	}{
		{"standard set", stdJWKS(t), 5, ""},
		{"oct and enc keys are skipped", jwksJSON(t, map[string]any{"kty": "oct", "k": "c2VjcmV0"}, enc1, pubJWK(t, "a", "", k.ec256)), 1, ""},
		{"unknown curve skipped", jwksJSON(t, map[string]any{"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}, pubJWK(t, "a", "", k.ed)), 1, ""},
		{"alg of another family skipped", jwksJSON(t, pubJWK(t, "a", "ES256", k.rsa1), pubJWK(t, "b", "", k.ed)), 1, ""},
		{"not JSON", "{", 0, "jwks: unexpected end of JSON input"},
		{"no keys member", `{}`, 0, "jwks: keys: missing"},
		{"only unusable keys", jwksJSON(t, map[string]any{"kty": "oct", "k": "c2VjcmV0"}), 0, "jwks: no usable signature-verification key"},
		{"small RSA modulus", jwksJSON(t, small), 0, "jwks: keys[0]: n: 800-bit modulus, want at least 2048"},
		{"even RSA exponent", jwksJSON(t, evenE), 0, "jwks: keys[0]: e: 65536 is not an odd exponent >= 3"},
		{"EC point off the curve", jwksJSON(t, offCurve), 0, "jwks: keys[0]: x, y: P256 point not on curve"},
		{"EC x too short", jwksJSON(t, shortX), 0, "jwks: keys[0]: x: want 32 base64url bytes"},
		{"Ed25519 x bad", jwksJSON(t, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AA"}), 0, "jwks: keys[0]: x: want 32 base64url bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseJWKS([]byte(tc.doc))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != tc.keys {
				t.Fatalf("%d keys, want %d", s.Len(), tc.keys)
			}
		})
	}
}

func benchVerify(b *testing.B, alg, kid string, key any) {
	set, err := ParseJWKS([]byte(stdJWKS(b)))
	if err != nil {
		b.Fatal(err)
	}
	tok := sign(b, alg, kid, key, claims(nil))
	v := Validation{Issuer: "https://issuer.example", Audiences: []string{"shop"}, Now: now}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(tok, set, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRS256(b *testing.B) { benchVerify(b, "RS256", "rsa1", keysOnce().rsa1) }
func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, "ES256", "ec256", keysOnce().ec256) }
