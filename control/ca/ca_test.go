package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/ca/spiffeid"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustID(t testing.TB, s string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func p256(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrFor(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := NewCSR(key, spiffeid.ID{})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func open(t testing.TB, dir string, opts Options) *CA {
	t.Helper()
	ca, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func parseChain(t testing.TB, chain [][]byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// verify checks a chain from Sign against a bundle at now, as a TLS peer
// would, for the given usage.
func verify(chain [][]byte, bundle []*x509.Certificate, now time.Time, usage x509.ExtKeyUsage) error {
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	opts := x509.VerifyOptions{Roots: x509.NewCertPool(), Intermediates: x509.NewCertPool(), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, r := range bundle {
		opts.Roots.AddCert(r)
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := certs[0].Verify(opts)
	return err
}

func fingerprints(cs []*x509.Certificate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, Fingerprint(c))
	}
	return out
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestOpenGeneratesThenLoads(t *testing.T) {
	clk := newClock()
	dir := filepath.Join(t.TempDir(), "state")
	ca := open(t, dir, Options{Now: clk.Now})

	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %#o, want 0700", m)
	}
	for _, name := range []string{RootKeyFile, IntermediateKeyFile} {
		if m := mode(t, filepath.Join(dir, name)); m != 0o600 {
			t.Errorf("%s mode %#o, want 0600", name, m)
		}
	}
	for _, name := range []string{RootCertFile, IntermediateCertFile, BundleStateFile} {
		if m := mode(t, filepath.Join(dir, name)); m&0o022 != 0 {
			t.Errorf("%s mode %#o is writable by others", name, m)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, journalDir)); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}

	bundle := ca.Bundle()
	if len(bundle) != 1 {
		t.Fatalf("bundle has %d roots, want 1", len(bundle))
	}
	root := bundle[0]
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if k, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("root key %s, want ECDSA P-256", describeKey(root.PublicKey))
	}
	if got, want := root.NotAfter, clk.Now().Add(DefaultRootTTL); !got.Equal(want) {
		t.Errorf("root NotAfter %s, want %s", got, want)
	}
	if len(root.URIs) != 1 || root.URIs[0].String() != "spiffe://cluster.local" {
		t.Errorf("root URIs %v, want [spiffe://cluster.local]", root.URIs)
	}

	chain, _, err := ca.Sign(csrFor(t, p256(t)), mustID(t, "spiffe://cluster.local/ns/shop/sa/checkout"), 0)
	if err != nil {
		t.Fatal(err)
	}
	inter := parseChain(t, chain)[1]
	if got, want := inter.NotAfter, clk.Now().Add(DefaultIntermediateTTL); !got.Equal(want) {
		t.Errorf("intermediate NotAfter %s, want %s", got, want)
	}
	if !inter.IsCA || !inter.MaxPathLenZero {
		t.Errorf("intermediate IsCA %v MaxPathLenZero %v", inter.IsCA, inter.MaxPathLenZero)
	}

	// Second start: the same root and intermediate, and leaves it signs
	// verify against the first start's bundle.
	rootPEM, _ := os.ReadFile(filepath.Join(dir, RootCertFile))
	again := open(t, dir, Options{Now: clk.Now})
	if again.RootFingerprint() != ca.RootFingerprint() {
		t.Fatalf("second start root %s, want %s", again.RootFingerprint(), ca.RootFingerprint())
	}
	if !bytes.Equal(again.BundlePEM(), ca.BundlePEM()) || !bytes.Equal(again.BundlePEM(), rootPEM) {
		t.Fatal("second start bundle differs")
	}
	chain2, _, err := again.Sign(csrFor(t, p256(t)), mustID(t, "spiffe://cluster.local/ns/shop/sa/checkout"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chain2[1], chain[1]) {
		t.Error("second start signs with another intermediate")
	}
	if err := verify(chain2, ca.Bundle(), clk.Now(), x509.ExtKeyUsageServerAuth); err != nil {
		t.Errorf("leaf of second start does not verify against first bundle: %v", err)
	}
}

