// Package spiffeid parses and prints the SPIFFE IDs weft issues and checks:
// spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
//
// Parsing is strict and allocation-light: the scheme must be "spiffe" in
// lower case, the trust domain follows the SPIFFE rules (lower-case letters,
// digits, '.', '-', '_'; at most 255 bytes; no port, user info, query or
// fragment), the path is exactly /ns/<namespace>/sa/<service-account>, the
// namespace is a DNS-1123 label and the service account a DNS-1123
// subdomain (the Kubernetes rules, which weft's resource validation also
// applies). A string that parses prints back unchanged.
package spiffeid

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

const (
	// Prefix starts every SPIFFE ID.
	Prefix = "spiffe://"
	// MaxLength is the longest ID accepted, in bytes (SPIFFE: 2048).
	MaxLength = 2048
	// MaxTrustDomainLength is the longest trust domain, in bytes.
	MaxTrustDomainLength = 255
	maxLabel             = 63
	maxServiceAccount    = 253
)

// ID is a workload identity. The zero value is not a valid ID (IsZero
// reports it); every other value was validated by ParseID or New. IDs are
// comparable values, safe for concurrent use.
type ID struct {
	trustDomain    string
	namespace      string
	serviceAccount string
}

// New builds an ID from its parts, validating each as ParseID does.
func New(trustDomain, namespace, serviceAccount string) (ID, error) {
	if err := ValidateTrustDomain(trustDomain); err != nil {
		return ID{}, err
	}
	if err := validateNamespace(namespace); err != nil {
		return ID{}, err
	}
	if err := validateServiceAccount(serviceAccount); err != nil {
		return ID{}, err
	}
	// The parts' limits keep every ID far below MaxLength.
	return ID{trustDomain, namespace, serviceAccount}, nil
}

// ParseID parses s strictly; the error names the part that is wrong.
func ParseID(s string) (ID, error) {
	id, err := parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("spiffe id %q: %w", truncate(s), err)
	}
	return id, nil
}

func parse(s string) (ID, error) {
	if s == "" {
		return ID{}, errors.New("empty")
	}
	if len(s) > MaxLength {
		return ID{}, fmt.Errorf("%d bytes, max %d", len(s), MaxLength)
	}
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return ID{}, errors.New(`scheme: want "spiffe://"`)
	}
	td, path, _ := strings.Cut(rest, "/")
	if err := ValidateTrustDomain(td); err != nil {
		return ID{}, err
	}
	// path is what follows the trust domain's "/": ns/<ns>/sa/<sa>.
	const want = "want /ns/<namespace>/sa/<service-account>"
	if len(path) == 0 {
		return ID{}, errors.New("path: " + want)
	}
	ns, path, ok1 := strings.Cut(path, "/")
	nsName, path, ok2 := strings.Cut(path, "/")
	sa, saName, ok3 := strings.Cut(path, "/")
	if !ok1 || !ok2 || !ok3 || ns != "ns" || sa != "sa" {
		return ID{}, errors.New("path: " + want)
	}
	if err := validateNamespace(nsName); err != nil {
		return ID{}, err
	}
	if err := validateServiceAccount(saName); err != nil {
		return ID{}, err
	}
	return ID{td, nsName, saName}, nil
}

// ValidateTrustDomain checks a trust domain name against the SPIFFE rules.
func ValidateTrustDomain(td string) error {
	if td == "" {
		return errors.New("trust domain: empty")
	}
	if len(td) > MaxTrustDomainLength {
		return fmt.Errorf("trust domain: %d bytes, max %d", len(td), MaxTrustDomainLength)
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if isLowerAlnum(c) || c == '.' || c == '-' || c == '_' {
			continue
		}
		return fmt.Errorf("trust domain %q: character %q at %d not allowed (a-z, 0-9, '.', '-', '_')", truncate(td), td[i:i+1], i)
	}
	return nil
}

// validateNamespace checks a DNS-1123 label.
func validateNamespace(ns string) error {
	if ns == "" {
		return errors.New("namespace: empty")
	}
	if len(ns) > maxLabel {
		return fmt.Errorf("namespace: %d bytes, max %d", len(ns), maxLabel)
	}
	if err := dnsLabels(ns, false); err != nil {
		return fmt.Errorf("namespace %q: %w", truncate(ns), err)
	}
	return nil
}

// validateServiceAccount checks a DNS-1123 subdomain.
func validateServiceAccount(sa string) error {
	if sa == "" {
		return errors.New("service account: empty")
	}
	if len(sa) > maxServiceAccount {
		return fmt.Errorf("service account: %d bytes, max %d", len(sa), maxServiceAccount)
	}
	if err := dnsLabels(sa, true); err != nil {
		return fmt.Errorf("service account %q: %w", truncate(sa), err)
	}
	return nil
}

// dnsLabels checks one DNS-1123 label (dots false) or dot-separated labels:
// lower-case alphanumerics and '-', each label 1 to 63 bytes, starting and
// ending with an alphanumeric.
func dnsLabels(s string, dots bool) error {
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if !isLowerAlnum(c) && c != '-' {
				allowed := "a-z, 0-9, '-'"
				if dots {
					allowed = "a-z, 0-9, '-', '.'"
				}
				return fmt.Errorf("character %q at %d not allowed (%s)", s[i:i+1], i, allowed)
			}
			continue
		}
		if i < len(s) && !dots {
			return fmt.Errorf("character \".\" at %d not allowed (a-z, 0-9, '-')", i)
		}
		label := s[start:i]
		switch {
		case label == "":
			return fmt.Errorf("empty label at %d", start)
		case len(label) > maxLabel:
			return fmt.Errorf("label at %d: %d bytes, max %d", start, len(label), maxLabel)
		case label[0] == '-' || label[len(label)-1] == '-':
			if !dots {
				return errors.New("must start and end with a-z or 0-9")
			}
			return fmt.Errorf("label %q: must start and end with a-z or 0-9", truncate(label))
		}
		start = i + 1
	}
	return nil
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// truncate keeps error messages short for hostile input.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// TrustDomain returns the trust domain, e.g. "cluster.local".
func (id ID) TrustDomain() string { return id.trustDomain }

// Namespace returns the namespace.
func (id ID) Namespace() string { return id.namespace }

// ServiceAccount returns the service account.
func (id ID) ServiceAccount() string { return id.serviceAccount }

// IsZero reports whether id is the zero value (no identity).
func (id ID) IsZero() bool { return id == ID{} }

// String returns the ID in its canonical form; "" for the zero value.
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	return Prefix + id.trustDomain + "/ns/" + id.namespace + "/sa/" + id.serviceAccount
}

// URL returns the ID as the URI subject alternative name of an X.509 SVID.
func (id ID) URL() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.trustDomain, Path: "/ns/" + id.namespace + "/sa/" + id.serviceAccount}
}

// FromCertificate returns the identity of an X.509 SVID: the certificate
// must carry exactly one URI subject alternative name, a valid SPIFFE ID.
// It does not verify the certificate's chain; callers do that first.
func FromCertificate(c *x509.Certificate) (ID, error) {
	switch len(c.URIs) {
	case 0:
		return ID{}, errors.New("certificate: no URI subject alternative name")
	case 1:
	default:
		return ID{}, fmt.Errorf("certificate: %d URI subject alternative names, an SVID has exactly one", len(c.URIs))
	}
	id, err := ParseID(c.URIs[0].String())
	if err != nil {
		return ID{}, fmt.Errorf("certificate: %w", err)
	}
	return id, nil
}
