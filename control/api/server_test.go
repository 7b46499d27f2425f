package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/control/store"
)

func newTestServer(t *testing.T, opts Options) (*httptest.Server, *store.Bolt) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Version == "" {
		opts.Version = "test"
	}
	srv := New(st, opts)
	srv.Handle("GET /api/v1/proxies", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "[]") }))
	ts := httptest.NewServer(srv)
	t.Cleanup(func() { ts.Close(); st.Close() })
	return ts, st
}

func shop(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../resource/testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func do(t *testing.T, method, url, ctype, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func TestRawEndpoints(t *testing.T) {
	ts, _ := newTestServer(t, Options{MaxBodyBytes: 64 << 10})
	c := NewClient(ts.URL, nil)
	if _, err := c.Apply(context.Background(), []Source{{Name: "shop.yaml", Data: string(shop(t))}}, false); err != nil {
		t.Fatal(err)
	}
	svc := "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"
	tests := []struct {
		name, method, path, ctype, body string
		wantCode                        int
		wantBody                        string
	}{
		{name: "healthz", method: "GET", path: "/healthz", wantCode: 200, wantBody: "ok\n"},
		{name: "version", method: "GET", path: "/api/v1/version", wantCode: 200, wantBody: `{"version":"test","revision":1}`},
		{name: "list all namespaces", method: "GET", path: "/api/v1/httproutes", wantCode: 200, wantBody: `"kind":"List","metadata":{"resourceVersion":"1"},"items":[{"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute","metadata":{"name":"catalog","namespace":"shop"`},
		{name: "list by alias and namespace", method: "GET", path: "/api/v1/svc?namespace=nowhere", wantCode: 200, wantBody: `"items":[]`},
		{name: "get object", method: "GET", path: "/api/v1/services/shop/cart", wantCode: 200, wantBody: `"spec":{"ports":[{"name":"grpc","port":50051,"targetPort":50051,"protocol":"grpc"}],"visibility":"mesh","workload":"cart"}`},
		{name: "get missing", method: "GET", path: "/api/v1/services/shop/nope", wantCode: 404, wantBody: `{"code":404,"error":"services \"nope\" in namespace \"shop\": not found"}`},
		{name: "unknown kind", method: "GET", path: "/api/v1/pods", wantCode: 404, wantBody: `unknown resource type \"pods\" (known: alertrules, authorizationpolicies, backendpolicies, faultinjections, gateways, grpcroutes, httproutes, peerauthentications, requestauthentications, services, tcproutes, workloads)`},
		{name: "unknown endpoint", method: "GET", path: "/api/v2/x", wantCode: 404, wantBody: `"error":"no API endpoint /api/v2/x"`},
		{name: "wrong method", method: "PUT", path: "/api/v1/services/shop/cart", wantCode: 405, wantBody: `method PUT not allowed on /api/v1/services/shop/cart (allowed: DELETE, GET)`},
		{name: "get on apply", method: "GET", path: "/api/v1/apply", wantCode: 405, wantBody: `(allowed: POST)`},
		{name: "unsupported media type", method: "POST", path: "/api/v1/apply", ctype: "multipart/form-data; boundary=x", body: svc, wantCode: 415, wantBody: `unsupported Content-Type \"multipart/form-data\"`},
		{name: "bad media type", method: "POST", path: "/api/v1/apply", ctype: "a/b/c", body: svc, wantCode: 415, wantBody: `bad Content-Type`},
		{name: "bad dryRun", method: "POST", path: "/api/v1/apply?dryRun=maybe", body: svc, wantCode: 400, wantBody: `query parameter dryRun: want true or false, got \"maybe\"`},
		{name: "empty body", method: "POST", path: "/api/v1/apply", body: "---\n", wantCode: 400, wantBody: `no objects in the request`},
		{name: "body too large", method: "POST", path: "/api/v1/apply", body: strings.Repeat("#", 70<<10), wantCode: 413, wantBody: `request body larger than 65536 bytes`},
		{name: "invalid document", method: "POST", path: "/api/v1/apply?source=x.yaml", ctype: "application/yaml", body: svc + "---\n" + strings.Replace(svc, "port: 80", "prot: 80", 1), wantCode: 422,
			wantBody: `"errors":["x.yaml: document 2 (Service default/a): spec.ports[0].prot: unknown field (did you mean \"port\"?)"]`},
		{name: "dry run", method: "POST", path: "/api/v1/apply?dryRun=true", ctype: "application/json", body: svc, wantCode: 200, wantBody: `{"results":[{"kind":"Service","namespace":"default","name":"a","outcome":"created","resourceVersion":"2","generation":1}],"revision":1,"dryRun":true}`},
		{name: "bad sources body", method: "POST", path: "/api/v1/apply", ctype: SourcesContentType, body: `{"sources":[{"file":"a"}]}`, wantCode: 400, wantBody: `bad application/vnd.weft.sources+json body: json: unknown field \"file\"`},
		{name: "sources name their files", method: "POST", path: "/api/v1/apply", ctype: SourcesContentType,
			body:     `{"sources":[{"name":"a.yaml","data":"apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}]}\n"},{"name":"b.yaml","data":"apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 81}]}\n"}]}`,
			wantCode: 422, wantBody: `"errors":["b.yaml: document 1 (Service default/x): duplicate object: Service default/x is also defined in a.yaml document 1"]`},
		{name: "extra endpoint", method: "GET", path: "/api/v1/proxies", wantCode: 200, wantBody: `[]`},
		{name: "delete missing", method: "DELETE", path: "/api/v1/workloads/shop/nope", wantCode: 404, wantBody: `workloads \"nope\" not found in namespace \"shop\"`},
		{name: "delete", method: "DELETE", path: "/api/v1/wl/shop/cache", wantCode: 200, wantBody: `{"results":[{"kind":"Workload","namespace":"shop","name":"cache","outcome":"deleted"}],"revision":2}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, body := do(t, tc.method, ts.URL+tc.path, tc.ctype, tc.body)
			if code != tc.wantCode || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("%s %s = %d %s\nwant %d containing %s", tc.method, tc.path, code, body, tc.wantCode, tc.wantBody)
			}
			if code != 200 && hdr.Get("Content-Type") != "application/json" {
				t.Errorf("error content type %q", hdr.Get("Content-Type"))
			}
			if code == 405 && hdr.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestApplyFlow(t *testing.T) {
	ctx := context.Background()
	ts, st := newTestServer(t, Options{})
	c := NewClient(strings.TrimPrefix(ts.URL, "http://"), nil)

	res, err := c.Apply(ctx, []Source{{Name: "shop.yaml", Data: string(shop(t))}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 19 || res.Results[0].Outcome != "created" || len(res.Warnings) != 0 || res.Revision != 1 {
		t.Fatalf("first apply: %+v", res)
	}
	res, err = c.Apply(ctx, []Source{{Name: "shop.yaml", Data: string(shop(t))}}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Results {
		if r.Outcome != "unchanged" {
			t.Fatalf("second apply: %+v", r)
		}
	}

	// Warnings are shown, the object is stored.
	res, err = c.Apply(ctx, []Source{{Name: "w.yaml", Data: ("apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: lonely, namespace: shop}\nspec: {upstreams: [{service: ghost, port: 9100}]}\n")}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 2 || res.Warnings[0] != "w.yaml: document 1 (Workload shop/lonely): spec.upstreams[0].service: Service shop/ghost not found" {
		t.Fatalf("warnings = %q", res.Warnings)
	}

	// A failing multi-document apply stores nothing and lists every error.
	rev := st.Revision()
	bad := "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: fresh, namespace: shop}\nspec: {ports: [{port: 80}]}\n---\n" +
		"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: catalog2, namespace: shop}\nspec:\n  parentRefs: [{kind: Service, name: catalog, port: 80}]\n  rules:\n  - backendRefs: [{name: catalog-v1, port: 80, weight: -5}]\n"
	_, err = c.Apply(ctx, []Source{{Name: "bad.yaml", Data: bad}}, false)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 422 {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"bad.yaml: document 2 (HTTPRoute shop/catalog2): spec.rules[0].backendRefs[0].weight: must be >= 0, got -5",
		`bad.yaml: document 2 (HTTPRoute shop/catalog2): spec.rules[0]: conflicts with HTTPRoute shop/catalog (spec.rules[0]): both attach to Service shop/catalog port 80 with the identical match PathPrefix "/"`,
	}
	if strings.Join(ae.Errors, "\n") != strings.Join(want, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(ae.Errors, "\n"), strings.Join(want, "\n"))
	}
	if st.Revision() != rev {
		t.Fatal("a failed apply changed the store")
	}
	if _, err := c.Get(ctx, "services", "shop", "fresh"); err == nil {
		t.Fatal("object of a failed apply stored")
	}

	// Optimistic concurrency through the API.
	obj, err := c.Get(ctx, "svc", "shop", "cart")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := json.Marshal(obj)
	if _, err := c.Apply(ctx, []Source{{Data: strings.Replace(string(doc), `"port":50051`, `"port":50052`, 1)}}, false); err != nil {
		t.Fatal(err)
	}
	_, err = c.Apply(ctx, []Source{{Data: string(doc)}}, false) // stale resourceVersion
	if !errors.As(err, &ae) || ae.Status != 409 || !strings.Contains(ae.Message, "conflict: Service shop/cart was modified") {
		t.Fatalf("stale apply: %v", err)
	}

	// List round trip: what get returns can be applied back unchanged.
	l, err := c.List(ctx, "workloads", "")
	if err != nil {
		t.Fatal(err)
	}
	listDoc, _ := json.Marshal(l)
	res, err = c.Apply(ctx, []Source{{Name: "list", Data: string(listDoc)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != len(l.Items) || res.Results[0].Outcome != "unchanged" {
		t.Fatalf("reapplying the list: %+v", res.Results)
	}

	// Delete by documents.
	res, err = c.DeleteSources(ctx, []Source{{Name: "shop.yaml", Data: string(shop(t))}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) != 19 || res.Results[0].Outcome != "deleted" {
		t.Fatalf("delete: %+v", res)
	}
	if all, _ := st.List(ctx, "", ""); len(all) != 1 { // the lonely workload
		t.Fatalf("%d objects left", len(all))
	}
}

func TestClientUnreachable(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	_, err := NewClient(url, nil).Version(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot reach the weft control plane at "+url) {
		t.Fatalf("err = %v", err)
	}
}
