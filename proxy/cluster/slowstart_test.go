package cluster

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-mesh/weft/proxy/cluster/fakeclock"
)

// TestSlowStartRampsUpANewEndpoint: two endpoints serve; a third joins
// with a 10 s slow start window (linear, 10 % floor). Its round-robin share
// follows its weight: 10/210 at once, 50/250 half way (the cluster rebuilt
// itself on its own timer), a full third after the window, and nothing
// is scheduled any more.
func TestSlowStartRampsUpANewEndpoint(t *testing.T) {
	clock := fakeclock.New()
	pool := NewPoolClock(clock)
	bs := []*backend{newBackend(t), newBackend(t), newBackend(t)}
	cc := func(n int) *clusterv3.Cluster {
		c := staticCluster(t, bs[:n], 10, false)
		c.OutlierDetection = nil
		c.LbConfig = &clusterv3.Cluster_RoundRobinLbConfig_{RoundRobinLbConfig: &clusterv3.Cluster_RoundRobinLbConfig{
			SlowStartConfig: &clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(10 * time.Second)},
		}}
		return c
	}
	old := build(t, cc(2), pool, nil)
	clock.Advance(time.Minute) // the first two are long out of their window
	old.rebuild()
	c := build(t, cc(3), pool, nil)
	old.Release()
	newcomer := bs[2].srv.Listener.Addr().String()
	share := func() float64 {
		const n = 2100
		return float64(picks(t, c, n)[newcomer]) / n
	}
	near := func(got, want float64, what string) {
		t.Helper()
		if got < want-0.01 || got > want+0.01 {
			t.Fatalf("%s: newcomer share %.3f, want %.3f", what, got, want)
		}
	}
	near(share(), 10.0/210, "at once")
	clock.Advance(5 * time.Second)
	near(share(), 50.0/250, "half way")
	clock.Advance(5 * time.Second)
	near(share(), 1.0/3, "after the window")
	if n := clock.Pending(); n != 0 {
		t.Fatalf("%d timers still pending after the window", n)
	}
	c.Release()
}
