// Package tlsctx turns Envoy v3 TLS transport sockets (DownstreamTlsContext on
// listeners, UpstreamTlsContext on clusters) into crypto/tls configurations:
// certificates from files or inline PEM, trusted CAs, client certificate
// requirements, subject-alt-name matching (SPIFFE URIs included), ALPN and
// protocol versions. Certificates delivered over SDS come with the auth work;
// here they are static.
package tlsctx

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
)

// Name is the transport socket name Envoy uses for TLS.
const Name = "envoy.transport_sockets.tls"

// Server is a decoded DownstreamTlsContext. Immutable.
type Server struct {
	Config *tls.Config
	// ALPN lists the protocols offered, in preference order.
	ALPN []string
}

// Client is a decoded UpstreamTlsContext. Immutable.
type Client struct {
	Config *tls.Config
	// Key identifies the configuration, so that connection pools of
	// different TLS settings to one address are kept apart.
	Key string
}

// DecodeTransportSocket decodes the transport_socket of a listener filter
// chain (downstream) or a cluster (upstream). nil means plaintext.
func DecodeTransportSocket(ts *corev3.TransportSocket) (*tlsv3.DownstreamTlsContext, *tlsv3.UpstreamTlsContext, error) {
	if ts == nil {
		return nil, nil, nil
	}
	if ts.GetName() != Name && ts.GetName() != "tls" {
		return nil, nil, fmt.Errorf("name: transport socket %q unsupported by weft (%s)", ts.GetName(), Name)
	}
	tc := ts.GetTypedConfig()
	switch {
	case tc.MessageIs(&tlsv3.DownstreamTlsContext{}):
		var d tlsv3.DownstreamTlsContext
		if err := tc.UnmarshalTo(&d); err != nil {
			return nil, nil, fmt.Errorf("typed_config: %w", err)
		}
		return &d, nil, nil
	case tc.MessageIs(&tlsv3.UpstreamTlsContext{}):
		var u tlsv3.UpstreamTlsContext
		if err := tc.UnmarshalTo(&u); err != nil {
			return nil, nil, fmt.Errorf("typed_config: %w", err)
		}
		return nil, &u, nil
	}
	return nil, nil, fmt.Errorf("typed_config: %s unsupported by weft", tc.GetTypeUrl())
}

// NewServer builds the server side of a listener's TLS.
func NewServer(d *tlsv3.DownstreamTlsContext) (*Server, error) {
	common := d.GetCommonTlsContext()
	certs, err := certificates(common.GetTlsCertificates(), "common_tls_context.tls_certificates")
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("common_tls_context.tls_certificates: a server needs a certificate")
	}
	cfg := &tls.Config{Certificates: certs, NextProtos: common.GetAlpnProtocols()}
	if err := versions(cfg, common.GetTlsParams()); err != nil {
		return nil, err
	}
	vc := common.GetValidationContext()
	if vc != nil {
		pool, err := caPool(vc.GetTrustedCa(), "common_tls_context.validation_context.trusted_ca")
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		match, err := sanMatchers(vc.GetMatchTypedSubjectAltNames())
		if err != nil {
			return nil, err
		}
		if match != nil {
			cfg.VerifyConnection = func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return nil // absence is handled by ClientAuth
				}
				return match(cs.PeerCertificates[0])
			}
		}
	}
	if d.GetRequireClientCertificate().GetValue() {
		if vc == nil {
			return nil, errors.New("require_client_certificate: needs common_tls_context.validation_context.trusted_ca")
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return &Server{Config: cfg, ALPN: common.GetAlpnProtocols()}, nil
}

// NewClient builds the client side of a cluster's TLS.
func NewClient(u *tlsv3.UpstreamTlsContext) (*Client, error) {
	common := u.GetCommonTlsContext()
	certs, err := certificates(common.GetTlsCertificates(), "common_tls_context.tls_certificates")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: certs, NextProtos: common.GetAlpnProtocols(), ServerName: u.GetSni()}
	if err := versions(cfg, common.GetTlsParams()); err != nil {
		return nil, err
	}
	vc := common.GetValidationContext()
	if vc == nil || vc.GetTrustedCa() == nil {
		return nil, errors.New("common_tls_context.validation_context.trusted_ca: required (weft never skips server verification)")
	}
	pool, err := caPool(vc.GetTrustedCa(), "common_tls_context.validation_context.trusted_ca")
	if err != nil {
		return nil, err
	}
	match, err := sanMatchers(vc.GetMatchTypedSubjectAltNames())
	if err != nil {
		return nil, err
	}
	// Verification is done here rather than by crypto/tls so that SAN
	// matchers (SPIFFE URIs) can replace the host name check, as Envoy.
	cfg.InsecureSkipVerify = true
	sni := u.GetSni()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		leaf := cs.PeerCertificates[0]
		if _, err := leaf.Verify(opts); err != nil {
			return err
		}
		if match != nil {
			return match(leaf)
		}
		if sni != "" {
			return leaf.VerifyHostname(sni)
		}
		return nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(u)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return &Client{Config: cfg, Key: fmt.Sprintf("%x", sum[:8])}, nil
}

