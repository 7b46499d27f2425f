// Package ca is weft's certificate authority: a root and an intermediate
// that sign X.509 SVIDs (spiffe://<td>/ns/<ns>/sa/<sa>) for proxies from
// their certificate signing requests. The proxy keeps its private key; the
// CA only sees the public key in the CSR and takes the identity from its
// caller, which authenticated the proxy (join token), never from the CSR.
//
// State lives in one directory: root.pem, root-key.pem, intermediate.pem,
// intermediate-key.pem (keys mode 0600) and bundle.json (roots retired by a
// rotation that stay trusted until their overlap ends). Files are generated
// on first start or provided by the operator; anything unreadable,
// mismatched or too widely readable is an error, never a reason to
// regenerate.
//
// Root rotation: Rotate puts a new root in the bundle and signs new leaves
// with a new intermediate at once; the old root stays trusted for
// Options.Overlap. Whoever delivers certificates (SDS) must push the new
// bundle to every proxy as soon as Rotate returns: proxies renew at half
// life, so leaves of the new root appear gradually after that push.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/control/ca/spiffeid"
)

// Defaults of Options.
const (
	DefaultTrustDomain     = "cluster.local"
	DefaultRootTTL         = 10 * 365 * 24 * time.Hour
	DefaultIntermediateTTL = 365 * 24 * time.Hour
	DefaultLeafTTL         = 24 * time.Hour
	// ClockSkew is how far before "now" certificates start to be valid, so
	// that a peer whose clock is a little behind accepts them.
	ClockSkew = time.Minute
)

