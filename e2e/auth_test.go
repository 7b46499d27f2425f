package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/ca"
	"github.com/weft-mesh/weft/control/ca/spiffeid"
)

const authMesh = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog}
spec: {command: [catalog], serviceAccount: catalog}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: frontend}
spec:
  command: [frontend]
  serviceAccount: frontend
  upstreams: [{service: catalog, port: %d}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: intruder}
spec:
  command: [intruder]
  serviceAccount: intruder
  upstreams: [{service: catalog, port: %d}]
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: catalog-callers}
spec:
  selector: {matchLabels: {app: catalog}}
  rules:
  - from: [{source: {principals: [cluster.local/ns/default/sa/frontend]}}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: ledger, namespace: finance}
spec:
  ports: [{name: http, port: 80}]
  visibility: namespace
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: billing, namespace: finance}
spec:
  ports: [{name: http, port: 80}]
`

// authPlane is a running `weft control` with STRICT mTLS and short-lived
// certificates.
type authPlane struct {
	dir, server, xds, operator string
}

func (a *authPlane) joinToken(t *testing.T, ns, sa string) string {
	t.Helper()
	out, err := runWeft(t, "token", "create", "--server", a.server, "--token", a.operator, "-n", ns, "--service-account", sa)
	if err != nil || !strings.HasPrefix(out, "weft1.") {
		t.Fatalf("weft token create %s/%s: %v\n%s", ns, sa, err, out)
	}
	return strings.TrimSpace(out)
}

// sidecar starts `weft proxy` for workload wl with a join token of its
// service account and returns its admin port.
func (a *authPlane) sidecar(t *testing.T, token, wl string, extra ...string) (*process, int) {
	t.Helper()
	admin := freePort(t)
	args := append([]string{"proxy", "--xds-addr", a.xds, "--token", token, "--workload", wl, "--service", wl,
		"--node-id", wl + "-0.default", "--service-account", wl, "--labels", "app=" + wl, "--admin-addr", fmt.Sprintf("127.0.0.1:%d", admin)}, extra...)
	return start(t, args...), admin
}

// TestMutualTLSAndPolicies runs weft control (STRICT, 6 s certificates)
// and three sidecars as processes, each joined with a token bound to its
// identity: the frontend reaches the catalog, the intruder's certificate
// is valid but denied by the catalog's policy, plaintext and expired
// certificates are refused, a token cannot claim another identity, a
// namespace-scoped service never reaches another namespace's proxy, and
// certificates rotate several times under constant load with zero failed
// requests.
func TestMutualTLSAndPolicies(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "catalog saw %s", r.Header.Get("X-Forwarded-Client-Cert"))
	}))
	defer app.Close()
	_, appPort, _ := strings.Cut(app.Listener.Addr().String(), ":")

	a := &authPlane{dir: t.TempDir()}
	api, xdsPort := freePort(t), freePort(t)
	a.server, a.xds = fmt.Sprintf("127.0.0.1:%d", api), fmt.Sprintf("127.0.0.1:%d", xdsPort)
	state := filepath.Join(a.dir, "state")
	ctl := start(t, "control", "--state-dir", state, "--api-addr", a.server, "--xds-addr", a.xds,
		"--mtls-mode", "STRICT", "--cert-ttl", "6s")
	waitHTTP(t, ctl, "http://"+a.server+"/healthz")
	op, err := os.ReadFile(filepath.Join(state, "join-token"))
	if err != nil {
		t.Fatal(err)
	}
	a.operator = strings.TrimSpace(string(op))

	up1, up2 := freePort(t), freePort(t)
	mesh := filepath.Join(a.dir, "mesh.yaml")
	os.WriteFile(mesh, []byte(fmt.Sprintf(authMesh, up1, up2)), 0o644)
	if out, err := runWeft(t, "apply", "--server", a.server, "-f", mesh); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	// Issuing identities needs the operator token, even on loopback.
	if resp, err := http.Post("http://"+a.server+"/api/v1/join-tokens", "application/json", strings.NewReader(`{"namespace":"default","serviceAccount":"catalog"}`)); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("join token without the operator token: %v %v", resp, err)
	}

	catIn := freePort(t)
	cat, catAdmin := a.sidecar(t, a.joinToken(t, "default", "catalog"), "catalog", "--app-port", appPort, "--inbound-port", strconv.Itoa(catIn))
	feHTTP := freePort(t)
	fe, feAdmin := a.sidecar(t, a.joinToken(t, "default", "frontend"), "frontend", "--http-proxy-port", strconv.Itoa(feHTTP))
	in, inAdmin := a.sidecar(t, a.joinToken(t, "default", "intruder"), "intruder")
	waitReady(t, cat, catAdmin)
	waitReady(t, fe, feAdmin)
	waitReady(t, in, inAdmin)

	// The frontend's identity reaches the catalog's application.
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", up1), nil,
		"catalog saw By=spiffe://cluster.local/ns/default/sa/catalog;URI=spiffe://cluster.local/ns/default/sa/frontend")
	// The intruder has a valid certificate of its own identity: denied.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", up2))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Weft-Reason") != "rbac_access_denied" {
		t.Fatalf("intruder -> catalog: %d %q, want 403 rbac_access_denied", resp.StatusCode, resp.Header.Get("X-Weft-Reason"))
	}
	// Plaintext to the STRICT inbound listener gets no answer.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", catIn)); err == nil {
		resp.Body.Close()
		t.Fatalf("plaintext reached the STRICT inbound listener: %d", resp.StatusCode)
	}
	// A certificate of the mesh CA that expired an hour ago is refused; a
	// current one of the same identity is served (the control).
	var shift time.Duration // the test's view of the CA's clock
	current, err := ca.Open(filepath.Join(state, "ca"), ca.Options{Now: func() time.Time { return time.Now().Add(shift) }})
	if err != nil {
		t.Fatal(err)
	}
	frontendID, _ := spiffeid.New("cluster.local", "default", "frontend")
	valid, err := current.NewLeaf(frontendID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	shift = -2 * time.Hour
	expired, err := current.NewLeaf(frontendID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	shift = 0
	direct := func(cert *tls.Certificate) (int, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{*cert}, RootCAs: current.Pool(), ServerName: "catalog",
			InsecureSkipVerify: true, // the server's SAN is a SPIFFE URI; this test is about the client side
		}}}
		resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/", catIn))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := direct(valid); err != nil || code != 200 {
		t.Fatalf("direct mTLS with a current frontend certificate: %d %v", code, err)
	}
	if code, err := direct(expired); err == nil {
		t.Fatalf("an expired certificate was served: %d", code)
	}

	// A token bound to one identity cannot claim another.
	liar, _ := a.sidecar(t, a.joinToken(t, "default", "intruder"), "catalog")
	waitOutput(t, liar, "cannot claim service account", 20*time.Second)

	// Scopes: another namespace's namespace-scoped service is not in the
	// frontend's configuration at all; its mesh-visible one is.
	dump, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/config_dump", feAdmin))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dump, "ledger") || !strings.Contains(dump, "billing.finance") {
		t.Fatalf("frontend's config: ledger present %v, billing present %v", strings.Contains(dump, "ledger"), strings.Contains(dump, "billing.finance"))
	}

	// Rotation under constant load: 6 s certificates are renewed about
	// every 3 s by each of the three sidecars.
	issued := func() float64 {
		v, err := promValue("http://"+a.server+"/metrics", "weft_ca_certificates_issued_total")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := issued()
	run := startLoad(fmt.Sprintf("http://127.0.0.1:%d/", up1), 50, 750)
	run.wait(t)
	renewed := issued() - before
	failed, first := run.failed()
	t.Logf("certificates issued during 15 s of load: %v; failed requests: %d of %d", renewed, failed, len(run.shots))
	if failed > 0 {
		t.Fatalf("%d requests failed during rotation; first: %s", failed, first)
	}
	if renewed < 6 {
		t.Fatalf("only %v certificates were issued during the load; want every sidecar to renew at least twice", renewed)
	}

	// Root rotation under load: the bundle (old and new root) reaches
	// every proxy, leaves of the new root follow at the next renewals, and
	// no request fails. Rotation needs the operator token.
	if out, err := runWeft(t, "ca", "rotate", "--server", a.server, "--token", "wrong"); err == nil || !strings.Contains(out, "operator token") {
		t.Fatalf("rotation with a wrong token: %v\n%s", err, out)
	}
	run = startLoad(fmt.Sprintf("http://127.0.0.1:%d/", up1), 50, 500)
	if out, err := runWeft(t, "ca", "rotate", "--server", a.server, "--token", a.operator); err != nil || !strings.Contains(out, "root rotated") {
		t.Fatalf("weft ca rotate: %v\n%s", err, out)
	}
	run.wait(t)
	if failed, first := run.failed(); failed > 0 {
		t.Fatalf("%d requests failed during the root rotation; first: %s", failed, first)
	}
	// Both roots are trusted now: a leaf of the new root and one of the
	// old are served.
	rotated, err := ca.Open(filepath.Join(state, "ca"), ca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated.Bundle()) != 2 || rotated.RootFingerprint() == current.RootFingerprint() {
		t.Fatalf("after rotation: %d roots, root changed %v", len(rotated.Bundle()), rotated.RootFingerprint() != current.RootFingerprint())
	}
	fresh, err := rotated.NewLeaf(frontendID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, cert := range map[string]*tls.Certificate{"new root": fresh, "old root": valid} {
		if code, err := direct(cert); err != nil || code != 200 {
			t.Fatalf("direct mTLS with a leaf of the %s after rotation: %d %v", name, code, err)
		}
	}
}
