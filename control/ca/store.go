package ca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Files of the state directory.
const (
	RootCertFile         = "root.pem"
	RootKeyFile          = "root-key.pem"
	IntermediateCertFile = "intermediate.pem"
	IntermediateKeyFile  = "intermediate-key.pem"
	// BundleStateFile holds the retired roots still trusted.
	BundleStateFile = "bundle.json"

	// journalDir holds a group of files being written; see commit.
	journalDir = "rotate"
	commitFile = "COMMIT"
)

// openManaged loads the generated CA of the directory, or generates it.
func (ca *CA) openManaged() (*authority, error) {
	if err := ca.prepareDir(); err != nil {
		return nil, err
	}
	present, missing := ca.inventory(RootCertFile, RootKeyFile, IntermediateCertFile, IntermediateKeyFile)
	if len(present) == 0 {
		if _, err := os.Stat(ca.path(BundleStateFile)); err == nil {
			return nil, fmt.Errorf("%s exists without %s: refusing to generate a new root over an existing trust bundle (restore the files or remove %s)", BundleStateFile, RootCertFile, BundleStateFile)
		}
		return ca.generate()
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("found %s but not %s: refusing to generate a new CA over a partial one (restore the missing files, or remove them all to start over)",
			strings.Join(present, ", "), strings.Join(missing, ", "))
	}
	root, err := loadOneCert(ca.path(RootCertFile))
	if err != nil {
		return nil, err
	}
	rootKey, err := loadKey(ca.path(RootKeyFile))
	if err != nil {
		return nil, err
	}
	if err := matchKey(root, rootKey, RootCertFile, RootKeyFile); err != nil {
		return nil, err
	}
	if err := ca.checkRoots([]*x509.Certificate{root}, RootCertFile); err != nil {
		return nil, err
	}
	retired, err := ca.loadBundleState()
	if err != nil {
		return nil, err
	}
	return ca.loadIntermediate(root, nil, retired)
}

// openOperatorRoot loads the operator's root and the directory's
// intermediate, generating the latter if missing.
func (ca *CA) openOperatorRoot() (*authority, error) {
	root, err := loadOneCert(ca.opts.RootCertFile)
	if err != nil {
		return nil, err
	}
	rootKey, err := loadKey(ca.opts.RootKeyFile)
	if err != nil {
		return nil, err
	}
	if err := matchKey(root, rootKey, ca.opts.RootCertFile, ca.opts.RootKeyFile); err != nil {
		return nil, err
	}
	if err := ca.checkRoots([]*x509.Certificate{root}, ca.opts.RootCertFile); err != nil {
		return nil, err
	}
	if err := ca.prepareDir(); err != nil {
		return nil, err
	}
	present, missing := ca.inventory(IntermediateCertFile, IntermediateKeyFile)
	switch {
	case len(present) == 0:
		inter, key, err := newIntermediate(ca.opts.Now(), ca.opts, root, rootKey)
		if err != nil {
			return nil, err
		}
		files, err := intermediateFiles(inter, key)
		if err != nil {
			return nil, err
		}
		if err := commit(ca.dir, files); err != nil {
			return nil, err
		}
		return newAuthority(root, nil, inter, key, [][]byte{inter.Raw}, nil), nil
	case len(missing) > 0:
		return nil, fmt.Errorf("found %s but not %s: restore it, or remove both to issue a new intermediate", present[0], missing[0])
	}
	return ca.loadIntermediate(root, nil, nil)
}

// openOperatorIntermediate loads the operator's intermediate and roots.
func (ca *CA) openOperatorIntermediate() (*authority, error) {
	roots, err := loadCerts(ca.opts.RootCertFile)
	if err != nil {
		return nil, err
	}
	if err := ca.checkRoots(roots, ca.opts.RootCertFile); err != nil {
		return nil, err
	}
	chain, err := loadCerts(ca.opts.IntermediateCertFile)
	if err != nil {
		return nil, err
	}
	key, err := loadKey(ca.opts.IntermediateKeyFile)
	if err != nil {
		return nil, err
	}
	if err := matchKey(chain[0], key, ca.opts.IntermediateCertFile, ca.opts.IntermediateKeyFile); err != nil {
		return nil, err
	}
	root, err := ca.verifyIntermediate(chain, roots, ca.opts.IntermediateCertFile, ca.opts.RootCertFile)
	if err != nil {
		return nil, err
	}
	others := slices.DeleteFunc(slices.Clone(roots), func(c *x509.Certificate) bool { return c.Equal(root) })
	der := make([][]byte, len(chain))
	for i, c := range chain {
		der[i] = c.Raw
	}
	return newAuthority(root, others, chain[0], key, der, nil), nil
}

