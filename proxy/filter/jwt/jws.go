package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"time"
)

// MaxTokenSize is the largest compact JWS ParseJWT accepts, in bytes.
const MaxTokenSize = 16 << 10

// DefaultLeeway is the clock skew allowed on exp and nbf (Envoy's
// clock_skew_seconds default).
const DefaultLeeway = 60 * time.Second

// reasonError is a failure reason; its text is the reason reported in
// Result.Reason and in logs.
type reasonError string

func (e reasonError) Error() string { return string(e) }

// Failure reasons. Errors returned by this package wrap one of them;
// Reason extracts it.
var (
	ErrMissing          error = reasonError("jwt_missing")
	ErrTooLarge         error = reasonError("jwt_too_large")
	ErrMalformed        error = reasonError("jwt_malformed")
	ErrUnsupportedAlg   error = reasonError("jwt_unsupported_alg")
	ErrUnknownKID       error = reasonError("jwt_unknown_kid")
	ErrBadSignature     error = reasonError("jwt_bad_signature")
	ErrExpired          error = reasonError("jwt_expired")
	ErrNotYetValid      error = reasonError("jwt_not_yet_valid")
	ErrExpRequired      error = reasonError("jwt_exp_required")
	ErrIssuerMismatch   error = reasonError("jwt_issuer_mismatch")
	ErrAudienceMismatch error = reasonError("jwt_audience_mismatch")
	ErrJWKSUnavailable  error = reasonError("jwks_unavailable")
)

// Reason returns the failure reason err wraps ("jwt_expired", ...), or
// "jwt_invalid" for an error of unknown origin and "" for nil.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var r reasonError
	if errors.As(err, &r) {
		return string(r)
	}
	return "jwt_invalid"
}

// Header is the decoded JOSE header of a token.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
	// Crit lists critical extensions; weft understands none, so a token
	// that sets it is refused.
	Crit []string `json:"crit"`
}

// Token is a parsed, not yet verified, compact JWS. It is immutable after
// ParseJWT and safe for concurrent use.
type Token struct {
	Header Header
	// Claims is the decoded payload. Numbers are float64, as
	// encoding/json decodes them into an any.
	Claims map[string]any

	signingInput string // "<header>.<payload>" exactly as received
	signature    []byte
}

var b64 = base64.RawURLEncoding.Strict()

// ParseJWT splits and decodes a compact JWS (three base64url parts, no
// padding). It checks structure only: the signature is checked by
// VerifySignature and the claims by Validate.
func ParseJWT(raw string) (*Token, error) {
	if len(raw) > MaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxTokenSize)
	}
	h, rest, ok := strings.Cut(raw, ".")
	if !ok {
		return nil, fmt.Errorf("%w: want three dot-separated parts", ErrMalformed)
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s, ".") {
		return nil, fmt.Errorf("%w: want three dot-separated parts", ErrMalformed)
	}
	if h == "" || p == "" {
		return nil, fmt.Errorf("%w: empty part", ErrMalformed)
	}
	// An empty signature is structurally fine (alg "none" has one); the
	// alg check in VerifySignature refuses it.
	t := &Token{signingInput: raw[:len(h)+1+len(p)]}
	hb, err := b64.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if err := json.Unmarshal(hb, &t.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	if t.Header.Alg == "" {
		return nil, fmt.Errorf("%w: header: alg missing", ErrMalformed)
	}
	pb, err := b64.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	if err := json.Unmarshal(pb, &t.Claims); err != nil || t.Claims == nil {
		return nil, fmt.Errorf("%w: payload: not a JSON object", ErrMalformed)
	}
	if t.signature, err = b64.DecodeString(s); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	return t, nil
}

// algorithm describes one supported JWS alg.
type algorithm struct {
	kty   string // "RSA", "EC", "OKP"
	hash  crypto.Hash
	pss   bool
	curve string // EC: "P-256", ...; OKP: "Ed25519"
	size  int    // EC: bytes per coordinate (r and s each)
}

// algorithms are the supported algs. "none" and the HMAC family are absent
// on purpose: a token signed with a shared secret (or unsigned) never
// authenticates a person here.
var algorithms = map[string]algorithm{
	"RS256": {kty: "RSA", hash: crypto.SHA256},
	"RS384": {kty: "RSA", hash: crypto.SHA384},
	"RS512": {kty: "RSA", hash: crypto.SHA512},
	"PS256": {kty: "RSA", hash: crypto.SHA256, pss: true},
	"PS384": {kty: "RSA", hash: crypto.SHA384, pss: true},
	"PS512": {kty: "RSA", hash: crypto.SHA512, pss: true},
	"ES256": {kty: "EC", hash: crypto.SHA256, curve: "P-256", size: 32},
	"ES384": {kty: "EC", hash: crypto.SHA384, curve: "P-384", size: 48},
	"ES512": {kty: "EC", hash: crypto.SHA512, curve: "P-521", size: 66},
	"EdDSA": {kty: "OKP", curve: "Ed25519"},
}

func digest(h crypto.Hash, msg string) []byte {
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256([]byte(msg))
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384([]byte(msg))
		return d[:]
	default:
		d := sha512.Sum512([]byte(msg))
		return d[:]
	}
}

