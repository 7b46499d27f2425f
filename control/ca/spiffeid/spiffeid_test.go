package spiffeid

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name    string
		in      string
		want    ID
		wantErr string
	}{
		{name: "simple", in: "spiffe://cluster.local/ns/shop/sa/checkout", want: ID{"cluster.local", "shop", "checkout"}},
		{name: "trust domain charset", in: "spiffe://a_b-c.9/ns/n-1/sa/s.a-2", want: ID{"a_b-c.9", "n-1", "s.a-2"}},
		{name: "max trust domain", in: "spiffe://" + long(255) + "/ns/a/sa/b", want: ID{long(255), "a", "b"}},
		{name: "max namespace", in: "spiffe://td/ns/" + long(63) + "/sa/b", want: ID{"td", long(63), "b"}},

		{name: "empty", in: "", wantErr: `spiffe id "": empty`},
		{name: "http scheme", in: "http://td/ns/a/sa/b", wantErr: `spiffe id "http://td/ns/a/sa/b": scheme: want "spiffe://"`},
		{name: "upper-case scheme", in: "SPIFFE://td/ns/a/sa/b", wantErr: `spiffe id "SPIFFE://td/ns/a/sa/b": scheme: want "spiffe://"`},
		{name: "no authority", in: "spiffe:td/ns/a/sa/b", wantErr: `spiffe id "spiffe:td/ns/a/sa/b": scheme: want "spiffe://"`},
		{name: "empty trust domain", in: "spiffe:///ns/a/sa/b", wantErr: `spiffe id "spiffe:///ns/a/sa/b": trust domain: empty`},
		{name: "upper-case trust domain", in: "spiffe://Cluster.local/ns/a/sa/b", wantErr: `spiffe id "spiffe://Cluster.local/ns/a/sa/b": trust domain "Cluster.local": character "C" at 0 not allowed (a-z, 0-9, '.', '-', '_')`},
		{name: "port", in: "spiffe://td:8080/ns/a/sa/b", wantErr: `trust domain "td:8080": character ":" at 2 not allowed`},
		{name: "user info", in: "spiffe://u@td/ns/a/sa/b", wantErr: `trust domain "u@td": character "@" at 1 not allowed`},
		{name: "trust domain too long", in: "spiffe://" + long(256) + "/ns/a/sa/b", wantErr: `trust domain: 256 bytes, max 255`},
		{name: "query", in: "spiffe://td?x=1", wantErr: `trust domain "td?x=1": character "?" at 2 not allowed`},
		{name: "no path", in: "spiffe://td", wantErr: `spiffe id "spiffe://td": path: want /ns/<namespace>/sa/<service-account>`},
		{name: "root path", in: "spiffe://td/", wantErr: `path: want /ns/<namespace>/sa/<service-account>`},
		{name: "other path", in: "spiffe://td/workload/a", wantErr: `path: want /ns/<namespace>/sa/<service-account>`},
		{name: "swapped keys", in: "spiffe://td/sa/a/ns/b", wantErr: `path: want /ns/<namespace>/sa/<service-account>`},
		{name: "missing sa", in: "spiffe://td/ns/a/sa", wantErr: `path: want /ns/<namespace>/sa/<service-account>`},
		{name: "empty namespace", in: "spiffe://td/ns//sa/b", wantErr: `spiffe id "spiffe://td/ns//sa/b": namespace: empty`},
		{name: "dot namespace", in: "spiffe://td/ns/../sa/b", wantErr: `namespace "..": character "." at 0 not allowed (a-z, 0-9, '-')`},
		{name: "upper-case namespace", in: "spiffe://td/ns/Shop/sa/b", wantErr: `namespace "Shop": character "S" at 0 not allowed (a-z, 0-9, '-')`},
		{name: "namespace leading dash", in: "spiffe://td/ns/-a/sa/b", wantErr: `spiffe id "spiffe://td/ns/-a/sa/b": namespace "-a": must start and end with a-z or 0-9`},
		{name: "namespace too long", in: "spiffe://td/ns/" + long(64) + "/sa/b", wantErr: `namespace: 64 bytes, max 63`},
		{name: "empty service account", in: "spiffe://td/ns/a/sa/", wantErr: `service account: empty`},
		{name: "trailing slash", in: "spiffe://td/ns/a/sa/b/", wantErr: `service account "b/": character "/" at 1 not allowed (a-z, 0-9, '-', '.')`},
		{name: "extra segment", in: "spiffe://td/ns/a/sa/b/c", wantErr: `service account "b/c": character "/" at 1 not allowed`},
		{name: "percent encoding", in: "spiffe://td/ns/a/sa/b%41", wantErr: `service account "b%41": character "%" at 1 not allowed`},
		{name: "service account empty label", in: "spiffe://td/ns/a/sa/b..c", wantErr: `service account "b..c": empty label at 2`},
		{name: "fragment", in: "spiffe://td/ns/a/sa/b#f", wantErr: `service account "b#f": character "#" at 1 not allowed`},
		{name: "too long", in: "spiffe://td/ns/a/sa/" + long(2100), wantErr: `: 2120 bytes, max 2048`},
		{name: "service account label too long", in: "spiffe://td/ns/a/sa/b." + long(64), wantErr: `service account "b.` + long(64) + `": label at 2: 64 bytes, max 63`},
		{name: "service account label trailing dash", in: "spiffe://td/ns/a/sa/b.c-", wantErr: `service account "b.c-": label "c-": must start and end with a-z or 0-9`},
		{name: "namespace with dot", in: "spiffe://td/ns/a.b/sa/c", wantErr: `namespace "a.b": character "." at 1 not allowed (a-z, 0-9, '-')`},
		{name: "service account too long", in: "spiffe://td/ns/a/sa/" + long(254), wantErr: `service account: 254 bytes, max 253`},
		{name: "non-utf8", in: "spiffe://td/ns/a/sa/\xff", wantErr: `spiffe id "spiffe://td/ns/a/sa/\xff": service account "\xff": character "\xff" at 0 not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseID(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseID(%q) = %v, want error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseID(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if !got.IsZero() {
					t.Fatalf("ParseID(%q) returned %#v with an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseID(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseID(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q, want %q", got.String(), tt.in)
			}
			if u := got.URL().String(); u != tt.in {
				t.Fatalf("URL().String() = %q, want %q", u, tt.in)
			}
		})
	}
}

func TestNew(t *testing.T) {
	id, err := New("cluster.local", "shop", "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if id.TrustDomain() != "cluster.local" || id.Namespace() != "shop" || id.ServiceAccount() != "checkout" {
		t.Fatalf("accessors: %#v", id)
	}
	for _, tt := range []struct{ name, td, ns, sa, wantErr string }{
		{"bad trust domain", "TD", "a", "b", `trust domain "TD": character "T" at 0 not allowed`},
		{"bad namespace", "td", "a/b", "b", `namespace "a/b": character "/" at 1 not allowed`},
		{"bad service account", "td", "a", "", `service account: empty`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.td, tt.ns, tt.sa)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New(%q, %q, %q) error = %v, want %q", tt.td, tt.ns, tt.sa, err, tt.wantErr)
			}
		})
	}
	var zero ID
	if !zero.IsZero() || zero.String() != "" {
		t.Fatalf("zero ID: IsZero %v, String %q", zero.IsZero(), zero.String())
	}
}

func TestFromCertificate(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		uris    []*url.URL
		want    string
		wantErr string
	}{
		{name: "one", uris: []*url.URL{u("spiffe://td/ns/a/sa/b")}, want: "spiffe://td/ns/a/sa/b"},
		{name: "none", wantErr: "certificate: no URI subject alternative name"},
		{name: "two", uris: []*url.URL{u("spiffe://td/ns/a/sa/b"), u("spiffe://td/ns/a/sa/c")}, wantErr: "certificate: 2 URI subject alternative names, an SVID has exactly one"},
		{name: "not spiffe", uris: []*url.URL{u("https://td/ns/a/sa/b")}, wantErr: `certificate: spiffe id "https://td/ns/a/sa/b": scheme: want "spiffe://"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := FromCertificate(&x509.Certificate{URIs: tt.uris})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || id.String() != tt.want {
				t.Fatalf("FromCertificate = %v, %v; want %s", id, err, tt.want)
			}
		})
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"spiffe://cluster.local/ns/shop/sa/checkout",
		"spiffe://td/ns/a/sa/b.c-d",
		"spiffe://td/ns/a/sa/b/",
		"spiffe://td:1/ns/a/sa/b",
		"spiffe:///ns/a/sa/b",
		"SPIFFE://td/ns/a/sa/b",
		"spiffe://td/ns//sa/b",
		"spiffe://td/ns/a/sa/b%2F",
		"spiffe://td/ns/../sa/b",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !id.IsZero() {
				t.Fatalf("ParseID(%q) returned %#v with error %v", s, id, err)
			}
			return
		}
		// A parsed ID prints back unchanged, through String and URL, and
		// reparses to itself; New agrees with ParseID.
		if id.String() != s {
			t.Fatalf("ParseID(%q).String() = %q", s, id.String())
		}
		if u := id.URL().String(); u != s {
			t.Fatalf("ParseID(%q).URL() = %q", s, u)
		}
		again, err := New(id.TrustDomain(), id.Namespace(), id.ServiceAccount())
		if err != nil || again != id {
			t.Fatalf("New(parts of %q) = %v, %v", s, again, err)
		}
	})
}

func BenchmarkParseID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseID("spiffe://cluster.local/ns/shop/sa/checkout"); err != nil {
			b.Fatal(err)
		}
	}
}