func TestOpenRefuses(t *testing.T) {
	clk := newClock()
	other := t.TempDir()
	open(t, other, Options{Now: clk.Now})
	copyFile := func(t *testing.T, from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		mutate  func(t *testing.T, dir string)
		opts    Options
		wantErr string
	}{
		{
			name:    "world-readable root key",
			mutate:  func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, RootKeyFile), 0o644) },
			wantErr: "root-key.pem: mode 0644 lets group or others access the private key; want 0600",
		},
		{
			name:    "group-readable intermediate key",
			mutate:  func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, IntermediateKeyFile), 0o640) },
			wantErr: "intermediate-key.pem: mode 0640 lets group or others access the private key; want 0600",
		},
		{
			name: "root key of another root",
			mutate: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(other, RootKeyFile), filepath.Join(dir, RootKeyFile))
			},
			wantErr: "root-key.pem is not the key of root.pem (public keys differ)",
		},
		{
			name: "intermediate key of the root",
			mutate: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, RootKeyFile), filepath.Join(dir, IntermediateKeyFile))
			},
			wantErr: "intermediate-key.pem is not the key of intermediate.pem (public keys differ)",
		},
		{
			name: "intermediate of another root",
			mutate: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(other, IntermediateCertFile), filepath.Join(dir, IntermediateCertFile))
				copyFile(t, filepath.Join(other, IntermediateKeyFile), filepath.Join(dir, IntermediateKeyFile))
			},
			wantErr: "intermediate.pem does not chain to root.pem: x509: certificate signed by unknown authority",
		},
		{
			name: "corrupt root",
			mutate: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, RootCertFile), []byte("garbage"), 0o644)
			},
			wantErr: "root.pem: not a PEM certificate",
		},
		{
			name: "truncated root",
			mutate: func(t *testing.T, dir string) {
				b, _ := os.ReadFile(filepath.Join(dir, RootCertFile))
				os.WriteFile(filepath.Join(dir, RootCertFile), b[:len(b)/2], 0o644)
			},
			wantErr: "root.pem: not a PEM certificate",
		},
		{
			name: "corrupt key",
			mutate: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, RootKeyFile), []byte("garbage"), 0o600)
			},
			wantErr: "root-key.pem: no PEM private key",
		},
		{
			name: "key in certificate file",
			mutate: func(t *testing.T, dir string) {
				copyFile(t, filepath.Join(dir, RootKeyFile), filepath.Join(dir, RootCertFile))
			},
			wantErr: `root.pem: PEM block 1 is "PRIVATE KEY", want CERTIFICATE`,
		},
		{
			name:    "missing intermediate key",
			mutate:  func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, IntermediateKeyFile)) },
			wantErr: "found root.pem, root-key.pem, intermediate.pem but not intermediate-key.pem: refusing to generate a new CA over a partial one",
		},
		{
			name: "bundle state without root",
			mutate: func(t *testing.T, dir string) {
				for _, n := range []string{RootCertFile, RootKeyFile, IntermediateCertFile, IntermediateKeyFile} {
					os.Remove(filepath.Join(dir, n))
				}
			},
			wantErr: "bundle.json exists without root.pem: refusing to generate a new root over an existing trust bundle",
		},
		{
			name: "unknown field in bundle state",
			mutate: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, BundleStateFile), []byte(`{"roots":[]}`), 0o644)
			},
			wantErr: `bundle.json: json: unknown field "roots"`,
		},
		{
			name: "bad certificate in bundle state",
			mutate: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, BundleStateFile), []byte(`{"retired_roots":[{"certificate":"x","remove_after":"2030-01-01T00:00:00Z"}]}`), 0o644)
			},
			wantErr: "bundle.json: retired_roots[0].certificate: not a PEM certificate",
		},
		{
			name:    "other trust domain",
			mutate:  func(t *testing.T, dir string) {},
			opts:    Options{TrustDomain: "other.local"},
			wantErr: `root.pem: root of trust domain "cluster.local", configured trust domain is "other.local"`,
		},
		{
			name:    "expired intermediate",
			mutate:  func(t *testing.T, dir string) {},
			opts:    Options{Now: func() time.Time { return clk.Now().Add(DefaultIntermediateTTL + time.Second) }},
			wantErr: "intermediate.pem does not chain to root.pem: x509: certificate has expired or is not yet valid",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			open(t, dir, Options{Now: clk.Now})
			tt.mutate(t, dir)
			before := readAll(t, dir)
			if tt.opts.Now == nil {
				tt.opts.Now = clk.Now
			}
			_, err := Open(dir, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open error = %v, want it to contain %q", err, tt.wantErr)
			}
			if after := readAll(t, dir); !mapsEqual(before, after) {
				t.Fatal("a refused Open changed the directory")
			}
		})
	}
}

