package tlsctx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/control/ca"
	"github.com/weft-mesh/weft/control/ca/spiffeid"
)

// fakeSecrets is a map-backed Secrets whose contents tests change between
// handshakes.
type fakeSecrets struct {
	mu    sync.Mutex
	certs map[string]*tls.Certificate
	roots map[string]*x509.CertPool
}

func (f *fakeSecrets) Certificate(name string) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.certs[name]; c != nil {
		return c, nil
	}
	return nil, errors.New("certificate secret " + name + " not delivered")
}

func (f *fakeSecrets) Roots(name string) (*x509.CertPool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.roots[name]; r != nil {
		return r, nil
	}
	return nil, errors.New("validation secret " + name + " not delivered")
}

func (f *fakeSecrets) set(name string, c *tls.Certificate, r *x509.CertPool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c != nil {
		f.certs[name] = c
	}
	if r != nil {
		f.roots[name] = r
	}
}

// issue signs a leaf for ns/sa with authority.
func issue(t *testing.T, authority *ca.CA, ns, sa string, ttl time.Duration) *tls.Certificate {
	t.Helper()
	id, err := spiffeid.New("cluster.local", ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	c, err := authority.NewLeaf(id, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sds(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}
}

// meshContexts are the contexts the control plane emits for a sidecar hop:
// the inbound listener requires a mesh certificate; the outbound cluster
// presents its own and checks the server's SPIFFE ID.
func meshContexts(serverID string) (*tlsv3.DownstreamTlsContext, *tlsv3.UpstreamTlsContext) {
	common := func(match []*tlsv3.SubjectAltNameMatcher) *tlsv3.CommonTlsContext {
		return &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds("default")},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: match},
				ValidationContextSdsSecretConfig: sds("ROOTCA"),
			}},
		}
	}
	prefix := []*tlsv3.SubjectAltNameMatcher{{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://cluster.local/"}}}}
	exact := []*tlsv3.SubjectAltNameMatcher{{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: serverID}}}}
	return &tlsv3.DownstreamTlsContext{CommonTlsContext: common(prefix), RequireClientCertificate: wrapperspb.Bool(true)},
		&tlsv3.UpstreamTlsContext{CommonTlsContext: common(exact)}
}

// lastResumed reports whether handshake's last connection resumed a session.
var lastResumed bool

// handshake runs one TLS handshake over loopback and returns the client's
// and the server's errors.
func handshake(t *testing.T, srv *Server, cli *Client) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	serr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serr <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, srv.Config)
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3: the client's certificate is checked after the
			// client's handshake returns; a read surfaces the verdict.
			_, err = tc.Write([]byte("ok"))
		}
		serr <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), cli.Config)
	lastResumed = false
	if err == nil {
		lastResumed = c.ConnectionState().DidResume
		buf := make([]byte, 2)
		_, err = c.Read(buf)
		c.Close()
	}
	return err, <-serr
}