// VerifySignature checks the signature with the keys of set that fit the
// token's alg (and kid, when the token names one).
func (t *Token) VerifySignature(set *JWKS) error {
	alg, ok := algorithms[t.Header.Alg]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnsupportedAlg, t.Header.Alg)
	}
	if len(t.Header.Crit) > 0 {
		return fmt.Errorf("%w: critical header extensions %q", ErrUnsupportedAlg, t.Header.Crit)
	}
	if set == nil {
		return ErrJWKSUnavailable
	}
	tried := 0
	for i := range set.keys {
		k := &set.keys[i]
		if t.Header.Kid != "" && k.kid != t.Header.Kid {
			continue
		}
		if k.kty != alg.kty || (k.alg != "" && k.alg != t.Header.Alg) || (alg.curve != "" && k.crv != alg.curve) {
			continue
		}
		tried++
		if verifyWith(alg, k, t.signingInput, t.signature) {
			return nil
		}
	}
	if tried == 0 {
		if t.Header.Kid != "" {
			return fmt.Errorf("%w: no %s key with kid %q", ErrUnknownKID, t.Header.Alg, t.Header.Kid)
		}
		return fmt.Errorf("%w: no %s key", ErrUnknownKID, t.Header.Alg)
	}
	return ErrBadSignature
}

func verifyWith(alg algorithm, k *jwk, msg string, sig []byte) bool {
	switch alg.kty {
	case "RSA":
		d := digest(alg.hash, msg)
		if alg.pss {
			return rsa.VerifyPSS(k.rsa, alg.hash, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k.rsa, alg.hash, d, sig) == nil
	case "EC":
		if len(sig) != 2*alg.size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:alg.size])
		s := new(big.Int).SetBytes(sig[alg.size:])
		return ecdsa.Verify(k.ec, digest(alg.hash, msg), r, s)
	case "OKP":
		return ed25519.Verify(k.ed, []byte(msg), sig)
	}
	return false
}

// Validation is what Validate checks besides the signature.
type Validation struct {
	// Issuer, when set, must equal the iss claim.
	Issuer string
	// Audiences, when set, must contain one of the aud claim's values.
	Audiences []string
	// Now is the current time; Leeway the allowed clock skew on exp and
	// nbf (0: DefaultLeeway; negative: none).
	Now    time.Time
	Leeway time.Duration
	// RequireExp refuses tokens without an exp claim.
	RequireExp bool
}

// Validate checks the time, issuer and audience claims.
func (t *Token) Validate(v Validation) error {
	leeway := v.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	}
	now := v.Now.Unix()
	skew := int64(leeway / time.Second)
	if exp, ok, err := numericDate(t.Claims, "exp"); err != nil {
		return err
	} else if ok {
		if now > exp+skew {
			return fmt.Errorf("%w: exp %d, now %d", ErrExpired, exp, now)
		}
	} else if v.RequireExp {
		return ErrExpRequired
	}
	if nbf, ok, err := numericDate(t.Claims, "nbf"); err != nil {
		return err
	} else if ok && now+skew < nbf {
		return fmt.Errorf("%w: nbf %d, now %d", ErrNotYetValid, nbf, now)
	}
	if v.Issuer != "" {
		iss, _ := t.Claims["iss"].(string)
		if iss != v.Issuer {
			return fmt.Errorf("%w: %q", ErrIssuerMismatch, iss)
		}
	}
	if len(v.Audiences) > 0 {
		ok, err := audienceMatch(t.Claims["aud"], v.Audiences)
		if err != nil {
			return err
		}
		if !ok {
			return ErrAudienceMismatch
		}
	}
	return nil
}

func numericDate(c map[string]any, name string) (int64, bool, error) {
	v, ok := c[name]
	if !ok {
		return 0, false, nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || f < 0 || f > 1<<53 {
		return 0, false, fmt.Errorf("%w: %s is not a NumericDate", ErrMalformed, name)
	}
	return int64(f), true, nil
}

func audienceMatch(aud any, want []string) (bool, error) {
	switch a := aud.(type) {
	case nil:
		return false, nil
	case string:
		for _, w := range want {
			if a == w {
				return true, nil
			}
		}
		return false, nil
	case []any:
		for _, e := range a {
			s, ok := e.(string)
			if !ok {
				return false, fmt.Errorf("%w: aud holds a non-string", ErrMalformed)
			}
			for _, w := range want {
				if s == w {
					return true, nil
				}
			}
		}
		return false, nil
	}
	return false, fmt.Errorf("%w: aud is neither a string nor an array", ErrMalformed)
}

// Verify parses raw, checks its issuer, its signature against set and then
// its other claims; it returns the claims of a valid token.
func Verify(raw string, set *JWKS, v Validation) (map[string]any, error) {
	t, err := ParseJWT(raw)
	if err != nil {
		return nil, err
	}
	// The issuer is checked first, as Envoy picks the provider by it: a
	// token of another issuer is "not for this provider", not a forgery.
	if v.Issuer != "" {
		if iss, _ := t.Claims["iss"].(string); iss != v.Issuer {
			return nil, fmt.Errorf("%w: %q", ErrIssuerMismatch, iss)
		}
	}
	if err := t.VerifySignature(set); err != nil {
		return nil, err
	}
	if err := t.Validate(v); err != nil {
		return nil, err
	}
	return t.Claims, nil
}
