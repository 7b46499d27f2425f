package proxy

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/bootstrap"
)

// FuzzUpdate feeds arbitrary bytes as Listener, Cluster and
// ClusterLoadAssignment resources through the xDS update path: decoding and
// validation must never panic, and a refused update must leave the proxy's
// configuration version unchanged. Listener addresses are forced to an
// unbindable port so the fuzzer does not open sockets.
func FuzzUpdate(f *testing.F) {
	cfg, err := bootstrap.Parse([]byte(httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: c}`, staticCluster("c", "", "127.0.0.1:1"))))
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range cfg.Listeners {
		b, _ := proto.Marshal(l)
		f.Add(uint8(0), b)
	}
	for _, c := range cfg.Clusters {
		b, _ := proto.Marshal(c)
		f.Add(uint8(1), b)
		b, _ = proto.Marshal(c.GetLoadAssignment())
		f.Add(uint8(2), b)
	}
	f.Fuzz(func(t *testing.T, kind uint8, b []byte) {
		p := New(Options{Listen: refuseListen})
		var typeURL string
		var m proto.Message
		switch kind % 3 {
		case 0:
			typeURL, m = resourcev3.ListenerType, &listenerv3.Listener{}
		case 1:
			typeURL, m = resourcev3.ClusterType, &clusterv3.Cluster{}
		default:
			typeURL, m = resourcev3.EndpointType, &endpointv3.ClusterLoadAssignment{}
		}
		if proto.Unmarshal(b, m) != nil {
			return
		}
		a, err := anypb.New(m)
		if err != nil {
			return
		}
		before := p.version
		if err := p.Update(typeURL, map[string]*anypb.Any{"r": a}); err != nil && p.version != before {
			t.Fatalf("refused update changed the version: %v", err)
		}
	})
}
