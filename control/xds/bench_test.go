package xds

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/registry"
)

// fanoutProxy is one simulated proxy: a delta ADS stream on its own
// connection that ACKs everything and reports each EDS update of the
// watched cluster.
type fanoutProxy struct {
	conn   *grpc.ClientConn
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
}

type fanoutEvent struct {
	at    time.Time
	bytes int
}

// BenchmarkPushFanout connects N proxies over real gRPC delta streams (one
// connection each, loopback), each reaching 50 services, then changes one
// instance of one service per iteration and measures the time until every
// proxy received the new ClusterLoadAssignment. Reports p50/p99 over all
// (iteration, proxy) deliveries and the bytes each proxy received per
// change. The debouncer is set to 1ms quiet so that it does not dominate.
func BenchmarkPushFanout(b *testing.B) {
	const proxies = 1000
	const services = 50
	reg := registry.New(registry.Options{})
	defer reg.Close()
	var keys []registry.ServiceKey
	for i := range services {
		k := registry.ServiceKey{Namespace: "shop", Name: fmt.Sprintf("svc%d", i)}
		keys = append(keys, k)
		var ins []registry.Instance
		for j := range 4 {
			ins = append(ins, registry.Instance{Service: k, Addr: ipPort(fmt.Sprintf("10.%d.0.%d:8080", i, j+1))})
		}
		if err := reg.SetStatic(k.String(), ins); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(Options{
		Translator:    meshTranslator(reg, keys...),
		Registry:      reg,
		Auth:          StaticTokens{testToken: {}},
		DebounceQuiet: time.Millisecond,
		DebounceMax:   5 * time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		srv.Stop()
		<-served
	}()

	watched := "outbound|80||svc0.shop"
	var edsNames []string
	for _, k := range keys {
		edsNames = append(edsNames, fmt.Sprintf("outbound|80||%s.%s", k.Name, k.Namespace))
	}
	events := make(chan fanoutEvent, proxies)
	ctx, cancel := context.WithCancel(authCtx(context.Background(), testToken))
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for i := range proxies {
		conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		stream, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n := node(fmt.Sprintf("web-%d.shop", i), "web", map[string]any{"namespace": "shop"})
		for _, req := range []*discoveryv3.DeltaDiscoveryRequest{
			{Node: n, TypeUrl: clusterType},
			{TypeUrl: listenerType},
			{TypeUrl: endpointType, ResourceNamesSubscribe: edsNames},
			{TypeUrl: routeType, ResourceNamesSubscribe: []string{"outbound|80"}},
		} {
			if err := stream.Send(req); err != nil {
				b.Fatal(err)
			}
			r, err := stream.Recv()
			if err != nil {
				b.Fatal(err)
			}
			if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
				b.Fatal(err)
			}
		}
		wg.Go(func() {
			for {
				r, err := stream.Recv()
				if err != nil {
					return
				}
				now := time.Now()
				if r.GetTypeUrl() == endpointType {
					for _, res := range r.GetResources() {
						var cla endpointv3.ClusterLoadAssignment
						if res.GetResource().UnmarshalTo(&cla) == nil && cla.GetClusterName() == watched {
							events <- fanoutEvent{at: now, bytes: proto.Size(r)}
						}
					}
				}
				if stream.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}) != nil {
					return
				}
			}
		})
	}

	var lat []time.Duration
	var bytes, deliveries int
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		ins := []registry.Instance{{Service: keys[0], Addr: ipPort(fmt.Sprintf("10.200.%d.%d:8080", i/250, i%250+1))}}
		start := time.Now()
		if err := reg.SetStatic("bench", ins); err != nil {
			b.Fatal(err)
		}
		for range proxies {
			select {
			case ev := <-events:
				lat = append(lat, ev.at.Sub(start))
				bytes += ev.bytes
				deliveries++
			case <-time.After(30 * time.Second):
				b.Fatalf("iteration %d: only %d of %d proxies received the update", i, deliveries%proxies, proxies)
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(bytes)/float64(deliveries), "bytes/proxy")
	b.ReportMetric(proxies, "proxies")
}
