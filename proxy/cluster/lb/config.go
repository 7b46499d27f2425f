package lb

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	xdstypev3 "github.com/cncf/xds/go/xds/type/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	commonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/common/v3"
	leastrequestv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/least_request/v3"
	maglevv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/maglev/v3"
	randomv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/random/v3"
	ringhashv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	roundrobinv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Names of weft's own peak-EWMA policy in load_balancing_policy.
const (
	// PeakEWMAName is the conventional typed_extension_config name.
	PeakEWMAName = "weft.lb.peak_ewma"
	// PeakEWMATypeURL is the type_url inside the xds.type.v3.TypedStruct
	// that selects peak EWMA. Its fields: decay, default_rtt (durations
	// such as "10s").
	PeakEWMATypeURL = "type.googleapis.com/weft.lb.v1.PeakEwma"
)

// DefaultPanicThreshold is Envoy's healthy_panic_threshold default, percent.
const DefaultPanicThreshold = 50

// FromCluster decodes the load-balancing part of an Envoy v3 Cluster into a
// Policy: lb_policy with ring_hash_lb_config, maglev_lb_config,
// least_request_lb_config, and common_lb_config; or load_balancing_policy,
// whose first supported entry wins (Envoy's typed round_robin, random,
// least_request, ring_hash, maglev, and weft.lb.peak_ewma). clock (nil:
// time.Now) is the clock of the endpoints' Loads; peak EWMA reads it.
// Settings weft does not implement are errors naming the field path.
func FromCluster(c *clusterv3.Cluster, clock func() time.Time) (Policy, error) {
	if clock == nil {
		clock = time.Now
	}
	com, err := decodeCommon(c.GetCommonLbConfig())
	if err != nil {
		return nil, fmt.Errorf("common_lb_config.%w", err)
	}
	if c.GetLoadBalancingPolicy() != nil {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"ring_hash_lb_config", c.GetRingHashLbConfig() != nil},
			{"maglev_lb_config", c.GetMaglevLbConfig() != nil},
			{"least_request_lb_config", c.GetLeastRequestLbConfig() != nil},
			{"round_robin_lb_config", c.GetRoundRobinLbConfig() != nil},
			{"original_dst_lb_config", c.GetOriginalDstLbConfig() != nil},
		} {
			if f.set {
				return nil, fmt.Errorf("%s: not allowed with load_balancing_policy", f.name)
			}
		}
		p, err := decodeTyped(c.GetLoadBalancingPolicy(), com, clock)
		if err != nil {
			return nil, fmt.Errorf("load_balancing_policy.%w", err)
		}
		return p, nil
	}
	lp := c.GetLbPolicy()
	// Legacy per-policy configs must match lb_policy.
	for _, f := range []struct {
		name string
		set  bool
		want clusterv3.Cluster_LbPolicy
	}{
		{"ring_hash_lb_config", c.GetRingHashLbConfig() != nil, clusterv3.Cluster_RING_HASH},
		{"maglev_lb_config", c.GetMaglevLbConfig() != nil, clusterv3.Cluster_MAGLEV},
		{"least_request_lb_config", c.GetLeastRequestLbConfig() != nil, clusterv3.Cluster_LEAST_REQUEST},
		{"round_robin_lb_config", c.GetRoundRobinLbConfig() != nil, clusterv3.Cluster_ROUND_ROBIN},
	} {
		if f.set && lp != f.want {
			return nil, fmt.Errorf("%s: only valid with lb_policy %s, not %s", f.name, f.want, lp)
		}
	}
	if c.GetOriginalDstLbConfig() != nil {
		return nil, fmt.Errorf("original_dst_lb_config: unsupported")
	}
	switch lp {
	case clusterv3.Cluster_ROUND_ROBIN:
		if rr := c.GetRoundRobinLbConfig(); rr != nil {
			if err := onlyFields(rr, "slow_start_config"); err != nil {
				return nil, fmt.Errorf("round_robin_lb_config.%w", err)
			}
		}
		return RoundRobin{com}, nil
	case clusterv3.Cluster_RANDOM:
		return Random{com}, nil
	case clusterv3.Cluster_LEAST_REQUEST:
		p := LeastRequest{Common: com, ChoiceCount: 2, ActiveRequestBias: 1}
		if cfg := c.GetLeastRequestLbConfig(); cfg != nil {
			if err := onlyFields(cfg, "choice_count", "active_request_bias", "slow_start_config"); err != nil {
				return nil, fmt.Errorf("least_request_lb_config.%w", err)
			}
			if err := p.setOptions(cfg.GetChoiceCount(), cfg.GetActiveRequestBias().GetDefaultValue(), cfg.GetActiveRequestBias() != nil); err != nil {
				return nil, fmt.Errorf("least_request_lb_config.%w", err)
			}
		}
		return p, nil
	case clusterv3.Cluster_RING_HASH:
		p := RingHash{Common: com, MinRingSize: DefaultMinRingSize, MaxRingSize: DefaultMaxRingSize}
		if cfg := c.GetRingHashLbConfig(); cfg != nil {
			if err := onlyFields(cfg, "minimum_ring_size", "maximum_ring_size", "hash_function"); err != nil {
				return nil, fmt.Errorf("ring_hash_lb_config.%w", err)
			}
			if cfg.GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
				return nil, fmt.Errorf("ring_hash_lb_config.hash_function: %s unsupported (only XX_HASH)", cfg.GetHashFunction())
			}
			if err := p.setSizes(cfg.GetMinimumRingSize(), cfg.GetMaximumRingSize()); err != nil {
				return nil, fmt.Errorf("ring_hash_lb_config.%w", err)
			}
		}
		return p, nil
	case clusterv3.Cluster_MAGLEV:
		p := Maglev{Common: com, TableSize: DefaultMaglevTableSize}
		if cfg := c.GetMaglevLbConfig(); cfg != nil {
			if err := onlyFields(cfg, "table_size"); err != nil {
				return nil, fmt.Errorf("maglev_lb_config.%w", err)
			}
			if err := p.setTableSize(cfg.GetTableSize()); err != nil {
				return nil, fmt.Errorf("maglev_lb_config.%w", err)
			}
		}
		return p, nil
	case clusterv3.Cluster_LOAD_BALANCING_POLICY_CONFIG:
		return nil, fmt.Errorf("load_balancing_policy: required with lb_policy LOAD_BALANCING_POLICY_CONFIG")
	default:
		return nil, fmt.Errorf("lb_policy: %s unsupported", lp)
	}
}

