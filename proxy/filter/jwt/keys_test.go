package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
	"testing"
	"time"
)

// Test keys are generated once per test binary (RSA generation is slow).
type testKeys struct {
	rsa1, rsa2, rsaOther *rsa.PrivateKey
	ec256, ec384         *ecdsa.PrivateKey
	ed                   ed25519.PrivateKey
}

var keysOnce = sync.OnceValue(func() *testKeys {
	k := &testKeys{}
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa1, &k.rsa2, &k.rsaOther} {
		if *p, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	if k.ec256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		panic(err)
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		panic(err)
	}
	return k
})

var enc = base64.RawURLEncoding

// now is the fixed time of the tests.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// sign builds a compact JWS. key is an *rsa.PrivateKey, *ecdsa.PrivateKey,
// ed25519.PrivateKey, a []byte HMAC secret, or nil (no signature).
func sign(t testing.TB, alg, kid string, key any, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	hb, _ := json.Marshal(h)
	pb, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := enc.EncodeToString(hb) + "." + enc.EncodeToString(pb)
	return in + "." + enc.EncodeToString(signBytes(t, alg, key, in))
}

func signBytes(t testing.TB, alg string, key any, in string) []byte {
	t.Helper()
	hashOf := func(h crypto.Hash) []byte {
		w := h.New()
		w.Write([]byte(in))
		return w.Sum(nil)
	}
	var hh crypto.Hash
	switch alg[2:] {
	case "256":
		hh = crypto.SHA256
	case "384":
		hh = crypto.SHA384
	case "512":
		hh = crypto.SHA512
	}
	switch k := key.(type) {
	case nil:
		return nil
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(in))
		return m.Sum(nil)
	case *rsa.PrivateKey:
		var s []byte
		var err error
		if alg[0] == 'P' {
			s, err = rsa.SignPSS(rand.Reader, k, hh, hashOf(hh), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			s, err = rsa.SignPKCS1v15(rand.Reader, k, hh, hashOf(hh))
		}
		if err != nil {
			t.Fatal(err)
		}
		return s
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, hashOf(hh))
		if err != nil {
			t.Fatal(err)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		s.FillBytes(out[size:])
		return out
	case ed25519.PrivateKey:
		return ed25519.Sign(k, []byte(in))
	}
	t.Fatalf("sign: unknown key %T", key)
	return nil
}

// pubJWK renders the public half of key as a JWK with kid (and alg if set).
func pubJWK(t testing.TB, kid, alg string, key any) map[string]any {
	t.Helper()
	m := map[string]any{"kid": kid, "use": "sig"}
	if alg != "" {
		m["alg"] = alg
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		m["kty"] = "RSA"
		m["n"] = enc.EncodeToString(k.N.Bytes())
		m["e"] = enc.EncodeToString(big.NewInt(int64(k.E)).Bytes())
	case *ecdsa.PrivateKey:
		m["kty"] = "EC"
		m["crv"] = k.Curve.Params().Name
		pub, err := k.PublicKey.Bytes() // 0x04 || x || y
		if err != nil {
			t.Fatal(err)
		}
		size := (len(pub) - 1) / 2
		m["x"] = enc.EncodeToString(pub[1 : 1+size])
		m["y"] = enc.EncodeToString(pub[1+size:])
	case ed25519.PrivateKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = enc.EncodeToString(k.Public().(ed25519.PublicKey))
	default:
		t.Fatalf("jwk: unknown key %T", key)
	}
	return m
}

func jwksJSON(t testing.TB, keys ...map[string]any) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stdJWKS is the set most tests verify against.
func stdJWKS(t testing.TB) string {
	k := keysOnce()
	return jwksJSON(t,
		pubJWK(t, "rsa1", "RS256", k.rsa1),
		pubJWK(t, "rsa2", "", k.rsa2),
		pubJWK(t, "ec256", "ES256", k.ec256),
		pubJWK(t, "ec384", "", k.ec384),
		pubJWK(t, "ed", "", k.ed),
	)
}

// claims returns standard valid claims with overrides (nil deletes).
func claims(over map[string]any) map[string]any {
	c := map[string]any{
		"iss":    "https://issuer.example",
		"sub":    "alice",
		"aud":    "shop",
		"exp":    now.Add(time.Hour).Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"groups": []string{"admins", "dev"},
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// fakeClock is a Clock whose time moves only with Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}
