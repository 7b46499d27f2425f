package lb

import (
	"fmt"
	"math"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	commonv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/common/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

// SlowStart is Envoy's slow_start_config: an endpoint that has just
// entered rotation (new, or back from being unhealthy or ejected) gets a
// share of traffic that grows over Window, so a cold instance (empty
// caches, JIT, connection pools) is not hit with its full share at once.
// Its weight is multiplied by
//
//	max(MinWeightPercent/100, (age/Window)^(1/Aggression))
//
// until age reaches Window. Immutable.
type SlowStart struct {
	Window           time.Duration
	Aggression       float64 // > 0; 1 is linear, larger ramps up faster at first
	MinWeightPercent float64 // 0-100; Envoy's default 10
}

// Factor returns the weight multiplier of an endpoint in rotation for age;
// 1 once age reaches the window.
func (s *SlowStart) Factor(age time.Duration) float64 {
	if s == nil || age >= s.Window {
		return 1
	}
	t := max(age, time.Millisecond).Seconds() / s.Window.Seconds()
	f := math.Pow(t, 1/s.Aggression)
	return min(1, max(s.MinWeightPercent/100, f))
}

// Slow start keys of weft.lb.v1.PeakEwma.
const (
	peakSlowStartWindow     = "slow_start_window"
	peakSlowStartAggression = "slow_start_aggression"
	peakSlowStartMinWeight  = "slow_start_min_weight_percent"
)

// SlowStartFromCluster returns the cluster's slow start settings (from
// round_robin_lb_config, least_request_lb_config, or weft's peak EWMA
// policy), nil when it has none.
func SlowStartFromCluster(c *clusterv3.Cluster) (*SlowStart, error) {
	if cfg := c.GetRoundRobinLbConfig().GetSlowStartConfig(); cfg != nil {
		return slowStartConfig(cfg, "round_robin_lb_config.slow_start_config")
	}
	if cfg := c.GetLeastRequestLbConfig().GetSlowStartConfig(); cfg != nil {
		return slowStartConfig(cfg, "least_request_lb_config.slow_start_config")
	}
	for i, p := range c.GetLoadBalancingPolicy().GetPolicies() {
		s, ok := peakEWMAStruct(p.GetTypedExtensionConfig().GetTypedConfig())
		if !ok {
			continue
		}
		ss, err := peakSlowStart(s)
		if err != nil {
			return nil, fmt.Errorf("load_balancing_policy.policies[%d].typed_extension_config.typed_config.value.%w", i, err)
		}
		return ss, nil
	}
	return nil, nil
}

// slowStartMsg is Envoy's slow start config, as the cluster and the typed
// policies both spell it.
type slowStartMsg interface {
	GetSlowStartWindow() *durationpb.Duration
	GetAggression() *corev3.RuntimeDouble
	GetMinWeightPercent() *typev3.Percent
}

var _ slowStartMsg = (*commonv3.SlowStartConfig)(nil)

func slowStartConfig(cfg slowStartMsg, path string) (*SlowStart, error) {
	s := &SlowStart{Aggression: 1, MinWeightPercent: 10}
	if err := cfg.GetSlowStartWindow().CheckValid(); err != nil || cfg.GetSlowStartWindow().AsDuration() <= 0 {
		return nil, fmt.Errorf("%s.slow_start_window: must be a positive duration", path)
	}
	s.Window = cfg.GetSlowStartWindow().AsDuration()
	if a := cfg.GetAggression(); a != nil {
		// weft has no runtime: the key is accepted and default_value
		// applies (Envoy requires the key).
		s.Aggression = a.GetDefaultValue()
	}
	if p := cfg.GetMinWeightPercent(); p != nil {
		s.MinWeightPercent = p.GetValue()
	}
	return s, s.check(path)
}

func (s *SlowStart) check(path string) error {
	if !(s.Aggression > 0) || math.IsInf(s.Aggression, 0) {
		return fmt.Errorf("%s.aggression: must be > 0, got %v", path, s.Aggression)
	}
	if !(s.MinWeightPercent >= 0 && s.MinWeightPercent <= 100) {
		return fmt.Errorf("%s.min_weight_percent: must be in 0-100, got %v", path, s.MinWeightPercent)
	}
	return nil
}

// peakSlowStart reads the slow start keys of a PeakEwma struct; nil when
// slow_start_window is absent.
func peakSlowStart(st *structpb.Struct) (*SlowStart, error) {
	f := st.GetFields()
	w, ok := f[peakSlowStartWindow]
	if !ok {
		if _, a := f[peakSlowStartAggression]; a {
			return nil, fmt.Errorf("%s: needs %s", peakSlowStartAggression, peakSlowStartWindow)
		}
		return nil, nil
	}
	s := &SlowStart{Aggression: 1, MinWeightPercent: 10}
	d, err := time.ParseDuration(w.GetStringValue())
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("%s: must be a positive duration string such as \"30s\"", peakSlowStartWindow)
	}
	s.Window = d
	if v, ok := f[peakSlowStartAggression]; ok {
		if _, num := v.GetKind().(*structpb.Value_NumberValue); !num {
			return nil, fmt.Errorf("%s: must be a number", peakSlowStartAggression)
		}
		s.Aggression = v.GetNumberValue()
	}
	if v, ok := f[peakSlowStartMinWeight]; ok {
		if _, num := v.GetKind().(*structpb.Value_NumberValue); !num {
			return nil, fmt.Errorf("%s: must be a number", peakSlowStartMinWeight)
		}
		s.MinWeightPercent = v.GetNumberValue()
	}
	return s, s.check("slow_start")
}
