package proxy

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/bootstrap"
	"github.com/weft-mesh/weft/proxy/filter/authz"
	"github.com/weft-mesh/weft/proxy/http1"
)

// Keys of the tests' token issuer, generated once per test binary.
type authKeys struct {
	rsa, rsaOther *rsa.PrivateKey
	ec            *ecdsa.PrivateKey
}

var authKeysOnce = sync.OnceValue(func() *authKeys {
	k := &authKeys{}
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa, &k.rsaOther} {
		if *p, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return k
})

var b64 = base64.RawURLEncoding

// signJWT builds a compact JWS signed with RS256 (*rsa.PrivateKey) or
// ES256 (*ecdsa.PrivateKey).
func signJWT(t testing.TB, kid string, key crypto.Signer, claims map[string]any) string {
	t.Helper()
	alg := "RS256"
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = "ES256"
	}
	hb, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT", "kid": kid})
	cb, _ := json.Marshal(claims)
	in := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	sum := sha256.Sum256([]byte(in))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = s
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	}
	return in + "." + b64.EncodeToString(sig)
}

// testJWKS is the public JWKS of authKeys (rsaOther is not in it).
func testJWKS(t testing.TB) string {
	k := authKeysOnce()
	pub, err := k.ec.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": b64.EncodeToString(k.rsa.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "ec", "alg": "ES256", "crv": "P-256", "x": b64.EncodeToString(pub[1:33]), "y": b64.EncodeToString(pub[33:])},
	}})
	return string(b)
}

// tokenClaims are valid claims for the test issuer with overrides (nil
// deletes).
func tokenClaims(over map[string]any) map[string]any {
	c := map[string]any{
		"iss": "https://issuer.test", "sub": "alice", "aud": "shop",
		"exp": time.Now().Add(time.Hour).Unix(), "groups": []string{"dev"},
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// jwtFilterYAML is a jwt_authn filter: /public needs nothing, the rest a
// token of the test issuer; sub goes to x-jwt-sub.
func jwtFilterYAML(t testing.TB, jwksSource string) string {
	return fmt.Sprintf(`          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                issuer:
                  issuer: https://issuer.test
                  audiences: [shop]
                  %s
                  claim_to_headers: [{header_name: x-jwt-sub, claim_name: sub}]
              rules:
              - match: {prefix: /public}
              - match: {prefix: /}
                requires: {provider_name: issuer}
`, jwksSource)
}

// rbacFilterYAML is a DENY filter (header x-block) and an ALLOW filter:
// /admin for members of the admins group (JWT claim), anything else for
// anyone.
const rbacFilterYAML = `          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: DENY
                policies:
                  blocked:
                    permissions: [{header: {name: x-block, present_match: true}}]
                    principals: [{any: true}]
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: ALLOW
                policies:
                  admins:
                    permissions: [{url_path: {path: {prefix: /admin}}}]
                    principals:
                    - metadata:
                        filter: envoy.filters.http.jwt_authn
                        path: [{key: jwt_payload}, {key: groups}]
                        value: {list_match: {one_of: {string_match: {exact: admins}}}}
                  others:
                    permissions: [{not_rule: {url_path: {path: {prefix: /admin}}}}]
                    principals: [{any: true}]
`

// withFilters inserts http filters before the router of a bootstrap made
// by httpBootstrap.
func withFilters(doc, filters string) string {
	const router = "          - name: envoy.filters.http.router\n"
	return strings.Replace(doc, router, filters+router, 1)
}

// echoUpstream answers with the headers the auth filters edit.
func echoUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "sub=%s auth=%s xfcc=%s", r.Header.Get("X-Jwt-Sub"), r.Header.Get("Authorization"), r.Header.Get("X-Forwarded-Client-Cert"))
	}))
	t.Cleanup(up.Close)
	return up
}

