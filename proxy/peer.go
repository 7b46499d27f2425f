package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// Peer identity on TLS listeners: the SPIFFE ID of a verified client
// certificate is what RBAC's authenticated.principal_name matches and what
// x-forwarded-client-cert tells the application.

// xfccHeader is Envoy's x-forwarded-client-cert, lower-case.
const xfccHeader = "x-forwarded-client-cert"

// peerPrincipal returns the SPIFFE ID of the verified mTLS peer: the first
// URI SAN of its leaf certificate that starts with "spiffe://". It is ""
// for a nil state (plaintext), a peer without certificate, or a
// certificate crypto/tls did not verify (no VerifiedChains); see
// downstreamPeer for listeners that verify client certificates themselves.
func peerPrincipal(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.VerifiedChains) == 0 {
		return ""
	}
	return spiffeSAN(cs.PeerCertificates)
}

// downstreamPeer returns the SPIFFE ID of the peer of a connection accepted
// with cfg. tlsctx verifies client chains in VerifyConnection rather than
// in crypto/tls (the trusted CAs may rotate over SDS), so with such a
// config a peer certificate still present after the handshake is a
// verified one although VerifiedChains is empty; otherwise only what
// crypto/tls verified counts.
func downstreamPeer(cfg *tls.Config, cs *tls.ConnectionState) string {
	if cs == nil {
		return ""
	}
	if cfg != nil && cfg.VerifyConnection != nil && cfg.ClientAuth != tls.NoClientCert && len(cs.VerifiedChains) == 0 {
		return spiffeSAN(cs.PeerCertificates)
	}
	return peerPrincipal(cs)
}

// spiffeSAN returns the first spiffe:// URI SAN of the leaf of chain.
func spiffeSAN(chain []*x509.Certificate) string {
	if len(chain) == 0 {
		return ""
	}
	for _, u := range chain[0].URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		if s := u.String(); strings.HasPrefix(s, "spiffe://") {
			return s
		}
	}
	return ""
}

// ownPrincipal returns the SPIFFE ID of the listener's own certificate
// (the first one configured), "" when it has none or when the certificate
// is not parsed yet (Leaf is nil: certificates set by GetCertificate).
func ownPrincipal(cfg *tls.Config) string {
	if cfg == nil {
		return ""
	}
	var c *tls.Certificate
	switch {
	case len(cfg.Certificates) > 0:
		c = &cfg.Certificates[0]
	case cfg.GetCertificate != nil:
		// An SDS certificate (tlsctx's callback ignores the hello); the
		// identity source fills Leaf.
		c, _ = cfg.GetCertificate(&tls.ClientHelloInfo{})
	}
	if c == nil || c.Leaf == nil {
		return ""
	}
	return spiffeSAN([]*x509.Certificate{c.Leaf})
}

// xfccFor returns the x-forwarded-client-cert value the listener sets
// toward the application for a peer, as Envoy's SANITIZE_SET with the By
// and URI details: "By=<own SPIFFE ID>;URI=<peer SPIFFE ID>" (By omitted
// when the own ID is unknown). It is "" — the header is only removed —
// for a peer without principal and on outbound listeners (the sidecar's
// own application is the caller there, so there is nothing to vouch for).
func xfccFor(ls *listenerSpec, peer string) string {
	if peer == "" || ls.raw.GetTrafficDirection() == corev3.TrafficDirection_OUTBOUND {
		return ""
	}
	var own string
	if ls.tls != nil {
		own = ownPrincipal(ls.tls.Config)
	}
	if own == "" {
		return "URI=" + peer
	}
	return "By=" + own + ";URI=" + peer
}
