package up

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/weft-mesh/weft/control"
	"github.com/weft-mesh/weft/control/registry"
)

// TestSetReadinessKeepsWorkload: the readiness update replaces the
// sidecar's own registration; the instance keeps its workload (the
// endpoint metadata the callers' sidecars label their metrics with) and
// gets the readiness.
func TestSetReadinessKeepsWorkload(t *testing.T) {
	reg := registry.New(registry.Options{})
	defer reg.Close()
	svc := registry.ServiceKey{Namespace: "shop", Name: "catalog"}
	addr := netip.MustParseAddrPort("127.0.0.1:15006")
	own := registry.Instance{Service: svc, Addr: addr, Protocol: "http", Identity: "catalog", Workload: "catalog-v1"}
	if err := reg.OpenSession("catalog-v1-0.shop", []registry.Instance{own}); err != nil {
		t.Fatal(err)
	}
	rt := &Runtime{mesh: &control.Mesh{Registry: reg}, log: slog.New(slog.DiscardHandler)}
	u := &Unit{Kind: KindWorkload, Namespace: "shop", Name: "catalog-v1", Service: "catalog", Protocol: "http", ServiceAccount: "catalog"}
	for _, ready := range []bool{false, true} {
		rt.setReadiness(u, InstanceStatus{NodeID: "catalog-v1-0.shop", InboundPort: 15006, Ready: ready})
		got := reg.Endpoints(svc)
		if len(got) != 1 || got[0].Workload != "catalog-v1" || got[0].Unready == ready || got[0].Addr != addr {
			t.Fatalf("ready=%v: endpoints %+v, want one of workload catalog-v1 with Unready=%v", ready, got, !ready)
		}
	}
}
