package up

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/resource"
)

const planMesh = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog, namespace: shop}
spec:
  ports: [{name: grpc, port: 80, protocol: grpc}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog, namespace: shop}
spec:
  build: {go: ./catalog}
  args: [--v2]
  replicas: 2
  env: {B: "2", A: "1"}
  labels: {version: v2}
  serviceAccount: cat
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: tool, namespace: shop}
spec:
  command: [./bin/tool, -x]
  service: catalog
  protocol: http
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: elsewhere, namespace: shop}
spec:
  service: catalog
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  gatewayClassName: weft
  listeners:
  - {name: http, port: 8080, protocol: HTTP}
  - {name: admin, port: 8080, protocol: HTTP, hostname: admin.example.com}
  - {name: db, port: 6000, protocol: TCP}
`

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadAndUnits(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mesh", "shop.yaml"), planMesh)
	writeFile(t, filepath.Join(dir, "mesh", "README.md"), "not a mesh file")
	objs, _, err := Load(context.Background(), []string{filepath.Join(dir, "mesh")})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*resource.Object{}
	for i := range objs {
		o := &objs[i]
		if got := o.Annotations[AnnotationDir]; got != filepath.Join(dir, "mesh") {
			t.Errorf("%s: dir annotation %q", o.Key(), got)
		}
		byName[string(o.Kind)+"/"+o.Name] = o
	}
	env := &unitEnv{stateDir: "/state", cwd: "/cwd", weft: "/bin/weft", xdsAddr: "127.0.0.1:15010", joinToken: "tok"}
	services := map[[2]string]*v1alpha1.ServiceSpec{{"shop", "catalog"}: byName["Service/catalog"].Service()}

	cat := env.workloadUnit(byName["Workload/catalog"], services)
	if cat.App.Path != "/state/bin/shop-catalog" || strings.Join(cat.App.Args, " ") != "--v2" || cat.App.Dir != filepath.Join(dir, "mesh") {
		t.Errorf("catalog command: %+v", cat.App)
	}
	if strings.Join(cat.App.Env, " ") != "A=1 B=2" || cat.Replicas != 2 || cat.Protocol != "grpc" || cat.ServiceAccount != "cat" || cat.Service != "catalog" {
		t.Errorf("catalog unit: %+v", cat)
	}
	in := Instance{Namespace: "shop", Unit: "catalog", Index: 1, Name: "catalog-1", NodeID: "catalog-1.shop", Ports: Ports{App: 1001, Inbound: 1002, HTTPProxy: 1003, Admin: 1004}}
	pc := cat.Proxy(in)
	want := "proxy --xds-addr 127.0.0.1:15010 --node-id catalog-1.shop --workload catalog --service catalog --namespace shop " +
		"--service-account cat --protocol grpc --app-port 1001 --inbound-port 1002 --http-proxy-port 1003 --admin-addr 127.0.0.1:1004 --labels app=catalog,version=v2"
	if pc.Path != "/bin/weft" || strings.Join(pc.Args, " ") != want || !slices.Contains(pc.Env, "WEFT_JOIN_TOKEN=tok") {
		t.Errorf("proxy command:\n%s %s %v\nwant %s", pc.Path, strings.Join(pc.Args, " "), pc.Env, want)
	}
	if strings.Contains(strings.Join(pc.Args, " "), "tok") {
		t.Error("the join token is on the command line")
	}

	tool := env.workloadUnit(byName["Workload/tool"], services)
	if tool.App.Path != filepath.Join(dir, "mesh", "bin", "tool") || strings.Join(tool.App.Args, " ") != "-x" || tool.Protocol != "http" || tool.ServiceAccount != "default" {
		t.Errorf("tool unit: %+v %+v", tool, tool.App)
	}
	if Runnable(byName["Workload/elsewhere"].Workload()) {
		t.Error("a Workload without command or build is runnable")
	}

	// The revision ignores replicas and follows everything else.
	c := byName["Workload/catalog"].DeepCopy()
	n := int32(5)
	c.Workload().Replicas = &n
	if env.workloadUnit(&c, services).Revision != cat.Revision {
		t.Error("replicas changed the revision")
	}
	c.Workload().Args = []string{"--v3"}
	if env.workloadUnit(&c, services).Revision == cat.Revision {
		t.Error("args did not change the revision")
	}

	gw := byName["Gateway/edge"]
	if got := GatewayURLs(gw); strings.Join(got, " ") != "http://127.0.0.1:8080/" {
		t.Errorf("gateway urls %v", got)
	}
	if got := GatewayPorts(gw); !slices.Equal(got, []int{8080, 6000}) {
		t.Errorf("gateway ports %v", got)
	}
	gu := env.gatewayUnit(gw)
	gc := gu.Proxy(Instance{NodeID: "edge-0.shop", Ports: Ports{Admin: 7}})
	if gu.App != nil || strings.Join(gc.Args, " ") != "proxy --xds-addr 127.0.0.1:15010 --role gateway --node-id edge-0.shop --workload edge --namespace shop --service-account edge --labels gateway.networking.k8s.io/gateway-name=edge --admin-addr 127.0.0.1:7" {
		t.Errorf("gateway unit %+v args %v", gu, gc.Args)
	}
	// With the control plane's API known, every proxy sends its telemetry
	// there over OTLP/HTTP.
	env.telemetryURL = "http://127.0.0.1:7070"
	for _, args := range [][]string{cat.Proxy(in).Args, env.gatewayUnit(gw).Proxy(Instance{NodeID: "edge-0.shop"}).Args} {
		if got := strings.Join(args[len(args)-2:], " "); got != "--telemetry-addr http://127.0.0.1:7070" {
			t.Errorf("proxy args end with %q, want the OTLP/HTTP address", got)
		}
	}
}

func TestOTLPHTTPURL(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7070}, "http://127.0.0.1:7070"},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 7071}, "http://127.0.0.1:7071"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 7072}, "http://[::1]:7072"},
		{&net.UnixAddr{Name: "/tmp/api.sock", Net: "unix"}, ""},
	} {
		if got := otlpHTTPURL(tc.addr); got != tc.want {
			t.Errorf("otlpHTTPURL(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec:\n  build: {go: ./a}\n  command: [a]\n  replicas: -1\n")
	typo := filepath.Join(dir, "typo.yaml")
	writeFile(t, typo, "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec:\n  comand: [a]\n")
	clash := filepath.Join(dir, "clash.yaml")
	writeFile(t, clash, "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: edge}\nspec: {command: [a]}\n---\n"+
		"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec: {gatewayClassName: weft, listeners: [{name: http, port: 8080, protocol: HTTP}]}\n")
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	tests := []struct {
		name  string
		paths []string
		want  []string
	}{
		{"no files", nil, []string{"no mesh file: use -f FILE or -f DIR"}},
		{"missing", []string{filepath.Join(dir, "nope.yaml")}, []string{"mesh file: stat " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"}},
		{"empty folder", []string{empty}, []string{"mesh folder " + empty + ": no .yaml, .yml or .json files"}},
		{"field errors", []string{bad}, []string{
			bad + ": document 1 (Workload default/a): spec.command: set either command or build, not both",
			"spec.replicas: must be in 0-10000, got -1",
		}},
		{"unknown field", []string{typo}, []string{typo + `: document 1 (Workload default/a): spec.comand: unknown field (did you mean "command"?)`}},
		{"gateway and workload share a name", []string{clash}, []string{"Gateway default/edge: metadata.name: a Workload default/edge exists too"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(context.Background(), tc.paths)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain\n%s", err, w)
				}
			}
		})
	}
}
