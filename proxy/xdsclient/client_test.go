package xdsclient

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"slices"
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
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	nodeID    = "catalog-0.shop"
	testToken = "s3cret"
	waitLimit = 15 * time.Second
)

// notifier wakes waiters after every change of what it guards.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	return n.ch
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// eventually waits, without polling, until cond holds; changed returns a
// channel closed at the next change that may affect cond.
func eventually(t *testing.T, what string, changed func() <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		ch := changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// checkGoroutines fails the test if goroutines started during it are still
// running shortly after it (and its other cleanups) ended. Register it first.
func checkGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > base {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d at start, %d at end:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond) // bounded wait for goroutines that are exiting
		}
	})
}

// world is the configuration a test serves: clusters by name with their
// connect timeout, each with an endpoint assignment, plus one listener and
// one route configuration.
type world map[string]time.Duration

func (w world) snapshot(t *testing.T, version string) *cachev3.Snapshot {
	t.Helper()
	res := map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {&listenerv3.Listener{Name: "inbound_8080"}},
		resourcev3.RouteType:    {&routev3.RouteConfiguration{Name: "inbound|8080"}},
	}
	for name, timeout := range w {
		res[resourcev3.ClusterType] = append(res[resourcev3.ClusterType], &clusterv3.Cluster{Name: name, ConnectTimeout: durationpb.New(timeout)})
		res[resourcev3.EndpointType] = append(res[resourcev3.EndpointType], &endpointv3.ClusterLoadAssignment{ClusterName: name})
	}
	s, err := cachev3.NewSnapshot(version, res)
	if err != nil {
		t.Fatalf("snapshot %s: %v", version, err)
	}
	return s
}

// controlPlane is a go-control-plane ADS server on loopback that records
// what it sees.
type controlPlane struct {
	t     *testing.T
	addr  string
	cache cachev3.SnapshotCache
	grpc  *grpc.Server
	done  chan struct{}

	n          notifier
	mu         sync.Mutex
	deltaReqs  []*discoveryv3.DeltaDiscoveryRequest
	deltaResps []*discoveryv3.DeltaDiscoveryResponse
	sotwReqs   []*discoveryv3.DiscoveryRequest
	sotwResps  []*discoveryv3.DiscoveryResponse
	auth       []string
	deltaCalls atomic.Int32
}

// sotwOnlyServer is an ADS server without the incremental variant.
type sotwOnlyServer struct {
	serverv3.Server
	deltaCalls *atomic.Int32
}

func (s sotwOnlyServer) DeltaAggregatedResources(discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	s.deltaCalls.Add(1)
	return status.Error(codes.Unimplemented, "delta xds is not implemented")
}

// startControlPlane serves on addr ("127.0.0.1:0" for a new port).
func startControlPlane(t *testing.T, addr string, sotwOnly bool) *controlPlane {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cp := &controlPlane{t: t, addr: lis.Addr().String(), cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, nil), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	var srv discoveryv3.AggregatedDiscoveryServiceServer = serverv3.NewServer(ctx, cp.cache, cp.callbacks())
	if sotwOnly {
		srv = sotwOnlyServer{Server: srv.(serverv3.Server), deltaCalls: &cp.deltaCalls}
	}
	cp.grpc = grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(cp.grpc, srv)
	go func() {
		defer close(cp.done)
		_ = cp.grpc.Serve(lis)
	}()
	t.Cleanup(func() {
		cancel()
		cp.stop()
	})
	return cp
}

// stop stops the server and waits for it; it may be called more than once.
func (cp *controlPlane) stop() {
	cp.grpc.Stop()
	<-cp.done
}

func (cp *controlPlane) set(t *testing.T, version string, w world) {
	t.Helper()
	if err := cp.cache.SetSnapshot(context.Background(), nodeID, w.snapshot(t, version)); err != nil {
		t.Fatalf("set snapshot: %v", err)
	}
}

func (cp *controlPlane) record(f func()) {
	cp.mu.Lock()
	f()
	cp.mu.Unlock()
	cp.n.notify()
}

func (cp *controlPlane) callbacks() serverv3.Callbacks {
	auth := func(ctx context.Context) {
		md, _ := metadata.FromIncomingContext(ctx)
		cp.record(func() { cp.auth = append(cp.auth, strings.Join(md.Get("authorization"), ",")) })
	}
	return serverv3.CallbackFuncs{
		StreamOpenFunc:      func(ctx context.Context, _ int64, _ string) error { auth(ctx); return nil },
		DeltaStreamOpenFunc: func(ctx context.Context, _ int64, _ string) error { auth(ctx); return nil },
		StreamDeltaRequestFunc: func(_ int64, req *discoveryv3.DeltaDiscoveryRequest) error {
			c := proto.Clone(req).(*discoveryv3.DeltaDiscoveryRequest)
			cp.record(func() { cp.deltaReqs = append(cp.deltaReqs, c) })
			return nil
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
			c := proto.Clone(resp).(*discoveryv3.DeltaDiscoveryResponse)
			cp.record(func() { cp.deltaResps = append(cp.deltaResps, c) })
		},
		StreamRequestFunc: func(_ int64, req *discoveryv3.DiscoveryRequest) error {
			c := proto.Clone(req).(*discoveryv3.DiscoveryRequest)
			cp.record(func() { cp.sotwReqs = append(cp.sotwReqs, c) })
			return nil
		},
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			c := proto.Clone(resp).(*discoveryv3.DiscoveryResponse)
			cp.record(func() { cp.sotwResps = append(cp.sotwResps, c) })
		},
	}
}

