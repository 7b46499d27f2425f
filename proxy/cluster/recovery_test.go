package cluster

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/cluster/fakeclock"
	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/cluster/outlier"
)

// backend is a loopback server whose /healthz answers status; it counts
// the probes it receives.
type backend struct {
	srv    *httptest.Server
	status atomic.Int32
	probes atomic.Int32
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.status.Store(200)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.probes.Add(1)
		w.WriteHeader(int(b.status.Load()))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// staticCluster is a round-robin static cluster over the backends, with
// outlier detection (3 consecutive 5xx, 30s base ejection, 10s interval)
// and optionally an HTTP health check (1s interval, 2 down, 2 up).
func staticCluster(t *testing.T, bs []*backend, maxPct uint32, withHC bool) *clusterv3.Cluster {
	var lbs []*endpointv3.LbEndpoint
	for _, b := range bs {
		host, port, _ := net.SplitHostPort(b.srv.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		lbs = append(lbs, &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)},
			}}},
		}}})
	}
	c := &clusterv3.Cluster{
		Name:                 "catalog",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "catalog", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: lbs,
		}}},
		OutlierDetection: &clusterv3.OutlierDetection{
			Consecutive_5Xx:    wrapperspb.UInt32(3),
			MaxEjectionPercent: wrapperspb.UInt32(maxPct),
		},
	}
	if withHC {
		c.HealthChecks = []*corev3.HealthCheck{{
			Timeout: durationpb.New(time.Second), Interval: durationpb.New(time.Second),
			UnhealthyThreshold: wrapperspb.UInt32(2), HealthyThreshold: wrapperspb.UInt32(2),
			HealthChecker: &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{Path: "/healthz"}},
		}}
	}
	return c
}

// picks counts how often each endpoint is chosen in n picks.
func picks(t *testing.T, c *Cluster, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		ep, err := c.Pick(lb.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		out[ep.Addr]++
	}
	return out
}

