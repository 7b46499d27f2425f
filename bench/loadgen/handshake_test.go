package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testPKI is a root CA and leaves it signed, written as PEM files.
type testPKI struct {
	dir  string
	root *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: t.TempDir(), root: root, key: key}
	p.write(t, "root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return p
}

func (p *testPKI) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// leaf issues a certificate for a SPIFFE URI (no DNS name, as in the mesh)
// and returns it with the paths of its cert and key files.
func (p *testPKI) leaf(t *testing.T, name, uri string) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		URIs:         []*url.URL{u},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.root, key.Public(), p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, p.write(t, name+".pem", certPEM), p.write(t, name+"-key.pem", keyPEM)
}

// mtlsServer starts a loopback HTTPS server that requires a client
// certificate from pki and answers 1 KB, counting answers per client URI.
func mtlsServer(t *testing.T, pki *testPKI) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	cert, _, _ := pki.leaf(t, "server", "spiffe://cluster.local/ns/bench/sa/b")
	pool := x509.NewCertPool()
	pool.AddCert(pki.root)
	var fromA atomic.Int64
	body := []byte(strings.Repeat("x", 1024))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && r.TLS.PeerCertificates[0].URIs[0].String() == "spiffe://cluster.local/ns/bench/sa/a" {
			fromA.Add(1)
		}
		w.Write(body)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &fromA
}

func TestHandshakeMode(t *testing.T) {
	pki := newTestPKI(t)
	srv, fromA := mtlsServer(t, pki)
	_, cert, key := pki.leaf(t, "a", "spiffe://cluster.local/ns/bench/sa/a")
	ca := filepath.Join(pki.dir, "root.pem")
	tests := []struct {
		name  string
		extra []string
		want  []string // fields of the output line
	}{
		{"full handshakes", nil, []string{"requests=20", "errors=0", "resumed=0", "tls=TLS1.3"}},
		// One worker: each connection has read the previous one's ticket.
		{"resumed", []string{"-resume"}, []string{"requests=20", "errors=0", "resumed=19", "tls=TLS1.3"}},
		{"x25519 only", []string{"-curves", "X25519"}, []string{"requests=20", "errors=0", "resumed=0", "group=X25519"}},
		{"tls 1.3 default groups", nil, []string{"group=X25519MLKEM768"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fromA.Load()
			args := append([]string{"-mode", "handshake", "-target", srv.URL + "/", "-cert", cert, "-key", key, "-ca", ca,
				"-rate", "2000", "-n", "20", "-warmup", "0", "-c", "1"}, tt.extra...)
			var out strings.Builder
			if err := run(args, &out); err != nil {
				t.Fatalf("run: %v", err)
			}
			fields := strings.Fields(out.String())
			for _, w := range tt.want {
				if !contains(fields, w) {
					t.Errorf("output %q lacks %q", out.String(), w)
				}
			}
			if last := fields[len(fields)-1]; !strings.HasPrefix(last, "cipher=TLS_") || strings.Contains(last, "mixed") {
				t.Errorf("output %q: last field %q, want one TLS 1.3 cipher suite", out.String(), last)
			}
			if got := fromA.Load() - before; got != 20 {
				t.Errorf("server answered %d requests presenting identity a, want 20", got)
			}
		})
	}
}

func contains(fields []string, f string) bool {
	for _, x := range fields {
		if x == f {
			return true
		}
	}
	return false
}

func TestHandshakeModeFailures(t *testing.T) {
	pki := newTestPKI(t)
	srv, _ := mtlsServer(t, pki)
	_, cert, key := pki.leaf(t, "a", "spiffe://cluster.local/ns/bench/sa/a")
	other := newTestPKI(t)
	_, otherCert, otherKey := other.leaf(t, "a", "spiffe://cluster.local/ns/bench/sa/a")
	ca := filepath.Join(pki.dir, "root.pem")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"server not trusted", []string{"-cert", cert, "-key", key, "-ca", filepath.Join(other.dir, "root.pem")}, "every request failed"},
		{"client not trusted", []string{"-cert", otherCert, "-key", otherKey, "-ca", ca}, "every request failed"},
		{"no client certificate", []string{"-ca", ca}, "every request failed"},
		{"no ca", []string{"-cert", cert, "-key", key}, "-mode handshake: -ca is required"},
		{"cert without key", []string{"-cert", cert, "-ca", ca}, "-cert and -key go together"},
		{"missing ca file", []string{"-ca", filepath.Join(pki.dir, "nope.pem")}, "-ca: open"},
		{"ca file without PEM", []string{"-ca", key}, "no PEM certificate found"},
		{"unknown group", []string{"-ca", ca, "-curves", "x25519,x448"}, `-curves: unknown group "x448"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-mode", "handshake", "-target", srv.URL + "/", "-rate", "1000", "-n", "3", "-warmup", "0", "-c", "1", "-timeout", "5s"}, tt.args...)
			err := run(args, &strings.Builder{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run error = %v, want containing %q", err, tt.want)
			}
		})
	}
	t.Run("plain http target", func(t *testing.T) {
		err := run([]string{"-mode", "handshake", "-target", "http://127.0.0.1:1/", "-ca", ca}, &strings.Builder{})
		if want := `-target "http://127.0.0.1:1/": want https://host:port/path`; err == nil || err.Error() != want {
			t.Errorf("error = %v, want %q", err, want)
		}
	})
}

func TestParseCurves(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []tls.CurveID
	}{
		{"empty is Go's default", "", nil},
		{"one", "X25519", []tls.CurveID{tls.X25519}},
		{"several, dashes and spaces", "P-256, x25519mlkem768", []tls.CurveID{tls.CurveP256, tls.X25519MLKEM768}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCurves(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("parseCurves(%q) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("parseCurves(%q)[%d] = %v, want %v", tt.in, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func FuzzParseCurves(f *testing.F) {
	for _, s := range []string{"", "x25519", "P-256,P-384", "x25519, ,p256", "X25519MLKEM768", "-", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := parseCurves(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "-curves: unknown group") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if strings.TrimSpace(s) == "" {
			if ids != nil {
				t.Fatalf("parseCurves(%q) = %v, want nil", s, ids)
			}
			return
		}
		if want := strings.Count(s, ",") + 1; len(ids) != want {
			t.Fatalf("parseCurves(%q) gave %d groups for %d names", s, len(ids), want)
		}
		for _, id := range ids {
			if !contains([]string{"X25519", "X25519MLKEM768", "CurveP256", "CurveP384", "CurveP521"}, id.String()) {
				t.Fatalf("parseCurves(%q) gave %v", s, id)
			}
		}
	})
}
