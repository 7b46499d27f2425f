package outlier

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Config is a decoded Envoy OutlierDetection. Every field has Envoy's
// default (see Defaults); percentages are 0-100. A Config is immutable once
// built and safe for concurrent use.
type Config struct {
	// Interval between sweeps: success-rate and failure-percentage
	// ejections, un-ejections. Default 10s.
	Interval time.Duration
	// BaseEjectionTime is multiplied by the number of recent ejections of a
	// host (see Host) to get its ejection time. Default 30s.
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps the ejection time. Default max(300s, BaseEjectionTime).
	MaxEjectionTime time.Duration
	// MaxEjectionTimeJitter: a random 0..jitter is added to each ejection.
	// Default 0.
	MaxEjectionTimeJitter time.Duration
	// MaxEjectionPercent of the cluster's hosts that may be ejected at once.
	// Default 10.
	MaxEjectionPercent uint32
	// AlwaysEjectOneHost lets one host be ejected whatever
	// MaxEjectionPercent says. Default false (Envoy).
	AlwaysEjectOneHost bool

	// Consecutive thresholds; 0 disables the detector. Defaults 5, 5, 5.
	// ConsecutiveLocalOriginFailure is used only with
	// SplitExternalLocalOriginErrors.
	Consecutive5xx, ConsecutiveGatewayFailure, ConsecutiveLocalOriginFailure uint32
	// Enforcing percentages of the consecutive detectors (chance that a
	// detection ejects). Defaults 100, 0, 100.
	EnforcingConsecutive5xx, EnforcingConsecutiveGatewayFailure, EnforcingConsecutiveLocalOriginFailure uint32
	// SplitExternalLocalOriginErrors counts local-origin failures (connect
	// failure, reset, timeout) apart from upstream responses. Without it
	// they count as 503 (connect failure, reset) or 504 (timeout).
	// Default false.
	SplitExternalLocalOriginErrors bool

	// Success-rate detection: hosts with at least SuccessRateRequestVolume
	// requests in the last interval, when there are at least
	// SuccessRateMinimumHosts of them, are ejected when their success rate
	// is below mean - stdev × SuccessRateStdevFactor/1000. Defaults 5, 100,
	// 1900; enforcing 100 (external) and 100 (local origin).
	SuccessRateMinimumHosts, SuccessRateRequestVolume, SuccessRateStdevFactor uint32
	EnforcingSuccessRate, EnforcingLocalOriginSuccessRate                     uint32

	// Failure-percentage detection: hosts with at least
	// FailurePercentageRequestVolume requests, when there are at least
	// FailurePercentageMinimumHosts of them, are ejected when their failure
	// percentage is >= FailurePercentageThreshold. Defaults 85, 5, 50;
	// enforcing 0 and 0 (off unless set).
	FailurePercentageThreshold, FailurePercentageMinimumHosts, FailurePercentageRequestVolume uint32
	EnforcingFailurePercentage, EnforcingFailurePercentageLocalOrigin                         uint32

	// SuccessfulActiveHealthCheckUnejectHost: a host that passes active
	// health checking is un-ejected at once. Default true.
	SuccessfulActiveHealthCheckUnejectHost bool
}

// Defaults returns Envoy's defaults.
func Defaults() Config {
	return Config{
		Interval:                               10 * time.Second,
		BaseEjectionTime:                       30 * time.Second,
		MaxEjectionTime:                        300 * time.Second,
		MaxEjectionPercent:                     10,
		Consecutive5xx:                         5,
		ConsecutiveGatewayFailure:              5,
		ConsecutiveLocalOriginFailure:          5,
		EnforcingConsecutive5xx:                100,
		EnforcingConsecutiveGatewayFailure:     0,
		EnforcingConsecutiveLocalOriginFailure: 100,
		SuccessRateMinimumHosts:                5,
		SuccessRateRequestVolume:               100,
		SuccessRateStdevFactor:                 1900,
		EnforcingSuccessRate:                   100,
		EnforcingLocalOriginSuccessRate:        100,
		FailurePercentageThreshold:             85,
		FailurePercentageMinimumHosts:          5,
		FailurePercentageRequestVolume:         50,
		SuccessfulActiveHealthCheckUnejectHost: true,
	}
}