// clients are an HTTP/1.1 client (the fast path) and an h2c client
// (net/http path).
func clients(t *testing.T) map[string]*http.Client {
	h1 := &http.Transport{Protocols: new(http.Protocols)}
	h1.Protocols.SetHTTP1(true)
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(h1.CloseIdleConnections)
	t.Cleanup(h2.CloseIdleConnections)
	return map[string]*http.Client{"http1": {Transport: h1}, "h2c": {Transport: h2}}
}

type result struct {
	status              int
	body, reason, proto string
	wwwAuth             string
}

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) result {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return result{resp.StatusCode, string(b), resp.Header.Get("X-Weft-Reason"), resp.Proto, resp.Header.Get("Www-Authenticate")}
}

// TestJWTAndRBAC drives the JWT filter and the RBAC chain over both HTTP
// paths: valid RS256 and ES256 tokens pass (the token header is removed,
// the claim header set, XFCC stripped from a plaintext caller), missing,
// expired, forged and wrong-audience tokens are refused as Envoy does, and
// RBAC denials (DENY header policy, ALLOW by JWT claim) answer 403.
func TestJWTAndRBAC(t *testing.T) {
	up := echoUpstream(t)
	jwks, _ := json.Marshal(testJWKS(t))
	doc := withFilters(httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())),
		jwtFilterYAML(t, "local_jwks: {inline_string: "+string(jwks)+"}")+rbacFilterYAML)
	p, addrs := startProxy(t, doc)
	k := authKeysOnce()
	valid := signJWT(t, "rsa", k.rsa, tokenClaims(nil))
	admin := signJWT(t, "ec", k.ec, tokenClaims(map[string]any{"sub": "root", "groups": []string{"admins"}}))
	expired := signJWT(t, "rsa", k.rsa, tokenClaims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}))
	forged := signJWT(t, "rsa", k.rsaOther, tokenClaims(nil))
	otherAud := signJWT(t, "ec", k.ec, tokenClaims(map[string]any{"aud": "billing"}))
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	base := "http://" + addrs["in"]
	realm := func(path string) string { return `Bearer realm="http://` + addrs["in"] + path + `"` }

	for name, c := range clients(t) {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				name, path string
				hdr        map[string]string
				want       result
			}{
				{"rs256", "/items", bearer(valid), result{status: 200, body: "sub=alice auth= xfcc="}},
				{"es256 admin", "/admin/users", bearer(admin), result{status: 200, body: "sub=root auth= xfcc="}},
				{"xfcc from a plaintext caller", "/items", map[string]string{"Authorization": "Bearer " + valid, "X-Forwarded-Client-Cert": "URI=spiffe://evil"},
					result{status: 200, body: "sub=alice auth= xfcc="}},
				{"public without token", "/public/x", nil, result{status: 200, body: "sub= auth= xfcc="}},
				{"missing", "/items", nil, result{status: 401, reason: "jwt_missing", body: "Jwt is missing", wwwAuth: realm("/items")}},
				{"expired", "/items?q=1", bearer(expired), result{status: 401, reason: "jwt_expired", body: "Jwt is expired", wwwAuth: realm("/items?q=1") + `, error="invalid_token"`}},
				{"forged", "/items", bearer(forged), result{status: 401, reason: "jwt_bad_signature", body: "Jwt verification fails", wwwAuth: realm("/items") + `, error="invalid_token"`}},
				{"wrong audience", "/items", bearer(otherAud), result{status: 403, reason: "jwt_audience_mismatch", body: "Audiences in Jwt are not allowed", wwwAuth: realm("/items") + `, error="invalid_token"`}},
				{"rbac deny policy", "/items", map[string]string{"Authorization": "Bearer " + valid, "X-Block": "1"}, result{status: 403, reason: reasonRBACDenied, body: "RBAC: access denied"}},
				{"rbac no allow policy", "/admin/users", bearer(valid), result{status: 403, reason: reasonRBACDenied, body: "RBAC: access denied"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					got := get(t, c, base+tc.path, tc.hdr)
					got.proto = ""
					if got != tc.want {
						t.Fatalf("got %+v\nwant %+v", got, tc.want)
					}
				})
			}
		})
	}
	var prom bytes.Buffer
	p.WritePrometheus(&prom)
	for _, want := range []string{
		`weft_rbac_denied_total{listener="in",policy="blocked"} 2`,
		`weft_rbac_denied_total{listener="in",policy=""} 2`,
		`weft_rbac_allowed_total{listener="in"} 8`,
		`weft_jwt_failures_total{listener="in",reason="jwt_missing"} 2`,
		`weft_jwt_failures_total{listener="in",reason="jwt_audience_mismatch"} 2`,
		`weft_local_replies_total{listener="in",reason="rbac_access_denied"} 4`,
	} {
		if !strings.Contains(prom.String(), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, prom.String())
		}
	}
}

