package proxy

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

// TestGatewayPortsAreExclusive: a second gateway proxy cannot bind a port
// a live one holds: its update is refused, naming the address in use.
func TestGatewayPortsAreExclusive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	tcp, _ := anypb.New(&tcpv3.TcpProxy{StatPrefix: "gw", ClusterSpecifier: &tcpv3.TcpProxy_Cluster{Cluster: "none"}})
	lis, _ := anypb.New(&listenerv3.Listener{
		Name:         "gw",
		Address:      &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: tcpFilterName, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: tcp}}}}},
	})
	start := func(role string) error {
		p := New(Options{Role: role})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p.Shutdown(ctx)
		})
		return p.Update(resourcev3.ListenerType, map[string]*anypb.Any{"gw": lis})
	}
	if err := start("gateway"); err != nil {
		t.Fatal(err)
	}
	err = start("gateway")
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("second gateway on port %s: err = %v, want address already in use", strconv.Itoa(port), err)
	}
}
