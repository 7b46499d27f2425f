package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// minRSABits is the smallest RSA modulus accepted in a JWKS.
const minRSABits = 2048

// JWKS is a parsed JSON Web Key Set holding the signature-verification
// keys weft can use. Immutable and safe for concurrent use.
type JWKS struct {
	keys []jwk
}

type jwk struct {
	kid, kty, alg, crv string
	rsa                *rsa.PublicKey
	ec                 *ecdsa.PublicKey
	ed                 ed25519.PublicKey
}

// Len returns the number of usable keys.
func (s *JWKS) Len() int {
	if s == nil {
		return 0
	}
	return len(s.keys)
}

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS parses a JWKS document ({"keys": [...]}). Keys that cannot
// verify signatures here (symmetric "oct" keys, "use": "enc", unknown
// types or curves) are skipped; a malformed RSA, EC or OKP key is an
// error, and so is a set with no usable key.
func ParseJWKS(data []byte) (*JWKS, error) {
	var doc struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("jwks: keys: missing")
	}
	set := &JWKS{}
	for i, r := range doc.Keys {
		if r.Use != "" && r.Use != "sig" {
			continue
		}
		if r.Alg != "" {
			if a, ok := algorithms[r.Alg]; !ok || a.kty != r.Kty {
				continue
			}
		}
		k := jwk{kid: r.Kid, kty: r.Kty, alg: r.Alg, crv: r.Crv}
		var err error
		switch r.Kty {
		case "RSA":
			k.rsa, err = rsaKey(r)
		case "EC":
			k.ec, err = ecKey(r)
			if k.ec == nil && err == nil {
				continue // unknown curve
			}
		case "OKP":
			if r.Crv != "Ed25519" {
				continue
			}
			k.ed, err = edKey(r)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("jwks: keys[%d]: %w", i, err)
		}
		set.keys = append(set.keys, k)
	}
	if len(set.keys) == 0 {
		return nil, errors.New("jwks: no usable signature-verification key")
	}
	return set, nil
}

func rsaKey(r rawJWK) (*rsa.PublicKey, error) {
	n, err := b64.DecodeString(r.N)
	if err != nil || len(n) == 0 {
		return nil, errors.New("n: invalid base64url")
	}
	e, err := b64.DecodeString(r.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, errors.New("e: invalid")
	}
	var ev int
	for _, b := range e {
		ev = ev<<8 | int(b)
	}
	if ev < 3 || ev%2 == 0 {
		return nil, fmt.Errorf("e: %d is not an odd exponent >= 3", ev)
	}
	nv := new(big.Int).SetBytes(n)
	if nv.BitLen() < minRSABits {
		return nil, fmt.Errorf("n: %d-bit modulus, want at least %d", nv.BitLen(), minRSABits)
	}
	return &rsa.PublicKey{N: nv, E: ev}, nil
}

// ecKey returns nil, nil for a curve weft does not support.
func ecKey(r rawJWK) (*ecdsa.PublicKey, error) {
	var c elliptic.Curve
	var size int
	switch r.Crv {
	case "P-256":
		c, size = elliptic.P256(), 32
	case "P-384":
		c, size = elliptic.P384(), 48
	case "P-521":
		c, size = elliptic.P521(), 66
	default:
		return nil, nil
	}
	x, err := b64.DecodeString(r.X)
	if err != nil || len(x) != size {
		return nil, fmt.Errorf("x: want %d base64url bytes", size)
	}
	y, err := b64.DecodeString(r.Y)
	if err != nil || len(y) != size {
		return nil, fmt.Errorf("y: want %d base64url bytes", size)
	}
	pt := make([]byte, 0, 1+2*size)
	pt = append(append(append(pt, 4), x...), y...)
	k, err := ecdsa.ParseUncompressedPublicKey(c, pt)
	if err != nil {
		return nil, fmt.Errorf("x, y: %w", err)
	}
	return k, nil
}

func edKey(r rawJWK) (ed25519.PublicKey, error) {
	x, err := b64.DecodeString(r.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("x: want %d base64url bytes", ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}
