package translate

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/ca"
	"github.com/weft-mesh/weft/control/ca/spiffeid"
	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy"
)

// staticIdentity is a proxy.CertificateSource holding one certificate.
type staticIdentity struct{ cert *tls.Certificate }

func (s staticIdentity) Certificate() (*tls.Certificate, error) { return s.cert, nil }

func leafFor(t *testing.T, authority *ca.CA, ns, sa string) *tls.Certificate {
	t.Helper()
	id, err := spiffeid.New("cluster.local", ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	c, err := authority.NewLeaf(id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// meshProxy is one in-process sidecar with its own certificate.
func meshProxy(t *testing.T, cert *tls.Certificate) *proxy.Proxy {
	t.Helper()
	p := proxy.New(proxy.Options{Listen: loopbackListen, Identity: staticIdentity{cert}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// pushAll is push plus the SDS secrets.
func pushAll(t *testing.T, p *proxy.Proxy, out xds.Resources) {
	t.Helper()
	set := map[string]*anypb.Any{}
	for _, s := range out.Secrets {
		a, err := anypb.New(s)
		if err != nil {
			t.Fatal(err)
		}
		set[s.GetName()] = a
	}
	if err := p.Update(resourcev3.SecretType, set); err != nil {
		t.Fatalf("proxy refused the secrets: %v", err)
	}
	if err := push(t, p, out); err != nil {
		t.Fatal(err)
	}
}

const mtlsMesh = `
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: checkout, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: only-frontend, namespace: shop}
spec:
  selector: {matchLabels: {app: checkout}}
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/frontend"]}}]
`

// TestMutualTLSBetweenSidecars runs a caller sidecar and the checkout
// sidecar, both translated by the control plane, with certificates of a
// real CA: the caller's identity reaches the callee's policy; plaintext
// callers are refused in STRICT and served in PERMISSIVE; DISABLE turns
// the hop into plaintext on both sides.
func TestMutualTLSBetweenSidecars(t *testing.T) {
	authority, err := ca.Open(t.TempDir(), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "checkout saw "+r.Header.Get("X-Forwarded-Client-Cert"))
	}))
	defer app.Close()
	appPort := uint16(app.Listener.Addr().(*net.TCPAddr).Port)

	for _, tc := range []struct {
		name      string
		mode      v1alpha1.MTLSMode
		caller    string // service account of the calling sidecar
		wantCall  int    // status through the mesh
		plaintext bool   // a plaintext client reaches the inbound listener
	}{
		{"strict, allowed caller", v1alpha1.MTLSStrict, "frontend", http.StatusOK, false},
		{"strict, caller denied by policy", v1alpha1.MTLSStrict, "cart", http.StatusForbidden, false},
		{"permissive serves both", v1alpha1.MTLSPermissive, "frontend", http.StatusOK, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := resource.Decode("mesh.yaml", []byte(mtlsMesh))
			if err != nil {
				t.Fatal(err)
			}
			res := Index(objs)
			mesh := MeshConfig{MTLSMode: tc.mode, TrustBundle: authority.BundlePEM()}
			reg := registry.New(registry.Options{})
			defer reg.Close()

			// The checkout sidecar first, to learn its inbound port.
			server := meshProxy(t, leafFor(t, authority, "shop", "checkout"))
			sinfo := xds.ProxyInfo{
				NodeID: "checkout-0.shop", Service: "checkout", Namespace: "shop", ServiceAccount: "checkout",
				Role: xds.RoleSidecar, InstanceAddr: netip.MustParseAddrPort("127.0.0.1:15006"), AppPort: appPort,
				Protocol: "http", Labels: map[string]string{"app": "checkout"},
			}
			out, err := Translate(Input{Proxy: sinfo, Resources: res, Registry: reg, Mesh: mesh})
			if err != nil {
				t.Fatal(err)
			}
			pushAll(t, server, out)
			inbound, ok := server.ListenerAddr("inbound_15006")
			if !ok {
				t.Fatal("no inbound listener")
			}
			own := registry.Instance{
				Service: registry.ServiceKey{Namespace: "shop", Name: "checkout"}, Addr: netip.MustParseAddrPort(inbound.String()),
				Identity: "checkout", Labels: sinfo.Labels,
			}
			if err := reg.OpenSession("checkout-0.shop", []registry.Instance{own}); err != nil {
				t.Fatal(err)
			}

			client := meshProxy(t, leafFor(t, authority, "shop", tc.caller))
			cinfo := xds.ProxyInfo{NodeID: "web-0.shop", Namespace: "shop", ServiceAccount: tc.caller, Role: xds.RoleSidecar, HTTPProxyPort: 15001}
			out, err = Translate(Input{Proxy: cinfo, Resources: res, Registry: reg, Mesh: mesh})
			if err != nil {
				t.Fatal(err)
			}
			pushAll(t, client, out)
			hp, _ := client.ListenerAddr(HTTPProxyName)

			status, body := get(t, "http://"+hp.String()+"/", "checkout")
			if status != tc.wantCall {
				t.Fatalf("through the mesh: status %d (%s), want %d", status, body, tc.wantCall)
			}
			if status == http.StatusOK && !strings.Contains(body, "URI=spiffe://cluster.local/ns/shop/sa/"+tc.caller) {
				t.Fatalf("the app did not see the caller's identity: %q", body)
			}
			// A plaintext client that guessed the inbound address.
			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Get("http://" + inbound.String() + "/")
			if tc.plaintext {
				if err != nil {
					t.Fatalf("PERMISSIVE refused plaintext: %v", err)
				}
				resp.Body.Close()
				// Plaintext has no identity: the policy that requires
				// frontend's denies it.
				if resp.StatusCode != http.StatusForbidden {
					t.Fatalf("plaintext caller under an identity policy: %d, want 403", resp.StatusCode)
				}
			} else if err == nil {
				resp.Body.Close()
				t.Fatalf("STRICT served a plaintext client: %d", resp.StatusCode)
			}
		})
	}
}

func get(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
