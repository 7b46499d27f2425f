package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "weft test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}
}

// issue returns PEM cert and key for the given SANs (DNS names, IPs, URIs).
func (ca *testCA) issue(t *testing.T, sans ...string) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: sans[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, s := range sans {
		switch {
		case strings.Contains(s, "://"):
			u, _ := url.Parse(s)
			tmpl.URIs = append(tmpl.URIs, u)
		case net.ParseIP(s) != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(s))
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

// yamlBlock quotes a PEM block as a YAML double-quoted string.
func yamlBlock(s string, _ int) string { return strconv.Quote(s) }

// TestTLS terminates TLS on a listener (ALPN h2 and http/1.1) and
// originates TLS to an upstream whose SPIFFE URI SAN is checked.
func TestTLS(t *testing.T) {
	ca := newTestCA(t)
	upCert, upKey := ca.issue(t, "spiffe://weft.local/ns/shop/sa/catalog", "127.0.0.1")
	pair, err := tls.X509KeyPair([]byte(upCert), []byte(upKey))
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "secure upstream %s %s", r.Proto, r.Header.Get("X-Forwarded-Proto"))
	}))
	up.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	up.StartTLS()
	defer up.Close()
	wrong := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer wrong.Close()

	lnCert, lnKey := ca.issue(t, "frontend.shop", "127.0.0.1")
	upstreamTLS := func(san string) string {
		return fmt.Sprintf(`    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        common_tls_context:
          validation_context:
            trusted_ca: {inline_string: %s}
            match_typed_subject_alt_names: [{san_type: URI, matcher: {exact: "%s"}}]
`, yamlBlock(ca.pem, 14), san)
	}
	doc := httpBootstrap(`              - match: {prefix: "/wrong"}
                route: {cluster: wrong}
              - match: {prefix: "/"}
                route: {cluster: secure}`,
		staticCluster("secure", upstreamTLS("spiffe://weft.local/ns/shop/sa/catalog"), up.Listener.Addr().String())+
			staticCluster("wrong", upstreamTLS("spiffe://weft.local/ns/shop/sa/catalog"), wrong.Listener.Addr().String()))
	doc = downstreamTLS(doc, lnCert, lnKey)
	_, addrs := startProxy(t, doc)

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, tc := range []struct {
		name, proto string
		h2          bool
	}{{"http/1.1", "HTTP/1.1", false}, {"h2", "HTTP/2.0", true}} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, Protocols: new(http.Protocols)}
			if tc.h2 {
				tr.Protocols.SetHTTP2(true)
			} else {
				tr.Protocols.SetHTTP1(true)
			}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			resp, err := c.Get("https://" + addrs["in"] + "/")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Proto != tc.proto {
				t.Errorf("client spoke %s, want %s", resp.Proto, tc.proto)
			}
			if resp.StatusCode != 200 || string(b) != "secure upstream HTTP/1.1 https" {
				t.Fatalf("got %d %q", resp.StatusCode, b)
			}
			// An upstream whose certificate lacks the SPIFFE ID is refused.
			resp, err = c.Get("https://" + addrs["in"] + "/wrong")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Weft-Reason") != reasonConnectFail {
				t.Fatalf("wrong upstream identity: %d %q", resp.StatusCode, resp.Header.Get("X-Weft-Reason"))
			}
		})
	}
}

// TestTLSHTTP2Codec: a TLS listener whose connection manager speaks only
// HTTP/2 terminates TLS (net/http accepts there) and serves h2.
func TestTLSHTTP2Codec(t *testing.T) {
	ca := newTestCA(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain upstream")
	}))
	defer backend.Close()
	lnCert, lnKey := ca.issue(t, "frontend.shop", "127.0.0.1")
	doc := httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: app}`, staticCluster("app", "", backend.Listener.Addr().String()))
	doc = strings.Replace(doc, "          stat_prefix: in\n", "          stat_prefix: in\n          codec_type: HTTP2\n", 1)
	doc = downstreamTLS(doc, lnCert, lnKey)
	if !strings.Contains(doc, "codec_type: HTTP2") {
		t.Fatal("the bootstrap fixture changed: no codec_type set")
	}
	_, addrs := startProxy(t, doc)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + addrs["in"] + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Proto != "HTTP/2.0" || resp.StatusCode != 200 || string(b) != "plain upstream" {
		t.Fatalf("got %s %d %q", resp.Proto, resp.StatusCode, b)
	}
}

// downstreamTLS gives the first filter chain of a bootstrap document a TLS
// transport socket serving cert and key (PEM).
func downstreamTLS(doc, cert, key string) string {
	return strings.Replace(doc, `    filter_chains:
    - filters:`, fmt.Sprintf(`    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificates:
            - certificate_chain: {inline_string: %s}
              private_key: {inline_string: %s}
      filters:`, yamlBlock(cert, 16), yamlBlock(key, 16)), 1)
}