func readAll(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestOptionsRefused(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"bad trust domain", Options{TrustDomain: "Example.com"}, `options: trust domain "Example.com": character "E" at 0 not allowed`},
		{"negative ttl", Options{MaxLeafTTL: -time.Hour}, "options: MaxLeafTTL -1h0m0s is negative"},
		{"max below default", Options{DefaultLeafTTL: 2 * time.Hour, MaxLeafTTL: time.Hour}, "options: MaxLeafTTL 1h0m0s is less than DefaultLeafTTL 2h0m0s"},
		{"overlap below max", Options{MaxLeafTTL: 24 * time.Hour, Overlap: time.Hour}, "options: Overlap 1h0m0s is less than MaxLeafTTL 24h0m0s"},
		{"root cert without key", Options{RootCertFile: "r.pem"}, "options: RootCertFile and RootKeyFile go together"},
		{"intermediate without key", Options{RootCertFile: "r.pem", IntermediateCertFile: "i.pem"}, "options: IntermediateCertFile and IntermediateKeyFile go together"},
		{"intermediate without root", Options{IntermediateCertFile: "i.pem", IntermediateKeyFile: "k.pem"}, "options: IntermediateCertFile needs RootCertFile"},
		{"intermediate with root key", Options{RootCertFile: "r.pem", RootKeyFile: "rk.pem", IntermediateCertFile: "i.pem", IntermediateKeyFile: "k.pem"}, "options: RootKeyFile is unused with IntermediateCertFile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "never")
			_, err := Open(dir, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Open error = %v, want it to contain %q", err, tt.wantErr)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatal("refused options created the directory")
			}
		})
	}
}

func TestSign(t *testing.T) {
	clk := newClock()
	ca := open(t, t.TempDir(), Options{Now: clk.Now})
	id := mustID(t, "spiffe://cluster.local/ns/shop/sa/checkout")
	key := p256(t)

	// The CSR asks for other names; the leaf carries only the caller's ID.
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		DNSNames: []string{"evil.example"},
		URIs:     []*url.URL{mustID(t, "spiffe://cluster.local/ns/kube-system/sa/admin").URL()},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	chain, notAfter, err := ca.Sign(csr, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 {
		t.Fatalf("chain of %d certificates, want leaf + intermediate", len(chain))
	}
	leaf := parseChain(t, chain)[0]
	if got := leaf.URIs; len(got) != 1 || got[0].String() != id.String() {
		t.Errorf("leaf URIs %v, want exactly [%s]", got, id)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("leaf has other SANs: %v %v %v", leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	if got, err := spiffeid.FromCertificate(leaf); err != nil || got != id {
		t.Errorf("FromCertificate = %v, %v", got, err)
	}
	if !leaf.PublicKey.(*ecdsa.PublicKey).Equal(key.Public()) {
		t.Error("leaf does not carry the CSR's key")
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage %v, want digital signature only", leaf.KeyUsage)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ext key usage %v, want server+client auth", leaf.ExtKeyUsage)
	}
	if leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Errorf("leaf IsCA %v BasicConstraintsValid %v", leaf.IsCA, leaf.BasicConstraintsValid)
	}
	now := clk.Now()
	if want := now.Add(DefaultLeafTTL); !leaf.NotAfter.Equal(want) || !notAfter.Equal(want) {
		t.Errorf("NotAfter %s (returned %s), want %s", leaf.NotAfter, notAfter, want)
	}
	if want := now.Add(-ClockSkew); !leaf.NotBefore.Equal(want) {
		t.Errorf("NotBefore %s, want %s", leaf.NotBefore, want)
	}
	if n := leaf.SerialNumber.BitLen(); n > 128 || n < 64 {
		t.Errorf("serial of %d bits, want random 128-bit", n)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if err := verify(chain, ca.Bundle(), now, usage); err != nil {
			t.Errorf("leaf does not verify for %v: %v", usage, err)
		}
	}
	if err := verify(chain, ca.Bundle(), now.Add(DefaultLeafTTL+time.Second), x509.ExtKeyUsageClientAuth); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("leaf verifies after its TTL: %v", err)
	}

	// A shorter TTL is respected; serials differ.
	chain2, notAfter2, err := ca.Sign(csrFor(t, key), id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf2 := parseChain(t, chain2)[0]
	if want := now.Add(time.Hour); !leaf2.NotAfter.Equal(want) || !notAfter2.Equal(want) {
		t.Errorf("1h leaf NotAfter %s (returned %s), want %s", leaf2.NotAfter, notAfter2, want)
	}
	if leaf2.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two leaves share a serial number")
	}
}