// Decode validates an Envoy OutlierDetection and returns its Config; nil
// (outlier detection off) for a nil message. Errors name the field path
// relative to the message ("max_ejection_percent: ...").
func Decode(od *clusterv3.OutlierDetection) (*Config, error) {
	if od == nil {
		return nil, nil
	}
	if len(od.GetMonitors()) > 0 {
		return nil, fmt.Errorf("monitors: unsupported by weft")
	}
	if od.GetDetectDegradedHosts().GetValue() {
		return nil, fmt.Errorf("detect_degraded_hosts: unsupported by weft")
	}
	c := Defaults()
	for _, d := range []struct {
		name     string
		v        *durationpb.Duration
		dst      *time.Duration
		positive bool
	}{
		{"interval", od.GetInterval(), &c.Interval, true},
		{"base_ejection_time", od.GetBaseEjectionTime(), &c.BaseEjectionTime, true},
		{"max_ejection_time", od.GetMaxEjectionTime(), &c.MaxEjectionTime, true},
		{"max_ejection_time_jitter", od.GetMaxEjectionTimeJitter(), &c.MaxEjectionTimeJitter, false},
	} {
		if d.v == nil {
			continue
		}
		if d.v.CheckValid() != nil {
			return nil, fmt.Errorf("%s: not a valid duration", d.name)
		}
		v := d.v.AsDuration()
		if v < 0 || d.positive && v == 0 {
			return nil, fmt.Errorf("%s: must be a positive duration, got %s", d.name, v)
		}
		*d.dst = v
	}
	if od.GetMaxEjectionTime() == nil {
		c.MaxEjectionTime = max(c.MaxEjectionTime, c.BaseEjectionTime)
	} else if c.MaxEjectionTime < c.BaseEjectionTime {
		return nil, fmt.Errorf("max_ejection_time: %s is below base_ejection_time %s", c.MaxEjectionTime, c.BaseEjectionTime)
	}
	for _, u := range []struct {
		name    string
		v       *wrapperspb.UInt32Value
		dst     *uint32
		percent bool
	}{
		{"consecutive_5xx", od.GetConsecutive_5Xx(), &c.Consecutive5xx, false},
		{"consecutive_gateway_failure", od.GetConsecutiveGatewayFailure(), &c.ConsecutiveGatewayFailure, false},
		{"consecutive_local_origin_failure", od.GetConsecutiveLocalOriginFailure(), &c.ConsecutiveLocalOriginFailure, false},
		{"max_ejection_percent", od.GetMaxEjectionPercent(), &c.MaxEjectionPercent, true},
		{"enforcing_consecutive_5xx", od.GetEnforcingConsecutive_5Xx(), &c.EnforcingConsecutive5xx, true},
		{"enforcing_consecutive_gateway_failure", od.GetEnforcingConsecutiveGatewayFailure(), &c.EnforcingConsecutiveGatewayFailure, true},
		{"enforcing_consecutive_local_origin_failure", od.GetEnforcingConsecutiveLocalOriginFailure(), &c.EnforcingConsecutiveLocalOriginFailure, true},
		{"enforcing_success_rate", od.GetEnforcingSuccessRate(), &c.EnforcingSuccessRate, true},
		{"enforcing_local_origin_success_rate", od.GetEnforcingLocalOriginSuccessRate(), &c.EnforcingLocalOriginSuccessRate, true},
		{"enforcing_failure_percentage", od.GetEnforcingFailurePercentage(), &c.EnforcingFailurePercentage, true},
		{"enforcing_failure_percentage_local_origin", od.GetEnforcingFailurePercentageLocalOrigin(), &c.EnforcingFailurePercentageLocalOrigin, true},
		{"failure_percentage_threshold", od.GetFailurePercentageThreshold(), &c.FailurePercentageThreshold, true},
		{"success_rate_minimum_hosts", od.GetSuccessRateMinimumHosts(), &c.SuccessRateMinimumHosts, false},
		{"success_rate_request_volume", od.GetSuccessRateRequestVolume(), &c.SuccessRateRequestVolume, false},
		{"success_rate_stdev_factor", od.GetSuccessRateStdevFactor(), &c.SuccessRateStdevFactor, false},
		{"failure_percentage_minimum_hosts", od.GetFailurePercentageMinimumHosts(), &c.FailurePercentageMinimumHosts, false},
		{"failure_percentage_request_volume", od.GetFailurePercentageRequestVolume(), &c.FailurePercentageRequestVolume, false},
	} {
		if u.v == nil {
			continue
		}
		if u.percent && u.v.GetValue() > 100 {
			return nil, fmt.Errorf("%s: must be 0-100, got %d", u.name, u.v.GetValue())
		}
		*u.dst = u.v.GetValue()
	}
	c.SplitExternalLocalOriginErrors = od.GetSplitExternalLocalOriginErrors()
	if v := od.GetAlwaysEjectOneHost(); v != nil {
		c.AlwaysEjectOneHost = v.GetValue()
	}
	if v := od.GetSuccessfulActiveHealthCheckUnejectHost(); v != nil {
		c.SuccessfulActiveHealthCheckUnejectHost = v.GetValue()
	}
	return &c, nil
}

// ejectionTime is how long a host ejected for the n-th time in a row stays
// out: BaseEjectionTime × n, capped at MaxEjectionTime.
func (c *Config) ejectionTime(n uint32) time.Duration {
	t := c.BaseEjectionTime * time.Duration(max(n, 1))
	if t > c.MaxEjectionTime || t < 0 {
		t = c.MaxEjectionTime
	}
	return t
}