// acked reports whether every response sent so far was ACKed: a later
// request of its type carries its nonce and no error_detail (and, in SotW,
// its version).
func (cp *controlPlane) acked() bool {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if len(cp.deltaResps)+len(cp.sotwResps) == 0 {
		return false
	}
	for _, resp := range cp.deltaResps {
		if !slices.ContainsFunc(cp.deltaReqs, func(r *discoveryv3.DeltaDiscoveryRequest) bool {
			return r.GetTypeUrl() == resp.GetTypeUrl() && r.GetResponseNonce() == resp.GetNonce() && r.GetErrorDetail() == nil
		}) {
			return false
		}
	}
	for _, resp := range cp.sotwResps {
		if !slices.ContainsFunc(cp.sotwReqs, func(r *discoveryv3.DiscoveryRequest) bool {
			return r.GetTypeUrl() == resp.GetTypeUrl() && r.GetResponseNonce() == resp.GetNonce() &&
				r.GetVersionInfo() == resp.GetVersionInfo() && r.GetErrorDetail() == nil
		}) {
			return false
		}
	}
	return true
}

// nack returns the first NACK the server received (delta or SotW) as
// (type, version_info, error_detail code, message).
func (cp *controlPlane) nack() (typeURL, version string, code int32, msg string, ok bool) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, r := range cp.deltaReqs {
		if d := r.GetErrorDetail(); d != nil {
			return r.GetTypeUrl(), "", d.GetCode(), d.GetMessage(), true
		}
	}
	for _, r := range cp.sotwReqs {
		if d := r.GetErrorDetail(); d != nil {
			return r.GetTypeUrl(), r.GetVersionInfo(), d.GetCode(), d.GetMessage(), true
		}
	}
	return "", "", 0, "", false
}

// recordingHandler keeps the latest set the client delivered per type and
// refuses the CDS sets that reject refuses.
type recordingHandler struct {
	n      notifier
	mu     sync.Mutex
	sets   map[string]map[string]*anypb.Any
	calls  int
	reject func(map[string]*anypb.Any) error
}

func (h *recordingHandler) Update(typeURL string, set map[string]*anypb.Any) error {
	defer h.n.notify()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.reject != nil && typeURL == resourcev3.ClusterType {
		if err := h.reject(set); err != nil {
			return err
		}
	}
	if h.sets == nil {
		h.sets = map[string]map[string]*anypb.Any{}
	}
	h.sets[typeURL] = set
	return nil
}

// has reports whether the accepted sets match w exactly.
func (h *recordingHandler) has(t *testing.T, w world) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	cds, eds := h.sets[resourcev3.ClusterType], h.sets[resourcev3.EndpointType]
	want := slices.Sorted(maps.Keys(w))
	if !slices.Equal(names(cds), want) || !slices.Equal(names(eds), want) ||
		len(h.sets[resourcev3.ListenerType]) != 1 || len(h.sets[resourcev3.RouteType]) != 1 {
		return false
	}
	for name, timeout := range w {
		if timeoutOf(t, cds[name]) != timeout {
			return false
		}
	}
	return true
}

func (h *recordingHandler) callCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

// startClient runs a client against addr until the test ends.
func startClient(t *testing.T, addr string, h Handler) *Client {
	t.Helper()
	c, err := New(Config{
		Addr:  addr,
		Node:  &corev3.Node{Id: nodeID, Cluster: "catalog"},
		Token: testToken,
		// The four types the fake server serves (no SDS).
		Types: []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType},
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 5 * time.Millisecond, Multiplier: 1, MaxDelay: 5 * time.Millisecond},
			MinConnectTimeout: time.Second,
		})},
		Backoff: func(int) time.Duration { return 5 * time.Millisecond },
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:     func() time.Time { return fixedNow },
	}, h)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(waitLimit):
			t.Error("run did not return after cancel")
		}
	})
	return c
}

var modes = []struct {
	name     string
	sotwOnly bool
	mode     string
}{
	{name: "delta", mode: ModeDelta},
	{name: "sotw fallback", sotwOnly: true, mode: ModeSotW},
}

