package ca

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/control/ca/spiffeid"
)

// svid issues a TLS certificate for id from ca; the key never leaves this
// function's caller, as on a proxy.
func svid(t *testing.T, ca *CA, id string) tls.Certificate {
	t.Helper()
	key := p256(t)
	chain, _, err := ca.Sign(csrFor(t, key), mustID(t, id), 0)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: chain, PrivateKey: key}
}

// verifyPeer checks the peer's chain against pool for usage and returns
// its SPIFFE ID, as the proxy's SAN check does (no host name: SVIDs carry
// only a URI).
func verifyPeer(cs tls.ConnectionState, pool *x509.CertPool, usage x509.ExtKeyUsage) (spiffeid.ID, error) {
	if len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, errors.New("no peer certificate")
	}
	opts := x509.VerifyOptions{Roots: pool, Intermediates: x509.NewCertPool(), KeyUsages: []x509.ExtKeyUsage{usage}}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return spiffeid.ID{}, err
	}
	return spiffeid.FromCertificate(cs.PeerCertificates[0])
}

// serveOnce accepts one connection on a loopback listener, completes the
// mTLS handshake, writes the client's SPIFFE ID to it and reports the
// handshake's outcome.
func serveOnce(t *testing.T, cfg *tls.Config) (addr string, result <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer ln.Close()
		raw, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		conn := tls.Server(raw, cfg)
		defer conn.Close()
		if err := conn.Handshake(); err != nil {
			done <- err
			return
		}
		id, err := spiffeid.FromCertificate(conn.ConnectionState().PeerCertificates[0])
		if err != nil {
			done <- err
			return
		}
		_, err = fmt.Fprint(conn, id.String())
		done <- err
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), done
}

func TestMutualTLS(t *testing.T) {
	ca := open(t, t.TempDir(), Options{})
	serverID := "spiffe://cluster.local/ns/shop/sa/checkout"
	clientID := "spiffe://cluster.local/ns/shop/sa/frontend"
	serverCfg := &tls.Config{
		Certificates: []tls.Certificate{svid(t, ca, serverID)},
		ClientCAs:    ca.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
	clientCfg := func(cert *tls.Certificate, pool *x509.CertPool) *tls.Config {
		cfg := &tls.Config{
			RootCAs:    pool,
			MinVersion: tls.VersionTLS13,
			// The server is identified by its SPIFFE ID, not a host name.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				id, err := verifyPeer(cs, pool, x509.ExtKeyUsageServerAuth)
				if err != nil {
					return err
				}
				if id.String() != serverID {
					return fmt.Errorf("server is %s, want %s", id, serverID)
				}
				return nil
			},
		}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return cfg
	}

	t.Run("both sides verified", func(t *testing.T) {
		addr, result := serveOnce(t, serverCfg)
		cert := svid(t, ca, clientID)
		conn, err := tls.Dial("tcp", addr, clientCfg(&cert, ca.Pool()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		got, err := io.ReadAll(conn)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-result; err != nil {
			t.Fatalf("server: %v", err)
		}
		if string(got) != clientID {
			t.Fatalf("server saw client %q, want %q", got, clientID)
		}
	})

	t.Run("client without certificate", func(t *testing.T) {
		addr, result := serveOnce(t, serverCfg)
		conn, err := tls.Dial("tcp", addr, clientCfg(nil, ca.Pool()))
		if err == nil {
			io.ReadAll(conn) // TLS 1.3: the client learns of the refusal on read
			conn.Close()
		}
		if err := <-result; err == nil || !strings.Contains(err.Error(), "client didn't provide a certificate") {
			t.Fatalf("server handshake error = %v", err)
		}
	})

	t.Run("client of another CA", func(t *testing.T) {
		other := open(t, t.TempDir(), Options{})
		addr, result := serveOnce(t, serverCfg)
		cert := svid(t, other, clientID)
		conn, err := tls.Dial("tcp", addr, clientCfg(&cert, ca.Pool()))
		if err == nil {
			io.ReadAll(conn)
			conn.Close()
		}
		if err := <-result; err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Fatalf("server handshake error = %v", err)
		}
	})

	t.Run("server of another CA", func(t *testing.T) {
		other := open(t, t.TempDir(), Options{})
		cfg := serverCfg.Clone()
		cfg.Certificates = []tls.Certificate{svid(t, other, serverID)}
		addr, result := serveOnce(t, cfg)
		cert := svid(t, ca, clientID)
		_, err := tls.Dial("tcp", addr, clientCfg(&cert, ca.Pool()))
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Fatalf("client handshake error = %v", err)
		}
		<-result
	})
}

func FuzzSign(f *testing.F) {
	ca := open(f, f.TempDir(), Options{})
	f.Add(csrFor(f, p256(f)))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Add([]byte("garbage"))
	id := mustID(f, "spiffe://cluster.local/ns/shop/sa/checkout")
	f.Fuzz(func(t *testing.T, csr []byte) {
		chain, _, err := ca.Sign(csr, id, 0)
		if err != nil {
			return
		}
		leaf, err := x509.ParseCertificate(chain[0])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := spiffeid.FromCertificate(leaf); err != nil || got != id {
			t.Fatalf("leaf identity %v, %v; want %s", got, err, id)
		}
	})
}
