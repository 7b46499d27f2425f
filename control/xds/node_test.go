package xds

import (
	"context"
	"net/netip"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/control/registry"
)

func node(id, cluster string, meta map[string]any) *corev3.Node {
	st, err := structpb.NewStruct(meta)
	if err != nil {
		panic(err)
	}
	return &corev3.Node{Id: id, Cluster: cluster, Metadata: st}
}

func TestParseNode(t *testing.T) {
	full := map[string]any{
		"namespace": "shop", "service_account": "catalog", "workload": "catalog",
		"instance_ip": "10.0.0.7", "instance_port": 15006.0, "app_port": "8080", "http_proxy_port": 15001.0,
		"protocol": "http", "labels": map[string]any{"version": "v2", "app": "catalog"},
		"locality": "eu/eu-1a", "role": "sidecar", "admin_addr": "127.0.0.1:15000",
	}
	tests := []struct {
		name    string
		node    *corev3.Node
		want    ProxyInfo
		wantErr string
	}{
		{
			name: "full sidecar",
			node: node("catalog-0.shop", "catalog", full),
			want: ProxyInfo{
				NodeID: "catalog-0.shop", Service: "catalog", Namespace: "shop", ServiceAccount: "catalog", Workload: "catalog",
				Role: RoleSidecar, InstanceAddr: netip.MustParseAddrPort("10.0.0.7:15006"), AppPort: 8080, HTTPProxyPort: 15001,
				Protocol: "http", Labels: map[string]string{"version": "v2", "app": "catalog"}, Locality: registry.Locality{Region: "eu", Zone: "eu-1a"},
				AdminAddr: "127.0.0.1:15000",
			},
		},
		{
			name: "minimal gateway",
			node: node("gw-0.edge", "", map[string]any{"namespace": "edge", "role": "gateway"}),
			want: ProxyInfo{NodeID: "gw-0.edge", Namespace: "edge", ServiceAccount: "default", Role: RoleGateway},
		},
		{name: "nil node", node: nil, wantErr: "node is missing"},
		{name: "no id", node: node("", "x", nil), wantErr: "node.id is empty"},
		{name: "no namespace", node: node("a", "x", map[string]any{}), wantErr: `node "a": metadata namespace is required`},
		{name: "namespace not a string", node: node("a", "x", map[string]any{"namespace": 3.0}), wantErr: `node "a": metadata namespace: want a string, got a number`},
		{name: "bad role", node: node("a", "x", map[string]any{"namespace": "n", "role": "mesh"}), wantErr: `node "a": metadata role: "mesh" is not sidecar or gateway`},
		{name: "ip without port", node: node("a", "x", map[string]any{"namespace": "n", "instance_ip": "10.0.0.1"}), wantErr: `node "a": metadata instance_ip and instance_port must be set together`},
		{name: "bad ip", node: node("a", "x", map[string]any{"namespace": "n", "instance_ip": "host", "instance_port": 1.0}), wantErr: `node "a": metadata instance_ip: "host" is not an IP address`},
		{name: "fractional port", node: node("a", "x", map[string]any{"namespace": "n", "app_port": 80.5}), wantErr: `node "a": metadata app_port: 80.5 is not a port (1-65535)`},
		{name: "port out of range", node: node("a", "x", map[string]any{"namespace": "n", "http_proxy_port": 70000.0}), wantErr: `node "a": metadata http_proxy_port: 70000 is not a port (1-65535)`},
		{name: "port as bool", node: node("a", "x", map[string]any{"namespace": "n", "instance_port": true}), wantErr: `node "a": metadata instance_port: want a port number, got a bool`},
		{name: "labels not a struct", node: node("a", "x", map[string]any{"namespace": "n", "labels": "v=1"}), wantErr: `node "a": metadata labels: want a struct of strings, got a string`},
		{name: "label not a string", node: node("a", "x", map[string]any{"namespace": "n", "labels": map[string]any{"v": 1.0}}), wantErr: `node "a": metadata labels.v: want a string, got a number`},
		{name: "bad locality", node: node("a", "x", map[string]any{"namespace": "n", "locality": "a/b/c/d"}), wantErr: `node "a": metadata locality: locality "a/b/c/d": want region/zone/subzone, got 4 parts`},
		{name: "admin addr without port", node: node("a", "x", map[string]any{"namespace": "n", "admin_addr": "127.0.0.1"}), wantErr: `node "a": metadata admin_addr: "127.0.0.1" is not host:port`},
		{name: "admin addr port zero", node: node("a", "x", map[string]any{"namespace": "n", "admin_addr": "127.0.0.1:0"}), wantErr: `node "a": metadata admin_addr: "127.0.0.1:0" is not host:port`},
		{name: "admin addr not a string", node: node("a", "x", map[string]any{"namespace": "n", "admin_addr": 15000.0}), wantErr: `node "a": metadata admin_addr: want a string, got a number`},
		{name: "instance without service", node: node("a", "", map[string]any{"namespace": "n", "instance_ip": "10.0.0.1", "instance_port": 1.0}), wantErr: `node "a": node.cluster (the service name) is required with instance_ip`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNode(tt.node)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.NodeID != tt.want.NodeID || got.Service != tt.want.Service || got.Namespace != tt.want.Namespace ||
				got.ServiceAccount != tt.want.ServiceAccount || got.Workload != tt.want.Workload || got.Role != tt.want.Role ||
				got.InstanceAddr != tt.want.InstanceAddr || got.AppPort != tt.want.AppPort || got.HTTPProxyPort != tt.want.HTTPProxyPort ||
				got.Protocol != tt.want.Protocol || got.Locality != tt.want.Locality || got.AdminAddr != tt.want.AdminAddr || len(got.Labels) != len(tt.want.Labels) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			for k, v := range tt.want.Labels {
				if got.Labels[k] != v {
					t.Fatalf("label %s = %q, want %q", k, got.Labels[k], v)
				}
			}
		})
	}
}

