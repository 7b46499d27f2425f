package xds

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/control/registry"
)

// manualClock is a Clock whose time moves only with Advance; due timers run
// on the caller's goroutine. calls counts AfterFunc calls so tests can wait
// for a component to arm a timer.
type manualClock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	calls  int
	timers []*manualTimer
}

type manualTimer struct {
	c    *manualClock
	at   time.Time
	f    func()
	done bool
}

func newManualClock() *manualClock {
	c := &manualClock{now: time.Unix(1_700_000_000, 0)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) registry.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.calls++
	c.cond.Broadcast()
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Calls returns the number of AfterFunc calls so far.
func (c *manualClock) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// WaitCalls blocks until AfterFunc was called at least n times.
func (c *manualClock) WaitCalls(t testing.TB, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		c.mu.Lock()
		for c.calls < n {
			c.cond.Wait()
		}
		c.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("clock: %d AfterFunc calls, waited for %d", c.Calls(), n)
	}
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	pending := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t)
		default:
			pending = append(pending, t)
		}
	}
	c.timers = pending
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

// meshTranslator is a small translator for server tests: every proxy
// reaches the services in svcs through one HTTP listener and one route.
func meshTranslator(reg *registry.Registry, svcs ...registry.ServiceKey) Translator {
	return func(p ProxyInfo) (Resources, error) {
		var res Resources
		route := &routev3.RouteConfiguration{Name: "outbound|80"}
		vh := &routev3.VirtualHost{Name: "all", Domains: []string{"*"}}
		for _, k := range svcs {
			name := fmt.Sprintf("outbound|80||%s.%s", k.Name, k.Namespace)
			res.Clusters = append(res.Clusters, &clusterv3.Cluster{
				Name:                 name,
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
				EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{EdsConfig: &corev3.ConfigSource{
					ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
					ResourceApiVersion:    corev3.ApiVersion_V3,
				}},
			})
			cla := &endpointv3.ClusterLoadAssignment{ClusterName: name}
			var lbs []*endpointv3.LbEndpoint
			for _, in := range reg.Endpoints(k) {
				lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: in.Addr.Addr().String(), PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(in.Addr.Port())},
					}}},
				}}})
			}
			if len(lbs) > 0 {
				cla.Endpoints = []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbs}}
			}
			res.Endpoints = append(res.Endpoints, cla)
			vh.Routes = append(vh.Routes, &routev3.Route{
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/" + k.Name}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: name}}},
			})
			res.Services = append(res.Services, k)
		}
		route.VirtualHosts = []*routev3.VirtualHost{vh}
		res.Routes = []*routev3.RouteConfiguration{route}
		res.Listeners = []*listenerv3.Listener{{
			Name: "http_proxy",
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(max(p.HTTPProxyPort, 15001))},
			}}},
		}}
		return res, nil
	}
}

var (
	svcA = registry.ServiceKey{Namespace: "shop", Name: "a"}
	svcB = registry.ServiceKey{Namespace: "shop", Name: "b"}
)

const testToken = "s3cret"

// harness is a running server on loopback with manual clocks.
type harness struct {
	t        testing.TB
	clock    *manualClock // debouncer
	regClock *manualClock // registry grace
	reg      *registry.Registry
	srv      *Server
	metrics  *prometheus.Registry
	addr     string
	conn     *grpc.ClientConn
}

