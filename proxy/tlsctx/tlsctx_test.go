package tlsctx

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func inline(s string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"server without certificate", func() error {
			_, err := NewServer(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{}}, nil)
			return err
		}, "a server needs a certificate"},
		{"bad key pair", func() error {
			_, err := NewServer(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificates: []*tlsv3.TlsCertificate{{CertificateChain: inline("x"), PrivateKey: inline("y")}},
			}}, nil)
			return err
		}, "common_tls_context.tls_certificates[0]: tls:"},
		{"missing file", func() error {
			_, err := NewServer(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsCertificates: []*tlsv3.TlsCertificate{{CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/nonexistent/cert.pem"}}}},
			}}, nil)
			return err
		}, "certificate_chain.filename: open /nonexistent/cert.pem"},
		{"client without CA", func() error {
			_, err := NewClient(&tlsv3.UpstreamTlsContext{}, nil)
			return err
		}, "trusted_ca: required"},
		{"require client cert without CA", func() error {
			_, err := NewServer(&tlsv3.DownstreamTlsContext{RequireClientCertificate: wrapperspb.Bool(true)}, nil)
			return err
		}, "a server needs a certificate"},
		{"CA without PEM", func() error {
			_, err := NewClient(&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
				ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline("nope")}},
			}}, nil)
			return err
		}, "trusted_ca: no PEM certificate found"},
		{"old TLS", func() error {
			_, err := NewClient(&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsParams: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_0}}}, nil)
			return err
		}, "tls_minimum_protocol_version: TLSv1_0 unsupported"},
		{"other transport socket", func() error {
			_, _, err := DecodeTransportSocket(&corev3.TransportSocket{Name: "envoy.transport_sockets.raw_buffer"})
			return err
		}, `transport socket "envoy.transport_sockets.raw_buffer" unsupported`},
		{"other typed config", func() error {
			a, _ := anypb.New(&tlsv3.TlsCertificate{})
			_, _, err := DecodeTransportSocket(&corev3.TransportSocket{Name: Name, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: a}})
			return err
		}, "typed_config: type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.TlsCertificate unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