func TestSignRefuses(t *testing.T) {
	clk := newClock()
	ca := open(t, t.TempDir(), Options{Now: clk.Now})
	id := mustID(t, "spiffe://cluster.local/ns/shop/sa/checkout")
	good := csrFor(t, p256(t))

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	badSig := bytes.Clone(good)
	badSig[len(badSig)-3] ^= 0xff // inside the ECDSA signature

	tests := []struct {
		name    string
		csr     []byte
		id      spiffeid.ID
		ttl     time.Duration
		wantErr string
	}{
		{"RSA key", csrFor(t, rsaKey), id, 0, "sign spiffe://cluster.local/ns/shop/sa/checkout: csr: key is RSA 2048, want ECDSA P-256"},
		{"P-384 key", csrFor(t, p384), id, 0, "csr: key is ECDSA P-384, want ECDSA P-256"},
		{"Ed25519 key", csrFor(t, edKey), id, 0, "csr: key is Ed25519, want ECDSA P-256"},
		{"bad signature", badSig, id, 0, "csr: signature: x509: ECDSA verification failure"},
		{"not DER", []byte("not a csr"), id, 0, "sign spiffe://cluster.local/ns/shop/sa/checkout: csr: parse: asn1: structure error"},
		{"no identity", good, spiffeid.ID{}, 0, "sign: no identity"},
		{"other trust domain", good, mustID(t, "spiffe://other.local/ns/shop/sa/checkout"), 0, `sign spiffe://other.local/ns/shop/sa/checkout: trust domain "other.local", this CA signs "cluster.local"`},
		{"ttl above max", good, id, 48 * time.Hour, "ttl 48h0m0s exceeds the maximum 24h0m0s"},
		{"negative ttl", good, id, -time.Second, "ttl -1s is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, _, err := ca.Sign(tt.csr, tt.id, tt.ttl)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Sign error = %v, want it to contain %q", err, tt.wantErr)
			}
			if chain != nil {
				t.Fatal("Sign returned a chain with an error")
			}
		})
	}

	t.Run("expired intermediate", func(t *testing.T) {
		clk := newClock()
		ca := open(t, t.TempDir(), Options{Now: clk.Now})
		clk.Advance(DefaultIntermediateTTL)
		_, _, err := ca.Sign(good, id, 0)
		if want := "sign spiffe://cluster.local/ns/shop/sa/checkout: intermediate expired at 2031-01-02T03:04:05Z"; err == nil || err.Error() != want {
			t.Fatalf("Sign error = %v, want %q", err, want)
		}
	})
}

func TestSignCapsAtIntermediateExpiry(t *testing.T) {
	clk := newClock()
	ca := open(t, t.TempDir(), Options{Now: clk.Now, IntermediateTTL: 2 * time.Hour})
	clk.Advance(time.Hour)
	chain, notAfter, err := ca.Sign(csrFor(t, p256(t)), mustID(t, "spiffe://cluster.local/ns/a/sa/b"), 0)
	if err != nil {
		t.Fatal(err)
	}
	certs := parseChain(t, chain)
	if !certs[0].NotAfter.Equal(certs[1].NotAfter) || !notAfter.Equal(certs[1].NotAfter) {
		t.Fatalf("leaf NotAfter %s (returned %s), want the intermediate's %s", certs[0].NotAfter, notAfter, certs[1].NotAfter)
	}
}

