package translate

import (
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/registry"
)

// SDS secret names, as Istio's: the proxy's own certificate (issued to the
// proxy, whose key never leaves it) and the mesh trust bundle (delivered
// over ADS by the control plane).
const (
	SecretIdentity = "default"
	SecretRootCA   = "ROOTCA"

	tlsTransportSocket = "envoy.transport_sockets.tls"
	tlsInspectorName   = "envoy.filters.listener.tls_inspector"
)

// mtlsEnabled reports whether the mesh has a CA: without a trust bundle
// every hop is plaintext (a control plane run without a CA, in tests).
func (t *translator) mtlsEnabled() bool { return len(t.in.Mesh.TrustBundle) > 0 }

// rootCASecret is the trust bundle secret.
func (t *translator) rootCASecret() *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: SecretRootCA,
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: t.in.Mesh.TrustBundle}},
		}},
	}
}

// ownMTLSMode is the effective mode of the proxy's own inbound listener.
func (t *translator) ownMTLSMode() v1alpha1.MTLSMode {
	if !t.mtlsEnabled() {
		return v1alpha1.MTLSDisable
	}
	p := t.in.Proxy
	return t.in.Resources.MTLSMode(p.Namespace, p.Labels, t.in.Mesh.MTLSMode)
}

func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsSource()}
}

// meshTLSContext is the common context of every mesh hop: the proxy's own
// certificate, the trust bundle, and the SAN matchers the peer must pass.
func meshTLSContext(sans []*tlsv3.SubjectAltNameMatcher) *tlsv3.CommonTlsContext {
	return &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(SecretIdentity)},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
			ValidationContextSdsSecretConfig: sdsSecret(SecretRootCA),
		}},
	}
}

func uriSAN(m *matcherv3.StringMatcher) *tlsv3.SubjectAltNameMatcher {
	return &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: m}
}

// inboundTransportSocket requires a client certificate of the mesh's trust
// domain; who may call is decided by the RBAC filters after it.
func (t *translator) inboundTransportSocket() *corev3.TransportSocket {
	prefix := uriSAN(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://" + t.in.Mesh.trustDomain() + "/"}})
	d := &tlsv3.DownstreamTlsContext{
		CommonTlsContext:         meshTLSContext([]*tlsv3.SubjectAltNameMatcher{prefix}),
		RequireClientCertificate: wrapperspb.Bool(true),
	}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(d)}}
}

// inboundListener is the sidecar's inbound listener in its mTLS mode:
// STRICT, one TLS chain; PERMISSIVE, a TLS and a plaintext chain with the
// same filters, told apart by the TLS inspector; DISABLE, plaintext.
func (t *translator) inboundListener(name, ip string, port uint16, filters []*listenerv3.Filter) {
	l := &listenerv3.Listener{
		Name:             name,
		Address:          socketAddress(ip, uint32(port)),
		TrafficDirection: corev3.TrafficDirection_INBOUND,
	}
	switch t.ownMTLSMode() {
	case v1alpha1.MTLSStrict:
		l.FilterChains = []*listenerv3.FilterChain{{Name: "mtls", Filters: filters, TransportSocket: t.inboundTransportSocket()}}
	case v1alpha1.MTLSPermissive:
		l.ListenerFilters = []*listenerv3.ListenerFilter{{
			Name:       tlsInspectorName,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspectorv3.TlsInspector{})},
		}}
		l.FilterChains = []*listenerv3.FilterChain{
			{Name: "mtls", FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "tls"}, Filters: filters, TransportSocket: t.inboundTransportSocket()},
			{Name: "plaintext", FilterChainMatch: &listenerv3.FilterChainMatch{TransportProtocol: "raw_buffer"}, Filters: filters},
		}
	default:
		l.FilterChains = []*listenerv3.FilterChain{{Filters: filters}}
	}
	t.listeners = append(t.listeners, l)
}

// upstreamTransportSocket is the mTLS client side toward the sidecars of
// ins: it presents the proxy's certificate and accepts only the SPIFFE IDs
// of those instances (their namespace and service account), so a
// connection pool serves exactly one destination identity set. nil
// (plaintext) when mTLS is off, when any instance is not a sidecar
// (registered statically: it has no certificate) or when every instance's
// workload disables mTLS.
func (t *translator) upstreamTransportSocket(ins []registry.Instance) *corev3.TransportSocket {
	if !t.mtlsEnabled() {
		return nil
	}
	var ids []string
	disabled := 0
	for _, in := range ins {
		if !strings.HasPrefix(in.Source, "session/") {
			return nil
		}
		if t.in.Resources.MTLSMode(in.Service.Namespace, in.Labels, t.in.Mesh.MTLSMode) == v1alpha1.MTLSDisable {
			disabled++
		}
		sa := in.Identity
		if sa == "" {
			sa = v1alpha1.DefaultServiceAccount
		}
		ids = append(ids, workloadID(t.in.Mesh.trustDomain(), in.Service.Namespace, sa))
	}
	if len(ins) > 0 && disabled == len(ins) {
		return nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	sans := make([]*tlsv3.SubjectAltNameMatcher, 0, len(ids))
	for _, id := range ids {
		sans = append(sans, uriSAN(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: id}}))
	}
	if len(sans) == 0 {
		// No instance yet: no identity can be right.
		sans = append(sans, uriSAN(&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "spiffe://" + t.in.Mesh.trustDomain() + "/no-instances"}}))
	}
	u := &tlsv3.UpstreamTlsContext{CommonTlsContext: meshTLSContext(sans)}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(u)}}
}
