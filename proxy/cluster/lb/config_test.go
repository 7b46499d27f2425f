package lb

import (
	"reflect"
	"strings"
	"testing"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	commonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/common/v3"
	leastrequestv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/least_request/v3"
	maglevv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/maglev/v3"
	pickfirstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/pick_first/v3"
	randomv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/random/v3"
	ringhashv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	roundrobinv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var def = Common{PanicThreshold: 50}

func typed(name string, m proto.Message) *clusterv3.LoadBalancingPolicy_Policy {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return &clusterv3.LoadBalancingPolicy_Policy{TypedExtensionConfig: &corev3.TypedExtensionConfig{Name: name, TypedConfig: a}}
}

func peak(fields map[string]any) *clusterv3.LoadBalancingPolicy_Policy {
	s, err := structpb.NewStruct(fields)
	if err != nil {
		panic(err)
	}
	return typed(PeakEWMAName, &xdstypev3.TypedStruct{TypeUrl: PeakEWMATypeURL, Value: s})
}

func policies(ps ...*clusterv3.LoadBalancingPolicy_Policy) *clusterv3.Cluster {
	return &clusterv3.Cluster{LoadBalancingPolicy: &clusterv3.LoadBalancingPolicy{Policies: ps}}
}

func TestFromCluster(t *testing.T) {
	clock := newFakeClock()
	tests := []struct {
		name string
		c    *clusterv3.Cluster
		want Policy
	}{
		{"default", &clusterv3.Cluster{}, RoundRobin{def}},
		{"nil cluster", nil, RoundRobin{def}},
		{"random", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_RANDOM}, Random{def}},
		{"least request defaults", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_LEAST_REQUEST},
			LeastRequest{Common: def, ChoiceCount: 2, ActiveRequestBias: 1}},
		{"least request config", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_LEAST_REQUEST,
			LbConfig: &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
				ChoiceCount: wrapperspb.UInt32(5), ActiveRequestBias: &corev3.RuntimeDouble{DefaultValue: 0.5, RuntimeKey: "k"}}}},
			LeastRequest{Common: def, ChoiceCount: 5, ActiveRequestBias: 0.5}},
		{"ring hash defaults", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_RING_HASH},
			RingHash{Common: def, MinRingSize: 1024, MaxRingSize: 8 << 20}},
		{"ring hash sizes", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_RING_HASH,
			LbConfig: &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MinimumRingSize: wrapperspb.UInt64(64), MaximumRingSize: wrapperspb.UInt64(4096)}}},
			RingHash{Common: def, MinRingSize: 64, MaxRingSize: 4096}},
		{"maglev", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_MAGLEV,
			LbConfig: &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(251)}}},
			Maglev{Common: def, TableSize: 251}},
		{"common config", &clusterv3.Cluster{CommonLbConfig: &clusterv3.Cluster_CommonLbConfig{
			HealthyPanicThreshold: &typev3.Percent{Value: 0},
			LocalityConfigSpecifier: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
				LocalityWeightedLbConfig: &clusterv3.Cluster_CommonLbConfig_LocalityWeightedLbConfig{}}}},
			RoundRobin{Common{PanicThreshold: 0, LocalityWeighted: true}}},
		{"typed round robin", policies(typed("rr", &roundrobinv3.RoundRobin{})), RoundRobin{def}},
		{"typed random with locality", policies(typed("r", &randomv3.Random{LocalityLbConfig: &commonv3.LocalityLbConfig{
			LocalityConfigSpecifier: &commonv3.LocalityLbConfig_LocalityWeightedLbConfig_{LocalityWeightedLbConfig: &commonv3.LocalityLbConfig_LocalityWeightedLbConfig{}}}})),
			Random{Common{PanicThreshold: 50, LocalityWeighted: true}}},
		{"typed least request", policies(typed("lr", &leastrequestv3.LeastRequest{ChoiceCount: wrapperspb.UInt32(3)})),
			LeastRequest{Common: def, ChoiceCount: 3, ActiveRequestBias: 1}},
		{"typed ring hash", policies(typed("rh", &ringhashv3.RingHash{HashFunction: ringhashv3.RingHash_XX_HASH, MaximumRingSize: wrapperspb.UInt64(2048)})),
			RingHash{Common: def, MinRingSize: 1024, MaxRingSize: 2048}},
		{"typed maglev", policies(typed("m", &maglevv3.Maglev{})), Maglev{Common: def, TableSize: 65537}},
		{"peak ewma defaults", policies(peak(nil)), PeakEWMA{Common: def, Decay: 10 * time.Second, DefaultRTT: time.Millisecond}},
		{"peak ewma fields", policies(peak(map[string]any{"decay": "2s", "default_rtt": "250ms"})),
			PeakEWMA{Common: def, Decay: 2 * time.Second, DefaultRTT: 250 * time.Millisecond}},
		{"first supported wins", policies(typed("pf", &pickfirstv3.PickFirst{}),
			typed("other", &xdstypev3.TypedStruct{TypeUrl: "type.googleapis.com/acme.Lb"}),
			peak(nil), typed("rr", &roundrobinv3.RoundRobin{})),
			PeakEWMA{Common: def, Decay: 10 * time.Second, DefaultRTT: time.Millisecond}},
		{"lb_policy ignored with load_balancing_policy", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_RING_HASH,
			LoadBalancingPolicy: &clusterv3.LoadBalancingPolicy{Policies: []*clusterv3.LoadBalancingPolicy_Policy{typed("r", &randomv3.Random{})}}},
			Random{def}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromCluster(tc.c, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			if pe, ok := got.(PeakEWMA); ok {
				if pe.Clock == nil || !pe.Clock().Equal(clock.Now()) {
					t.Fatal("peak ewma does not use the given clock")
				}
				pe.Clock = nil
				got = pe
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestFromClusterErrors(t *testing.T) {
	tests := []struct {
		name string
		c    *clusterv3.Cluster
		want string
	}{
		{"cluster provided", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_CLUSTER_PROVIDED},
			"lb_policy: CLUSTER_PROVIDED unsupported"},
		{"unknown enum", &clusterv3.Cluster{LbPolicy: 42}, "lb_policy: 42 unsupported"},
		{"policy config without policies", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_LOAD_BALANCING_POLICY_CONFIG},
			"load_balancing_policy: required with lb_policy LOAD_BALANCING_POLICY_CONFIG"},
		{"murmur", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_RING_HASH,
			LbConfig: &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				HashFunction: clusterv3.Cluster_RingHashLbConfig_MURMUR_HASH_2}}},
			"ring_hash_lb_config.hash_function: MURMUR_HASH_2 unsupported (only XX_HASH)"},
		{"ring too big", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_RING_HASH,
			LbConfig: &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MaximumRingSize: wrapperspb.UInt64(1 << 30)}}},
			"ring_hash_lb_config.maximum_ring_size: must be 1-8388608, got 1073741824"},
		{"ring min above max", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_RING_HASH,
			LbConfig: &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MinimumRingSize: wrapperspb.UInt64(4096), MaximumRingSize: wrapperspb.UInt64(1024)}}},
			"ring_hash_lb_config.minimum_ring_size: 4096 is above maximum_ring_size 1024"},
		{"ring min zero", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_RING_HASH,
			LbConfig: &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{
				MinimumRingSize: wrapperspb.UInt64(0)}}},
			"ring_hash_lb_config.minimum_ring_size: must be 1-8388608, got 0"},
		{"maglev not prime", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_MAGLEV,
			LbConfig: &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(65536)}}},
			"maglev_lb_config.table_size: must be a prime number, got 65536"},
		{"maglev too big", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_MAGLEV,
			LbConfig: &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{TableSize: wrapperspb.UInt64(5000023)}}},
			"maglev_lb_config.table_size: must be at most 5000011, got 5000023"},
		{"choice count 1", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_LEAST_REQUEST,
			LbConfig: &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{ChoiceCount: wrapperspb.UInt32(1)}}},
			"least_request_lb_config.choice_count: must be at least 2, got 1"},
		{"negative bias", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_LEAST_REQUEST,
			LbConfig: &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
				ActiveRequestBias: &corev3.RuntimeDouble{DefaultValue: -1}}}},
			"least_request_lb_config.active_request_bias.default_value: must be a finite number >= 0, got -1"},
		{"mismatched legacy config", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_ROUND_ROBIN,
			LbConfig: &clusterv3.Cluster_MaglevLbConfig_{MaglevLbConfig: &clusterv3.Cluster_MaglevLbConfig{}}},
			"maglev_lb_config: only valid with lb_policy MAGLEV, not ROUND_ROBIN"},
		{"original dst", &clusterv3.Cluster{LbPolicy: clusterv3.Cluster_ROUND_ROBIN,
			LbConfig: &clusterv3.Cluster_OriginalDstLbConfig_{OriginalDstLbConfig: &clusterv3.Cluster_OriginalDstLbConfig{}}},
			"original_dst_lb_config: unsupported"},
		{"panic threshold range", &clusterv3.Cluster{CommonLbConfig: &clusterv3.Cluster_CommonLbConfig{
			HealthyPanicThreshold: &typev3.Percent{Value: 150}}},
			"common_lb_config.healthy_panic_threshold.value: must be 0-100, got 150"},
		{"zone aware", &clusterv3.Cluster{CommonLbConfig: &clusterv3.Cluster_CommonLbConfig{
			LocalityConfigSpecifier: &clusterv3.Cluster_CommonLbConfig_ZoneAwareLbConfig_{ZoneAwareLbConfig: &clusterv3.Cluster_CommonLbConfig_ZoneAwareLbConfig{}}}},
			"common_lb_config.zone_aware_lb_config: unsupported"},
		{"merge window", &clusterv3.Cluster{CommonLbConfig: &clusterv3.Cluster_CommonLbConfig{UpdateMergeWindow: durationpb.New(time.Second)}},
			"common_lb_config.update_merge_window: unsupported"},
		{"no supported typed policy", policies(typed("pf", &pickfirstv3.PickFirst{})),
			`load_balancing_policy.policies: no supported policy among "pf" (type.googleapis.com/envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst)`},
		{"empty policies", policies(), "load_balancing_policy.policies: required"},
		{"policy without config", policies(&clusterv3.LoadBalancingPolicy_Policy{}),
			"load_balancing_policy.policies[0].typed_extension_config: required"},
		{"typed murmur", policies(typed("rh", &ringhashv3.RingHash{HashFunction: ringhashv3.RingHash_MURMUR_HASH_2})),
			"load_balancing_policy.policies[0].typed_extension_config.typed_config.hash_function: MURMUR_HASH_2 unsupported (only XX_HASH)"},
		{"typed hash balance", policies(typed("rh", &ringhashv3.RingHash{HashBalanceFactor: wrapperspb.UInt32(150)})),
			"load_balancing_policy.policies[0].typed_extension_config.typed_config.hash_balance_factor: unsupported"},
		{"typed full scan", policies(typed("lr", &leastrequestv3.LeastRequest{SelectionMethod: leastrequestv3.LeastRequest_FULL_SCAN})),
			"load_balancing_policy.policies[0].typed_extension_config.typed_config.selection_method: FULL_SCAN unsupported"},
		{"typed zone aware", policies(typed("rr", &roundrobinv3.RoundRobin{LocalityLbConfig: &commonv3.LocalityLbConfig{
			LocalityConfigSpecifier: &commonv3.LocalityLbConfig_ZoneAwareLbConfig_{ZoneAwareLbConfig: &commonv3.LocalityLbConfig_ZoneAwareLbConfig{}}}})),
			"load_balancing_policy.policies[0].typed_extension_config.typed_config.locality_lb_config.zone_aware_lb_config: unsupported"},
		{"typed maglev size", policies(typed("m", &maglevv3.Maglev{TableSize: wrapperspb.UInt64(100)})),
			"load_balancing_policy.policies[0].typed_extension_config.typed_config.table_size: must be a prime number, got 100"},
		{"peak unknown field", policies(peak(map[string]any{"decay": "1s", "choices": 3})),
			`load_balancing_policy.policies[0].typed_extension_config.typed_config.value.choices: unknown field`},
		{"peak bad duration", policies(peak(map[string]any{"decay": "soon"})),
			`load_balancing_policy.policies[0].typed_extension_config.typed_config.value.decay: time: invalid duration "soon"`},
		{"peak number", policies(peak(map[string]any{"default_rtt": 5})),
			`load_balancing_policy.policies[0].typed_extension_config.typed_config.value.default_rtt: must be a duration string such as "10s"`},
		{"peak zero", policies(peak(map[string]any{"decay": "0s"})),
			`load_balancing_policy.policies[0].typed_extension_config.typed_config.value.decay: must be positive, got 0s`},
		{"broken any", policies(&clusterv3.LoadBalancingPolicy_Policy{TypedExtensionConfig: &corev3.TypedExtensionConfig{
			Name: "rr", TypedConfig: &anypb.Any{TypeUrl: "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin", Value: []byte{0xff}}}}),
			"load_balancing_policy.policies[0].typed_extension_config.typed_config.value: cannot decode envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin: "},
		{"legacy config with typed policies", &clusterv3.Cluster{
			LbConfig:            &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: &clusterv3.Cluster_RingHashLbConfig{}},
			LoadBalancingPolicy: &clusterv3.LoadBalancingPolicy{Policies: []*clusterv3.LoadBalancingPolicy_Policy{typed("r", &randomv3.Random{})}}},
			"ring_hash_lb_config: not allowed with load_balancing_policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromCluster(tc.c, nil)
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			// A want ending in ": " is a prefix (the rest is protobuf's text).
			got := err.Error()
			if got != tc.want && !(strings.HasSuffix(tc.want, ": ") && strings.HasPrefix(got, tc.want)) {
				t.Fatalf("error %q\nwant    %q", got, tc.want)
			}
		})
	}
}
