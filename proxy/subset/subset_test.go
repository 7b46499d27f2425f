package subset

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestCheck(t *testing.T) {
	tbl := NewTable(
		Message{Type: "envoy.config.cluster.v3.Cluster", Fields: []Field{{Name: "name"}, {Name: "connect_timeout"}, {Name: "circuit_breakers"}}},
		Message{Type: "envoy.config.cluster.v3.CircuitBreakers", Fields: []Field{{Name: "thresholds"}}},
		Message{Type: "envoy.config.cluster.v3.CircuitBreakers.Thresholds", Fields: []Field{{Name: "max_requests"}}},
	)
	for _, tc := range []struct {
		name string
		c    *clusterv3.Cluster
		want string
	}{
		{"allowed", &clusterv3.Cluster{Name: "a", ConnectTimeout: durationpb.New(1)}, ""},
		{"unsupported top-level field", &clusterv3.Cluster{Name: "a", UpstreamBindConfig: &corev3.BindConfig{}}, "upstream_bind_config: unsupported by weft"},
		{"unsupported nested field", &clusterv3.Cluster{CircuitBreakers: &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{
			{MaxRequests: wrapperspb.UInt32(1)}, {MaxRetries: wrapperspb.UInt32(1)},
		}}}, "circuit_breakers.thresholds[1].max_retries: unsupported by weft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tbl.Check(tc.c)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if md := tbl.Markdown(); !strings.Contains(md, "| `max_requests` | supported |") {
		t.Errorf("markdown lacks a field row:\n%s", md)
	}
}

func TestFields(t *testing.T) {
	c := &clusterv3.Cluster{Name: "a", ConnectTimeout: durationpb.New(1)}
	if err := Fields(c, "cfg", "name", "connect_timeout"); err != nil {
		t.Fatal(err)
	}
	if err := Fields(c, "cfg", "name"); err == nil || err.Error() != "cfg.connect_timeout: unsupported by weft" {
		t.Fatalf("err = %v", err)
	}
	if err := Fields(c, "", "connect_timeout"); err == nil || err.Error() != "name: unsupported by weft" {
		t.Fatalf("err = %v", err)
	}
}
