package e2e

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const jwtMesh = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: weft
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, port: %d, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api}
spec:
  parentRefs: [{name: edge}]
  rules: [{backendRefs: [{name: api, port: 80}]}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: api}
spec:
  ports: [{name: http, port: 80}]
  visibility: internet
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api}
spec: {command: [api], serviceAccount: api}
---
apiVersion: weft.dev/v1alpha1
kind: RequestAuthentication
metadata: {name: people}
spec:
  selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: edge}}
  jwtRules:
  - issuer: https://id.test
    audiences: [shop]
    jwksUri: %s
---
apiVersion: weft.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: private-needs-a-person}
spec:
  selector: {matchLabels: {gateway.networking.k8s.io/gateway-name: edge}}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/private/*"]}}]
    from: [{source: {notRequestPrincipals: ["*"]}}]
`

// rsaSigner signs RS256 compact JWS tokens and serves its JWKS.
type rsaSigner struct{ key *rsa.PrivateKey }

func (s rsaSigner) jwks() string {
	b64 := base64.RawURLEncoding.EncodeToString
	return fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","use":"sig","n":%q,"e":%q}]}`,
		b64(s.key.N.Bytes()), b64(big.NewInt(int64(s.key.E)).Bytes()))
}

func (s rsaSigner) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "k1"})
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// TestJWTAtTheGateway runs weft control, a gateway proxy and a sidecar as
// processes: people's RS256 tokens are validated at the gateway against a
// JWKS fetched over HTTP, /private needs a valid token, bad tokens get 401
// everywhere, and the sidecar behind it sees the request without the token.
func TestJWTAtTheGateway(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer := rsaSigner{key}
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, signer.jwks())
	}))
	defer idp.Close()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "api %s authorization=%q", r.URL.Path, r.Header.Get("Authorization"))
	}))
	defer app.Close()
	_, appPort, _ := strings.Cut(app.Listener.Addr().String(), ":")

	a := &authPlane{dir: t.TempDir()}
	api, xdsPort, gwPort := freePort(t), freePort(t), freePort(t)
	a.server, a.xds = fmt.Sprintf("127.0.0.1:%d", api), fmt.Sprintf("127.0.0.1:%d", xdsPort)
	state := filepath.Join(a.dir, "state")
	ctl := start(t, "control", "--state-dir", state, "--api-addr", a.server, "--xds-addr", a.xds, "--mtls-mode", "STRICT")
	waitHTTP(t, ctl, "http://"+a.server+"/healthz")
	op, err := os.ReadFile(filepath.Join(state, "join-token"))
	if err != nil {
		t.Fatal(err)
	}
	a.operator = strings.TrimSpace(string(op))
	mesh := filepath.Join(a.dir, "mesh.yaml")
	os.WriteFile(mesh, []byte(fmt.Sprintf(jwtMesh, gwPort, idp.URL)), 0o644)
	if out, err := runWeft(t, "apply", "--server", a.server, "-f", mesh); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	apiProxy, apiAdmin := a.sidecar(t, a.joinToken(t, "default", "api"), "api", "--app-port", appPort, "--inbound-port", strconv.Itoa(freePort(t)))
	gwAdmin := freePort(t)
	gw := start(t, "proxy", "--xds-addr", a.xds, "--token", a.joinToken(t, "default", "edge"), "--role", "gateway",
		"--workload", "edge", "--node-id", "edge-0.default", "--service-account", "edge",
		"--labels", "gateway.networking.k8s.io/gateway-name=edge", "--admin-addr", fmt.Sprintf("127.0.0.1:%d", gwAdmin))
	waitReady(t, apiProxy, apiAdmin)
	waitReady(t, gw, gwAdmin)

	now := time.Now()
	person := map[string]any{"iss": "https://id.test", "sub": "alice", "aud": "shop", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range person {
			c[kk] = vv
		}
		c[k] = v
		return c
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", gwPort)
	// The gateway has its routes once the public path answers.
	waitBody(t, base+"/public", nil, `api /public authorization=""`)
	// The JWKS is fetched in the background: wait until a good token passes.
	good := signer.token(t, person)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := getWithToken(t, base+"/private/x", good)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a valid token never passed the gateway (last %d)", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name, path, token string
		want              int
		body              string
	}{
		{"public without token", "/public", "", 200, `api /public authorization=""`},
		{"private without token", "/private/x", "", 403, ""},
		{"private with a token (removed before the app)", "/private/x", good, 200, `api /private/x authorization=""`},
		{"expired token", "/public", signer.token(t, with("exp", now.Add(-time.Hour).Unix())), 401, ""},
		// A token of an issuer no rule names counts as no token (Envoy's
		// allow_missing, Istio's semantics): public passes, private not.
		{"unknown issuer, public", "/public", signer.token(t, with("iss", "https://evil.test")), 200, ""},
		{"unknown issuer, private", "/private/x", signer.token(t, with("iss", "https://evil.test")), 403, ""},
		{"wrong audience", "/public", signer.token(t, with("aud", "other")), 403, ""},
		{"signed by another key", "/public", rsaSigner{other}.token(t, person), 401, ""},
		{"alg none", "/public", unsignedToken(person), 401, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := getWithToken(t, base+tc.path, tc.token)
			if code != tc.want || (tc.body != "" && body != tc.body) {
				t.Fatalf("%s: %d %q, want %d %q", tc.path, code, body, tc.want, tc.body)
			}
		})
	}
}

func unsignedToken(claims map[string]any) string {
	b64 := base64.RawURLEncoding.EncodeToString
	c, _ := json.Marshal(claims)
	return b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(c) + "."
}

func getWithToken(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
