package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// xdsServer is a go-control-plane ADS server on a fixed loopback address
// that records NACKs.
type xdsServer struct {
	addr  string
	cache cachev3.SnapshotCache
	grpc  *grpc.Server
	nacks chan string
}

func startXDS(t *testing.T, addr string, cache cachev3.SnapshotCache, nacks chan string) *xdsServer {
	t.Helper()
	var lis net.Listener
	var err error
	// The previous server on this address may still be releasing it.
	for i := 0; i < 50; i++ {
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	cb := serverv3.CallbackFuncs{
		StreamDeltaRequestFunc: func(_ int64, r *discoveryv3.DeltaDiscoveryRequest) error {
			if r.GetErrorDetail() != nil {
				select {
				case nacks <- r.GetErrorDetail().GetMessage():
				default:
				}
			}
			return nil
		},
	}
	srv := serverv3.NewServer(context.Background(), cache, cb)
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, srv)
	go g.Serve(lis)
	s := &xdsServer{addr: lis.Addr().String(), cache: cache, grpc: g, nacks: nacks}
	t.Cleanup(g.Stop)
	return s
}

func ads() *corev3.ConfigSource {
	return &corev3.ConfigSource{ResourceApiVersion: corev3.ApiVersion_V3, ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}
}

// meshSnapshot is an LDS/RDS/CDS/EDS set: listener on port → route → EDS
// cluster "backend" with the given endpoints; extra lets a test add an
// invalid field.
func meshSnapshot(t *testing.T, version string, port int, endpoints []string, mutate func(*clusterv3.Cluster)) *cachev3.Snapshot {
	t.Helper()
	router, _ := anypb.New(&routerv3.Router{})
	hcm, _ := anypb.New(&hcmv3.HttpConnectionManager{
		StatPrefix:     "out",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "out", ConfigSource: ads()}},
		HttpFilters:    []*hcmv3.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
	})
	l := &listenerv3.Listener{
		Name:         "out",
		Address:      &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)}}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{Name: "envoy.filters.network.http_connection_manager", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm}}}}},
	}
	r := &routev3.RouteConfiguration{Name: "out", VirtualHosts: []*routev3.VirtualHost{{
		Name: "all", Domains: []string{"*"},
		Routes: []*routev3.Route{{
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "backend"}}},
		}},
	}}}
	c := &clusterv3.Cluster{
		Name:                 "backend",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: ads()},
		ConnectTimeout:       durationpb.New(time.Second),
	}
	if mutate != nil {
		mutate(c)
	}
	var lbs []*endpointv3.LbEndpoint
	for _, a := range endpoints {
		h, p, _ := net.SplitHostPort(a)
		var port uint32
		fmt.Sscan(p, &port)
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: h, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}},
		}}})
	}
	cla := &endpointv3.ClusterLoadAssignment{ClusterName: "backend", Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}}
	snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {l}, resourcev3.RouteType: {r}, resourcev3.ClusterType: {c}, resourcev3.EndpointType: {cla},
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestProxyXDS drives a weft proxy process from a go-control-plane server:
// it serves the pushed config, moves to new endpoints on an EDS change,
// NACKs an invalid update while traffic continues, and keeps serving when
// the control plane dies, then resyncs when it returns.
func TestProxyXDS(t *testing.T) {
	var hitsA, hitsB atomic.Int64
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hitsA.Add(1); io.WriteString(w, "a") }))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hitsB.Add(1); io.WriteString(w, "b") }))
	defer b.Close()

	xdsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cache := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
	const node = "shop-frontend-1.default"
	port, admin := freePort(t), freePort(t)
	ctx := context.Background()
	if err := cache.SetSnapshot(ctx, node, meshSnapshot(t, "1", port, []string{a.Listener.Addr().String()}, nil)); err != nil {
		t.Fatal(err)
	}
	nacks := make(chan string, 16)
	srv := startXDS(t, xdsAddr, cache, nacks)
	p := start(t, "proxy", "--xds-addr", xdsAddr, "--node-id", node, "--workload", "frontend", "--admin-addr", fmt.Sprintf("127.0.0.1:%d", admin))
	waitReady(t, p, admin)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	body := func() string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	// waitBody polls until the proxy applied a pushed change (bounded).
	waitBody := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for body() != want {
			if time.Now().After(deadline) {
				t.Fatalf("proxy never answered %q", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitBody("a")

	// EDS change: endpoint b replaces a.
	cache.SetSnapshot(ctx, node, meshSnapshot(t, "2", port, []string{b.Listener.Addr().String()}, nil))
	waitBody("b")

	// Background traffic must not fail while we push garbage and kill the
	// control plane.
	var failures atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get(url)
			if err != nil || resp.StatusCode != 200 {
				failures.Add(1)
			}
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()

	// Invalid update: a field outside weft's subset is NACKed with its name.
	cache.SetSnapshot(ctx, node, meshSnapshot(t, "3", port, []string{b.Listener.Addr().String()}, func(c *clusterv3.Cluster) {
		c.UpstreamBindConfig = &corev3.BindConfig{}
	}))
	select {
	case msg := <-nacks:
		if !strings.Contains(msg, "upstream_bind_config") {
			t.Fatalf("NACK %q does not name the field", msg)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no NACK for an invalid cluster")
	}

	// Control plane gone: the proxy keeps serving its last good config.
	srv.grpc.Stop()
	before := hitsB.Load()
	for hitsB.Load() < before+50 {
		runtime_Gosched()
	}
	// Control plane back with a new config: the proxy resyncs.
	cache2 := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
	cache2.SetSnapshot(ctx, node, meshSnapshot(t, "4", port, []string{a.Listener.Addr().String()}, nil))
	startXDS(t, xdsAddr, cache2, nacks)
	close(stop)
	wg.Wait()
	waitBody("a")
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d requests failed during NACK and control-plane outage", n)
	}
}

// TestProxyBootstrapADS runs an Envoy-style bootstrap whose
// dynamic_resources.ads_config names a static cluster: the proxy finds the
// control plane there, identifies with the bootstrap's node, and serves
// what the server pushes.
func TestProxyBootstrapADS(t *testing.T) {
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from ads") }))
	defer a.Close()
	xdsPort := freePort(t)
	cache := cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil)
	port, admin := freePort(t), freePort(t)
	const node = "bootstrap-node"
	cache.SetSnapshot(context.Background(), node, meshSnapshot(t, "1", port, []string{a.Listener.Addr().String()}, nil))
	startXDS(t, fmt.Sprintf("127.0.0.1:%d", xdsPort), cache, make(chan string, 4))
	doc := fmt.Sprintf(`node: {id: %s, cluster: frontend, metadata: {namespace: default}}
admin: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
dynamic_resources:
  ads_config: {api_type: GRPC, transport_api_version: V3, grpc_services: [{envoy_grpc: {cluster_name: xds}}]}
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
%s`, node, admin, clusterDoc("xds", true, fmt.Sprintf("127.0.0.1:%d", xdsPort)))
	file := filepath.Join(t.TempDir(), "envoy.yaml")
	os.WriteFile(file, []byte(doc), 0o644)
	p := start(t, "proxy", "--config", file)
	waitReady(t, p, admin)
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/", port), nil, "from ads")
	// The static xds cluster stays beside the pushed ones (config dump).
	dump, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/config_dump", admin))
	if err != nil || !strings.Contains(dump, `"xds"`) || !strings.Contains(dump, `"backend"`) {
		t.Fatalf("config dump lacks the static or the dynamic cluster: %v\n%.2000s", err, dump)
	}
}
