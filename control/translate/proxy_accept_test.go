package translate

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy"
)

// loopbackListen binds every listener on an ephemeral loopback port, so
// tests never need a fixed port.
func loopbackListen(string, string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// newProxy starts a proxy that is shut down when the test ends.
func newProxy(t *testing.T) *proxy.Proxy {
	t.Helper()
	p := proxy.New(proxy.Options{Listen: loopbackListen})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p
}

// push sends out to p as the xDS server would: CDS, EDS, LDS, RDS. It
// returns the first refusal.
func push(t *testing.T, p *proxy.Proxy, out xds.Resources) error {
	t.Helper()
	pack := func(typeURL string, named map[string]proto.Message) map[string]*anypb.Any {
		set := make(map[string]*anypb.Any, len(named))
		for name, m := range named {
			a, err := anypb.New(m)
			if err != nil {
				t.Fatalf("pack %s %q: %v", typeURL, name, err)
			}
			set[name] = a
		}
		return set
	}
	byName := func(n int, name func(int) string, msg func(int) proto.Message) map[string]proto.Message {
		m := make(map[string]proto.Message, n)
		for i := range n {
			m[name(i)] = msg(i)
		}
		return m
	}
	steps := []struct {
		typeURL string
		set     map[string]proto.Message
	}{
		{resourcev3.ClusterType, byName(len(out.Clusters), func(i int) string { return out.Clusters[i].GetName() }, func(i int) proto.Message { return out.Clusters[i] })},
		{resourcev3.EndpointType, byName(len(out.Endpoints), func(i int) string { return out.Endpoints[i].GetClusterName() }, func(i int) proto.Message { return out.Endpoints[i] })},
		{resourcev3.ListenerType, byName(len(out.Listeners), func(i int) string { return out.Listeners[i].GetName() }, func(i int) proto.Message { return out.Listeners[i] })},
		{resourcev3.RouteType, byName(len(out.Routes), func(i int) string { return out.Routes[i].GetName() }, func(i int) proto.Message { return out.Routes[i] })},
	}
	for _, s := range steps {
		if err := p.Update(s.typeURL, pack(s.typeURL, s.set)); err != nil {
			return fmt.Errorf("proxy refused the translated %s: %w", s.typeURL[strings.LastIndex(s.typeURL, ".")+1:], err)
		}
	}
	return nil
}

// TestProxyAcceptsTranslation feeds every golden case's output to a real
// proxy: whatever the control plane produces, weft's proxy must ACK.
func TestProxyAcceptsTranslation(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, path := range cases {
		if strings.HasPrefix(filepath.Base(path), "_") {
			continue
		}
		ran++
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			out, err := Translate(loadCase(t, path))
			if err != nil {
				t.Fatal(err)
			}
			if err := push(t, newProxy(t), out); err != nil {
				t.Fatal(err)
			}
		})
	}
	if ran == 0 {
		t.Fatal("no golden cases")
	}
}

// TestFaultTakesEffect checks that a translated FaultInjection is not only
// accepted but applied: a request carrying the matched header is aborted
// with the configured status, one without it reaches the backend.
func TestFaultTakesEffect(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	defer backend.Close()
	objs, err := resource.Decode("fault.yaml", []byte(`
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: echo, namespace: apps}
spec: {ports: [{port: 80}]}
---
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: teapot, namespace: apps}
spec:
  abort: {httpStatus: 418}
  headers: [{name: x-teapot, present: true}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: apps}
spec:
  parentRefs: [{kind: Service, name: echo}]
  rules:
  - filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: teapot}}]
    backendRefs: [{name: echo, port: 80}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resource.Validate(context.Background(), objs, nil); err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Options{})
	defer reg.Close()
	key := registry.ServiceKey{Namespace: "apps", Name: "echo"}
	if err := reg.SetStatic("fixture", []registry.Instance{{Service: key, Addr: netip.MustParseAddrPort(backend.Listener.Addr().String())}}); err != nil {
		t.Fatal(err)
	}
	out, err := Translate(Input{
		Proxy:     xds.ProxyInfo{NodeID: "web-0.apps", Namespace: "apps", Role: xds.RoleSidecar, HTTPProxyPort: 15001},
		Resources: Index(objs),
		Registry:  reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t)
	if err := push(t, p, out); err != nil {
		t.Fatal(err)
	}
	addr, ok := p.ListenerAddr(HTTPProxyName)
	if !ok {
		t.Fatal("no http_proxy listener")
	}
	tests := []struct {
		name   string
		header bool
		want   int
	}{
		{name: "matched header aborts", header: true, want: http.StatusTeapot},
		{name: "unmatched request is forwarded", header: false, want: http.StatusOK},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://"+addr.String()+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = "echo"
			if tc.header {
				req.Header.Set("X-Teapot", "1")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