// TestRBACGRPC: a grpc-go client sees RBAC denials as PermissionDenied and
// JWT failures as Unauthenticated (trailers-only answers).
func TestRBACGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(lis)
	defer srv.Stop()
	hs.SetServingStatus("shop", healthpb.HealthCheckResponse_SERVING)

	jwks, _ := json.Marshal(testJWKS(t))
	jwtCfg := strings.Replace(jwtFilterYAML(t, "local_jwks: {inline_string: "+string(jwks)+"}"),
		"- match: {prefix: /}", "- match: {prefix: /grpc.health.v1.Health/Watch}", 1)
	jwtCfg = strings.Replace(jwtCfg, "              - match: {prefix: /public}\n", "", 1)
	_, addrs := startProxy(t, withFilters(httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: grpc, timeout: 0s}`, staticCluster("grpc", h2Options, lis.Addr().String())), jwtCfg+rbacFilterYAML))
	cc, err := grpc.NewClient(addrs["in"], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := healthpb.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: "shop"}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("allowed call: %v %v", resp, err)
	}
	blocked := metadata.AppendToOutgoingContext(ctx, "x-block", "yes")
	_, err = c.Check(blocked, &healthpb.HealthCheckRequest{Service: "shop"})
	if st, _ := status.FromError(err); st.Code() != codes.PermissionDenied || st.Message() != "RBAC: access denied" {
		t.Fatalf("denied call: %v, want PermissionDenied RBAC: access denied", err)
	}
	stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: "shop"})
	if err == nil {
		_, err = stream.Recv()
	}
	if st, _ := status.FromError(err); st.Code() != codes.Unauthenticated || st.Message() != "Jwt is missing" {
		t.Fatalf("call without token: %v, want Unauthenticated Jwt is missing", err)
	}
	tok := signJWT(t, "ec", authKeysOnce().ec, tokenClaims(nil))
	stream, err = c.Watch(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok), &healthpb.HealthCheckRequest{Service: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := stream.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("call with token: %v %v", m, err)
	}
}

// TestRBACPeerPrincipal: on an mTLS listener the client certificate's
// SPIFFE ID is the principal RBAC matches, and the application learns it
// in x-forwarded-client-cert (By = the listener's own ID), over HTTP/1.1
// and h2.
func TestRBACPeerPrincipal(t *testing.T) {
	ca := newTestCA(t)
	up := echoUpstream(t)
	const (
		self     = "spiffe://weft.local/ns/shop/sa/catalog"
		frontend = "spiffe://weft.local/ns/shop/sa/frontend"
		intruder = "spiffe://weft.local/ns/shop/sa/intruder"
	)
	lnCert, lnKey := ca.issue(t, "catalog.shop", "127.0.0.1", self)
	doc := withFilters(httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())),
		`          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules:
                action: ALLOW
                policies:
                  frontend:
                    permissions: [{any: true}]
                    principals: [{authenticated: {principal_name: {exact: "`+frontend+`"}}}]
`)
	doc = strings.Replace(doc, `    filter_chains:
    - filters:`, fmt.Sprintf(`    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: true
          common_tls_context:
            tls_certificates:
            - certificate_chain: {inline_string: %s}
              private_key: {inline_string: %s}
            validation_context:
              trusted_ca: {inline_string: %s}
      filters:`, yamlBlock(lnCert, 0), yamlBlock(lnKey, 0), yamlBlock(ca.pem, 0)), 1)
	p, addrs := startProxy(t, doc)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	client := func(t *testing.T, id string, h2 bool) *http.Client {
		cp, kp := ca.issue(t, id)
		pair, err := tls.X509KeyPair([]byte(cp), []byte(kp))
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}, Protocols: new(http.Protocols)}
		if h2 {
			tr.Protocols.SetHTTP2(true)
		} else {
			tr.Protocols.SetHTTP1(true)
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			h2 := proto == "HTTP/2.0"
			got := get(t, client(t, frontend, h2), "https://"+addrs["in"]+"/x", map[string]string{"X-Forwarded-Client-Cert": "URI=spiffe://forged"})
			if want := (result{status: 200, body: "sub= auth= xfcc=By=" + self + ";URI=" + frontend, proto: proto}); got != want {
				t.Fatalf("allowed peer: got %+v\nwant %+v", got, want)
			}
			// A certificate of another CA fails the handshake.
			other := newTestCA(t)
			cp, kp := other.issue(t, frontend)
			pair, _ := tls.X509KeyPair([]byte(cp), []byte(kp))
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}
			defer tr.CloseIdleConnections()
			if resp, err := (&http.Client{Transport: tr}).Get("https://" + addrs["in"] + "/x"); err == nil {
				resp.Body.Close()
				t.Fatalf("a certificate of an untrusted CA got %d", resp.StatusCode)
			}
			got = get(t, client(t, intruder, h2), "https://"+addrs["in"]+"/x", nil)
			if want := (result{status: 403, body: "RBAC: access denied", reason: reasonRBACDenied, proto: proto}); got != want {
				t.Fatalf("denied peer: got %+v\nwant %+v", got, want)
			}
		})
	}
	var prom bytes.Buffer
	p.WritePrometheus(&prom)
	if want := `weft_rbac_denied_total{listener="in",policy=""} 2` + "\n"; !strings.Contains(prom.String(), want) {
		t.Errorf("metrics lack %s", want)
	}
}

// TestTCPRBAC: a TCP listener's network RBAC chain is evaluated on
// accept; a denied connection is closed before anything is proxied.
func TestTCPRBAC(t *testing.T) {
	echo := tcpEcho(t)
	p, addrs := startProxy(t, fmt.Sprintf(`
static_resources:
  listeners:
  - name: tcp
    address: {socket_address: {address: 127.0.0.1, port_value: 0}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp
          cluster: echo
  clusters:
%s`, staticCluster("echo", "", echo)))
	_, port, _ := net.SplitHostPort(addrs["tcp"])
	// The lead's listener decoding fills tcpSpec.rbac from network
	// filters; until then the chain is set on the live spec.
	setChain := func(js string) {
		f, err := authz.DecodeNetwork(parseNetworkRBAC(t, js))
		if err != nil {
			t.Fatal(err)
		}
		p.mu.Lock()
		ll := p.live["tcp"]
		p.mu.Unlock()
		ls := *ll.spec.Load()
		ts := *ls.tcp
		ts.rbac = authz.NewChain(f)
		ls.tcp = &ts
		ll.spec.Store(&ls)
	}
	roundTrip := func() error {
		c, err := net.Dial("tcp", addrs["tcp"])
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		if string(b) != "ping" {
			return fmt.Errorf("echo %q", b)
		}
		return nil
	}
	setChain(`{"rules": {"action": "ALLOW", "policies": {"this-port": {"permissions": [{"destinationPort": ` + port + `}], "principals": [{"any": true}]}}}}`)
	if err := roundTrip(); err != nil {
		t.Fatalf("allowed connection: %v", err)
	}
	setChain(`{"rules": {"action": "DENY", "policies": {"no-plaintext": {"permissions": [{"any": true}], "principals": [{"notId": {"authenticated": {}}}]}}}}`)
	if err := roundTrip(); err == nil || !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("denied connection: %v, want it closed", err)
	}
	var prom bytes.Buffer
	p.WritePrometheus(&prom)
	for _, want := range []string{`weft_rbac_allowed_total{listener="tcp"} 1`, `weft_rbac_denied_total{listener="tcp",policy="no-plaintext"} 1`} {
		if !strings.Contains(prom.String(), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, prom.String())
		}
	}
}

// TestJWTFetcherLifecycle: a JWT filter with remote JWKS starts fetching
// when its listener is installed, keeps running (same filter) when an
// update leaves its config unchanged, is replaced when the config changes,
// and is stopped on shutdown. Requests verify with the fetched keys.
func TestJWTFetcherLifecycle(t *testing.T) {
	hits := make(chan string, 16)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, testJWKS(t))
		hits <- r.URL.Path
	}))
	defer idp.Close()
	up := echoUpstream(t)
	mkDoc := func(path string) string {
		return withFilters(httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up.Listener.Addr().String())),
			jwtFilterYAML(t, `remote_jwks: {http_uri: {uri: "`+idp.URL+path+`", cluster: idp, timeout: 1s}}`))
	}
	p, addrs := startProxy(t, mkDoc("/v1"))
	if got := <-hits; got != "/v1" {
		t.Fatalf("first fetch of %s", got)
	}
	first := p.accepted.listeners["in"].http.jwt
	tok := signJWT(t, "rsa", authKeysOnce().rsa, tokenClaims(nil))
	c := clients(t)["http1"]
	// The fetched set is installed right after the response is read:
	// wait for the fetcher to report it.
	for {
		n, next := p.jwt.fetches()
		if n > 0 {
			break
		}
		select {
		case <-next:
		case <-time.After(5 * time.Second):
			t.Fatal("the first JWKS fetch never installed its keys")
		}
	}
	if got := get(t, c, "http://"+addrs["in"]+"/x", map[string]string{"Authorization": "Bearer " + tok}); got.status != 200 {
		t.Fatalf("request with remote keys: %+v", got)
	}

	apply := func(doc string) {
		t.Helper()
		cfg, err := parseBootstrap(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.ApplyStatic(cfg); err != nil {
			t.Fatal(err)
		}
	}
	apply(mkDoc("/v1"))
	if again := p.accepted.listeners["in"].http.jwt; again != first {
		t.Fatal("an unchanged JWT config got a new filter")
	}
	apply(mkDoc("/v2"))
	if got := <-hits; got != "/v2" {
		t.Fatalf("fetch after the change of %s", got)
	}
	p.mu.Lock()
	current := p.accepted.listeners["in"].http.jwt
	var running []any
	for _, f := range p.jwt.running {
		running = append(running, f)
	}
	p.mu.Unlock()
	if current == first || len(running) != 1 || running[0] != any(current) {
		t.Fatalf("after the change: running %v, want only the new filter %p (old %p)", running, current, first)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(p.jwt.running) != 0 {
		t.Fatalf("%d filters running after shutdown", len(p.jwt.running))
	}
}

// parseBootstrap reads a bootstrap document into static resources.
func parseBootstrap(doc string) (StaticResources, error) {
	cfg, err := bootstrap.Parse([]byte(doc))
	if err != nil {
		return StaticResources{}, err
	}
	return StaticResources{Listeners: cfg.Listeners, Clusters: cfg.Clusters}, nil
}

// parseNetworkRBAC decodes a network RBAC config from protojson.
func parseNetworkRBAC(t testing.TB, js string) *rbacnetv3.RBAC {
	t.Helper()
	var c rbacnetv3.RBAC
	if err := protojson.Unmarshal([]byte(js), &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func TestDecodeHCMAuthFilters(t *testing.T) {
	const router = `{"name": "envoy.filters.http.router", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}`
	const fault = `{"name": "envoy.filters.http.fault", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}}`
	jwtF := `{"name": "envoy.filters.http.jwt_authn", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
	  "providers": {"p": {"issuer": "i", "localJwks": {"inlineString": ` + strconv.Quote(testJWKS(t)) + `}}}}}`
	rbacF := func(action string) string {
		return `{"name": "envoy.filters.http.rbac", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
		  "rules": {"action": "` + action + `", "policies": {"p": {"permissions": [{"any": true}], "principals": [{"any": true}]}}}}}`
	}
	for _, tc := range []struct {
		name    string
		filters []string
		err     string
	}{
		{"jwt, rbac, rbac, fault", []string{jwtF, rbacF("DENY"), rbacF("ALLOW"), fault, router}, ""},
		{"rbac only", []string{rbacF("ALLOW"), router}, ""},
		{"two jwt", []string{jwtF, jwtF, router}, "http_filters[1]: at most one envoy.filters.http.jwt_authn filter is supported"},
		{"jwt after rbac", []string{rbacF("DENY"), jwtF, router}, "http_filters[1]: envoy.filters.http.jwt_authn must come before envoy.filters.http.rbac and envoy.filters.http.fault"},
		{"rbac after fault", []string{fault, rbacF("DENY"), router}, "http_filters[1]: envoy.filters.http.rbac must come before envoy.filters.http.fault"},
		{"bad rbac action", []string{jwtF, `{"name": "r", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC", "rules": {"action": "LOG"}}}`, router},
			"http_filters[1].typed_config.rules.action: LOG is unsupported by weft"},
		{"rbac matcher out of the subset", []string{`{"name": "r", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
		  "rules": {"policies": {"p": {"permissions": [{"requestedServerName": {"exact": "x"}}], "principals": [{"any": true}]}}}}}`, router},
			`http_filters[0].typed_config.rules.policies["p"].permissions[0].requested_server_name: unsupported by weft`},
		{"jwt without keys", []string{`{"name": "j", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication", "providers": {"p": {"issuer": "i"}}}}`, router},
			`http_filters[0].typed_config.providers["p"]: local_jwks or remote_jwks required`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := decodeHCM(parseHCM(t, tc.filters))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(tc.filters[0], "jwt_authn") != (s.jwt != nil && s.jwtKey != "") {
				t.Errorf("jwt filter decoded: %v (key %d bytes)", s.jwt != nil, len(s.jwtKey))
			}
			if s.rbac == nil {
				t.Errorf("rbac chain missing")
			}
		})
	}
}

