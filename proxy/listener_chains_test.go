package proxy

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func mustPack(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestListenerChains covers the two shapes of filter chains weft accepts
// (one chain; a tls and a raw_buffer chain with the same filters) and the
// refusals, each naming its field.
func TestListenerChains(t *testing.T) {
	sds := func(n string) *tlsv3.SdsSecretConfig {
		return &tlsv3.SdsSecretConfig{Name: n, SdsConfig: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}
	}
	mtls := &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustPack(t, &tlsv3.DownstreamTlsContext{
		CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sds("default")},
			ValidationContextType:          &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: sds("ROOTCA")},
		},
		RequireClientCertificate: wrapperspb.Bool(true),
	})}}
	tcp := &listenerv3.Filter{Name: tcpFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustPack(t, &tcpv3.TcpProxy{StatPrefix: "in", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "app"}})}}
	rbac := &listenerv3.Filter{Name: "envoy.filters.network.rbac", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustPack(t, &rbacnetv3.RBAC{StatPrefix: "in"})}}
	inspector := []*listenerv3.ListenerFilter{{Name: tlsInspector, ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: mustPack(t, &tlsinspectorv3.TlsInspector{})}}}
	match := func(p string) *listenerv3.FilterChainMatch { return &listenerv3.FilterChainMatch{TransportProtocol: p} }
	listener := func(lf []*listenerv3.ListenerFilter, chains ...*listenerv3.FilterChain) *listenerv3.Listener {
		return &listenerv3.Listener{
			Name:            "inbound",
			Address:         &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0}}}},
			ListenerFilters: lf,
			FilterChains:    chains,
		}
	}
	store := &secretStore{}
	for _, tc := range []struct {
		name       string
		l          *listenerv3.Listener
		want       string // "" for accepted
		permissive bool
		rbac       bool
	}{
		{name: "strict", l: listener(nil, &listenerv3.FilterChain{Filters: []*listenerv3.Filter{rbac, tcp}, TransportSocket: mtls}), rbac: true},
		{name: "permissive", permissive: true, l: listener(inspector,
			&listenerv3.FilterChain{FilterChainMatch: match("raw_buffer"), Filters: []*listenerv3.Filter{tcp}},
			&listenerv3.FilterChain{FilterChainMatch: match("tls"), Filters: []*listenerv3.Filter{tcp}, TransportSocket: mtls})},
		{name: "two chains without inspector", want: "listener_filters: matching on transport_protocol needs envoy.filters.listener.tls_inspector", l: listener(nil,
			&listenerv3.FilterChain{FilterChainMatch: match("tls"), Filters: []*listenerv3.Filter{tcp}, TransportSocket: mtls},
			&listenerv3.FilterChain{FilterChainMatch: match("raw_buffer"), Filters: []*listenerv3.Filter{tcp}})},
		{name: "different filters", want: "filter_chains[1].filters: weft needs the same filters", l: listener(inspector,
			&listenerv3.FilterChain{FilterChainMatch: match("tls"), Filters: []*listenerv3.Filter{rbac, tcp}, TransportSocket: mtls},
			&listenerv3.FilterChain{FilterChainMatch: match("raw_buffer"), Filters: []*listenerv3.Filter{tcp}})},
		{name: "tls in the raw chain", want: "filter_chains[1].transport_socket: the raw_buffer chain must be plaintext", l: listener(inspector,
			&listenerv3.FilterChain{FilterChainMatch: match("tls"), Filters: []*listenerv3.Filter{tcp}, TransportSocket: mtls},
			&listenerv3.FilterChain{FilterChainMatch: match("raw_buffer"), Filters: []*listenerv3.Filter{tcp}, TransportSocket: mtls})},
		{name: "other protocol", want: `filter_chains[0].filter_chain_match.transport_protocol: "quic"`, l: listener(inspector,
			&listenerv3.FilterChain{FilterChainMatch: match("quic"), Filters: []*listenerv3.Filter{tcp}},
			&listenerv3.FilterChain{FilterChainMatch: match("tls"), Filters: []*listenerv3.Filter{tcp}, TransportSocket: mtls})},
		{name: "three chains", want: "filter_chains: one chain, or a tls and a raw_buffer chain, are supported; got 3", l: listener(inspector,
			&listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcp}}, &listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcp}}, &listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcp}})},
		{name: "rbac before hcm-less terminal only", want: "filter_chains[0].filters[0]: only envoy.filters.network.rbac may precede the terminal filter", l: listener(nil,
			&listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcp, tcp}})},
		{name: "sds without a store", want: "SDS secrets are not available", l: listener(nil, &listenerv3.FilterChain{Filters: []*listenerv3.Filter{tcp}, TransportSocket: mtls})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var secrets = store
			if strings.Contains(tc.want, "SDS") {
				secrets = nil
			}
			var ls *listenerSpec
			var err error
			if secrets == nil {
				ls, err = decodeListener(tc.l, nil)
			} else {
				ls, err = decodeListener(tc.l, secrets)
			}
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ls.tls == nil || ls.permissive != tc.permissive || (ls.tcp.rbac != nil) != tc.rbac {
				t.Fatalf("spec: tls %v permissive %v rbac %v", ls.tls != nil, ls.permissive, ls.tcp.rbac != nil)
			}
		})
	}
}

// TestSecretsMustBeInline: an SDS secret from the control plane never
// names a file on the proxy's machine, and each refusal names the field.
func TestSecretsMustBeInline(t *testing.T) {
	file := &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/passwd"}}
	s := &secretStore{}
	for _, tc := range []struct {
		sec  *tlsv3.Secret
		want string
	}{
		{&tlsv3.Secret{Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{CertificateChain: file}}},
			"tls_certificate.certificate_chain.filename: must be inline (inline_bytes or inline_string)"},
		{&tlsv3.Secret{Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "x"}}}}},
			"tls_certificate.private_key: required"},
		{&tlsv3.Secret{Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: file}}},
			"validation_context.trusted_ca.filename: must be inline (inline_bytes or inline_string)"},
	} {
		if _, err := s.decodeSecret(tc.sec); err == nil || err.Error() != tc.want {
			t.Errorf("decodeSecret(%v) = %v, want %q", tc.sec, err, tc.want)
		}
	}
}
