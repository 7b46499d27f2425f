package outlier

import (
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestDecode(t *testing.T) {
	c, err := Decode(nil)
	if c != nil || err != nil {
		t.Fatalf("Decode(nil) = %v, %v; want nil, nil", c, err)
	}
	c, err = Decode(&clusterv3.OutlierDetection{})
	if err != nil {
		t.Fatal(err)
	}
	if *c != Defaults() {
		t.Fatalf("empty message: %+v, want the defaults", *c)
	}
	c, err = Decode(&clusterv3.OutlierDetection{
		Consecutive_5Xx:                        wrapperspb.UInt32(3),
		ConsecutiveGatewayFailure:              wrapperspb.UInt32(0),
		Interval:                               durationpb.New(time.Second),
		BaseEjectionTime:                       durationpb.New(500 * time.Second),
		MaxEjectionPercent:                     wrapperspb.UInt32(100),
		EnforcingConsecutiveGatewayFailure:     wrapperspb.UInt32(100),
		SplitExternalLocalOriginErrors:         true,
		ConsecutiveLocalOriginFailure:          wrapperspb.UInt32(2),
		SuccessRateStdevFactor:                 wrapperspb.UInt32(1000),
		EnforcingFailurePercentage:             wrapperspb.UInt32(50),
		MaxEjectionTimeJitter:                  durationpb.New(time.Second),
		AlwaysEjectOneHost:                     wrapperspb.Bool(true),
		SuccessfulActiveHealthCheckUnejectHost: wrapperspb.Bool(false),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Consecutive5xx = 3
	want.ConsecutiveGatewayFailure = 0
	want.Interval = time.Second
	want.BaseEjectionTime = 500 * time.Second
	want.MaxEjectionTime = 500 * time.Second // max(300s, base) when unset
	want.MaxEjectionPercent = 100
	want.EnforcingConsecutiveGatewayFailure = 100
	want.SplitExternalLocalOriginErrors = true
	want.ConsecutiveLocalOriginFailure = 2
	want.SuccessRateStdevFactor = 1000
	want.EnforcingFailurePercentage = 50
	want.MaxEjectionTimeJitter = time.Second
	want.AlwaysEjectOneHost = true
	want.SuccessfulActiveHealthCheckUnejectHost = false
	if *c != want {
		t.Fatalf("got  %+v\nwant %+v", *c, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		od   *clusterv3.OutlierDetection
		want string
	}{
		{"zero interval", &clusterv3.OutlierDetection{Interval: durationpb.New(0)}, "interval: must be a positive duration, got 0s"},
		{"negative base", &clusterv3.OutlierDetection{BaseEjectionTime: durationpb.New(-time.Second)}, "base_ejection_time: must be a positive duration, got -1s"},
		{"invalid duration", &clusterv3.OutlierDetection{MaxEjectionTime: &durationpb.Duration{Seconds: 1, Nanos: -1}}, "max_ejection_time: not a valid duration"},
		{"negative jitter", &clusterv3.OutlierDetection{MaxEjectionTimeJitter: durationpb.New(-time.Second)}, "max_ejection_time_jitter: must be a positive duration, got -1s"},
		{"max below base", &clusterv3.OutlierDetection{BaseEjectionTime: durationpb.New(time.Minute), MaxEjectionTime: durationpb.New(time.Second)}, "max_ejection_time: 1s is below base_ejection_time 1m0s"},
		{"percent", &clusterv3.OutlierDetection{MaxEjectionPercent: wrapperspb.UInt32(101)}, "max_ejection_percent: must be 0-100, got 101"},
		{"enforcing", &clusterv3.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(200)}, "enforcing_success_rate: must be 0-100, got 200"},
		{"threshold", &clusterv3.OutlierDetection{FailurePercentageThreshold: wrapperspb.UInt32(101)}, "failure_percentage_threshold: must be 0-100, got 101"},
		{"monitors", &clusterv3.OutlierDetection{Monitors: []*corev3.TypedExtensionConfig{{Name: "x"}}}, "monitors: unsupported by weft"},
		{"degraded", &clusterv3.OutlierDetection{DetectDegradedHosts: wrapperspb.Bool(true)}, "detect_degraded_hosts: unsupported by weft"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.od)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, od := range []*clusterv3.OutlierDetection{
		{},
		{Consecutive_5Xx: wrapperspb.UInt32(3), Interval: durationpb.New(time.Second), MaxEjectionPercent: wrapperspb.UInt32(100)},
		{BaseEjectionTime: durationpb.New(time.Minute), MaxEjectionTime: durationpb.New(time.Second)},
		{SplitExternalLocalOriginErrors: true, MaxEjectionTimeJitter: durationpb.New(-1)},
		{FailurePercentageThreshold: wrapperspb.UInt32(101)},
	} {
		b, err := proto.Marshal(od)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var od clusterv3.OutlierDetection
		if proto.Unmarshal(b, &od) != nil {
			return
		}
		c, err := Decode(&od)
		if err != nil {
			return
		}
		if c.Interval <= 0 || c.BaseEjectionTime <= 0 || c.MaxEjectionTime < c.BaseEjectionTime || c.MaxEjectionPercent > 100 {
			t.Fatalf("Decode accepted an invalid config: %+v", *c)
		}
		if c.ejectionTime(1<<31) != c.MaxEjectionTime {
			t.Fatalf("ejection time not capped: %s", c.ejectionTime(1<<31))
		}
	})
}
