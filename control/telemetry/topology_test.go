package telemetry

import (
	"log/slog"
	"slices"
	"testing"
)

// TestTopologyNames: an edge to a service without a sidecar behind it
// (destination workload unknown) points at a node named after the service,
// in the service's namespace, not at "<svc>.<ns>".
func TestTopologyNames(t *testing.T) {
	s := newScraper(Options{Clock: SystemClock{}}, slog.Default())
	s.roles["shop/frontend"] = nodeInfo{proxies: 1}
	s.current[seriesKey{kind: kindLink, srcNS: "shop", srcWL: "frontend", dstSvc: "legacy.shop", dstNS: "shop", dstWL: "unknown"}] = Golden{Requests: 5}
	s.current[seriesKey{kind: kindLink, srcNS: "shop", srcWL: "frontend", dstSvc: "catalog.shop", dstNS: "shop", dstWL: "catalog-v1"}] = Golden{Requests: 7}
	top := s.topology()
	var ids []string
	for _, n := range top.Nodes {
		ids = append(ids, n.ID)
	}
	if want := []string{"shop/catalog-v1", "shop/frontend", "shop/legacy"}; !slices.Equal(ids, want) {
		t.Fatalf("nodes %v, want %v", ids, want)
	}
	if len(top.Edges) != 2 || top.Edges[1].Target != "shop/legacy" || top.Edges[1].Service != "legacy.shop" {
		t.Fatalf("edges %+v", top.Edges)
	}
}