func decodeCommon(cfg *clusterv3.Cluster_CommonLbConfig) (Common, error) {
	com := Common{PanicThreshold: DefaultPanicThreshold}
	if cfg == nil {
		return com, nil
	}
	if err := onlyFields(cfg, "healthy_panic_threshold", "locality_weighted_lb_config"); err != nil {
		return com, err
	}
	if t := cfg.GetHealthyPanicThreshold(); t != nil {
		v := t.GetValue()
		if !(v >= 0 && v <= 100) {
			return com, fmt.Errorf("healthy_panic_threshold.value: must be 0-100, got %v", v)
		}
		com.PanicThreshold = v
	}
	com.LocalityWeighted = cfg.GetLocalityWeightedLbConfig() != nil
	return com, nil
}

// onlyFields returns an error naming the first populated field of m that is
// not in allowed.
func onlyFields(m proto.Message, allowed ...string) error {
	var bad []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(allowed, string(fd.Name())) {
			bad = append(bad, string(fd.Name()))
		}
		return true
	})
	if len(bad) > 0 {
		slices.Sort(bad)
		return fmt.Errorf("%s: unsupported", bad[0])
	}
	return nil
}

func (p *LeastRequest) setOptions(choices *wrapperspb.UInt32Value, bias float64, hasBias bool) error {
	if choices != nil {
		if choices.GetValue() < 2 {
			return fmt.Errorf("choice_count: must be at least 2, got %d", choices.GetValue())
		}
		p.ChoiceCount = choices.GetValue()
	}
	if hasBias {
		if !(bias >= 0) || math.IsInf(bias, 0) {
			return fmt.Errorf("active_request_bias.default_value: must be a finite number >= 0, got %v", bias)
		}
		p.ActiveRequestBias = bias
	}
	return nil
}

func (p *RingHash) setSizes(minSize, maxSize *wrapperspb.UInt64Value) error {
	if minSize != nil {
		if v := minSize.GetValue(); v < 1 || v > MaxRingSize {
			return fmt.Errorf("minimum_ring_size: must be 1-%d, got %d", MaxRingSize, v)
		}
		p.MinRingSize = minSize.GetValue()
	}
	if maxSize != nil {
		if v := maxSize.GetValue(); v < 1 || v > MaxRingSize {
			return fmt.Errorf("maximum_ring_size: must be 1-%d, got %d", MaxRingSize, v)
		}
		p.MaxRingSize = maxSize.GetValue()
	}
	if p.MinRingSize > p.MaxRingSize {
		return fmt.Errorf("minimum_ring_size: %d is above maximum_ring_size %d", p.MinRingSize, p.MaxRingSize)
	}
	return nil
}