// serve sends n requests through the cluster; requests to bad fail with 503.
func serve(t *testing.T, c *Cluster, bad string, n int) {
	t.Helper()
	for range n {
		ep, err := c.Pick(lb.PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		tk := ep.Load.Start()
		status := 200
		if ep.Addr == bad {
			status = 503
		}
		ep.Finish(tk, outlier.Result{Status: status})
	}
}

func build(t *testing.T, cc *clusterv3.Cluster, pool *Pool, st *Stats) *Cluster {
	t.Helper()
	spec, err := Decode(cc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Build(spec, nil, pool, st)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFailingMemberLeavesAndReturns: one of three members keeps answering
// 503: after 3 consecutive failures the picker stops choosing it; it
// returns after the ejection time, or earlier once its health probes pass.
// Healthy members are never probed.
func TestFailingMemberLeavesAndReturns(t *testing.T) {
	for _, tc := range []struct {
		name   string
		withHC bool
	}{{"ejection time", false}, {"health probes", true}} {
		t.Run(tc.name, func(t *testing.T) {
			bs := []*backend{newBackend(t), newBackend(t), newBackend(t)}
			bad := bs[1].srv.Listener.Addr().String()
			clock := fakeclock.New()
			pool := NewPoolClock(clock)
			c := build(t, staticCluster(t, bs, 34, tc.withHC), pool, nil)
			defer c.Release()

			serve(t, c, bad, 9) // round robin: 3 requests to bad
			if got := picks(t, c, 30); got[bad] != 0 || len(got) != 2 {
				t.Fatalf("after 3 failures: picks %v, want none to %s", got, bad)
			}
			if n := c.Stats.Outlier.Enforced[outlier.Consecutive5xx].Load(); n != 1 {
				t.Fatalf("consecutive_5xx ejections %d, want 1", n)
			}
			if !tc.withHC {
				clock.Advance(20 * time.Second)
				if got := picks(t, c, 30); got[bad] != 0 {
					t.Fatalf("back after 20s (base ejection 30s): %v", got)
				}
				clock.Advance(10 * time.Second)
				if got := picks(t, c, 30); got[bad] != 10 {
					t.Fatalf("after 30s: picks %v, want 10 to %s", got, bad)
				}
				if n := bs[0].probes.Load() + bs[1].probes.Load() + bs[2].probes.Load(); n != 0 {
					t.Fatalf("%d probes without health checks", n)
				}
				return
			}
			// The ejected member is probed: its health endpoint answers
			// 503 for two probes (marked unhealthy), then 200.
			bs[1].status.Store(503)
			clock.Advance(0)
			clock.Advance(time.Second)
			if !c.Endpoints[1].Health.Unhealthy() {
				t.Fatal("not unhealthy after 2 failed probes")
			}
			bs[1].status.Store(200)
			clock.Advance(time.Second)
			if got := picks(t, c, 30); got[bad] != 0 {
				t.Fatalf("back after one passed probe (healthy_threshold 2): %v", got)
			}
			clock.Advance(time.Second)
			if got := picks(t, c, 30); got[bad] != 10 {
				t.Fatalf("after 2 passed probes: picks %v, want 10 to %s (un-ejected early)", got, bad)
			}
			if n := bs[1].probes.Load(); n != 4 {
				t.Fatalf("%d probes to the failing member, want 4", n)
			}
			clock.Advance(time.Minute)
			if n := bs[1].probes.Load(); n != 4 {
				t.Fatalf("probed after recovery: %d probes", n)
			}
			if n := bs[0].probes.Load() + bs[2].probes.Load(); n != 0 {
				t.Fatalf("%d probes to healthy members, want 0", n)
			}
		})
	}
}

// TestConnectFailureProbes: a connect failure has the endpoint probed; a
// dead endpoint is marked unhealthy by the probes and leaves the picker
// even without outlier ejection.
func TestConnectFailureProbes(t *testing.T) {
	bs := []*backend{newBackend(t), newBackend(t), newBackend(t)}
	clock := fakeclock.New()
	pool := NewPoolClock(clock)
	cc := staticCluster(t, bs, 0, true) // max_ejection_percent 0: no ejection
	c := build(t, cc, pool, nil)
	defer c.Release()
	dead := c.Endpoints[2]
	bs[2].srv.Close()
	tk := dead.Load.Start()
	dead.Finish(tk, outlier.Result{Failure: outlier.ConnectFailure})
	clock.Advance(0)
	clock.Advance(time.Second)
	if !dead.Health.Unhealthy() {
		t.Fatal("dead endpoint not unhealthy after 2 failed probes")
	}
	if got := picks(t, c, 30); got[dead.Addr] != 0 {
		t.Fatalf("picks %v, want none to the dead endpoint", got)
	}
	if c.Stats.Health.Failures.Load() != 2 || c.Stats.Outlier.Overflow.Load() != 0 {
		t.Fatalf("probe failures %d, overflow %d", c.Stats.Health.Failures.Load(), c.Stats.Outlier.Overflow.Load())
	}
}

// TestPanicThreshold: with two of three members ejected, healthy share
// (33%) is under the panic threshold (50%) and all members get traffic.
func TestPanicThreshold(t *testing.T) {
	bs := []*backend{newBackend(t), newBackend(t), newBackend(t)}
	pool := NewPoolClock(fakeclock.New())
	c := build(t, staticCluster(t, bs, 100, false), pool, nil)
	defer c.Release()
	for _, i := range []int{0, 1} {
		for range 3 {
			ep := c.Endpoints[i]
			ep.Finish(ep.Load.Start(), outlier.Result{Status: 500})
		}
	}
	if c.Stats.Outlier.Active.Load() != 2 {
		t.Fatalf("active ejections %d, want 2", c.Stats.Outlier.Active.Load())
	}
	if got := picks(t, c, 30); len(got) != 3 {
		t.Fatalf("panic mode: picks %v, want all 3 members", got)
	}
}

// TestEjectionSurvivesRebuild: a new build of the cluster (config update)
// keeps the ejection, and the old build's detector stops.
func TestEjectionSurvivesRebuild(t *testing.T) {
	bs := []*backend{newBackend(t), newBackend(t), newBackend(t)}
	bad := bs[0].srv.Listener.Addr().String()
	clock := fakeclock.New()
	pool := NewPoolClock(clock)
	st := &Stats{}
	old := build(t, staticCluster(t, bs, 34, true), pool, st)
	serve(t, old, bad, 9)
	next := build(t, staticCluster(t, bs, 34, true), pool, st)
	defer next.Release()
	old.Release()
	if got := picks(t, next, 30); got[bad] != 0 {
		t.Fatalf("rebuilt cluster picks the ejected member: %v", got)
	}
	if n := pool.Len(); n != 3 {
		t.Fatalf("pool holds %d endpoints, want 3", n)
	}
	if clock.Pending() != 2 {
		t.Fatalf("%d timers pending, want 2 (new detector sweep, probe of the ejected member)", clock.Pending())
	}
	clock.Advance(0)
	clock.Advance(time.Second) // two passed probes: back early
	if got := picks(t, next, 30); got[bad] != 10 {
		t.Fatalf("after probes: %v", got)
	}
	if st.Outlier.Active.Load() != 0 {
		t.Fatalf("active ejections %d, want 0", st.Outlier.Active.Load())
	}
}

func TestDecodeHealthErrors(t *testing.T) {
	bs := []*backend{newBackend(t)}
	for _, tc := range []struct {
		name string
		mod  func(*clusterv3.Cluster)
		want string
	}{
		{"outlier", func(c *clusterv3.Cluster) { c.OutlierDetection.MaxEjectionPercent = wrapperspb.UInt32(101) }, "outlier_detection.max_ejection_percent: must be 0-100, got 101"},
		{"health", func(c *clusterv3.Cluster) { c.HealthChecks[0].Interval = nil }, "health_checks[0].interval: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := staticCluster(t, bs, 10, true)
			tc.mod(cc)
			_, err := Decode(cc, nil, nil)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// BenchmarkFinish is the per-request cost of Finish with outlier detection.
func BenchmarkFinish(b *testing.B) {
	cc := &clusterv3.Cluster{
		Name:                 "catalog",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{ClusterName: "catalog", Endpoints: []*endpointv3.LocalityLbEndpoints{{
			LbEndpoints: []*endpointv3.LbEndpoint{{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
					Address: "10.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 80},
				}}},
			}}}},
		}}},
		OutlierDetection: &clusterv3.OutlierDetection{},
	}
	spec, err := Decode(cc, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := Build(spec, nil, NewPoolClock(fakeclock.New()), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Release()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ep, _ := c.Pick(lb.PickInfo{})
			ep.Finish(ep.Load.Start(), outlier.Result{Status: 200})
		}
	})
}

