// Command certgen writes the static certificates of weft's mTLS benchmark
// (bench/mtls.sh), issued by weft's real certificate authority
// (control/ca): a CA is opened (or created) in <dir>/ca, and for every
// service account named by -sa an ECDSA P-256 key is generated, a CSR made
// and signed for spiffe://<td>/ns/<ns>/sa/<sa>. The files, all PEM:
//
//	root.pem          the trust bundle (CA.BundlePEM)
//	<sa>.pem          the leaf followed by the intermediate
//	<sa>-key.pem      the leaf's private key (PKCS#8, mode 0600)
//	<sa>-bundle.pem   leaf, intermediate and key in one file (HAProxy's crt)
//
// Usage:
//
//	certgen -dir bench/out/mtls/certs -ns bench -sa a,b
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/weft-mesh/weft/control/ca"
	"github.com/weft-mesh/weft/control/ca/spiffeid"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "certgen:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("certgen", flag.ContinueOnError)
	dir := fs.String("dir", "", "output folder (the CA's state goes to <dir>/ca)")
	td := fs.String("trust-domain", ca.DefaultTrustDomain, "SPIFFE trust domain")
	ns := fs.String("ns", "bench", "namespace of the identities")
	sas := fs.String("sa", "a,b", "comma-separated service accounts, one leaf each")
	ttl := fs.Duration("ttl", 0, "leaf lifetime (0: the CA's default, 24h)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	var names []string
	for s := range strings.SplitSeq(*sas, ",") {
		if s = strings.TrimSpace(s); s != "" {
			names = append(names, s)
		}
	}
	if len(names) == 0 {
		return errors.New("-sa: at least one service account is required")
	}
	ids, err := Generate(*dir, *td, *ns, names, *ttl)
	if err != nil {
		return err
	}
	for i, id := range ids {
		fmt.Fprintf(out, "%s %s\n", filepath.Join(*dir, names[i]+".pem"), id)
	}
	return nil
}

// Generate opens (or creates) the CA in dir/ca for trust domain td, writes
// root.pem and, for each service account in sas, the leaf files described
// in the package comment, and returns the leaves' IDs in the order of sas.
// ttl 0 is the CA's default leaf lifetime.
func Generate(dir, td, ns string, sas []string, ttl time.Duration) ([]spiffeid.ID, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	authority, err := ca.Open(filepath.Join(dir, "ca"), ca.Options{TrustDomain: td})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "root.pem"), authority.BundlePEM(), 0o644); err != nil {
		return nil, fmt.Errorf("root.pem: %w", err)
	}
	ids := make([]spiffeid.ID, 0, len(sas))
	for _, sa := range sas {
		id, err := spiffeid.New(td, ns, sa)
		if err != nil {
			return nil, fmt.Errorf("identity %q: %w", sa, err)
		}
		if err := issue(authority, dir, sa, id, ttl); err != nil {
			return nil, fmt.Errorf("leaf %s: %w", id, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// issue generates a key for id, has authority sign it and writes the
// leaf's three files named after sa.
func issue(authority *ca.CA, dir, sa string, id spiffeid.ID, ttl time.Duration) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	csr, err := ca.NewCSR(key, id)
	if err != nil {
		return err
	}
	chain, _, err := authority.Sign(csr, id, ttl)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	var certPEM []byte
	for _, der := range chain {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{sa + ".pem", certPEM, 0o644},
		{sa + "-key.pem", keyPEM, 0o600},
		{sa + "-bundle.pem", append(append([]byte{}, certPEM...), keyPEM...), 0o600},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// writeFile replaces path with data at mode, also when the file already
// exists with a wider mode.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", filepath.Base(path), err)
	}
	return nil
}