func TestClientReceivesUpdatesAndACKs(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			checkGoroutines(t)
			cp := startControlPlane(t, "127.0.0.1:0", m.sotwOnly)
			cp.set(t, "v1", world{"a": time.Second, "b": time.Second})
			h := &recordingHandler{}
			c := startClient(t, cp.addr, h)

			eventually(t, "first snapshot", h.n.wait, func() bool { return h.has(t, world{"a": time.Second, "b": time.Second}) })
			eventually(t, "ACKs of the first snapshot", cp.n.wait, cp.acked)
			st := c.Status()
			if !st.Connected || st.Mode != m.mode || len(st.Types) != 4 {
				t.Fatalf("status = %+v, want connected in %s with 4 types", st, m.mode)
			}
			for i, want := range []struct {
				typeURL string
				count   int
			}{{resourcev3.ClusterType, 2}, {resourcev3.EndpointType, 2}, {resourcev3.ListenerType, 1}, {resourcev3.RouteType, 1}} {
				ts := st.Types[i]
				if ts.TypeURL != want.typeURL || ts.Resources != want.count || ts.Version != "v1" || ts.Nonce == "" || ts.NACKs != 0 {
					t.Errorf("types[%d] = %+v, want %s with %d resources at v1", i, ts, want.typeURL, want.count)
				}
			}
			cp.mu.Lock()
			auth := slices.Clone(cp.auth)
			cp.mu.Unlock()
			if len(auth) == 0 || auth[len(auth)-1] != "Bearer "+testToken {
				t.Errorf("authorization metadata = %q, want %q", auth, "Bearer "+testToken)
			}
			if m.sotwOnly && cp.deltaCalls.Load() != 1 {
				t.Errorf("delta attempts = %d, want exactly 1 before the fallback", cp.deltaCalls.Load())
			}

			cp.set(t, "v2", world{"a": 2 * time.Second, "b": time.Second})
			eventually(t, "changed cluster", h.n.wait, func() bool { return h.has(t, world{"a": 2 * time.Second, "b": time.Second}) })

			cp.set(t, "v3", world{"a": 2 * time.Second})
			eventually(t, "removed cluster", h.n.wait, func() bool { return h.has(t, world{"a": 2 * time.Second}) })
			eventually(t, "ACKs of every response", cp.n.wait, cp.acked)
			if m.mode == ModeDelta {
				cp.mu.Lock()
				var changed, removed bool
				for _, r := range cp.deltaResps {
					if r.GetTypeUrl() != resourcev3.ClusterType {
						continue
					}
					changed = changed || (len(r.GetResources()) == 1 && r.GetResources()[0].GetName() == "a" && len(r.GetRemovedResources()) == 0)
					removed = removed || (len(r.GetResources()) == 0 && slices.Equal(r.GetRemovedResources(), []string{"b"}))
				}
				cp.mu.Unlock()
				if !changed || !removed {
					t.Errorf("the server did not send incremental CDS updates (change %v, removal %v)", changed, removed)
				}
			}
		})
	}
}

func TestClientNACKKeepsLastGoodSet(t *testing.T) {
	const refusal = `cluster "bad": refused`
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			checkGoroutines(t)
			cp := startControlPlane(t, "127.0.0.1:0", m.sotwOnly)
			cp.set(t, "v1", world{"a": time.Second, "b": time.Second})
			h := &recordingHandler{reject: rejectName("bad")}
			c := startClient(t, cp.addr, h)
			eventually(t, "first snapshot", h.n.wait, func() bool { return h.has(t, world{"a": time.Second, "b": time.Second}) })

			cp.set(t, "v2", world{"a": time.Second, "b": time.Second, "bad": time.Second})
			eventually(t, "NACK at the server", cp.n.wait, func() bool { _, _, _, _, ok := cp.nack(); return ok })
			typeURL, version, code, msg, _ := cp.nack()
			if typeURL != resourcev3.ClusterType || code != int32(codes.InvalidArgument) || msg != refusal {
				t.Errorf("NACK = %s %d %q, want CDS INVALID_ARGUMENT %q", typeURL, code, msg, refusal)
			}
			if m.mode == ModeSotW && version != "v1" {
				t.Errorf("NACK version_info = %q, want the last accepted v1", version)
			}
			ts := c.Status().Types[0]
			if ts.LastNACK != refusal || !ts.LastNACKAt.Equal(fixedNow) || ts.Resources != 2 || ts.Version != "v1" {
				t.Errorf("CDS status = %+v, want last NACK %q, 2 resources at v1", ts, refusal)
			}

			// The fix drops "bad" and changes "a": the handler's next set is
			// the last good one plus the change (EDS took "bad" in v2).
			cp.set(t, "v3", world{"a": 3 * time.Second, "b": time.Second})
			eventually(t, "set after the fix", h.n.wait, func() bool { return h.has(t, world{"a": 3 * time.Second, "b": time.Second}) })
		})
	}
}