// loadIntermediate loads the directory's intermediate and checks that it
// chains to root.
func (ca *CA) loadIntermediate(root *x509.Certificate, others []*x509.Certificate, retired []retiredRoot) (*authority, error) {
	rootName := RootCertFile
	if ca.opts.RootCertFile != "" {
		rootName = ca.opts.RootCertFile
	}
	inter, err := loadOneCert(ca.path(IntermediateCertFile))
	if err != nil {
		return nil, err
	}
	key, err := loadKey(ca.path(IntermediateKeyFile))
	if err != nil {
		return nil, err
	}
	if err := matchKey(inter, key, IntermediateCertFile, IntermediateKeyFile); err != nil {
		return nil, err
	}
	if _, err := ca.verifyIntermediate([]*x509.Certificate{inter}, []*x509.Certificate{root}, IntermediateCertFile, rootName); err != nil {
		if ca.opts.RootCertFile != "" {
			err = fmt.Errorf("%w (if the root was replaced on purpose, remove %s and %s to issue a new intermediate)", err, IntermediateCertFile, IntermediateKeyFile)
		}
		return nil, err
	}
	return newAuthority(root, others, inter, key, [][]byte{inter.Raw}, retired), nil
}

// verifyIntermediate checks that chain[0] is a CA certificate that chains
// (through chain[1:]) to one of roots now, and returns that root.
func (ca *CA) verifyIntermediate(chain, roots []*x509.Certificate, interName, rootName string) (*x509.Certificate, error) {
	inter := chain[0]
	if !inter.IsCA || (inter.KeyUsage != 0 && inter.KeyUsage&x509.KeyUsageCertSign == 0) {
		return nil, fmt.Errorf("%s: not a CA certificate (needs basic constraints CA:true and key usage cert sign)", interName)
	}
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   ca.opts.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}
	for _, r := range roots {
		opts.Roots.AddCert(r)
	}
	for _, c := range chain[1:] {
		opts.Intermediates.AddCert(c)
	}
	chains, err := inter.Verify(opts)
	if err != nil {
		return nil, fmt.Errorf("%s does not chain to %s: %w", interName, rootName, err)
	}
	c := chains[0]
	return c[len(c)-1], nil
}

// checkRoots refuses CA certificates that are not CAs, have expired, or
// name another trust domain.
func (ca *CA) checkRoots(roots []*x509.Certificate, name string) error {
	now := ca.opts.Now()
	for i, r := range roots {
		where := name
		if len(roots) > 1 {
			where = fmt.Sprintf("%s: certificate %d", name, i+1)
		}
		if !r.IsCA {
			return fmt.Errorf("%s: not a CA certificate", where)
		}
		if !now.Before(r.NotAfter) {
			return fmt.Errorf("%s: expired at %s", where, r.NotAfter.UTC().Format(time.RFC3339))
		}
		for _, u := range r.URIs {
			if u.Scheme == "spiffe" && u.Host != ca.opts.TrustDomain {
				return fmt.Errorf("%s: root of trust domain %q, configured trust domain is %q", where, u.Host, ca.opts.TrustDomain)
			}
		}
	}
	return nil
}

// generate creates a root and an intermediate and commits them with an
// empty bundle state.
func (ca *CA) generate() (*authority, error) {
	a, files, err := ca.newGeneration(nil)
	if err != nil {
		return nil, err
	}
	if err := commit(ca.dir, files); err != nil {
		return nil, err
	}
	return a, nil
}

