// Package jointoken issues and checks the tokens a proxy presents to join
// the mesh. A token is bound to one namespace and service account: the
// control plane gives its holder that identity's configuration and
// certificate, and nothing else.
//
// A token is "weft1.<payload>.<mac>": payload is the base64url JSON
// {"ns","sa","iat","exp"} and mac its HMAC-SHA256 under the control plane's
// key (32 random bytes in <state-dir>/join-key, mode 0600). Tokens are not
// stored: replacing the key revokes every token issued with it.
package jointoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// KeyFile is the key's file name in the state directory.
const KeyFile = "join-key"

const (
	prefix  = "weft1."
	keySize = 32
	// MaxTokenSize bounds what Verify parses.
	MaxTokenSize = 2048
)

// Claims are what a token binds its holder to.
type Claims struct {
	Namespace      string `json:"ns"`
	ServiceAccount string `json:"sa"`
	// IssuedAt and Expires are Unix seconds; Expires 0 means the token
	// does not expire (until the key changes).
	IssuedAt int64 `json:"iat"`
	Expires  int64 `json:"exp,omitempty"`
}

// Issuer signs and checks tokens. It is immutable and safe for concurrent
// use.
type Issuer struct {
	key []byte
	now func() time.Time
}

// New returns an Issuer for key (at least 32 bytes). now may be nil (the
// system clock).
func New(key []byte, now func() time.Time) (*Issuer, error) {
	if len(key) < keySize {
		return nil, fmt.Errorf("join key: %d bytes, need at least %d", len(key), keySize)
	}
	if now == nil {
		now = time.Now
	}
	return &Issuer{key: append([]byte(nil), key...), now: now}, nil
}

// Open loads the key from dir/join-key, creating it (mode 0600) on first
// use. A key file readable by others is refused.
func Open(dir string, now func() time.Time) (*Issuer, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s: mode %v lets others read the join key; chmod 600 it", path, st.Mode().Perm())
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return New(key, now)
	case errors.Is(err, os.ErrNotExist):
		key := make([]byte, keySize)
		rand.Read(key)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create join key: %w", err)
		}
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, fmt.Errorf("write join key: %w", werr)
		}
		return New(key, now)
	default:
		return nil, err
	}
}

// Issue returns a token for namespace/serviceAccount valid for ttl (0: no
// expiry).
func (i *Issuer) Issue(namespace, serviceAccount string, ttl time.Duration) (string, error) {
	if namespace == "" || serviceAccount == "" {
		return "", errors.New("join token: namespace and service account are required")
	}
	if ttl < 0 {
		return "", errors.New("join token: negative ttl")
	}
	now := i.now()
	c := Claims{Namespace: namespace, ServiceAccount: serviceAccount, IssuedAt: now.Unix()}
	if ttl > 0 {
		c.Expires = now.Add(ttl).Unix()
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	return prefix + p + "." + base64.RawURLEncoding.EncodeToString(i.mac(p)), nil
}

func (i *Issuer) mac(payload string) []byte {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte(prefix))
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// IsToken reports whether s has the shape of a join token (it may still be
// invalid); other strings are some other kind of token.
func IsToken(s string) bool { return strings.HasPrefix(s, prefix) }

// Verify checks a token's MAC and expiry and returns its claims.
func (i *Issuer) Verify(token string) (Claims, error) {
	if len(token) > MaxTokenSize {
		return Claims{}, errors.New("join token: too long")
	}
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok {
		return Claims{}, errors.New("join token: not a weft1 token")
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok || p == "" || sig == "" {
		return Claims{}, errors.New("join token: malformed")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return Claims{}, errors.New("join token: malformed signature")
	}
	if !hmac.Equal(got, i.mac(p)) {
		return Claims{}, errors.New("join token: bad signature (issued by another control plane, or its key changed)")
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return Claims{}, errors.New("join token: malformed payload")
	}
	var c Claims
	if err := json.Unmarshal(raw, &c); err != nil {
		return Claims{}, fmt.Errorf("join token: payload: %w", err)
	}
	if c.Namespace == "" || c.ServiceAccount == "" {
		return Claims{}, errors.New("join token: payload names no identity")
	}
	if c.Expires != 0 && !i.now().Before(time.Unix(c.Expires, 0)) {
		return Claims{}, fmt.Errorf("join token: expired at %s", time.Unix(c.Expires, 0).UTC().Format(time.RFC3339))
	}
	return c, nil
}