// Options configure Open. The zero value generates a CA for the trust
// domain "cluster.local" in the directory.
type Options struct {
	// TrustDomain of the IDs this CA signs; Sign refuses others. Default
	// "cluster.local". A generated root carries it as a URI SAN
	// (spiffe://<td>), and Open refuses a root of another trust domain.
	TrustDomain string

	// RootCertFile and RootKeyFile name an operator-provided root (PEM;
	// key PKCS#8, SEC 1 or PKCS#1, mode 0600 or stricter). Both or neither.
	// The intermediate is then generated into the directory (or loaded
	// from it, and must be signed by this root). Rotate is refused: the
	// operator rotates the root. Default: generated into the directory.
	RootCertFile string
	RootKeyFile  string

	// IntermediateCertFile and IntermediateKeyFile name an operator-provided
	// intermediate (the cert file may hold its issuers after it, up to but
	// excluding the root); RootCertFile is then required and is the trust
	// bundle (it may hold several roots), RootKeyFile may be empty. Nothing
	// is generated and Rotate is refused.
	IntermediateCertFile string
	IntermediateKeyFile  string

	// RootTTL is the lifetime of a generated root. Default 10 years.
	RootTTL time.Duration
	// IntermediateTTL is the lifetime of a generated intermediate, capped
	// by the root's. Default 1 year.
	IntermediateTTL time.Duration
	// DefaultLeafTTL is the lifetime of a leaf when Sign gets ttl 0.
	// Default 24h.
	DefaultLeafTTL time.Duration
	// MaxLeafTTL is the longest lifetime Sign grants. Default
	// DefaultLeafTTL.
	MaxLeafTTL time.Duration
	// Overlap is how long a root replaced by Rotate stays in the bundle, so
	// that leaves it signed keep verifying until they expire. Default
	// 2 × MaxLeafTTL. Must be at least MaxLeafTTL.
	Overlap time.Duration

	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() (Options, error) {
	if o.TrustDomain == "" {
		o.TrustDomain = DefaultTrustDomain
	}
	if err := spiffeid.ValidateTrustDomain(o.TrustDomain); err != nil {
		return o, fmt.Errorf("options: %w", err)
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d < 0 {
			return fmt.Errorf("options: %s %s is negative", name, *d)
		}
		if *d == 0 {
			*d = v
		}
		return nil
	}
	if err := errors.Join(
		def(&o.RootTTL, DefaultRootTTL, "RootTTL"),
		def(&o.IntermediateTTL, DefaultIntermediateTTL, "IntermediateTTL"),
		def(&o.DefaultLeafTTL, DefaultLeafTTL, "DefaultLeafTTL"),
		def(&o.MaxLeafTTL, o.DefaultLeafTTL, "MaxLeafTTL"),
		def(&o.Overlap, 2*o.MaxLeafTTL, "Overlap"),
	); err != nil {
		return o, err
	}
	if o.MaxLeafTTL < o.DefaultLeafTTL {
		return o, fmt.Errorf("options: MaxLeafTTL %s is less than DefaultLeafTTL %s", o.MaxLeafTTL, o.DefaultLeafTTL)
	}
	if o.Overlap < o.MaxLeafTTL {
		return o, fmt.Errorf("options: Overlap %s is less than MaxLeafTTL %s: leaves of a rotated root would stop verifying before they expire", o.Overlap, o.MaxLeafTTL)
	}
	switch {
	case (o.IntermediateCertFile == "") != (o.IntermediateKeyFile == ""):
		return o, errors.New("options: IntermediateCertFile and IntermediateKeyFile go together")
	case o.IntermediateCertFile != "" && o.RootCertFile == "":
		return o, errors.New("options: IntermediateCertFile needs RootCertFile (the trust bundle)")
	case o.IntermediateCertFile != "" && o.RootKeyFile != "":
		return o, errors.New("options: RootKeyFile is unused with IntermediateCertFile: leave it empty")
	case o.IntermediateCertFile == "" && (o.RootCertFile == "") != (o.RootKeyFile == ""):
		return o, errors.New("options: RootCertFile and RootKeyFile go together")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// CA signs leaf certificates and serves the trust bundle. It is safe for
// concurrent use: Sign, Bundle and BundlePEM read an immutable snapshot and
// never wait for Rotate or Prune, which are serialised among themselves.
type CA struct {
	dir  string
	opts Options
	// managed: the root is generated and owned by the CA (rotatable).
	managed bool

	mu  sync.Mutex // serialises Rotate and Prune
	cur atomic.Pointer[authority]
}

// authority is one immutable state of the CA.
type authority struct {
	root     *x509.Certificate // the root the intermediate chains to
	inter    *x509.Certificate // signs leaves
	interKey crypto.Signer
	// chainDER is the intermediate and any issuers up to the root, appended
	// to every leaf.
	chainDER [][]byte
	// bundle is the trusted roots: root (and, with operator files, any
	// other roots of RootCertFile) first, then retired roots.
	bundle    []*x509.Certificate
	bundlePEM []byte
	pool      *x509.CertPool
	retired   []retiredRoot
}

// retiredRoot is a root replaced by Rotate, trusted until removeAfter.
type retiredRoot struct {
	cert        *x509.Certificate
	removeAfter time.Time
}

func newAuthority(root *x509.Certificate, others []*x509.Certificate, inter *x509.Certificate, key crypto.Signer, chain [][]byte, retired []retiredRoot) *authority {
	a := &authority{root: root, inter: inter, interKey: key, chainDER: chain, retired: retired, pool: x509.NewCertPool()}
	a.bundle = append(a.bundle, root)
	a.bundle = append(a.bundle, others...)
	for _, r := range retired {
		a.bundle = append(a.bundle, r.cert)
	}
	for _, c := range a.bundle {
		a.pool.AddCert(c)
		a.bundlePEM = append(a.bundlePEM, certPEM(c)...)
	}
	return a
}

// Open loads the CA from dir, or creates it there on first start (see
// Options for operator-provided files). dir is created with mode 0700 if
// missing; it is not used when Options.IntermediateCertFile is set. A
// write that a crash interrupted (Rotate, first start) is finished or
// discarded here.
func Open(dir string, opts Options) (*CA, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ca := &CA{dir: dir, opts: o}
	var a *authority
	switch {
	case o.IntermediateCertFile != "":
		a, err = ca.openOperatorIntermediate()
	case o.RootCertFile != "":
		a, err = ca.openOperatorRoot()
	default:
		ca.managed = true
		a, err = ca.openManaged()
	}
	if err != nil {
		return nil, fmt.Errorf("ca %s: %w", dir, err)
	}
	ca.cur.Store(a)
	return ca, nil
}

// Bundle returns the trusted roots: the current root first, then roots
// retired by Rotate whose overlap has not been pruned. The certificates
// are shared; callers must not modify them.
func (ca *CA) Bundle() []*x509.Certificate {
	return append([]*x509.Certificate(nil), ca.cur.Load().bundle...)
}

// BundlePEM returns Bundle as concatenated PEM blocks (the SDS validation
// context's trusted_ca).
func (ca *CA) BundlePEM() []byte {
	return append([]byte(nil), ca.cur.Load().bundlePEM...)
}

// Pool returns Bundle as a certificate pool, for tls.Config RootCAs and
// ClientCAs. The pool is shared; callers must not add to it.
func (ca *CA) Pool() *x509.CertPool { return ca.cur.Load().pool }

// RootFingerprint returns the hex SHA-256 of the current root's DER.
func (ca *CA) RootFingerprint() string { return Fingerprint(ca.cur.Load().root) }

// Fingerprint returns the hex SHA-256 of a certificate's DER.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// Sign issues a leaf certificate for id to the public key of csrDER (a
// DER certificate signing request). The CSR's signature must verify and
// its key must be ECDSA P-256; any names in it are ignored: the leaf
// carries exactly id as its URI SAN. ttl 0 means Options.DefaultLeafTTL;
// longer than Options.MaxLeafTTL is refused. notAfter is capped by the
// intermediate's. The chain is the leaf followed by the intermediate (and
// its issuers below the root), DER.
func (ca *CA) Sign(csrDER []byte, id spiffeid.ID, ttl time.Duration) (chain [][]byte, notAfter time.Time, err error) {
	a := ca.cur.Load()
	if id.IsZero() {
		return nil, time.Time{}, errors.New("sign: no identity")
	}
	if td := id.TrustDomain(); td != ca.opts.TrustDomain {
		return nil, time.Time{}, fmt.Errorf("sign %s: trust domain %q, this CA signs %q", id, td, ca.opts.TrustDomain)
	}
	switch {
	case ttl == 0:
		ttl = ca.opts.DefaultLeafTTL
	case ttl < 0:
		return nil, time.Time{}, fmt.Errorf("sign %s: ttl %s is negative", id, ttl)
	case ttl > ca.opts.MaxLeafTTL:
		return nil, time.Time{}, fmt.Errorf("sign %s: ttl %s exceeds the maximum %s", id, ttl, ca.opts.MaxLeafTTL)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sign %s: csr: parse: %w", id, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, time.Time{}, fmt.Errorf("sign %s: csr: signature: %w", id, err)
	}
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, time.Time{}, fmt.Errorf("sign %s: csr: key is %s, want ECDSA P-256", id, describeKey(csr.PublicKey))
	}
	now := ca.opts.Now()
	if !now.Before(a.inter.NotAfter) {
		return nil, time.Time{}, fmt.Errorf("sign %s: intermediate expired at %s", id, a.inter.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := newSerial()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sign %s: %w", id, err)
	}
	notBefore := now.Add(-ClockSkew)
	if notBefore.Before(a.inter.NotBefore) {
		notBefore = a.inter.NotBefore
	}
	notAfter = now.Add(ttl)
	if notAfter.After(a.inter.NotAfter) {
		notAfter = a.inter.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		URIs:                  []*url.URL{id.URL()},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	leaf, err := x509.CreateCertificate(rand.Reader, tmpl, a.inter, csr.PublicKey, a.interKey)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sign %s: %w", id, err)
	}
	chain = make([][]byte, 0, 1+len(a.chainDER))
	chain = append(chain, leaf)
	chain = append(chain, a.chainDER...)
	// The template's times are truncated to seconds in the certificate.
	return chain, notAfter.Truncate(time.Second), nil
}

// NewCSR returns a DER certificate signing request for key (the proxy's
// ECDSA P-256 key), naming id as its URI SAN when id is not zero (the CA
// ignores it; it documents what the proxy asks for).
func NewCSR(key crypto.Signer, id spiffeid.ID) ([]byte, error) {
	tmpl := &x509.CertificateRequest{}
	if !id.IsZero() {
		tmpl.URIs = []*url.URL{id.URL()}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("csr: %w", err)
	}
	return der, nil
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	b[0] |= 0x01 // never zero; the high bit may be set (DER adds a zero byte)
	return new(big.Int).SetBytes(b[:]), nil
}

func describeKey(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// newRoot generates a self-signed ECDSA P-256 root valid from now.
func newRoot(now time.Time, o Options) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("root key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"weft"}, CommonName: "weft root CA " + o.TrustDomain},
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.Add(o.RootTTL),
		URIs:                  []*url.URL{trustDomainURL(o.TrustDomain)},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("root: %w", err)
	}
	return cert, key, nil
}

// newIntermediate generates an ECDSA P-256 intermediate signed by root,
// valid from now for o.IntermediateTTL, capped by the root's expiry.
func newIntermediate(now time.Time, o Options, root *x509.Certificate, rootKey crypto.Signer) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("intermediate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(o.IntermediateTTL)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	notBefore := now.Add(-ClockSkew)
	if notBefore.Before(root.NotBefore) {
		notBefore = root.NotBefore
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"weft"}, CommonName: "weft intermediate CA " + o.TrustDomain},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		URIs:                  []*url.URL{trustDomainURL(o.TrustDomain)},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, key.Public(), rootKey)
	if err != nil {
		return nil, nil, fmt.Errorf("intermediate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("intermediate: %w", err)
	}
	return cert, key, nil
}

// trustDomainURL is the SPIFFE ID of a trust domain, carried by CA
// certificates.
func trustDomainURL(td string) *url.URL { return &url.URL{Scheme: "spiffe", Host: td} }

// NewLeaf generates an ECDSA P-256 key and signs a leaf for id with it, for
// tools and tests that need a workload certificate without a proxy
// (benchmarks, fixtures). Proxies never use it: their keys stay with them
// (they send a CSR).
func (ca *CA) NewLeaf(id spiffeid.ID, ttl time.Duration) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := NewCSR(key, id)
	if err != nil {
		return nil, err
	}
	chain, _, err := ca.Sign(csr, id, ttl)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}