func TestOwnInstance(t *testing.T) {
	p, err := ParseNode(node("catalog-0.shop", "catalog", map[string]any{"namespace": "shop", "instance_ip": "10.0.0.7", "instance_port": 15006.0, "service_account": "cat", "workload": "catalog-v1"}))
	if err != nil {
		t.Fatal(err)
	}
	in, ok := p.OwnInstance()
	if !ok || in.Service != (registry.ServiceKey{Namespace: "shop", Name: "catalog"}) || in.Addr.String() != "10.0.0.7:15006" || in.Identity != "cat" || in.Workload != "catalog-v1" {
		t.Fatalf("OwnInstance() = %+v, %v", in, ok)
	}
	gw, _ := ParseNode(node("gw", "gw", map[string]any{"namespace": "edge", "role": "gateway", "instance_ip": "10.0.0.8", "instance_port": 8080.0}))
	if _, ok := gw.OwnInstance(); ok {
		t.Fatal("a gateway registered an instance")
	}
}

func FuzzParseNode(f *testing.F) {
	for _, n := range []*corev3.Node{
		node("catalog-0.shop", "catalog", map[string]any{"namespace": "shop", "instance_ip": "10.0.0.7", "instance_port": 15006.0, "labels": map[string]any{"v": "1"}, "locality": "a/b"}),
		node("gw", "", map[string]any{"namespace": "edge", "role": "gateway", "app_port": "80"}),
		node("x", "y", map[string]any{"namespace": "n", "instance_ip": "fe80::1%eth0", "instance_port": "65535"}),
	} {
		b, err := proto.Marshal(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var n corev3.Node
		if err := proto.Unmarshal(b, &n); err != nil {
			return
		}
		p, err := ParseNode(&n)
		if err != nil {
			return
		}
		if p.NodeID == "" || p.Namespace == "" || (p.Role != RoleSidecar && p.Role != RoleGateway) {
			t.Fatalf("accepted an invalid identity: %+v", p)
		}
		if in, ok := p.OwnInstance(); ok {
			if in.Addr.Port() == 0 || !in.Addr.Addr().IsValid() || in.Service.Name == "" {
				t.Fatalf("accepted an invalid instance: %+v", in)
			}
		}
	})
}

func TestServerAuthenticate(t *testing.T) {
	reg := registry.New(registry.Options{})
	defer reg.Close()
	registered := false
	s, err := New(Options{
		Translator: func(ProxyInfo) (Resources, error) { return Resources{}, nil },
		Registry:   reg,
		Auth:       StaticTokens{"good": {Subject: "team", Namespace: "shop"}},
		Register:   func(grpc.ServiceRegistrar) { registered = true },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if !registered {
		t.Fatal("Options.Register was not called")
	}
	tests := []struct {
		name    string
		md      metadata.MD
		want    Identity
		wantErr string
	}{
		{"valid", metadata.Pairs("authorization", "Bearer good"), Identity{Subject: "team", Namespace: "shop"}, ""},
		{"missing", nil, Identity{}, "rpc error: code = Unauthenticated desc = missing authorization metadata"},
		{"unknown", metadata.Pairs("authorization", "Bearer bad"), Identity{}, "rpc error: code = Unauthenticated desc = authenticate: unknown token"},
		{"not bearer", metadata.Pairs("authorization", "Basic good"), Identity{}, `rpc error: code = Unauthenticated desc = authorization metadata: want "Bearer <token>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(context.Background(), tt.md)
			got, err := s.Authenticate(ctx)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Authenticate = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}