// TestReturnForgetsLatency: an endpoint that comes back to health (here:
// EDS marks it healthy again, as weft up does after a restart) starts with
// no latency estimate, so peak EWMA sends it traffic at once instead of
// waiting for the failures of the previous process to decay.
func TestReturnForgetsLatency(t *testing.T) {
	bs := []*backend{newBackend(t), newBackend(t)}
	cc := staticCluster(t, bs, 50, false)
	cc.OutlierDetection = nil
	pool := NewPool(nil)
	st := &Stats{}
	mark := func(h corev3.HealthStatus) *Cluster {
		c := proto.Clone(cc).(*clusterv3.Cluster)
		c.LoadAssignment.Endpoints[0].LbEndpoints[0].HealthStatus = h
		return build(t, c, pool, st)
	}
	c := mark(corev3.HealthStatus_HEALTHY)
	ep := c.Endpoints[0]
	tk := ep.Load.Start()
	ep.Finish(tk, outlier.Result{Failure: outlier.Reset})
	if _, ok := ep.Load.RTT(); !ok {
		t.Fatal("no estimate after a failed request")
	}
	down := mark(corev3.HealthStatus_UNHEALTHY)
	c.Release()
	if _, ok := ep.Load.RTT(); !ok {
		t.Fatal("the estimate must stay while the endpoint is down")
	}
	up := mark(corev3.HealthStatus_HEALTHY)
	down.Release()
	defer up.Release()
	if _, ok := ep.Load.RTT(); ok {
		t.Fatal("the estimate survived the endpoint's return to health")
	}
}