// parseHCM builds an inline-route HCM with the given http_filters (JSON).
func parseHCM(t testing.TB, filters []string) *hcmv3.HttpConnectionManager {
	t.Helper()
	js := `{"statPrefix": "in", "routeConfig": {"name": "r"}, "httpFilters": [` + strings.Join(filters, ",") + `]}`
	var h hcmv3.HttpConnectionManager
	if err := protojson.Unmarshal([]byte(js), &h); err != nil {
		t.Fatal(err)
	}
	return &h
}

// FuzzDecodeHCM: arbitrary HCM bytes never make decodeHCM panic, and
// decoding an accepted JWT filter again gives the same key (the empty
// config's key is "").
func FuzzDecodeHCM(f *testing.F) {
	const router = `{"name": "envoy.filters.http.router", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}`
	seeds := [][]string{
		{`{"name": "j", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
		  "providers": {"a": {"issuer": "i", "localJwks": {"inlineString": "{\"keys\": []}"}}, "b": {"issuer": "j", "remoteJwks": {"httpUri": {"uri": "http://127.0.0.1:1/k", "cluster": "c", "timeout": "1s"}}}},
		  "rules": [{"match": {"prefix": "/"}, "requires": {"providerName": "a"}}]}}`, router},
		{`{"name": "r", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
		  "rules": {"action": "DENY", "policies": {"p": {"permissions": [{"urlPath": {"path": {"prefix": "/a"}}}], "principals": [{"authenticated": {"principalName": {"exact": "spiffe://x"}}}]}}}}}`, router},
		{`{"name": "j", "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"}}`, router},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(parseHCM(f, s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h hcmv3.HttpConnectionManager
		if proto.Unmarshal(b, &h) != nil {
			return
		}
		s, err := decodeHCM(&h)
		if err != nil || s.jwt == nil {
			return
		}
		s2, err := decodeHCM(&h)
		if err != nil || s2.jwtKey != s.jwtKey {
			t.Fatalf("jwt key unstable: %v", err)
		}
	})
}

// BenchmarkProxyHTTP1Auth is BenchmarkProxyHTTP1 with an RBAC chain (a
// DENY and an ALLOW filter matching headers and paths) and a JWT filter
// whose rules require no token for the benchmark's path.
func BenchmarkProxyHTTP1Auth(b *testing.B) {
	upAddr := rawUpstream(b)
	jwks, _ := json.Marshal(testJWKS(b))
	_, addrs := startProxy(b, withFilters(httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", upAddr)),
		strings.Replace(jwtFilterYAML(b, "local_jwks: {inline_string: "+string(jwks)+"}"), "{prefix: /public}", "{prefix: /items}", 1)+rbacFilterYAML))
	c, err := net.Dial("tcp", addrs["in"])
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /items?page=1 HTTP/1.1\r\nHost: catalog.shop\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	rd := http1.NewReader(c, 0)
	defer rd.Release()
	var h http1.ResponseHead
	get := []byte("GET")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := rd.ReadResponseHead(&h, get); err != nil {
			b.Fatal(err)
		}
		cl, ch, eof := h.BodyFraming()
		if _, err := rd.CopyBody(io.Discard, cl, ch, eof); err != nil {
			b.Fatal(err)
		}
		if h.Status != 200 {
			b.Fatalf("status %d", h.Status)
		}
	}
}