func TestSDSMutualTLS(t *testing.T) {
	authority, err := ca.Open(t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	down, up := meshContexts("spiffe://cluster.local/ns/shop/sa/checkout")
	serverSecrets := &fakeSecrets{certs: map[string]*tls.Certificate{}, roots: map[string]*x509.CertPool{}}
	clientSecrets := &fakeSecrets{certs: map[string]*tls.Certificate{}, roots: map[string]*x509.CertPool{}}
	srv, err := NewServer(down, serverSecrets)
	if err != nil {
		t.Fatal(err)
	}
	// Each step dials with a new client (an empty session cache): a
	// resumed session would skip the certificates under test.
	var cli *Client
	fresh := func() *Client {
		c, err := NewClient(up, clientSecrets)
		if err != nil {
			t.Fatal(err)
		}
		cli = c
		return c
	}

	// Nothing delivered yet: the server has no certificate.
	if cerr, _ := handshake(t, srv, fresh()); cerr == nil {
		t.Fatal("handshake succeeded before any secret was delivered")
	}
	serverSecrets.set("default", issue(t, authority, "shop", "checkout", 0), nil)
	serverSecrets.set("ROOTCA", nil, authority.Pool())
	clientSecrets.set("default", issue(t, authority, "shop", "frontend", 0), nil)
	clientSecrets.set("ROOTCA", nil, authority.Pool())
	if cerr, serr := handshake(t, srv, fresh()); cerr != nil || serr != nil {
		t.Fatalf("mesh handshake: client %v, server %v", cerr, serr)
	}
	// The same client resumes its session (no signatures, no chain
	// verification by crypto/tls; VerifyConnection still runs).
	if cerr, serr := handshake(t, srv, cli); cerr != nil || serr != nil {
		t.Fatalf("resumed handshake: client %v, server %v", cerr, serr)
	}
	if !lastResumed {
		t.Fatal("the second connection of one client did not resume its session")
	}

	// A server with the wrong identity is refused by the client.
	serverSecrets.set("default", issue(t, authority, "shop", "cart", 0), nil)
	if cerr, _ := handshake(t, srv, fresh()); cerr == nil || !strings.Contains(cerr.Error(), "matches no allowed subject alt name") {
		t.Fatalf("wrong server identity: client err = %v", cerr)
	}
	serverSecrets.set("default", issue(t, authority, "shop", "checkout", 0), nil)

	// An expired client certificate is refused by the server (a CA whose
	// clock is three hours behind signs a one-hour leaf).
	past := time.Now().Add(-3 * time.Hour)
	pastCA, err := ca.Open(t.TempDir(), ca.Options{Now: func() time.Time { return past }, IntermediateTTL: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	serverSecrets.set("ROOTCA", nil, joinPools(t, authority, pastCA))
	clientSecrets.set("default", issue(t, pastCA, "shop", "frontend", time.Hour), nil)
	if _, serr := handshake(t, srv, fresh()); serr == nil || !strings.Contains(serr.Error(), "expired") {
		t.Fatalf("expired client certificate: server err = %v", serr)
	}

	// A certificate of another CA is refused until its root is in the
	// bundle: the bundle is read at each handshake.
	other, err := ca.Open(t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	clientSecrets.set("default", issue(t, other, "shop", "frontend", 0), nil)
	if _, serr := handshake(t, srv, fresh()); serr == nil || !strings.Contains(serr.Error(), "unknown authority") {
		t.Fatalf("foreign CA: server err = %v", serr)
	}
	serverSecrets.set("ROOTCA", nil, joinPools(t, authority, other))
	if cerr, serr := handshake(t, srv, fresh()); cerr != nil || serr != nil {
		t.Fatalf("after the bundle update: client %v, server %v", cerr, serr)
	}
}

func joinPools(t *testing.T, cas ...*ca.CA) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	for _, c := range cas {
		for _, r := range c.Bundle() {
			p.AddCert(r)
		}
	}
	return p
}

func TestSDSErrors(t *testing.T) {
	down, up := meshContexts("spiffe://cluster.local/ns/a/sa/b")
	if _, err := NewServer(down, nil); err == nil || !strings.Contains(err.Error(), "tls_certificate_sds_secret_configs[0]: SDS secrets are not available") {
		t.Fatalf("SDS without a store: %v", err)
	}
	up.CommonTlsContext.TlsCertificateSdsSecretConfigs = append(up.CommonTlsContext.TlsCertificateSdsSecretConfigs, sds("other"))
	if _, err := NewClient(up, &fakeSecrets{}); err == nil || !strings.Contains(err.Error(), "at most one secret") {
		t.Fatalf("two SDS certificates: %v", err)
	}
	_, up = meshContexts("x")
	up.CommonTlsContext.ValidationContextType.(*tlsv3.CommonTlsContext_CombinedValidationContext).CombinedValidationContext.ValidationContextSdsSecretConfig.SdsConfig = &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Path{Path: "/etc/x"},
	}
	if _, err := NewClient(up, &fakeSecrets{}); err == nil || !strings.Contains(err.Error(), "combined_validation_context.validation_context_sds_secret_config.sds_config: only ads") {
		t.Fatalf("file SDS source: %v", err)
	}
}