func (p *Maglev) setTableSize(size *wrapperspb.UInt64Value) error {
	if size == nil {
		return nil
	}
	v := size.GetValue()
	if v > MaxMaglevTableSize {
		return fmt.Errorf("table_size: must be at most %d, got %d", MaxMaglevTableSize, v)
	}
	if !isPrime(v) {
		return fmt.Errorf("table_size: must be a prime number, got %d", v)
	}
	p.TableSize = v
	return nil
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// Message names of the typed policies weft implements.
var (
	rrName       = proto.MessageName(&roundrobinv3.RoundRobin{})
	randomName   = proto.MessageName(&randomv3.Random{})
	lrName       = proto.MessageName(&leastrequestv3.LeastRequest{})
	ringHashName = proto.MessageName(&ringhashv3.RingHash{})
	maglevName   = proto.MessageName(&maglevv3.Maglev{})
	typedStruct  = proto.MessageName(&xdstypev3.TypedStruct{})
)

// decodeTyped returns the first entry of lbp that weft supports (Envoy skips
// entries of unknown types the same way). An entry of a supported type that
// is invalid is an error.
func decodeTyped(lbp *clusterv3.LoadBalancingPolicy, com Common, clock func() time.Time) (Policy, error) {
	var seen []string
	for i, e := range lbp.GetPolicies() {
		tec := e.GetTypedExtensionConfig()
		path := fmt.Sprintf("policies[%d].typed_extension_config", i)
		if tec == nil {
			return nil, fmt.Errorf("%s: required", path)
		}
		a := tec.GetTypedConfig()
		if a == nil {
			return nil, fmt.Errorf("%s.typed_config: required", path)
		}
		p, ok, err := decodeEntry(a, com, clock)
		if err != nil {
			return nil, fmt.Errorf("%s.typed_config.%w", path, err)
		}
		if ok {
			return p, nil
		}
		seen = append(seen, fmt.Sprintf("%q (%s)", tec.GetName(), a.GetTypeUrl()))
	}
	if len(seen) == 0 {
		return nil, fmt.Errorf("policies: required")
	}
	return nil, fmt.Errorf("policies: no supported policy among %s", strings.Join(seen, ", "))
}

func decodeEntry(a *anypb.Any, com Common, clock func() time.Time) (Policy, bool, error) {
	switch a.MessageName() {
	case rrName:
		var m roundrobinv3.RoundRobin
		if err := unmarshal(a, &m, "locality_lb_config"); err != nil {
			return nil, true, err
		}
		com, err := localityLb(com, m.GetLocalityLbConfig())
		return RoundRobin{com}, true, err
	case randomName:
		var m randomv3.Random
		if err := unmarshal(a, &m, "locality_lb_config"); err != nil {
			return nil, true, err
		}
		com, err := localityLb(com, m.GetLocalityLbConfig())
		return Random{com}, true, err
	case lrName:
		var m leastrequestv3.LeastRequest
		if err := unmarshal(a, &m, "choice_count", "active_request_bias", "locality_lb_config", "enable_full_scan", "selection_method"); err != nil {
			return nil, true, err
		}
		if m.GetEnableFullScan().GetValue() {
			return nil, true, fmt.Errorf("enable_full_scan: unsupported")
		}
		if m.GetSelectionMethod() != leastrequestv3.LeastRequest_N_CHOICES {
			return nil, true, fmt.Errorf("selection_method: %s unsupported", m.GetSelectionMethod())
		}
		com, err := localityLb(com, m.GetLocalityLbConfig())
		if err != nil {
			return nil, true, err
		}
		p := LeastRequest{Common: com, ChoiceCount: 2, ActiveRequestBias: 1}
		err = p.setOptions(m.GetChoiceCount(), m.GetActiveRequestBias().GetDefaultValue(), m.GetActiveRequestBias() != nil)
		return p, true, err
	case ringHashName:
		var m ringhashv3.RingHash
		if err := unmarshal(a, &m, "hash_function", "minimum_ring_size", "maximum_ring_size", "locality_weighted_lb_config"); err != nil {
			return nil, true, err
		}
		if f := m.GetHashFunction(); f != ringhashv3.RingHash_DEFAULT_HASH && f != ringhashv3.RingHash_XX_HASH {
			return nil, true, fmt.Errorf("hash_function: %s unsupported (only XX_HASH)", f)
		}
		com.LocalityWeighted = com.LocalityWeighted || m.GetLocalityWeightedLbConfig() != nil
		p := RingHash{Common: com, MinRingSize: DefaultMinRingSize, MaxRingSize: DefaultMaxRingSize}
		return p, true, p.setSizes(m.GetMinimumRingSize(), m.GetMaximumRingSize())
	case maglevName:
		var m maglevv3.Maglev
		if err := unmarshal(a, &m, "table_size", "locality_weighted_lb_config"); err != nil {
			return nil, true, err
		}
		com.LocalityWeighted = com.LocalityWeighted || m.GetLocalityWeightedLbConfig() != nil
		p := Maglev{Common: com, TableSize: DefaultMaglevTableSize}
		return p, true, p.setTableSize(m.GetTableSize())
	case typedStruct:
		var ts xdstypev3.TypedStruct
		if err := a.UnmarshalTo(&ts); err != nil {
			return nil, true, fmt.Errorf("value: cannot decode %s: %w", typedStruct, err)
		}
		if ts.GetTypeUrl() != PeakEWMATypeURL {
			return nil, false, nil
		}
		p, err := decodePeakEWMA(ts.GetValue())
		if err != nil {
			return nil, true, fmt.Errorf("value.%w", err)
		}
		p.Common, p.Clock = com, clock
		return p, true, nil
	}
	return nil, false, nil
}

// unmarshal decodes a into m and refuses fields outside allowed.
func unmarshal(a *anypb.Any, m proto.Message, allowed ...string) error {
	if err := a.UnmarshalTo(m); err != nil {
		return fmt.Errorf("value: cannot decode %s: %w", a.MessageName(), err)
	}
	return onlyFields(m, allowed...)
}

// localityLb applies a typed policy's locality_lb_config.
func localityLb(com Common, cfg *commonv3.LocalityLbConfig) (Common, error) {
	if cfg == nil {
		return com, nil
	}
	if cfg.GetZoneAwareLbConfig() != nil {
		return com, fmt.Errorf("locality_lb_config.zone_aware_lb_config: unsupported")
	}
	com.LocalityWeighted = com.LocalityWeighted || cfg.GetLocalityWeightedLbConfig() != nil
	return com, nil
}

// decodePeakEWMA reads the fields of weft.lb.v1.PeakEwma from a Struct.
func decodePeakEWMA(s *structpb.Struct) (PeakEWMA, error) {
	p := PeakEWMA{Decay: DefaultPeakEWMADecay, DefaultRTT: DefaultPeakEWMARTT}
	keys := make([]string, 0, len(s.GetFields()))
	for k := range s.GetFields() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var dst *time.Duration
		switch k {
		case "decay":
			dst = &p.Decay
		case "default_rtt":
			dst = &p.DefaultRTT
		case peakSlowStartWindow, peakSlowStartAggression, peakSlowStartMinWeight:
			continue // SlowStartFromCluster reads them
		default:
			return p, fmt.Errorf("%s: unknown field", k)
		}
		sv, ok := s.GetFields()[k].GetKind().(*structpb.Value_StringValue)
		if !ok {
			return p, fmt.Errorf("%s: must be a duration string such as \"10s\"", k)
		}
		d, err := time.ParseDuration(sv.StringValue)
		if err != nil {
			return p, fmt.Errorf("%s: %w", k, err)
		}
		if d <= 0 {
			return p, fmt.Errorf("%s: must be positive, got %s", k, sv.StringValue)
		}
		*dst = d
	}
	return p, nil
}

// peakEWMAStruct returns the Struct of a TypedStruct holding weft's peak
// EWMA config.
func peakEWMAStruct(a *anypb.Any) (*structpb.Struct, bool) {
	if a == nil || a.MessageName() != typedStruct {
		return nil, false
	}
	var ts xdstypev3.TypedStruct
	if a.UnmarshalTo(&ts) != nil || ts.GetTypeUrl() != PeakEWMATypeURL {
		return nil, false
	}
	return ts.GetValue(), true
}