func certificates(cs []*tlsv3.TlsCertificate, path string) ([]tls.Certificate, error) {
	var out []tls.Certificate
	for i, c := range cs {
		p := fmt.Sprintf("%s[%d]", path, i)
		chain, err := read(c.GetCertificateChain(), p+".certificate_chain")
		if err != nil {
			return nil, err
		}
		key, err := read(c.GetPrivateKey(), p+".private_key")
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(chain, key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, pair)
	}
	return out, nil
}

func caPool(ds *corev3.DataSource, path string) (*x509.CertPool, error) {
	pem, err := read(ds, path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}

// read returns the bytes of a DataSource (file or inline).
func read(ds *corev3.DataSource, path string) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_Filename:
		b, err := os.ReadFile(s.Filename)
		if err != nil {
			return nil, fmt.Errorf("%s.filename: %w", path, err)
		}
		return b, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case nil:
		return nil, fmt.Errorf("%s: required", path)
	}
	return nil, fmt.Errorf("%s: only filename, inline_string and inline_bytes are supported", path)
}

func versions(cfg *tls.Config, p *tlsv3.TlsParameters) error {
	v := map[tlsv3.TlsParameters_TlsProtocol]uint16{
		tlsv3.TlsParameters_TLSv1_2: tls.VersionTLS12,
		tlsv3.TlsParameters_TLSv1_3: tls.VersionTLS13,
	}
	cfg.MinVersion = tls.VersionTLS12
	if m := p.GetTlsMinimumProtocolVersion(); m != tlsv3.TlsParameters_TLS_AUTO {
		if cfg.MinVersion = v[m]; cfg.MinVersion == 0 {
			return fmt.Errorf("common_tls_context.tls_params.tls_minimum_protocol_version: %s unsupported (TLSv1_2, TLSv1_3)", m)
		}
	}
	if m := p.GetTlsMaximumProtocolVersion(); m != tlsv3.TlsParameters_TLS_AUTO {
		if cfg.MaxVersion = v[m]; cfg.MaxVersion == 0 {
			return fmt.Errorf("common_tls_context.tls_params.tls_maximum_protocol_version: %s unsupported (TLSv1_2, TLSv1_3)", m)
		}
	}
	return nil
}

// sanMatchers compiles match_typed_subject_alt_names: the peer matches when
// any matcher matches any SAN of its type. nil means no constraint.
func sanMatchers(ms []*tlsv3.SubjectAltNameMatcher) (func(*x509.Certificate) error, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	type m struct {
		typ   tlsv3.SubjectAltNameMatcher_SanType
		match func(string) bool
	}
	var list []m
	for i, sm := range ms {
		p := fmt.Sprintf("common_tls_context.validation_context.match_typed_subject_alt_names[%d]", i)
		switch sm.GetSanType() {
		case tlsv3.SubjectAltNameMatcher_DNS, tlsv3.SubjectAltNameMatcher_URI:
		default:
			return nil, fmt.Errorf("%s.san_type: %s unsupported (DNS, URI)", p, sm.GetSanType())
		}
		f, err := stringMatcher(sm.GetMatcher(), p+".matcher")
		if err != nil {
			return nil, err
		}
		list = append(list, m{sm.GetSanType(), f})
	}
	return func(c *x509.Certificate) error {
		var uris []string
		for _, u := range c.URIs {
			uris = append(uris, u.String())
		}
		for _, x := range list {
			names := c.DNSNames
			if x.typ == tlsv3.SubjectAltNameMatcher_URI {
				names = uris
			}
			if slices.ContainsFunc(names, x.match) {
				return nil
			}
		}
		return fmt.Errorf("tls: peer certificate (DNS %v, URI %v) matches no allowed subject alt name", c.DNSNames, uris)
	}, nil
}

func stringMatcher(sm *matcherv3.StringMatcher, path string) (func(string) bool, error) {
	fold := func(s string) string { return s }
	if sm.GetIgnoreCase() {
		fold = strings.ToLower
	}
	switch p := sm.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		want := fold(p.Exact)
		return func(s string) bool { return fold(s) == want }, nil
	case *matcherv3.StringMatcher_Prefix:
		want := fold(p.Prefix)
		return func(s string) bool { return strings.HasPrefix(fold(s), want) }, nil
	case *matcherv3.StringMatcher_Suffix:
		want := fold(p.Suffix)
		return func(s string) bool { return strings.HasSuffix(fold(s), want) }, nil
	}
	return nil, fmt.Errorf("%s: only exact, prefix and suffix are supported", path)
}
