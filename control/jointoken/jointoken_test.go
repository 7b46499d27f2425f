package jointoken

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testIssuer(t *testing.T, now *time.Time) *Issuer {
	t.Helper()
	i, err := New([]byte(strings.Repeat("k", 32)), func() time.Time { return *now })
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	iss := testIssuer(t, &now)
	tok, err := iss.Issue("shop", "frontend", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !IsToken(tok) {
		t.Fatalf("IsToken(%q) = false", tok)
	}
	c, err := iss.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "shop" || c.ServiceAccount != "frontend" || c.Expires != now.Add(time.Hour).Unix() {
		t.Fatalf("claims = %+v", c)
	}
	now = now.Add(time.Hour)
	if _, err := iss.Verify(tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: err = %v", err)
	}
	forever, err := iss.Issue("shop", "cart", 0)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * 365 * 24 * time.Hour)
	if _, err := iss.Verify(forever); err != nil {
		t.Fatalf("token without expiry: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	iss := testIssuer(t, &now)
	other, _ := New([]byte(strings.Repeat("x", 32)), nil)
	good, _ := iss.Issue("shop", "frontend", 0)
	foreign, _ := other.Issue("shop", "frontend", 0)
	p, sig, _ := strings.Cut(strings.TrimPrefix(good, prefix), ".")
	// The same signature on a payload that claims another identity.
	evil := prefix + strings.Replace(p, p[:4], "AAAA", 1) + "." + sig
	for _, tc := range []struct{ name, tok, want string }{
		{"empty", "", "not a weft1 token"},
		{"other scheme", "abcdef", "not a weft1 token"},
		{"no signature", prefix + p, "malformed"},
		{"foreign key", foreign, "bad signature"},
		{"tampered payload", evil, "bad signature"},
		{"bad base64 signature", prefix + p + ".!!", "malformed signature"},
		{"too long", prefix + strings.Repeat("a", MaxTokenSize), "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := iss.Verify(tc.tok); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := iss.Issue("", "sa", 0); err == nil {
		t.Fatal("issued a token without namespace")
	}
}

func TestOpenKeepsKey(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v, %v", st.Mode(), err)
	}
	tok, _ := a.Issue("ns", "sa", 0)
	b, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(tok); err != nil {
		t.Fatalf("token from before a restart: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: err = %v", err)
	}
}

func FuzzVerify(f *testing.F) {
	iss, _ := New([]byte(strings.Repeat("k", 32)), nil)
	good, _ := iss.Issue("shop", "frontend", time.Hour)
	for _, s := range []string{good, "", prefix, prefix + ".", prefix + "e30.AAAA", "weft1.eyJucyI6MX0.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := iss.Verify(s)
		if err == nil && (c.Namespace == "" || c.ServiceAccount == "") {
			t.Fatalf("accepted %q without identity", s)
		}
	})
}
