package lb

import (
	"math"
	"strings"
	"testing"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestSlowStartFactor(t *testing.T) {
	lin := &SlowStart{Window: 10 * time.Second, Aggression: 1, MinWeightPercent: 10}
	fast := &SlowStart{Window: 10 * time.Second, Aggression: 2, MinWeightPercent: 0}
	for _, tc := range []struct {
		name string
		s    *SlowStart
		age  time.Duration
		want float64
	}{
		{"none", nil, 0, 1},
		{"just added: the floor", lin, 0, 0.10},
		{"a fifth: the floor still", lin, 500 * time.Millisecond, 0.10},
		{"half way, linear", lin, 5 * time.Second, 0.5},
		{"done", lin, 10 * time.Second, 1},
		{"long after", lin, time.Hour, 1},
		{"aggression 2 ramps faster at first", fast, 2500 * time.Millisecond, 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Factor(tc.age); math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("Factor(%v) = %v, want %v", tc.age, got, tc.want)
			}
		})
	}
}

func TestSlowStartFromCluster(t *testing.T) {
	peak := func(fields map[string]any) *clusterv3.Cluster {
		st, err := structpb.NewStruct(fields)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := anypb.New(&xdstypev3.TypedStruct{TypeUrl: PeakEWMATypeURL, Value: st})
		return &clusterv3.Cluster{LoadBalancingPolicy: &clusterv3.LoadBalancingPolicy{Policies: []*clusterv3.LoadBalancingPolicy_Policy{{
			TypedExtensionConfig: &corev3.TypedExtensionConfig{Name: PeakEWMAName, TypedConfig: a},
		}}}}
	}
	rr := func(cfg *clusterv3.Cluster_SlowStartConfig) *clusterv3.Cluster {
		return &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_ROUND_ROBIN, LbConfig: &clusterv3.Cluster_RoundRobinLbConfig_{
			RoundRobinLbConfig: &clusterv3.Cluster_RoundRobinLbConfig{SlowStartConfig: cfg}}}
	}
	for _, tc := range []struct {
		name string
		c    *clusterv3.Cluster
		want *SlowStart
		err  string
	}{
		{name: "none", c: &clusterv3.Cluster{}},
		{name: "round robin with defaults", c: rr(&clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(30 * time.Second)}),
			want: &SlowStart{Window: 30 * time.Second, Aggression: 1, MinWeightPercent: 10}},
		{name: "least request, all set", c: &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_LEAST_REQUEST, LbConfig: &clusterv3.Cluster_LeastRequestLbConfig_{
			LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{SlowStartConfig: &clusterv3.Cluster_SlowStartConfig{
				SlowStartWindow: durationpb.New(time.Minute), Aggression: &corev3.RuntimeDouble{DefaultValue: 2}, MinWeightPercent: &typev3.Percent{Value: 5}}}}},
			want: &SlowStart{Window: time.Minute, Aggression: 2, MinWeightPercent: 5}},
		{name: "peak ewma", c: peak(map[string]any{"decay": "10s", "slow_start_window": "20s", "slow_start_aggression": 1.5}),
			want: &SlowStart{Window: 20 * time.Second, Aggression: 1.5, MinWeightPercent: 10}},
		{name: "no window", c: rr(&clusterv3.Cluster_SlowStartConfig{}), err: "round_robin_lb_config.slow_start_config.slow_start_window: must be a positive duration"},
		{name: "runtime key: its default value applies", c: rr(&clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(time.Second), Aggression: &corev3.RuntimeDouble{RuntimeKey: "k", DefaultValue: 3}}),
			want: &SlowStart{Window: time.Second, Aggression: 3, MinWeightPercent: 10}},
		{name: "zero aggression", c: rr(&clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(time.Second), Aggression: &corev3.RuntimeDouble{}}),
			err: "aggression: must be > 0, got 0"},
		{name: "min weight over 100", c: rr(&clusterv3.Cluster_SlowStartConfig{SlowStartWindow: durationpb.New(time.Second), MinWeightPercent: &typev3.Percent{Value: 120}}),
			err: "min_weight_percent: must be in 0-100, got 120"},
		{name: "peak ewma aggression without window", c: peak(map[string]any{"slow_start_aggression": 2}),
			err: "slow_start_aggression: needs slow_start_window"},
		{name: "peak ewma bad window", c: peak(map[string]any{"slow_start_window": "soon"}),
			err: `slow_start_window: must be a positive duration string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SlowStartFromCluster(tc.c)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			// The policy itself accepts the cluster.
			if _, err := FromCluster(tc.c, nil); err != nil {
				t.Fatalf("FromCluster refuses a slow start cluster: %v", err)
			}
		})
	}
}
