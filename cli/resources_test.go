//go:build !proxyonly

package cli

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/control"
)

// startControl runs a real control plane on a free loopback port.
func startControl(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- control.Run(ctx, control.Config{
			StateDir: t.TempDir(), APIAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
			OnReady: func(p *control.Plane) { ready <- p.APIAddr.String() },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("control plane: %v", err)
		}
	})
	select {
	case addr := <-ready:
		return addr
	case err := <-errc:
		t.Fatalf("control plane: %v", err)
	}
	return ""
}

type result struct {
	code     int
	out, err string
}

func run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(stdin), &out, &errb)
	return result{code, out.String(), errb.String()}
}

func (r result) must(t *testing.T, wantCode int, outHas, errHas []string) {
	t.Helper()
	if r.code != wantCode {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, wantCode, r.out, r.err)
	}
	for _, w := range outHas {
		if !strings.Contains(r.out, w) {
			t.Errorf("stdout does not contain %q:\n%s", w, r.out)
		}
	}
	for _, w := range errHas {
		if !strings.Contains(r.err, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, r.err)
		}
	}
}

const shopFile = "../control/resource/testdata/shop.yaml"

func TestResourceCommandsEndToEnd(t *testing.T) {
	addr := startControl(t)
	srv := "--server=" + addr

	// Apply a directory holding the multi-document shop.
	dir := t.TempDir()
	b, err := os.ReadFile(shopFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a manifest"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "", "apply", "-f", dir, srv).must(t, 0,
		[]string{"service/frontend created\n", "httproute/catalog created\n", "grpcroute/cart created\n", "tcproute/cache created\n", "gateway/edge created\n", "backendpolicy/catalog created\n"}, nil)
	r := run(t, "", "apply", "-f", filepath.Join(dir, "shop.yaml"), srv)
	r.must(t, 0, []string{"service/frontend unchanged\n"}, nil)
	if strings.Contains(r.out, "created") || strings.Contains(r.out, "configured") {
		t.Errorf("second apply changed something:\n%s", r.out)
	}

	// Tables.
	r = run(t, "", "get", "svc", "-n", "shop", srv)
	r.must(t, 0, []string{"NAME         PORTS          VISIBILITY   AGE\n", "catalog-v1   80:8080/http   mesh", "cart         50051/grpc     mesh"}, nil)
	run(t, "", "get", "httproutes", "-A", "-o", "wide", srv).must(t, 0,
		[]string{"NAMESPACE   NAME       HOSTNAMES                    PARENTS              AGE", "shop        catalog    <none>                       service/catalog:80", "catalog-v1:80(90),catalog-v2:80(10)"}, nil)
	run(t, "", "get", "wl", "frontend", "-n", "shop", "-o", "wide", srv).must(t, 0, []string{"frontend   frontend   2          <service's>", "catalog:9001,cart:9002,checkout:9003   ./bin/frontend --listen :8080"}, nil)
	run(t, "", "get", "svc", srv).must(t, 0, nil, []string{"No resources found in default namespace."})

	// YAML and JSON output; what get prints applies back unchanged.
	r = run(t, "", "get", "httproute", "catalog", "-n", "shop", "-o", "yaml", srv)
	r.must(t, 0, []string{"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n", "weight: 90", "resourceVersion: \"1\"", "generation: 1"}, nil)
	run(t, r.out, "apply", "-f", "-", srv).must(t, 0, []string{"httproute/catalog unchanged"}, nil)
	r = run(t, "", "get", "bp", "-A", "-o", "json", srv)
	r.must(t, 0, []string{`"kind": "List"`, `"policy": "peak_ewma"`}, nil)
	run(t, r.out, "apply", "-f", "-", srv).must(t, 0, []string{"backendpolicy/catalog unchanged"}, nil)

	// Describe shows who refers to a Service.
	run(t, "", "describe", "svc", "catalog", "-n", "shop", srv).must(t, 0, []string{
		"Name:             catalog\n", "Kind:             Service\n", "Spec:\n  ports:\n",
		"Referenced By:\n", "workload/catalog-v1 (shop) backs it", "workload/frontend (shop) upstream on port 9001",
		"backendpolicy/catalog (shop) targets it", "httproute/catalog (shop) parent",
	}, nil)

	// A failing apply prints every error with its file, document and path,
	// exits 1 and stores nothing.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: pay, namespace: shop}\nspec: {ports: [{port: 80}]}\n---\n"+
		"apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: pay, namespace: shop}\nspec: {replicas: two, upstreams: [{service: cart, prot: 9}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "", "apply", "-f", bad, srv).must(t, 1, nil, []string{
		"error: " + bad + ": document 2 (Workload shop/pay): spec.replicas: expected an integer, got string \"two\"\n",
		"error: " + bad + ": document 2 (Workload shop/pay): spec.upstreams[0].prot: unknown field (did you mean \"port\"?)\n",
	})
	run(t, "", "get", "svc", "pay", "-n", "shop", srv).must(t, 1, nil, []string{`error: services "pay" in namespace "shop": not found`})

	// Warnings go to stderr, the apply succeeds.
	run(t, "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: solo}\nspec: {upstreams: [{service: ghost, port: 9100}]}\n", "apply", "-f", "-", "--dry-run", srv).must(t, 0,
		[]string{"workload/solo created (dry run)"}, []string{"Warning: -: document 1 (Workload default/solo): spec.upstreams[0].service: Service default/ghost not found"})

	// The server comes from WEFT_SERVER too.
	t.Setenv(serverEnv, addr)
	run(t, "", "get", "gtw", "-n", "shop").must(t, 0, []string{"edge   weft    http:8080/HTTP"}, nil)

	// Delete by kind and name, then by file.
	run(t, "", "delete", "tcproute", "cache", "-n", "shop").must(t, 0, []string{"tcproute/cache deleted\n"}, nil)
	run(t, "", "delete", "svc", "nope", "-n", "shop").must(t, 1, nil, []string{`Error from server (NotFound): services "nope" not found in namespace "shop"`})
	r = run(t, "", "delete", "-f", shopFile)
	r.must(t, 1, []string{"service/frontend deleted\n", "httproute/catalog deleted\n"}, []string{`Error from server (NotFound): tcproutes "cache" not found in namespace "shop"`})
	run(t, "", "get", "svc", "-A").must(t, 0, nil, []string{"No resources found"})
}

