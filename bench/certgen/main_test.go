package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func rootPool(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(readFile(t, filepath.Join(dir, "root.pem"))) {
		t.Fatal("root.pem: no certificate")
	}
	return pool
}

func TestGenerateWritesVerifiableLeaves(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := run([]string{"-dir", dir, "-sa", "a, b"}, &out); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), filepath.Join(dir, "a.pem")+" spiffe://cluster.local/ns/bench/sa/a\n"+
		filepath.Join(dir, "b.pem")+" spiffe://cluster.local/ns/bench/sa/b\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	roots := rootPool(t, dir)
	for _, sa := range []string{"a", "b"} {
		t.Run(sa, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(filepath.Join(dir, sa+".pem"), filepath.Join(dir, sa+"-key.pem"))
			if err != nil {
				t.Fatalf("cert and key: %v", err)
			}
			bundle := readFile(t, filepath.Join(dir, sa+"-bundle.pem"))
			if _, err := tls.X509KeyPair(bundle, bundle); err != nil {
				t.Fatalf("bundle: %v", err)
			}
			if len(pair.Certificate) != 2 {
				t.Fatalf("chain has %d certificates, want leaf and intermediate", len(pair.Certificate))
			}
			leaf, err := x509.ParseCertificate(pair.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			inter, err := x509.ParseCertificate(pair.Certificate[1])
			if err != nil {
				t.Fatal(err)
			}
			if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
				t.Errorf("leaf key %T, want ECDSA P-256", leaf.PublicKey)
			}
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cluster.local/ns/bench/sa/"+sa {
				t.Errorf("leaf URIs = %v", leaf.URIs)
			}
			inters := x509.NewCertPool()
			inters.AddCert(inter)
			for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("verify for usage %v: %v", usage, err)
				}
			}
			for _, f := range []string{sa + "-key.pem", sa + "-bundle.pem"} {
				st, err := os.Stat(filepath.Join(dir, f))
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
				}
			}
		})
	}
}

func TestGenerateKeepsTheCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(dir, "cluster.local", "bench", []string{"a"}, 0); err != nil {
		t.Fatal(err)
	}
	root := readFile(t, filepath.Join(dir, "root.pem"))
	leaf := readFile(t, filepath.Join(dir, "a.pem"))
	if _, err := Generate(dir, "cluster.local", "bench", []string{"a"}, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, readFile(t, filepath.Join(dir, "root.pem"))) {
		t.Error("second run changed root.pem; want the CA reopened")
	}
	if bytes.Equal(leaf, readFile(t, filepath.Join(dir, "a.pem"))) {
		t.Error("second run kept a.pem; want a new leaf")
	}
}

// TestLeavesCompleteMutualTLS runs a real loopback handshake in which "b"
// serves, "a" is the client, each side requiring and verifying the other's
// chain against root.pem.
func TestLeavesCompleteMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if _, err := Generate(dir, "cluster.local", "bench", []string{"a", "b"}, 0); err != nil {
		t.Fatal(err)
	}
	roots := rootPool(t, dir)
	load := func(sa string) tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, sa+".pem"), filepath.Join(dir, sa+"-key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{load("b")},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			peer <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			peer <- "handshake: " + err.Error()
			return
		}
		peer <- tc.ConnectionState().PeerCertificates[0].URIs[0].String()
		io.Copy(io.Discard, c)
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{
		Certificates:       []tls.Certificate{load("a")},
		RootCAs:            roots,
		InsecureSkipVerify: true, // the leaf has a URI SAN only; verified below
		VerifyConnection: func(cs tls.ConnectionState) error {
			inters := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inters.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters})
			return err
		},
	})
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	defer c.Close()
	if got := c.ConnectionState().PeerCertificates[0].URIs[0].String(); got != "spiffe://cluster.local/ns/bench/sa/b" {
		t.Errorf("server identity %q", got)
	}
	if got := <-peer; got != "spiffe://cluster.local/ns/bench/sa/a" {
		t.Errorf("client identity seen by the server: %q", got)
	}
}

func TestRunErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no dir", []string{"-sa", "a"}, "-dir is required"},
		{"no service account", []string{"-sa", " , "}, "-sa: at least one service account is required"},
		{"invalid service account", []string{"-sa", "Not_Valid"}, `identity "Not_Valid"`},
		{"invalid trust domain", []string{"-trust-domain", "Bad Domain"}, "options:"},
		{"ttl over the CA maximum", []string{"-ttl", "48h"}, "exceeds the maximum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.name != "no dir" {
				args = append([]string{"-dir", t.TempDir()}, args...)
			}
			err := run(args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%v) error = %v, want containing %q", args, err, tt.want)
			}
		})
	}
}

func TestGenerateUnwritableFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(filepath.Join(file, "sub"), "cluster.local", "bench", []string{"a"}, 0)
	if err == nil || !strings.Contains(err.Error(), "output folder: mkdir") || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("error = %v, want an output folder error saying \"not a directory\"", err)
	}
}
