// Package tlsctx turns Envoy v3 TLS transport sockets (DownstreamTlsContext on
// listeners, UpstreamTlsContext on clusters) into crypto/tls configurations:
// certificates from files or inline PEM, trusted CAs, client certificate
// requirements, subject-alt-name matching (SPIFFE URIs included), ALPN and
// protocol versions. Certificates and trusted CAs come from files, inline
// PEM, or SDS secrets resolved at each handshake (Secrets).
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

// Secrets resolves the SDS secrets a TLS context names
// (tls_certificate_sds_secret_configs, validation_context_sds_secret_config).
// They are read at every handshake, so a rotated certificate or trust bundle
// takes effect for the next connection without rebuilding the context.
// Implementations must be safe for concurrent use.
type Secrets interface {
	// Certificate returns the current certificate of the named secret,
	// or an error saying why there is none (not delivered yet).
	Certificate(name string) (*tls.Certificate, error)
	// Roots returns the current trusted CAs of the named secret.
	Roots(name string) (*x509.CertPool, error)
}

// NewServer builds the server side of a listener's TLS. secrets resolves
// SDS references; nil refuses them.
func NewServer(d *tlsv3.DownstreamTlsContext, secrets Secrets) (*Server, error) {
	common := d.GetCommonTlsContext()
	certs, err := certificates(common.GetTlsCertificates(), "common_tls_context.tls_certificates")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: certs, NextProtos: common.GetAlpnProtocols()}
	sdsCert, err := sdsCertificate(common, secrets)
	if err != nil {
		return nil, err
	}
	if sdsCert != "" {
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return secrets.Certificate(sdsCert) }
	} else if len(certs) == 0 {
		return nil, errors.New("common_tls_context.tls_certificates: a server needs a certificate")
	}
	if err := versions(cfg, common.GetTlsParams()); err != nil {
		return nil, err
	}
	v, err := newValidation(common, secrets)
	if err != nil {
		return nil, err
	}
	require := d.GetRequireClientCertificate().GetValue()
	if v != nil {
		// The chain is verified here rather than by crypto/tls, because
		// the trusted CAs may change (SDS) and SAN matchers replace name
		// checks, as Envoy.
		cfg.ClientAuth = tls.RequestClientCert
		if require {
			cfg.ClientAuth = tls.RequireAnyClientCert
		}
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return nil // absence is handled by ClientAuth
			}
			return v.verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth, "")
		}
	} else if require {
		return nil, errors.New("require_client_certificate: needs a validation context (common_tls_context.validation_context or an SDS validation secret)")
	}
	return &Server{Config: cfg, ALPN: common.GetAlpnProtocols()}, nil
}

// NewClient builds the client side of a cluster's TLS. secrets resolves
// SDS references; nil refuses them.
func NewClient(u *tlsv3.UpstreamTlsContext, secrets Secrets) (*Client, error) {
	common := u.GetCommonTlsContext()
	certs, err := certificates(common.GetTlsCertificates(), "common_tls_context.tls_certificates")
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: certs, NextProtos: common.GetAlpnProtocols(), ServerName: u.GetSni()}
	sdsCert, err := sdsCertificate(common, secrets)
	if err != nil {
		return nil, err
	}
	if sdsCert != "" {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return secrets.Certificate(sdsCert)
		}
	}
	if err := versions(cfg, common.GetTlsParams()); err != nil {
		return nil, err
	}
	v, err := newValidation(common, secrets)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errors.New("common_tls_context.validation_context.trusted_ca: required (weft never skips server verification)")
	}
	// Verification is done here rather than by crypto/tls so that SAN
	// matchers (SPIFFE URIs) can replace the host name check, as Envoy.
	cfg.InsecureSkipVerify = true
	sni := u.GetSni()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: server sent no certificate")
		}
		return v.verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, sni)
	}
	// Resumed sessions skip the certificate messages and signatures
	// (VerifyConnection still runs on them, against the current roots).
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(64)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(u)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return &Client{Config: cfg, Key: fmt.Sprintf("%x", sum[:8])}, nil
}

// sdsCertificate returns the name of the SDS certificate secret, "" for
// none.
func sdsCertificate(common *tlsv3.CommonTlsContext, secrets Secrets) (string, error) {
	refs := common.GetTlsCertificateSdsSecretConfigs()
	switch {
	case len(refs) == 0:
		return "", nil
	case len(refs) > 1:
		return "", errors.New("common_tls_context.tls_certificate_sds_secret_configs: at most one secret is supported")
	case len(common.GetTlsCertificates()) > 0:
		return "", errors.New("common_tls_context: tls_certificates and tls_certificate_sds_secret_configs are exclusive")
	}
	if err := checkSDSRef(refs[0], secrets, "common_tls_context.tls_certificate_sds_secret_configs[0]"); err != nil {
		return "", err
	}
	return refs[0].GetName(), nil
}