func newHarness(t testing.TB, translator func(*registry.Registry) Translator, auth ...Authenticator) *harness {
	t.Helper()
	h := &harness{t: t, clock: newManualClock(), regClock: newManualClock(), metrics: prometheus.NewRegistry()}
	h.reg = registry.New(registry.Options{Clock: h.regClock})
	var a Authenticator = StaticTokens{testToken: {Subject: "test"}}
	if len(auth) > 0 {
		a = auth[0]
	}
	srv, err := New(Options{
		Translator: translator(h.reg),
		Registry:   h.reg,
		Auth:       a,
		Metrics:    h.metrics,
		Clock:      h.clock,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = lis.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	// Drain the registry watch's initial resync.
	h.clock.WaitCalls(t, 1)
	h.clock.Advance(DefaultDebounceQuiet)
	h.conn, err = grpc.NewClient("passthrough:///"+h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.conn.Close()
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		h.reg.Close()
	})
	return h
}

// change applies f to the registry and runs the debouncer once it armed.
func (h *harness) change(f func()) {
	h.t.Helper()
	before := h.clock.Calls()
	f()
	h.clock.WaitCalls(h.t, before+1)
	h.clock.Advance(DefaultDebounceQuiet)
}

func testNode(id string, meta map[string]any) *corev3.Node {
	base := map[string]any{"namespace": "shop", "workload": "web", "service_account": "web", "http_proxy_port": 15001.0}
	for k, v := range meta {
		base[k] = v
	}
	st, err := structpb.NewStruct(base)
	if err != nil {
		panic(err)
	}
	return &corev3.Node{Id: id, Cluster: "web", Metadata: st}
}

func authCtx(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// deltaClient is a delta ADS client that pumps responses into a channel.
type deltaClient struct {
	t      testing.TB
	stream discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	cancel context.CancelFunc
	resps  chan *discoveryv3.DeltaDiscoveryResponse
	errc   chan error
	node   *corev3.Node
}

func (h *harness) delta(node *corev3.Node, token string) *deltaClient {
	h.t.Helper()
	return dialDelta(h.t, discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn), node, token)
}

func dialDelta(t testing.TB, client discoveryv3.AggregatedDiscoveryServiceClient, node *corev3.Node, token string) *deltaClient {
	ctx, cancel := context.WithCancel(authCtx(context.Background(), token))
	stream, err := client.DeltaAggregatedResources(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &deltaClient{t: t, stream: stream, cancel: cancel, resps: make(chan *discoveryv3.DeltaDiscoveryResponse, 64), errc: make(chan error, 1), node: node}
	go func() {
		for {
			r, err := stream.Recv()
			if err != nil {
				c.errc <- err
				return
			}
			c.resps <- r
		}
	}()
	t.Cleanup(cancel)
	return c
}

func (c *deltaClient) send(req *discoveryv3.DeltaDiscoveryRequest) {
	c.t.Helper()
	if err := c.stream.Send(req); err != nil && err != io.EOF {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *deltaClient) recv() *discoveryv3.DeltaDiscoveryResponse {
	c.t.Helper()
	select {
	case r := <-c.resps:
		return r
	case err := <-c.errc:
		c.t.Fatalf("recv: %v", err)
	case <-time.After(5 * time.Second):
		c.t.Fatal("recv: no response within 5s")
	}
	return nil
}

func (c *deltaClient) recvErr() error {
	c.t.Helper()
	select {
	case r := <-c.resps:
		c.t.Fatalf("got response %v, want an error", r)
	case err := <-c.errc:
		return err
	case <-time.After(5 * time.Second):
		c.t.Fatal("no error within 5s")
	}
	return nil
}

func (c *deltaClient) ack(r *discoveryv3.DeltaDiscoveryResponse) {
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()})
}

// barrier subscribes to a type the proxy has not asked for yet (each type
// once per stream): the server answers the first wildcard request at once,
// after processing every earlier request of the stream.
func (c *deltaClient) barrier(typeURL string) {
	c.t.Helper()
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: typeURL})
	if r := c.recv(); r.GetTypeUrl() != typeURL || len(r.GetResources()) != 0 {
		c.t.Fatalf("barrier: got %s with %d resources", shortType(r.GetTypeUrl()), len(r.GetResources()))
	}
}

// handshake subscribes to every type the way Envoy does (wildcard CDS and
// LDS, then EDS and RDS by name) and ACKs each response.
func (c *deltaClient) handshake(edsNames, rdsNames []string) map[string]*discoveryv3.DeltaDiscoveryResponse {
	c.t.Helper()
	got := map[string]*discoveryv3.DeltaDiscoveryResponse{}
	steps := []*discoveryv3.DeltaDiscoveryRequest{
		{Node: c.node, TypeUrl: clusterType},
		{TypeUrl: listenerType},
		{TypeUrl: endpointType, ResourceNamesSubscribe: edsNames},
		{TypeUrl: routeType, ResourceNamesSubscribe: rdsNames},
	}
	for _, req := range steps {
		c.send(req)
		r := c.recv()
		if r.GetTypeUrl() != req.GetTypeUrl() {
			c.t.Fatalf("handshake: got %s, want %s", r.GetTypeUrl(), req.GetTypeUrl())
		}
		got[r.GetTypeUrl()] = r
		c.ack(r)
	}
	return got
}

func ipPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
