package xds

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/control/registry"
)

const (
	clusterType  = resource.ClusterType
	endpointType = resource.EndpointType
	listenerType = resource.ListenerType
	routeType    = resource.RouteType
)

var (
	clusterA = "outbound|80||a.shop"
	clusterB = "outbound|80||b.shop"
)

func twoServices(reg *registry.Registry) Translator { return meshTranslator(reg, svcA, svcB) }

func static(t testing.TB, reg *registry.Registry, source string, svc registry.ServiceKey, addrs ...string) {
	t.Helper()
	var ins []registry.Instance
	for _, a := range addrs {
		ins = append(ins, registry.Instance{Service: svc, Addr: ipPort(a)})
	}
	if err := reg.SetStatic(source, ins); err != nil {
		t.Fatal(err)
	}
}

func claOf(t testing.TB, r *discoveryv3.DeltaDiscoveryResponse) []string {
	t.Helper()
	var names []string
	for _, res := range r.GetResources() {
		var cla endpointv3.ClusterLoadAssignment
		if err := res.GetResource().UnmarshalTo(&cla); err != nil {
			t.Fatal(err)
		}
		names = append(names, cla.GetClusterName())
	}
	return names
}

func TestDeltaSendsOnlyTheChangedClusterLoadAssignment(t *testing.T) {
	h := newHarness(t, twoServices)
	h.change(func() { static(t, h.reg, "a", svcA, "10.0.0.1:80") }) // no proxy yet: nothing to do
	c := h.delta(testNode("web-0.shop", nil), testToken)
	got := c.handshake([]string{clusterA, clusterB}, []string{"outbound|80"})
	if n := len(got[clusterType].GetResources()); n != 2 {
		t.Fatalf("initial CDS has %d clusters, want 2", n)
	}
	if names := claOf(t, got[endpointType]); len(names) != 2 {
		t.Fatalf("initial EDS = %v, want both", names)
	}

	h.change(func() { static(t, h.reg, "a", svcA, "10.0.0.1:80", "10.0.0.2:80") })
	r := c.recv()
	if r.GetTypeUrl() != endpointType || !slices.Equal(claOf(t, r), []string{clusterA}) || len(r.GetRemovedResources()) != 0 {
		t.Fatalf("after changing a: got %s %v removed %v; want only the ClusterLoadAssignment of a", shortType(r.GetTypeUrl()), claOf(t, r), r.GetRemovedResources())
	}
	c.ack(r)
	firstVersion := r.GetSystemVersionInfo()

	// A resource change that changes nothing for this proxy sends nothing.
	h.change(h.srv.ConfigChanged)

	// The next response is b's: nothing else was sent in between.
	h.change(func() { static(t, h.reg, "b", svcB, "10.0.1.1:80") })
	r = c.recv()
	if r.GetTypeUrl() != endpointType || !slices.Equal(claOf(t, r), []string{clusterB}) {
		t.Fatalf("after changing b: got %s %v; want only the ClusterLoadAssignment of b", shortType(r.GetTypeUrl()), claOf(t, r))
	}
	c.ack(r)
	c.barrier(resource.RuntimeType)

	ps := h.srv.Proxies()
	if len(ps) != 1 || ps[0].Protocol != "delta" {
		t.Fatalf("Proxies() = %+v", ps)
	}
	eds := typeStatus(ps[0], "ClusterLoadAssignment")
	if firstVersion == r.GetSystemVersionInfo() {
		t.Fatal("a's and b's pushes carry the same EDS version")
	}
	if ps[0].ConfigVersion != 3 {
		t.Fatalf("config version = %d, want 3 (initial, a, b; the no-op change sets nothing)", ps[0].ConfigVersion)
	}
	if n := metricValue(t, h.srv.metrics.pushes.WithLabelValues("ClusterLoadAssignment")); n != 3 {
		t.Fatalf("EDS pushes = %v, want 3", n)
	}
	// Pushes ACKed: the initial four types, then a's CLA and b's, unless
	// b's superseded a's before a's ACK arrived (then one sample for both).
	if n := metricValue(t, h.srv.metrics.pushLatency); n != 5 && n != 6 {
		t.Fatalf("push latency samples = %v, want 5 or 6", n)
	}
	if eds.AckedVersion != r.GetSystemVersionInfo() || !ps[0].Synced {
		t.Fatalf("EDS acked %q, want %q; synced %v", eds.AckedVersion, r.GetSystemVersionInfo(), ps[0].Synced)
	}
}

