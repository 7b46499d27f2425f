package identity

import (
	"context"
	"crypto/ecdsa"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/ca"
	"github.com/weft-mesh/weft/control/ca/spiffeid"
	"github.com/weft-mesh/weft/control/jointoken"
	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/cluster/fakeclock"
)

// controlPlane runs the real xDS server with its certificate service on
// loopback and returns its address and a token issuer.
func controlPlane(t *testing.T, leafTTL time.Duration, now func() time.Time) (string, *jointoken.Issuer, *ca.CA) {
	t.Helper()
	authority, err := ca.Open(t.TempDir(), ca.Options{DefaultLeafTTL: leafTTL, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := jointoken.New([]byte(strings.Repeat("k", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Options{})
	t.Cleanup(reg.Close)
	srv, err := xds.New(xds.Options{
		Translator: func(xds.ProxyInfo) (xds.Resources, error) { return xds.Resources{}, nil },
		Registry:   reg,
		Auth:       xds.Tokens{Join: iss, Static: xds.StaticTokens{"operator": {Subject: "operator"}}},
		CA:         authority,
	})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), iss, authority
}

func TestIssueAndRenewAtHalfLife(t *testing.T) {
	clock := fakeclock.New()
	addr, iss, _ := controlPlane(t, time.Hour, clock.Now)
	token, _ := iss.Issue("shop", "frontend", 0)
	updates := make(chan Status, 4)
	src, err := New(Config{
		Addr: addr, Token: token, Clock: clock, Jitter: -1, // no jitter: renew exactly at half life
		OnUpdate: func(s Status) { updates <- s },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Certificate(); err == nil {
		t.Fatal("certificate before the first issue")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- src.Run(ctx) }()
	first := <-updates
	if first.ID != "spiffe://cluster.local/ns/shop/sa/frontend" || first.Issued != 1 {
		t.Fatalf("first = %+v", first)
	}
	// Half of what is left of the lifetime when it arrived (the CA
	// backdates NotBefore by a minute for clock skew).
	issued := clock.Now()
	if got, life := first.RenewAt.Sub(issued), first.NotAfter.Sub(issued); got != life/2 {
		t.Fatalf("renew %v after issue, for %v of validity left", got, life)
	}
	cert, err := src.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	// The chain verifies against the CA's bundle for client and server use.
	leaf := cert.Leaf
	if _, err := spiffeid.FromCertificate(leaf); err != nil {
		t.Fatal(err)
	}
	// Just before the renewal time nothing happens; at it, a new
	// certificate with a new key arrives.
	waitPending(t, clock)
	clock.Advance(first.RenewAt.Sub(clock.Now()) - time.Second)
	select {
	case s := <-updates:
		t.Fatalf("renewed early: %+v", s)
	default:
	}
	clock.Advance(time.Second)
	second := <-updates
	if second.Issued != 2 || second.Serial == first.Serial {
		t.Fatalf("second = %+v", second)
	}
	cert2, _ := src.Certificate()
	if cert2.Leaf.PublicKey.(*ecdsa.PublicKey).Equal(leaf.PublicKey) {
		t.Fatal("renewal kept the old key")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRefusedIdentities(t *testing.T) {
	addr, iss, _ := controlPlane(t, time.Hour, nil)
	shop, _ := spiffeid.New("cluster.local", "shop", "frontend")
	other, _ := spiffeid.New("other.domain", "shop", "frontend")
	bound, _ := iss.Issue("shop", "frontend", 0)
	for _, tc := range []struct {
		name, token string
		id          spiffeid.ID
		want        string // "" means issued, with ID wantID
		wantID      string
	}{
		{"no token", "", shop, "Unauthenticated", ""},
		{"forged token", "weft1.e30.AAAA", shop, "bad signature", ""},
		{"bound token wins over the CSR", bound, other, "", "spiffe://cluster.local/ns/shop/sa/frontend"},
		{"operator token takes the CSR identity", "operator", shop, "", "spiffe://cluster.local/ns/shop/sa/frontend"},
		{"operator token, foreign trust domain", "operator", other, "trust domain", ""},
		{"operator token, no identity", "operator", spiffeid.ID{}, "exactly one SPIFFE URI", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := New(Config{Addr: addr, Token: tc.token, ID: tc.id})
			if err != nil {
				t.Fatal(err)
			}
			defer src.close()
			_, err = src.renew(context.Background())
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				if _, cerr := src.Certificate(); cerr == nil {
					t.Fatal("a refused request left a certificate")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := src.Status().ID; got != tc.wantID {
				t.Fatalf("issued %q, want %q", got, tc.wantID)
			}
		})
	}
}

// waitPending waits until the Run loop has armed its timer.
func waitPending(t *testing.T, c *fakeclock.Clock) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		armed := c.Armed() // before Pending: an arming in between closes it
		if c.Pending() > 0 {
			return
		}
		select {
		case <-armed:
		case <-timeout:
			t.Fatal("the renewal timer was never armed")
		}
	}
}

func TestRenewTime(t *testing.T) {
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(24 * time.Hour)
	half := nb.Add(12 * time.Hour)
	tests := []struct {
		name      string
		jitter, u float64
		want      time.Time
	}{
		{"no jitter", 0, 0.9, half},
		{"10% jitter, middle", 0.1, 0.5, half.Add(-72 * time.Minute)},
		{"10% jitter, zero draw", 0.1, 0, half},
		{"clamped jitter", 5, 1, half.Add(-6 * time.Hour)},
		{"negative jitter", -1, 0.5, half},
		{"NaN jitter", math.NaN(), 0.5, half},
		{"out-of-range draw", 0.2, 7, half.Add(-288 * time.Minute)},
		{"NaN draw", 0.2, math.NaN(), half},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renewTime(nb, na, tt.jitter, tt.u); !got.Equal(tt.want) {
				t.Fatalf("renewTime = %s, want %s", got, tt.want)
			}
		})
	}
}