func TestClientReconnectsAndKeepsSet(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			checkGoroutines(t)
			cp := startControlPlane(t, "127.0.0.1:0", m.sotwOnly)
			cp.set(t, "v1", world{"a": time.Second, "b": time.Second})
			h := &recordingHandler{}
			c := startClient(t, cp.addr, h)
			eventually(t, "first snapshot", h.n.wait, func() bool { return h.has(t, world{"a": time.Second, "b": time.Second}) })
			eventually(t, "ACKs", cp.n.wait, cp.acked)

			cp.stop()
			eventually(t, "disconnected status", c.statusChanged, func() bool { return !c.Status().Connected })
			calls := h.callCount()
			st := c.Status()
			if st.Types[0].Resources != 2 || st.Types[1].Resources != 2 || st.Mode != m.mode {
				t.Errorf("status while disconnected = %+v, want the held sets in %s", st, m.mode)
			}
			if !h.has(t, world{"a": time.Second, "b": time.Second}) {
				t.Error("handler's set changed on disconnect")
			}

			cp2 := startControlPlane(t, cp.addr, m.sotwOnly)
			cp2.set(t, "v1", world{"a": 2 * time.Second, "c": time.Second})
			eventually(t, "snapshot of the new server", h.n.wait, func() bool { return h.has(t, world{"a": 2 * time.Second, "c": time.Second}) })
			eventually(t, "ACKs on the new server", cp2.n.wait, cp2.acked)
			if !c.Status().Connected {
				t.Error("status is disconnected after the resync")
			}
			if h.callCount() == calls {
				t.Error("no handler call after the reconnection")
			}

			cp2.mu.Lock()
			defer cp2.mu.Unlock()
			if m.mode == ModeDelta {
				// The first CDS request names the held versions; the server
				// then sends only what changed: a, c, and the removal of b.
				var first *discoveryv3.DeltaDiscoveryRequest
				for _, r := range cp2.deltaReqs {
					if r.GetTypeUrl() == resourcev3.ClusterType {
						first = r
						break
					}
				}
				if got := slices.Sorted(maps.Keys(first.GetInitialResourceVersions())); !slices.Equal(got, []string{"a", "b"}) {
					t.Errorf("initial_resource_versions = %v, want a and b", got)
				}
				if first.GetNode().GetId() != nodeID {
					t.Errorf("first request of the new stream has node %v, want id %q", first.GetNode(), nodeID)
				}
			} else if cp2.deltaCalls.Load() != 0 {
				t.Errorf("delta attempts after the fallback = %d, want 0", cp2.deltaCalls.Load())
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	h := HandlerFunc(func(string, map[string]*anypb.Any) error { return nil })
	node := &corev3.Node{Id: nodeID}
	tests := []struct {
		name    string
		cfg     Config
		h       Handler
		wantErr string
	}{
		{name: "nil handler", cfg: Config{Addr: "x:1", Node: node}, wantErr: "xdsclient: handler is nil"},
		{name: "no address", cfg: Config{Node: node}, h: h, wantErr: "xdsclient: address is empty"},
		{name: "no node", cfg: Config{Addr: "x:1"}, h: h, wantErr: "xdsclient: node id is empty"},
		{name: "empty type", cfg: Config{Addr: "x:1", Node: node, Types: []string{resourcev3.ClusterType, ""}}, h: h,
			wantErr: "xdsclient: types[1]: empty type URL"},
		{name: "type twice", cfg: Config{Addr: "x:1", Node: node, Types: []string{resourcev3.ClusterType, resourcev3.ClusterType}}, h: h,
			wantErr: `xdsclient: types[1]: "` + resourcev3.ClusterType + `" listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, tt.h)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}

	c, err := New(Config{Addr: "x:1", Node: node}, h)
	if err != nil {
		t.Fatal(err)
	}
	st := c.Status()
	if st.Connected || st.Mode != ModeDelta || len(st.Types) != 5 || st.Types[0].TypeURL != resourcev3.SecretType {
		t.Errorf("initial status = %+v, want disconnected delta with the default types", st)
	}
}

func TestRunTwice(t *testing.T) {
	checkGoroutines(t)
	c, err := New(Config{Addr: "127.0.0.1:1", Node: &corev3.Node{Id: nodeID}, Backoff: func(int) time.Duration { return time.Hour },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, HandlerFunc(func(string, map[string]*anypb.Any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	for range 2 {
		go func() { errc <- c.Run(ctx) }()
	}
	// One of the two calls is refused at once; the other runs until cancel.
	if err := <-errc; err == nil || err.Error() != "xdsclient: run called more than once" {
		t.Fatalf("first return: %v, want the refusal of the second call", err)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
}