func TestPeerPrincipal(t *testing.T) {
	ca := newTestCA(t)
	leaf := func(sans ...string) *x509.Certificate {
		cp, _ := ca.issue(t, sans...)
		c, err := x509.ParseCertificate(pemDER(t, cp))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	id := "spiffe://weft.local/ns/shop/sa/frontend"
	withID := leaf("frontend.shop", "https://frontend.shop/", id, "spiffe://weft.local/ns/shop/sa/second")
	noID := leaf("frontend.shop", "https://frontend.shop/")
	selfVerifying := &tls.Config{ClientAuth: tls.RequireAnyClientCert, VerifyConnection: func(tls.ConnectionState) error { return nil }}
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		cs   *tls.ConnectionState
		want string
	}{
		{"plaintext", nil, nil, ""},
		{"verified by crypto/tls", &tls.Config{}, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{withID}, VerifiedChains: [][]*x509.Certificate{{withID}}}, id},
		{"unverified", &tls.Config{ClientAuth: tls.RequestClientCert}, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{withID}}, ""},
		{"verified by the listener", selfVerifying, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{withID}}, id},
		{"no spiffe SAN", selfVerifying, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{noID}}, ""},
		{"no certificate", selfVerifying, &tls.ConnectionState{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := downstreamPeer(tc.cfg, tc.cs); got != tc.want {
				t.Fatalf("downstreamPeer = %q, want %q", got, tc.want)
			}
		})
	}
}

func pemDER(t *testing.T, s string) []byte {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatal("no PEM block")
	}
	return b.Bytes
}

// A JWKS URI that keeps failing is logged once, and once more when it
// recovers; every attempt wakes the watchers.
func TestJWKSRefreshLogged(t *testing.T) {
	var logs bytes.Buffer
	j := &jwtFilters{log: slog.New(slog.NewTextHandler(&logs, nil))}
	n, next := j.fetches()
	j.refreshed("https://idp/jwks", errors.New("status 500"))
	select {
	case <-next:
	default:
		t.Fatal("a failed fetch did not wake the watchers")
	}
	j.refreshed("https://idp/jwks", errors.New("status 500"))
	j.refreshed("https://idp/jwks", nil)
	j.refreshed("https://idp/jwks", nil)
	if got, _ := j.fetches(); got != n+2 {
		t.Fatalf("%d fetches installed keys, want %d", got, n+2)
	}
	out := logs.String()
	if strings.Count(out, "JWKS fetch failed") != 1 || strings.Count(out, "JWKS fetch recovered") != 1 || !strings.Contains(out, "status 500") {
		t.Fatalf("logs:\n%s", out)
	}
}
