// Package identity keeps the proxy's workload certificate: it generates an
// ECDSA P-256 key that never leaves the process, sends a certificate signing
// request to the control plane's certificate service (on the xDS address,
// authenticated with the proxy's join token), and renews before half the
// certificate's lifetime has passed, with a new key each time. The current
// certificate is what the proxy serves as the SDS secret "default".
//
// If the control plane is unreachable the source retries with backoff and
// keeps the certificate it has; a proxy that never got one serves no mTLS
// (handshakes fail with "certificate not issued yet").
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/control/ca/spiffeid"
)

// CreateCertificateRPC is the control plane's certificate method (see
// control/xds/certs.go for the contract).
const CreateCertificateRPC = "/weft.ca.v1.CertificateService/CreateCertificate"

// SecretName is the SDS secret name under which the certificate is served,
// as Istio's agent names it.
const SecretName = "default"

// Clock is the time source; proxy/cluster/fakeclock implements it for
// tests.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has elapsed unless stop is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }
func (wallClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Config configures a Source.
type Config struct {
	// Addr is the control plane's gRPC (xDS) address. Required unless
	// Conn is set.
	Addr string
	// Conn, if set, is used instead of dialing Addr.
	Conn grpc.ClientConnInterface
	// Token is the join token, sent as "authorization: Bearer <token>".
	Token string
	// ID is the identity asked for in the CSR; the control plane decides
	// (a join token bound to an identity overrides it). May be zero.
	ID spiffeid.ID
	// Jitter moves each renewal earlier by up to this share of the
	// lifetime (default 0.1, at most 0.25), so proxies started together
	// do not renew together.
	Jitter float64
	// Backoff returns the wait before retry attempt n (1, 2, ...);
	// default 1s doubling to 30s.
	Backoff func(attempt int) time.Duration
	// RequestTimeout bounds one signing call; default 10s.
	RequestTimeout time.Duration
	// Clock defaults to the system clock.
	Clock Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OnUpdate, if set, is called after every new certificate (on the
	// Run goroutine).
	OnUpdate func(Status)
}

// Status describes the current certificate.
type Status struct {
	ID        string    `json:"id"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	RenewAt   time.Time `json:"renewAt"`
	Serial    string    `json:"serial"`
	Issued    int       `json:"issued"` // certificates received since start
	LastError string    `json:"lastError,omitempty"`
}

// Source holds the proxy's certificate. Certificate and Status are safe
// for concurrent use; Run is called once.
type Source struct {
	cfg   Config
	conn  grpc.ClientConnInterface
	close func() error
	cert  atomic.Pointer[tls.Certificate]
	ready chan struct{}
	once  sync.Once

	mu     sync.Mutex
	status Status
}

// New returns a Source; call Run to obtain and renew the certificate.
func New(cfg Config) (*Source, error) {
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.1
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(n int) time.Duration {
			d := time.Second << min(n-1, 5)
			return min(d, 30*time.Second)
		}
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	s := &Source{cfg: cfg, ready: make(chan struct{}), close: func() error { return nil }}
	s.conn = cfg.Conn
	if s.conn == nil {
		if cfg.Addr == "" {
			return nil, errors.New("identity: no control plane address")
		}
		cc, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("identity: %w", err)
		}
		s.conn, s.close = cc, cc.Close
	}
	return s, nil
}

// Certificate returns the current certificate (tlsctx.Secrets contract).
func (s *Source) Certificate() (*tls.Certificate, error) {
	if c := s.cert.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("identity: workload certificate not issued yet")
}

// Ready is closed when the first certificate has arrived.
func (s *Source) Ready() <-chan struct{} { return s.ready }

// Status returns the current certificate's description.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run obtains a certificate and renews it until ctx ends.
func (s *Source) Run(ctx context.Context) error {
	defer s.close()
	attempt := 0
	for {
		var wait time.Duration
		renewAt, err := s.renew(ctx)
		if err == nil {
			attempt = 0
			wait = renewAt.Sub(s.cfg.Clock.Now())
		} else {
			if ctx.Err() != nil {
				return nil
			}
			if status.Code(err) == codes.Unimplemented {
				// The control plane runs without a CA: a plaintext mesh.
				s.cfg.Logger.Info("the control plane issues no certificates (no CA); mesh traffic stays plaintext")
				return nil
			}
			attempt++
			wait = s.cfg.Backoff(attempt)
			s.mu.Lock()
			s.status.LastError = err.Error()
			s.mu.Unlock()
			s.cfg.Logger.Warn("workload certificate request failed", "err", err, "retry_in", wait)
		}
		wake := make(chan struct{})
		stop := s.cfg.Clock.AfterFunc(max(wait, 0), func() { close(wake) })
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-wake:
		}
	}
}

// renew gets one certificate and returns when to renew it.
func (s *Source) renew(ctx context.Context) (time.Time, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return time.Time{}, err
	}
	tmpl := &x509.CertificateRequest{SignatureAlgorithm: x509.ECDSAWithSHA256}
	if !s.cfg.ID.IsZero() {
		tmpl.URIs = append(tmpl.URIs, s.cfg.ID.URL())
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return time.Time{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if s.cfg.Token != "" {
		rctx = metadata.AppendToOutgoingContext(rctx, "authorization", "Bearer "+s.cfg.Token)
	}
	out := new(wrapperspb.BytesValue)
	if err := s.conn.Invoke(rctx, CreateCertificateRPC, wrapperspb.Bytes(csr), out); err != nil {
		return time.Time{}, err
	}
	cert, leaf, err := parseChain(out.GetValue(), key)
	if err != nil {
		return time.Time{}, err
	}
	id, err := spiffeid.FromCertificate(leaf)
	if err != nil {
		return time.Time{}, fmt.Errorf("identity: issued certificate: %w", err)
	}
	// The CA backdates NotBefore for clock skew; the lifetime that counts
	// starts now.
	renewAt := renewTime(later(leaf.NotBefore, s.cfg.Clock.Now()), leaf.NotAfter, s.cfg.Jitter, mrand.Float64())
	s.cert.Store(cert)
	s.mu.Lock()
	s.status = Status{
		ID: id.String(), NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, RenewAt: renewAt,
		Serial: leaf.SerialNumber.Text(16), Issued: s.status.Issued + 1,
	}
	st := s.status
	s.mu.Unlock()
	s.once.Do(func() { close(s.ready) })
	s.cfg.Logger.Info("workload certificate", "id", st.ID, "not_after", st.NotAfter.UTC().Format(time.RFC3339), "renew_at", renewAt.UTC().Format(time.RFC3339))
	if s.cfg.OnUpdate != nil {
		s.cfg.OnUpdate(st)
	}
	return renewAt, nil
}

// parseChain builds the TLS certificate from the PEM chain and the key, and
// checks that the leaf certifies that key.
func parseChain(chainPEM []byte, key *ecdsa.PrivateKey) (*tls.Certificate, *x509.Certificate, error) {
	cert := &tls.Certificate{PrivateKey: key}
	rest := chainPEM
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			cert.Certificate = append(cert.Certificate, b.Bytes)
		}
	}
	if len(cert.Certificate) == 0 {
		return nil, nil, errors.New("identity: the control plane answered no certificate")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("identity: issued certificate: %w", err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, nil, errors.New("identity: issued certificate is not for this proxy's key")
	}
	cert.Leaf = leaf
	return cert, leaf, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// maxJitter is the largest jitter renewTime applies.
const maxJitter = 0.25

// renewTime returns when a certificate valid from notBefore to notAfter
// is renewed: at half its lifetime, which leaves the other half to retry
// if the control plane is unreachable, moved earlier by the part u (a
// uniform draw in [0, 1)) of jitter (a fraction of the lifetime, clamped
// to [0, maxJitter]) so that proxies started together do not renew
// together. The result is never after half the lifetime.
func renewTime(notBefore, notAfter time.Time, jitter, u float64) time.Time {
	life := notAfter.Sub(notBefore)
	half := notBefore.Add(life / 2)
	if !(jitter > 0) || !(u > 0) { // also NaN
		return half
	}
	early := time.Duration(float64(life) * min(jitter, maxJitter) * min(u, 1))
	return half.Add(-early)
}