func TestDeltaDoesNotRecomputeUnrelatedProxies(t *testing.T) {
	h := newHarness(t, func(reg *registry.Registry) Translator { return meshTranslator(reg, svcA) })
	c := h.delta(testNode("web-0.shop", nil), testToken)
	c.handshake([]string{clusterA}, []string{"outbound|80"})
	before := metricValue(t, h.srv.metrics.recomputes)
	h.change(func() { static(t, h.reg, "b", svcB, "10.0.1.1:80") })
	if after := metricValue(t, h.srv.metrics.recomputes); after != before {
		t.Fatalf("a change to b recomputed a proxy that only reaches a (%v -> %v)", before, after)
	}
	h.change(func() { static(t, h.reg, "a", svcA, "10.0.0.1:80") })
	if after := metricValue(t, h.srv.metrics.recomputes); after != before+1 {
		t.Fatalf("recomputes = %v, want %v", after, before+1)
	}
	if r := c.recv(); !slices.Equal(claOf(t, r), []string{clusterA}) {
		t.Fatalf("got %v", claOf(t, r))
	}
}

// metricValue reads a counter's value or a histogram's sample count.
func metricValue(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if h := out.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return out.GetCounter().GetValue()
}

func typeStatus(p ProxyStatus, typ string) TypeStatus {
	for _, ts := range p.Types {
		if ts.Type == typ {
			return ts
		}
	}
	return TypeStatus{}
}

