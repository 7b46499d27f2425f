package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/weft-mesh/weft/proxy/tlsctx"
)

// CertificateSource supplies the proxy's own certificate (proxy/identity).
type CertificateSource interface {
	Certificate() (*tls.Certificate, error)
}

// secretStore resolves the SDS secrets listeners and clusters name: the
// ones delivered over xDS (the trust bundle "ROOTCA", or any static
// certificate) and the proxy's own certificate under Options.IdentitySecret.
// Lookups happen at every TLS handshake and read an atomic snapshot, so a
// new bundle or certificate applies to the next connection without a
// rebuild. It implements tlsctx.Secrets and is safe for concurrent use.
type secretStore struct {
	own     CertificateSource // nil: none
	ownName string
	xds     atomic.Pointer[map[string]*secret]
}

// secret is one decoded xDS Secret: a certificate or trusted CAs.
type secret struct {
	cert  *tls.Certificate
	roots *x509.CertPool
}

func (s *secretStore) Certificate(name string) (*tls.Certificate, error) {
	if s.own != nil && name == s.ownName {
		return s.own.Certificate()
	}
	if m := s.xds.Load(); m != nil {
		if sec := (*m)[name]; sec != nil && sec.cert != nil {
			return sec.cert, nil
		}
	}
	return nil, fmt.Errorf("tls: certificate secret %q not delivered", name)
}

func (s *secretStore) Roots(name string) (*x509.CertPool, error) {
	if m := s.xds.Load(); m != nil {
		if sec := (*m)[name]; sec != nil && sec.roots != nil {
			return sec.roots, nil
		}
	}
	return nil, fmt.Errorf("tls: validation secret %q not delivered", name)
}

// decodeSecret checks one Secret: exactly a tls_certificate (inline) or a
// validation_context with trusted_ca.
func (s *secretStore) decodeSecret(sec *tlsv3.Secret) (*secret, error) {
	if s.own != nil && sec.GetName() == s.ownName {
		return nil, fmt.Errorf("name: %q is the proxy's own certificate, issued by its identity source", s.ownName)
	}
	switch t := sec.GetType().(type) {
	case *tlsv3.Secret_TlsCertificate:
		chain, err := tlsctx.ReadInline(t.TlsCertificate.GetCertificateChain(), "tls_certificate.certificate_chain")
		if err != nil {
			return nil, err
		}
		key, err := tlsctx.ReadInline(t.TlsCertificate.GetPrivateKey(), "tls_certificate.private_key")
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(chain, key)
		if err != nil {
			return nil, fmt.Errorf("tls_certificate: %w", err)
		}
		return &secret{cert: &pair}, nil
	case *tlsv3.Secret_ValidationContext:
		if len(t.ValidationContext.GetMatchTypedSubjectAltNames()) > 0 {
			return nil, errors.New("validation_context.match_typed_subject_alt_names: put SAN matchers in the combined_validation_context of the transport socket")
		}
		ca, err := tlsctx.ReadInline(t.ValidationContext.GetTrustedCa(), "validation_context.trusted_ca")
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, errors.New("validation_context.trusted_ca: no PEM certificate found")
		}
		return &secret{roots: pool}, nil
	case nil:
		return nil, errors.New("type: tls_certificate or validation_context required")
	default:
		return nil, fmt.Errorf("type: %T unsupported by weft (tls_certificate, validation_context)", t)
	}
}
