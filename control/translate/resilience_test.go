package translate

import (
	"fmt"
	"testing"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/registry"
)

func TestMirrorFraction(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		name string
		in   gwv1.HTTPRequestMirrorFilter
		want string
	}{
		{name: "neither is everything", want: "100/HUNDRED"},
		{name: "percent", in: gwv1.HTTPRequestMirrorFilter{Percent: i32(7)}, want: "7/HUNDRED"},
		{name: "zero percent", in: gwv1.HTTPRequestMirrorFilter{Percent: i32(0)}, want: "0/HUNDRED"},
		{name: "fraction default denominator", in: gwv1.HTTPRequestMirrorFilter{Fraction: &gwv1.Fraction{Numerator: 3}}, want: "3/HUNDRED"},
		{name: "fraction per ten thousand", in: gwv1.HTTPRequestMirrorFilter{Fraction: &gwv1.Fraction{Numerator: 25, Denominator: i32(10000)}}, want: "25/TEN_THOUSAND"},
		{name: "fraction per million", in: gwv1.HTTPRequestMirrorFilter{Fraction: &gwv1.Fraction{Numerator: 5, Denominator: i32(1000000)}}, want: "5/MILLION"},
		{name: "fraction rescaled", in: gwv1.HTTPRequestMirrorFilter{Fraction: &gwv1.Fraction{Numerator: 1, Denominator: i32(3)}}, want: "333333/MILLION"},
		{name: "fraction per thousand", in: gwv1.HTTPRequestMirrorFilter{Fraction: &gwv1.Fraction{Numerator: 1, Denominator: i32(1000)}}, want: "1000/MILLION"},
		{name: "numerator capped", in: gwv1.HTTPRequestMirrorFilter{Fraction: &gwv1.Fraction{Numerator: 9, Denominator: i32(7)}}, want: "1000000/MILLION"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := mirrorFraction(&tc.in)
			if got := fmt.Sprintf("%d/%s", f.GetNumerator(), f.GetDenominator()); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestStatusRanges(t *testing.T) {
	tests := []struct {
		name string
		in   []int32
		want string
	}{
		{name: "empty", want: "[]"},
		{name: "one", in: []int32{200}, want: "[[200,201)]"},
		{name: "merged and sorted", in: []int32{204, 201, 200, 503, 202}, want: "[[200,203) [204,205) [503,504)]"},
		{name: "duplicates", in: []int32{200, 200}, want: "[[200,201)]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var parts []string
			for _, r := range statusRanges(tc.in) {
				parts = append(parts, fmt.Sprintf("[%d,%d)", r.GetStart(), r.GetEnd()))
			}
			if got := fmt.Sprint(parts); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestOutlierDetectionEnforcing: a detector the policy leaves off is
// written with enforcing 0, so Envoy's defaults (success rate on) do not
// turn it on behind the user's back.
func TestOutlierDetectionEnforcing(t *testing.T) {
	zero, three := int32(0), int32(3)
	tests := []struct {
		name string
		in   v1alpha1.OutlierDetection
		want [7]uint32 // 5xx, gateway, success rate, failure %, local origin, local success rate, local failure %
	}{
		{name: "gateway only", in: v1alpha1.OutlierDetection{Consecutive5xx: &zero, ConsecutiveGatewayErrors: &three}, want: [7]uint32{0, 100, 0, 0, 0, 0, 0}},
		{name: "5xx and success rate", in: v1alpha1.OutlierDetection{Consecutive5xx: &three, SuccessRate: &v1alpha1.SuccessRateDetection{}}, want: [7]uint32{100, 0, 100, 0, 0, 0, 0}},
		{
			name: "local origin splits", in: v1alpha1.OutlierDetection{ConsecutiveLocalOriginFailures: &three, FailurePercentage: &v1alpha1.FailurePercentageDetection{}},
			want: [7]uint32{0, 0, 0, 100, 100, 0, 100},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			od := outlierDetection(&tc.in)
			got := [7]uint32{
				od.GetEnforcingConsecutive_5Xx().GetValue(), od.GetEnforcingConsecutiveGatewayFailure().GetValue(),
				od.GetEnforcingSuccessRate().GetValue(), od.GetEnforcingFailurePercentage().GetValue(),
				od.GetEnforcingConsecutiveLocalOriginFailure().GetValue(), od.GetEnforcingLocalOriginSuccessRate().GetValue(),
				od.GetEnforcingFailurePercentageLocalOrigin().GetValue(),
			}
			if got != tc.want {
				t.Fatalf("enforcing = %v, want %v", got, tc.want)
			}
			if split := tc.in.ConsecutiveLocalOriginFailures != nil; od.GetSplitExternalLocalOriginErrors() != split {
				t.Fatalf("split_external_local_origin_errors = %v, want %v", od.GetSplitExternalLocalOriginErrors(), split)
			}
		})
	}
}

func TestLocalityPriority(t *testing.T) {
	l := func(r, z string) registry.Locality { return registry.Locality{Region: r, Zone: z} }
	for _, tc := range []struct {
		name     string
		self, ep registry.Locality
		want     uint32
	}{
		{"same zone", l("eu", "eu-1a"), l("eu", "eu-1a"), 0},
		{"same region, other zone", l("eu", "eu-1a"), l("eu", "eu-1b"), 1},
		{"other region", l("eu", "eu-1a"), l("us", "us-1a"), 2},
		{"proxy without locality", l("", ""), l("us", "us-1a"), 0},
		{"endpoint without locality", l("eu", "eu-1a"), l("", ""), 0},
		{"proxy with region only", l("eu", ""), l("eu", "eu-1b"), 0},
	} {
		if got := localityPriority(tc.self, tc.ep); got != tc.want {
			t.Errorf("%s: priority %d, want %d", tc.name, got, tc.want)
		}
	}
}