// newGeneration creates a root and intermediate, and the files that store
// them with the given retired roots.
func (ca *CA) newGeneration(retired []retiredRoot) (*authority, []file, error) {
	now := ca.opts.Now()
	root, rootKey, err := newRoot(now, ca.opts)
	if err != nil {
		return nil, nil, err
	}
	inter, interKey, err := newIntermediate(now, ca.opts, root, rootKey)
	if err != nil {
		return nil, nil, err
	}
	rootKeyPEM, err := keyPEM(rootKey)
	if err != nil {
		return nil, nil, err
	}
	files, err := intermediateFiles(inter, interKey)
	if err != nil {
		return nil, nil, err
	}
	state, err := bundleStateJSON(retired)
	if err != nil {
		return nil, nil, err
	}
	files = append(files,
		file{RootCertFile, certPEM(root), 0o644},
		file{RootKeyFile, rootKeyPEM, 0o600},
		file{BundleStateFile, state, 0o644},
	)
	return newAuthority(root, nil, inter, interKey, [][]byte{inter.Raw}, retired), files, nil
}

// Rotate replaces the root and the intermediate by new ones. The old root
// stays in the bundle until Options.Overlap has passed (then Prune drops
// it), so that leaves it signed keep verifying; new leaves are signed by
// the new intermediate at once. The bundle must reach every proxy before
// the leaves of the new root do (see the package documentation). Refused
// when the root is operator-provided.
func (ca *CA) Rotate() error {
	if !ca.managed {
		return errors.New("rotate: the root is operator-provided: replace the files to rotate it")
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	old := ca.cur.Load()
	retired := append(slices.Clone(old.retired), retiredRoot{cert: old.root, removeAfter: ca.opts.Now().Add(ca.opts.Overlap)})
	a, files, err := ca.newGeneration(retired)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	if err := commit(ca.dir, files); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	ca.cur.Store(a)
	return nil
}

// Prune drops from the bundle the retired roots whose overlap has ended at
// now (or that have expired), and reports how many it dropped.
func (ca *CA) Prune(now time.Time) (int, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	old := ca.cur.Load()
	keep := slices.DeleteFunc(slices.Clone(old.retired), func(r retiredRoot) bool {
		return !now.Before(r.removeAfter) || !now.Before(r.cert.NotAfter)
	})
	dropped := len(old.retired) - len(keep)
	if dropped == 0 {
		return 0, nil
	}
	state, err := bundleStateJSON(keep)
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	if err := commit(ca.dir, []file{{BundleStateFile, state, 0o644}}); err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	others := old.bundle[1 : len(old.bundle)-len(old.retired)]
	ca.cur.Store(newAuthority(old.root, others, old.inter, old.interKey, old.chainDER, keep))
	return dropped, nil
}

// bundleState is the JSON of BundleStateFile.
type bundleState struct {
	RetiredRoots []retiredRootJSON `json:"retired_roots"`
}

type retiredRootJSON struct {
	// Certificate is the root, PEM.
	Certificate string `json:"certificate"`
	// RemoveAfter is when Prune drops it from the bundle.
	RemoveAfter time.Time `json:"remove_after"`
}

func bundleStateJSON(retired []retiredRoot) ([]byte, error) {
	s := bundleState{RetiredRoots: []retiredRootJSON{}}
	for _, r := range retired {
		s.RetiredRoots = append(s.RetiredRoots, retiredRootJSON{Certificate: string(certPEM(r.cert)), RemoveAfter: r.removeAfter.UTC()})
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", BundleStateFile, err)
	}
	return append(b, '\n'), nil
}

// loadBundleState reads the retired roots; a missing file means none.
func (ca *CA) loadBundleState() ([]retiredRoot, error) {
	b, err := os.ReadFile(ca.path(BundleStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s bundleState
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", ca.path(BundleStateFile), err)
	}
	var out []retiredRoot
	for i, r := range s.RetiredRoots {
		where := fmt.Sprintf("%s: retired_roots[%d]", ca.path(BundleStateFile), i)
		certs, err := parseCerts([]byte(r.Certificate), where+".certificate")
		if err != nil {
			return nil, err
		}
		if len(certs) != 1 {
			return nil, fmt.Errorf("%s.certificate: %d certificates, want 1", where, len(certs))
		}
		if r.RemoveAfter.IsZero() {
			return nil, fmt.Errorf("%s.remove_after: required", where)
		}
		out = append(out, retiredRoot{cert: certs[0], removeAfter: r.RemoveAfter})
	}
	return out, nil
}

// prepareDir creates the directory and finishes or discards a group of
// writes a crash interrupted.
func (ca *CA) prepareDir() error {
	if err := os.MkdirAll(ca.dir, 0o700); err != nil {
		return err
	}
	j := ca.path(journalDir)
	_, err := os.Stat(filepath.Join(j, commitFile))
	switch {
	case err == nil:
		if err := applyJournal(ca.dir); err != nil {
			return fmt.Errorf("finish interrupted write: %w", err)
		}
		return nil
	case errors.Is(err, os.ErrNotExist):
		return os.RemoveAll(j)
	}
	return err
}

// inventory splits names into the files of the directory that exist and
// those that do not.
func (ca *CA) inventory(names ...string) (present, missing []string) {
	for _, n := range names {
		if _, err := os.Stat(ca.path(n)); err == nil {
			present = append(present, n)
		} else {
			missing = append(missing, n)
		}
	}
	return present, missing
}

func (ca *CA) path(name string) string { return filepath.Join(ca.dir, name) }

// file is one file of a commit.
type file struct {
	name string
	data []byte
	perm os.FileMode
}

// commit writes files into dir as one group: all of them or none survive
// a crash. They are written into dir/rotate/, a COMMIT marker makes the
// group durable, then each is renamed into dir; the next Open finishes an
// interrupted group (marker present) or discards it (marker absent).
func commit(dir string, files []file) error {
	j := filepath.Join(dir, journalDir)
	if err := os.RemoveAll(j); err != nil {
		return err
	}
	if err := os.Mkdir(j, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeSynced(filepath.Join(j, f.name), f.data, f.perm); err != nil {
			return err
		}
	}
	if err := writeSynced(filepath.Join(j, commitFile), nil, 0o600); err != nil {
		return err
	}
	if err := syncDir(j); err != nil {
		return err
	}
	return applyJournal(dir)
}

// applyJournal moves the files of a committed group into dir and removes
// the journal. It is idempotent.
func applyJournal(dir string) error {
	j := filepath.Join(dir, journalDir)
	entries, err := os.ReadDir(j)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == commitFile {
			continue
		}
		if err := os.Rename(filepath.Join(j, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return os.RemoveAll(j)
}

func writeSynced(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func intermediateFiles(inter *x509.Certificate, key crypto.Signer) ([]file, error) {
	k, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	return []file{
		{IntermediateCertFile, certPEM(inter), 0o644},
		{IntermediateKeyFile, k, 0o600},
	}, nil
}

// loadCerts reads a PEM file of one or more certificates.
func loadCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCerts(b, path)
}

func loadOneCert(path string) (*x509.Certificate, error) {
	certs, err := loadCerts(path)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s: %d certificates, want 1", path, len(certs))
	}
	return certs[0], nil
}

func parseCerts(b []byte, where string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		block, rest := pem.Decode(b)
		if block == nil {
			if len(bytes.TrimSpace(b)) == 0 {
				break
			}
			if len(out) == 0 {
				return nil, fmt.Errorf("%s: not a PEM certificate", where)
			}
			return nil, fmt.Errorf("%s: data that is not PEM after certificate %d", where, len(out))
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %d is %q, want CERTIFICATE", where, len(out)+1, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", where, len(out)+1, err)
		}
		out = append(out, c)
		b = rest
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", where)
	}
	return out, nil
}

// loadKey reads a PEM private key (PKCS#8, SEC 1 or PKCS#1) that neither
// group nor others may access.
func loadKey(path string) (crypto.Signer, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %#o lets group or others access the private key; want 0600", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, rest := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM private key", path)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%s: data after the private key", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block is %q, want PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY (unencrypted)", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T cannot sign", path, key)
	}
	return s, nil
}

// matchKey checks that key is the private key of cert.
func matchKey(cert *x509.Certificate, key crypto.Signer, certName, keyName string) error {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return fmt.Errorf("%s is not the key of %s (public keys differ)", keyName, certName)
	}
	return nil
}