func checkSDSRef(ref *tlsv3.SdsSecretConfig, secrets Secrets, path string) error {
	if ref.GetName() == "" {
		return fmt.Errorf("%s.name: required", path)
	}
	if secrets == nil {
		return fmt.Errorf("%s: SDS secrets are not available here (static bootstrap without xDS)", path)
	}
	if cs := ref.GetSdsConfig(); cs != nil && cs.GetAds() == nil && cs.GetConfigSourceSpecifier() != nil {
		return fmt.Errorf("%s.sds_config: only ads is supported", path)
	}
	return nil
}

// validation checks a peer's chain: against static roots or the roots of
// an SDS secret (read at each handshake), then the SAN matchers.
type validation struct {
	roots   *x509.CertPool
	secret  string
	secrets Secrets
	match   func(*x509.Certificate) error
}

// newValidation decodes validation_context, validation_context_sds_secret_config
// or combined_validation_context; nil when none is set.
func newValidation(common *tlsv3.CommonTlsContext, secrets Secrets) (*validation, error) {
	var static *tlsv3.CertificateValidationContext
	var ref *tlsv3.SdsSecretConfig
	path := "common_tls_context.validation_context"
	switch vc := common.GetValidationContextType().(type) {
	case nil:
		return nil, nil
	case *tlsv3.CommonTlsContext_ValidationContext:
		static = vc.ValidationContext
	case *tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig:
		ref = vc.ValidationContextSdsSecretConfig
		path = "common_tls_context.validation_context_sds_secret_config"
	case *tlsv3.CommonTlsContext_CombinedValidationContext:
		static = vc.CombinedValidationContext.GetDefaultValidationContext()
		ref = vc.CombinedValidationContext.GetValidationContextSdsSecretConfig()
		path = "common_tls_context.combined_validation_context"
		if ref == nil {
			return nil, fmt.Errorf("%s.validation_context_sds_secret_config: required", path)
		}
	default:
		return nil, fmt.Errorf("common_tls_context.validation_context_type: %T unsupported by weft", vc)
	}
	v := &validation{secrets: secrets}
	if ref != nil {
		p := path
		if static != nil {
			p += ".validation_context_sds_secret_config"
		}
		if err := checkSDSRef(ref, secrets, p); err != nil {
			return nil, err
		}
		v.secret = ref.GetName()
	}
	if static != nil {
		if static.GetTrustedCa() != nil {
			if ref != nil {
				return nil, fmt.Errorf("%s.default_validation_context.trusted_ca: the SDS secret supplies the CAs", path)
			}
			pool, err := caPool(static.GetTrustedCa(), path+".trusted_ca")
			if err != nil {
				return nil, err
			}
			v.roots = pool
		} else if ref == nil {
			return nil, fmt.Errorf("%s.trusted_ca: required", path)
		}
		match, err := sanMatchers(static.GetMatchTypedSubjectAltNames())
		if err != nil {
			return nil, err
		}
		v.match = match
	}
	return v, nil
}

// verify checks chain (leaf first) for usage, then the SAN matchers, else
// the host name sni when set.
func (v *validation) verify(chain []*x509.Certificate, usage x509.ExtKeyUsage, sni string) error {
	roots := v.roots
	if v.secret != "" {
		var err error
		if roots, err = v.secrets.Roots(v.secret); err != nil {
			return err
		}
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	leaf := chain[0]
	if _, err := leaf.Verify(opts); err != nil {
		return err
	}
	if v.match != nil {
		return v.match(leaf)
	}
	if sni != "" {
		return leaf.VerifyHostname(sni)
	}
	return nil
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
func read(ds *corev3.DataSource, path string) ([]byte, error) { return readSource(ds, path, true) }

// ReadInline is read for data that must travel inline: an SDS secret from
// the control plane never names a file on the proxy's machine.
func ReadInline(ds *corev3.DataSource, path string) ([]byte, error) {
	return readSource(ds, path, false)
}

func readSource(ds *corev3.DataSource, path string, files bool) ([]byte, error) {
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_Filename:
		if !files {
			return nil, fmt.Errorf("%s.filename: must be inline (inline_bytes or inline_string)", path)
		}
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