func TestRotate(t *testing.T) {
	clk := newClock()
	dir := t.TempDir()
	opts := Options{Now: clk.Now}
	ca := open(t, dir, opts)
	id := mustID(t, "spiffe://cluster.local/ns/shop/sa/checkout")
	oldRoot := ca.RootFingerprint()

	oldLeaf, _, err := ca.Sign(csrFor(t, p256(t)), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if err := ca.Rotate(); err != nil {
		t.Fatal(err)
	}
	rotatedAt := clk.Now()
	newRoot := ca.RootFingerprint()
	if newRoot == oldRoot {
		t.Fatal("Rotate kept the root")
	}
	if got, want := fingerprints(ca.Bundle()), []string{newRoot, oldRoot}; !slices.Equal(got, want) {
		t.Fatalf("bundle after Rotate %v, want [new old] %v", got, want)
	}
	newLeaf, _, err := ca.Sign(csrFor(t, p256(t)), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(newLeaf[1], oldLeaf[1]) {
		t.Fatal("Rotate kept the intermediate")
	}

	// During the overlap both leaves verify against the bundle; the new
	// leaf does not verify against the old root alone.
	clk.Advance(20 * time.Hour)
	checkBoth := func(ca *CA) {
		t.Helper()
		for name, chain := range map[string][][]byte{"old": oldLeaf, "new": newLeaf} {
			if err := verify(chain, ca.Bundle(), clk.Now(), x509.ExtKeyUsageClientAuth); err != nil {
				t.Errorf("%s leaf during overlap: %v", name, err)
			}
		}
	}
	checkBoth(ca)
	if err := verify(newLeaf, ca.Bundle()[1:], clk.Now(), x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("new leaf verifies against the old root")
	}
	if n, err := ca.Prune(clk.Now()); err != nil || n != 0 {
		t.Fatalf("Prune during overlap = %d, %v; want 0", n, err)
	}

	// A restart during the overlap keeps the bundle and the new root.
	restarted := open(t, dir, opts)
	if got, want := fingerprints(restarted.Bundle()), []string{newRoot, oldRoot}; !slices.Equal(got, want) {
		t.Fatalf("bundle after restart %v, want %v", got, want)
	}
	checkBoth(restarted)

	// After the overlap (default 2 × 24h), Prune leaves only the new root,
	// and the restart after it too.
	clk.Advance(rotatedAt.Add(2*DefaultLeafTTL).Sub(clk.Now()) - time.Second)
	if n, err := restarted.Prune(clk.Now()); err != nil || n != 0 {
		t.Fatalf("Prune 1s before the overlap ends = %d, %v; want 0", n, err)
	}
	clk.Advance(time.Second)
	if n, err := restarted.Prune(clk.Now()); err != nil || n != 1 {
		t.Fatalf("Prune after the overlap = %d, %v; want 1", n, err)
	}
	if got := fingerprints(restarted.Bundle()); !slices.Equal(got, []string{newRoot}) {
		t.Fatalf("bundle after Prune %v, want only the new root", got)
	}
	if err := verify(oldLeaf, restarted.Bundle(), oldLeafTime(t, oldLeaf), x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("old leaf verifies against the pruned bundle")
	}
	if got := fingerprints(open(t, dir, opts).Bundle()); !slices.Equal(got, []string{newRoot}) {
		t.Fatalf("bundle after Prune and restart %v, want only the new root", got)
	}
	if n, err := restarted.Prune(clk.Now()); err != nil || n != 0 {
		t.Fatalf("second Prune = %d, %v; want 0", n, err)
	}
}

// oldLeafTime returns a time within the leaf's validity.
func oldLeafTime(t *testing.T, chain [][]byte) time.Time {
	return parseChain(t, chain)[0].NotBefore.Add(time.Hour)
}

func TestRotateTwiceKeepsBothOldRoots(t *testing.T) {
	clk := newClock()
	ca := open(t, t.TempDir(), Options{Now: clk.Now, MaxLeafTTL: time.Hour, DefaultLeafTTL: time.Hour})
	r0 := ca.RootFingerprint()
	if err := ca.Rotate(); err != nil {
		t.Fatal(err)
	}
	r1 := ca.RootFingerprint()
	clk.Advance(time.Hour)
	if err := ca.Rotate(); err != nil {
		t.Fatal(err)
	}
	r2 := ca.RootFingerprint()
	if got := fingerprints(ca.Bundle()); !slices.Equal(got, []string{r2, r0, r1}) {
		t.Fatalf("bundle %v, want [r2 r0 r1]", got)
	}
	// Overlap 2h: r0 leaves at +2h, r1 at +3h.
	clk.Advance(time.Hour)
	if n, err := ca.Prune(clk.Now()); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if got := fingerprints(ca.Bundle()); !slices.Equal(got, []string{r2, r1}) {
		t.Fatalf("bundle %v, want [r2 r1]", got)
	}
}

func TestInterruptedCommit(t *testing.T) {
	clk := newClock()
	t.Run("committed group is finished", func(t *testing.T) {
		dir := t.TempDir()
		ca := open(t, dir, Options{Now: clk.Now})
		next, files, err := ca.newGeneration(nil)
		if err != nil {
			t.Fatal(err)
		}
		// Write the journal and the marker, then move two of the files as a
		// crash in the middle of applyJournal would leave them.
		j := filepath.Join(dir, journalDir)
		os.Mkdir(j, 0o700)
		for _, f := range files {
			if err := writeSynced(filepath.Join(j, f.name), f.data, f.perm); err != nil {
				t.Fatal(err)
			}
		}
		writeSynced(filepath.Join(j, commitFile), nil, 0o600)
		for _, n := range []string{RootCertFile, IntermediateKeyFile} {
			if err := os.Rename(filepath.Join(j, n), filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
		got := open(t, dir, Options{Now: clk.Now})
		if got.RootFingerprint() != Fingerprint(next.root) {
			t.Fatal("Open did not finish the committed rotation")
		}
		if _, err := os.Stat(j); !os.IsNotExist(err) {
			t.Fatalf("journal left behind: %v", err)
		}
	})
	t.Run("uncommitted group is discarded", func(t *testing.T) {
		dir := t.TempDir()
		ca := open(t, dir, Options{Now: clk.Now})
		_, files, err := ca.newGeneration(nil)
		if err != nil {
			t.Fatal(err)
		}
		j := filepath.Join(dir, journalDir)
		os.Mkdir(j, 0o700)
		writeSynced(filepath.Join(j, files[0].name), files[0].data, files[0].perm)
		got := open(t, dir, Options{Now: clk.Now})
		if got.RootFingerprint() != ca.RootFingerprint() {
			t.Fatal("Open applied an uncommitted rotation")
		}
		if _, err := os.Stat(j); !os.IsNotExist(err) {
			t.Fatalf("journal left behind: %v", err)
		}
	})
}

// writeOperatorRoot generates a root into files the way an operator
// would provide them, returning their paths.
func writeOperatorRoot(t *testing.T, now time.Time, td string) (certPath, keyPath string, cert *x509.Certificate, key crypto.Signer) {
	t.Helper()
	o, err := Options{TrustDomain: td}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err = newRoot(now, o)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	kp, err := keyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, certPEM(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath, cert, key
}

func TestOperatorRoot(t *testing.T) {
	clk := newClock()
	certPath, keyPath, root, _ := writeOperatorRoot(t, clk.Now(), "cluster.local")
	dir := t.TempDir()
	opts := Options{Now: clk.Now, RootCertFile: certPath, RootKeyFile: keyPath}
	ca := open(t, dir, opts)
	if ca.RootFingerprint() != Fingerprint(root) {
		t.Fatal("CA does not use the operator's root")
	}
	for _, n := range []string{RootCertFile, RootKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s written for an operator-provided root", n)
		}
	}
	if m := mode(t, filepath.Join(dir, IntermediateKeyFile)); m != 0o600 {
		t.Errorf("intermediate key mode %#o", m)
	}
	chain, _, err := ca.Sign(csrFor(t, p256(t)), mustID(t, "spiffe://cluster.local/ns/a/sa/b"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(chain, []*x509.Certificate{root}, clk.Now(), x509.ExtKeyUsageServerAuth); err != nil {
		t.Fatalf("leaf does not verify against the operator's root: %v", err)
	}
	again := open(t, dir, opts)
	chain2, _, err := again.Sign(csrFor(t, p256(t)), mustID(t, "spiffe://cluster.local/ns/a/sa/b"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chain[1], chain2[1]) {
		t.Error("second start issued another intermediate")
	}
	if err := ca.Rotate(); err == nil || !strings.Contains(err.Error(), "rotate: the root is operator-provided") {
		t.Errorf("Rotate error = %v", err)
	}

	// The operator replaces the root: the old intermediate is refused.
	certPath2, keyPath2, _, _ := writeOperatorRoot(t, clk.Now(), "cluster.local")
	_, err = Open(dir, Options{Now: clk.Now, RootCertFile: certPath2, RootKeyFile: keyPath2})
	if want := "intermediate.pem does not chain to " + certPath2 + ": x509: certificate signed by unknown authority"; err == nil || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), "remove intermediate.pem and intermediate-key.pem to issue a new intermediate") {
		t.Fatalf("Open error = %v, want %q and a hint", err, want)
	}

	os.Chmod(keyPath, 0o604)
	_, err = Open(t.TempDir(), opts)
	if want := keyPath + ": mode 0604 lets group or others access the private key; want 0600"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open error = %v, want %q", err, want)
	}
}

func TestOperatorIntermediate(t *testing.T) {
	clk := newClock()
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	root, rootKey, err := newRoot(clk.Now(), o)
	if err != nil {
		t.Fatal(err)
	}
	otherRoot, _, err := newRoot(clk.Now(), o)
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := newIntermediate(clk.Now(), o, root, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	write := func(name string, b []byte, perm os.FileMode) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, b, perm); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kp, err := keyPEM(interKey)
	if err != nil {
		t.Fatal(err)
	}
	rootsPath := write("roots.pem", append(certPEM(otherRoot), certPEM(root)...), 0o644)
	opts := Options{
		Now:                  clk.Now,
		RootCertFile:         rootsPath,
		IntermediateCertFile: write("inter.pem", certPEM(inter), 0o644),
		IntermediateKeyFile:  write("inter.key", kp, 0o600),
	}
	ca := open(t, t.TempDir(), opts)
	if ca.RootFingerprint() != Fingerprint(root) {
		t.Error("RootFingerprint is not the root the intermediate chains to")
	}
	if got, want := fingerprints(ca.Bundle()), []string{Fingerprint(root), Fingerprint(otherRoot)}; !slices.Equal(got, want) {
		t.Errorf("bundle %v, want %v", got, want)
	}
	chain, _, err := ca.Sign(csrFor(t, p256(t)), mustID(t, "spiffe://cluster.local/ns/a/sa/b"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(chain, []*x509.Certificate{root}, clk.Now(), x509.ExtKeyUsageClientAuth); err != nil {
		t.Fatal(err)
	}
	if err := ca.Rotate(); err == nil {
		t.Error("Rotate with an operator-provided intermediate succeeded")
	}

	opts.RootCertFile = write("other.pem", certPEM(otherRoot), 0o644)
	_, err = Open(t.TempDir(), opts)
	if want := "inter.pem does not chain to " + opts.RootCertFile + ": x509: certificate signed by unknown authority"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open error = %v, want %q", err, want)
	}
}

func BenchmarkSign(b *testing.B) {
	ca := open(b, b.TempDir(), Options{})
	csr := csrFor(b, p256(b))
	id := mustID(b, "spiffe://cluster.local/ns/shop/sa/checkout")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ca.Sign(csr, id, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignParallel(b *testing.B) {
	ca := open(b, b.TempDir(), Options{})
	csr := csrFor(b, p256(b))
	id := mustID(b, "spiffe://cluster.local/ns/shop/sa/checkout")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := ca.Sign(csr, id, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