func TestSotWReceivesAllTypes(t *testing.T) {
	h := newHarness(t, twoServices)
	h.change(func() { static(t, h.reg, "a", svcA, "10.0.0.1:80") })
	client := discoveryv3.NewAggregatedDiscoveryServiceClient(h.conn)
	stream, err := client.StreamAggregatedResources(authCtx(t.Context(), testToken))
	if err != nil {
		t.Fatal(err)
	}
	node := testNode("web-1.shop", nil)
	want := []struct {
		typeURL string
		names   []string
		count   int
	}{
		{clusterType, nil, 2},
		{listenerType, nil, 1},
		{endpointType, []string{clusterA, clusterB}, 2},
		{routeType, []string{"outbound|80"}, 1},
	}
	var last = map[string]*discoveryv3.DiscoveryResponse{}
	for i, w := range want {
		req := &discoveryv3.DiscoveryRequest{TypeUrl: w.typeURL, ResourceNames: w.names}
		if i == 0 {
			req.Node = node
		}
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetTypeUrl() != w.typeURL || len(r.GetResources()) != w.count {
			t.Fatalf("response %d: %s with %d resources; want %s with %d", i, shortType(r.GetTypeUrl()), len(r.GetResources()), shortType(w.typeURL), w.count)
		}
		last[w.typeURL] = r
		if err := stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: w.typeURL, ResourceNames: w.names, VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}
	// An endpoint change resends EDS only (state of the world: both CLAs).
	h.change(func() { static(t, h.reg, "a", svcA, "10.0.0.9:80") })
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r.GetTypeUrl() != endpointType || len(r.GetResources()) != 2 {
		t.Fatalf("after a change: %s with %d resources; want EDS with 2", shortType(r.GetTypeUrl()), len(r.GetResources()))
	}
	// Barrier: a request claiming no version is answered at once, after
	// every earlier request (the ACKs) was processed.
	if err := stream.Send(&discoveryv3.DiscoveryRequest{TypeUrl: endpointType, ResourceNames: []string{clusterA, clusterB}, ResponseNonce: r.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err != nil || r.GetTypeUrl() != endpointType {
		t.Fatalf("barrier: %v %v", r, err)
	}
	ps := h.srv.Proxies()
	if len(ps) != 1 || ps[0].Protocol != "sotw" {
		t.Fatalf("Proxies() = %+v", ps)
	}
	for _, typ := range []string{"Cluster", "Listener", "RouteConfiguration"} {
		ts := typeStatus(ps[0], typ)
		if ts.AckedVersion == "" || ts.AckedVersion != ts.SentVersion {
			t.Errorf("%s: sent %q acked %q; want acked", typ, ts.SentVersion, ts.AckedVersion)
		}
	}
}

func TestNackIsRecorded(t *testing.T) {
	h := newHarness(t, twoServices)
	c := h.delta(testNode("web-0.shop", nil), testToken)
	c.handshake([]string{clusterA, clusterB}, []string{"outbound|80"})

	h.change(func() { static(t, h.reg, "a", svcA, "10.0.0.1:80") })
	r := c.recv()
	c.send(&discoveryv3.DeltaDiscoveryRequest{
		TypeUrl:       endpointType,
		ResponseNonce: r.GetNonce(),
		ErrorDetail:   &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: `cluster "outbound|80||a.shop": endpoint 0: bad address`},
	})
	// The NACK re-arms the EDS watch: the next update proves it was handled.
	h.change(func() { static(t, h.reg, "b", svcB, "10.0.1.1:80") })
	c.recv()

	ps := h.srv.Proxies()
	if len(ps) != 1 {
		t.Fatalf("Proxies() = %+v", ps)
	}
	eds := typeStatus(ps[0], "ClusterLoadAssignment")
	if eds.NackReason != `cluster "outbound|80||a.shop": endpoint 0: bad address` || eds.NackVersion != r.GetSystemVersionInfo() || eds.NackAt.IsZero() {
		t.Fatalf("EDS status = %+v", eds)
	}
	if ps[0].LastNack != eds.NackReason || ps[0].Synced {
		t.Fatalf("proxy: lastNack %q synced %v", ps[0].LastNack, ps[0].Synced)
	}
	if n := metricValue(t, h.srv.metrics.nacks.WithLabelValues("ClusterLoadAssignment")); n != 1 {
		t.Fatalf("nack counter = %v, want 1", n)
	}

	// The same status over HTTP.
	rec := httptest.NewRecorder()
	h.srv.ProxiesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/proxies", nil))
	var list ProxyList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || list.Kind != "ProxyList" || len(list.Items) != 1 || list.Items[0].LastNack != eds.NackReason {
		t.Fatalf("GET /api/v1/proxies: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.srv.ProxiesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/proxies", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestSessionGraceAfterStreamCloses(t *testing.T) {
	h := newHarness(t, twoServices)
	node := testNode("web-0.shop", map[string]any{"instance_ip": "10.0.9.1", "instance_port": 15006.0, "labels": map[string]any{"version": "v1"}})
	c := h.delta(node, testToken)
	c.handshake([]string{clusterA, clusterB}, []string{"outbound|80"})
	web := registry.ServiceKey{Namespace: "shop", Name: "web"}
	eps := h.reg.Endpoints(web)
	if len(eps) != 1 || eps[0].Addr != ipPort("10.0.9.1:15006") || eps[0].Labels["version"] != "v1" || eps[0].Identity != "web" {
		t.Fatalf("own instance = %+v", eps)
	}

	c.cancel()
	h.regClock.WaitCalls(t, 1) // the grace timer
	if len(h.srv.Proxies()) != 0 {
		t.Fatalf("Proxies() after close = %+v", h.srv.Proxies())
	}
	h.regClock.Advance(registry.DefaultGrace - 1)
	if n := len(h.reg.Endpoints(web)); n != 1 {
		t.Fatalf("instance removed before the grace period ended (%d left)", n)
	}
	h.regClock.Advance(1)
	if n := len(h.reg.Endpoints(web)); n != 0 {
		t.Fatalf("instance still registered after grace (%d)", n)
	}
}

func TestReconnectWithinGraceKeepsInstance(t *testing.T) {
	h := newHarness(t, twoServices)
	node := testNode("web-0.shop", map[string]any{"instance_ip": "10.0.9.1", "instance_port": 15006.0})
	c := h.delta(node, testToken)
	c.handshake([]string{clusterA, clusterB}, []string{"outbound|80"})
	c.cancel()
	h.regClock.WaitCalls(t, 1)
	h.regClock.Advance(registry.DefaultGrace / 2)
	c2 := h.delta(node, testToken)
	c2.handshake([]string{clusterA, clusterB}, []string{"outbound|80"})
	h.regClock.Advance(registry.DefaultGrace)
	if n := len(h.reg.Endpoints(registry.ServiceKey{Namespace: "shop", Name: "web"})); n != 1 {
		t.Fatalf("instance count after reconnect = %d, want 1", n)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, twoServices)
	tests := []struct {
		name     string
		token    string
		node     func() *discoveryv3.DeltaDiscoveryRequest
		wantCode codes.Code
		wantMsg  string
	}{
		{
			name:     "no token",
			wantCode: codes.Unauthenticated,
			wantMsg:  "xds: missing authorization metadata",
		},
		{
			name:     "wrong token",
			token:    "guess",
			wantCode: codes.Unauthenticated,
			wantMsg:  `xds: node "web-0.shop": unknown token`,
		},
		{
			name:  "no node",
			token: testToken,
			node: func() *discoveryv3.DeltaDiscoveryRequest {
				return &discoveryv3.DeltaDiscoveryRequest{TypeUrl: clusterType}
			},
			wantCode: codes.InvalidArgument,
			wantMsg:  "xds: the first request carries no node",
		},
		{
			name:  "bad metadata",
			token: testToken,
			node: func() *discoveryv3.DeltaDiscoveryRequest {
				return &discoveryv3.DeltaDiscoveryRequest{TypeUrl: clusterType, Node: testNode("web-0.shop", map[string]any{"instance_port": "x"})}
			},
			wantCode: codes.InvalidArgument,
			wantMsg:  `xds: node "web-0.shop": metadata instance_port: "x" is not a port (1-65535)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := h.delta(testNode("web-0.shop", nil), tt.token)
			req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: clusterType, Node: c.node}
			if tt.node != nil {
				req = tt.node()
			}
			c.send(req)
			err := c.recvErr()
			if status.Code(err) != tt.wantCode || status.Convert(err).Message() != tt.wantMsg {
				t.Fatalf("error = %v; want %v %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	if len(h.srv.Proxies()) != 0 {
		t.Fatalf("refused streams left proxies: %+v", h.srv.Proxies())
	}
}

func TestTokenScopedToNamespace(t *testing.T) {
	h := newHarness(t, twoServices, StaticTokens{"team": {Subject: "team", Namespace: "billing"}})
	c := h.delta(testNode("web-0.shop", nil), "team")
	c.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: clusterType, Node: c.node})
	err := c.recvErr()
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `token for namespace "billing" cannot claim namespace "shop"`) {
		t.Fatalf("error = %v", err)
	}
}

func TestNewRequiresDependencies(t *testing.T) {
	reg := registry.New(registry.Options{})
	defer reg.Close()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"translator", Options{Registry: reg, Auth: StaticTokens{}}, "xds: options: Translator is required"},
		{"registry", Options{Translator: meshTranslator(reg), Auth: StaticTokens{}}, "xds: options: Registry is required"},
		{"auth", Options{Translator: meshTranslator(reg), Registry: reg}, "xds: options: Auth is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