func TestResourceCommandErrors(t *testing.T) {
	t.Setenv(serverEnv, "127.0.0.1:1")
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"get", "pods"}, `weft: unknown resource type "pods" (known: alertrules, authorizationpolicies, backendpolicies, faultinjections, gateways, grpcroutes, httproutes, peerauthentications, requestauthentications, services, tcproutes, workloads)`},
		{[]string{"get", "svc", "-o", "xml"}, `weft: --output: want yaml, json or wide, got "xml"`},
		{[]string{"apply"}, "weft: no input: use -f FILE, -f DIR or -f -"},
		{[]string{"apply", "-f", "/nonexistent/x.yaml"}, "weft: stat /nonexistent/x.yaml: no such file or directory"},
		{[]string{"delete", "svc"}, "weft: give -f FILE or KIND NAME"},
		{[]string{"get", "svc"}, "error: cannot reach the weft control plane at http://127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, "", tc.args...)
			if r.code != 1 || !strings.Contains(r.err, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", r.code, r.err, tc.wantErr)
			}
		})
	}
}

func TestReadSourcesDirectories(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "b.yml"), filepath.Join(dir, "a.json"), filepath.Join(sub, "c.yaml"), filepath.Join(dir, "x.txt")} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names := func(recursive bool) string {
		srcs, err := readSources([]string{dir}, recursive, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range srcs {
			out = append(out, strings.TrimPrefix(s.Name, dir+"/"))
		}
		return strings.Join(out, " ")
	}
	if got := names(false); got != "a.json b.yml" {
		t.Errorf("non-recursive: %s", got)
	}
	if got := names(true); got != "a.json b.yml sub/c.yaml" {
		t.Errorf("recursive: %s", got)
	}
	if _, err := readSources([]string{sub + "/.."}, false, nil); err != nil {
		t.Error(err)
	}
	empty := t.TempDir()
	if _, err := readSources([]string{empty}, false, nil); err == nil || !strings.Contains(err.Error(), "no .yaml, .yml or .json files (use -R for subdirectories)") {
		t.Errorf("empty dir: %v", err)
	}
}

func TestResilienceResourceCommands(t *testing.T) {
	srv := "--server=" + startControl(t)
	in := `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: api, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: weft.dev/v1alpha1
kind: BackendPolicy
metadata: {name: api, namespace: shop}
spec:
  targetRef: {name: api}
  retryBudget: {}
  outlierDetection: {consecutiveGatewayErrors: 2, failurePercentage: {}}
  healthCheck: {http: {path: /healthz}}
---
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: slow, namespace: shop}
spec:
  delay: {fixedDelay: 250ms, percent: 10}
  abort: {grpcStatus: 14}
  headers: [{name: x-chaos, value: "on"}, {name: x-user, present: true}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: api}]
  rules:
  - filters:
    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: slow}}
    - {type: RequestMirror, requestMirror: {backendRef: {name: shadow, port: 80}, percent: 5}}
    backendRefs: [{name: api, port: 80}]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: shadow, namespace: shop}
spec: {ports: [{port: 80}]}
`
	run(t, in, "apply", "-f", "-", srv).must(t, 0, []string{"faultinjection/slow created\n", "backendpolicy/api created\n"}, nil)
	run(t, "", "get", "fi", "-n", "shop", "-o", "wide", srv).must(t, 0, []string{
		"NAME   DELAY         ABORT     AGE", "slow   250ms (10%)   grpc 14", "x-chaos=on,x-user\n",
	}, nil)
	run(t, "", "get", "bp", "api", "-n", "shop", "-o", "wide", srv).must(t, 0, []string{"5xx=5,gateway=2,failure-percentage", "http /healthz"}, nil)
	run(t, "", "describe", "svc", "shadow", "-n", "shop", srv).must(t, 0, []string{"httproute/api (shop) mirror"}, nil)
	run(t, "", "get", "faultinjections", "slow", "-n", "shop", "-o", "yaml", srv).must(t, 0, []string{"kind: FaultInjection", "fixedDelay: 250ms", "percent: 100"}, nil)

	// A route naming a FaultInjection that does not exist is refused.
	dangling := "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: other, namespace: shop}\nspec:\n  parentRefs: [{kind: Service, name: api}]\n" +
		"  rules:\n  - matches: [{path: {value: /x}}]\n    filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: gone}}]\n    backendRefs: [{name: api, port: 80}]\n"
	run(t, dangling, "apply", "-f", "-", srv).must(t, 1, nil, []string{"spec.rules[0].filters[0].extensionRef: FaultInjection shop/gone not found"})
	// One stored earlier resolves.
	run(t, strings.Replace(dangling, "name: gone", "name: slow", 1), "apply", "-f", "-", srv).must(t, 0, []string{"httproute/other created\n"}, nil)
}
