package translate

import (
	"slices"
	"strings"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
)

// FaultFilterName is the HTTP filter that injects faults; routes configure
// it in typed_per_filter_config, and the listeners whose routes do carry it
// (empty) before the router.
const FaultFilterName = "envoy.filters.http.fault"

// enforce is an enforcing_* percentage: 100 for a detector that is on, 0
// for one that is off (Envoy turns some on by default).
func enforce(on bool) *wrapperspb.UInt32Value {
	if on {
		return wrapperspb.UInt32(100)
	}
	return wrapperspb.UInt32(0)
}

func positive(p *int32) bool { return p != nil && *p > 0 }

// clusterResilience adds a policy's circuit breakers, retry budget, outlier
// detection, panic threshold and health check to c.
func clusterResilience(c *clusterv3.Cluster, policy *v1alpha1.BackendPolicySpec) {
	var th *clusterv3.CircuitBreakers_Thresholds
	if l := policy.ConnectionLimits; l != nil {
		th = &clusterv3.CircuitBreakers_Thresholds{Priority: corev3.RoutingPriority_DEFAULT}
		th.MaxConnections = u32(l.MaxConnections)
		th.MaxPendingRequests = u32(l.MaxPendingRequests)
		th.MaxRequests = u32(l.MaxRequests)
		th.MaxRetries = u32(l.MaxRetries)
	}
	if b := policy.RetryBudget; b != nil {
		if th == nil {
			th = &clusterv3.CircuitBreakers_Thresholds{Priority: corev3.RoutingPriority_DEFAULT}
		}
		rb := &clusterv3.CircuitBreakers_Thresholds_RetryBudget{MinRetryConcurrency: u32(b.MinRetryConcurrency)}
		if b.Percent != nil {
			rb.BudgetPercent = &typev3.Percent{Value: float64(*b.Percent)}
		}
		th.RetryBudget = rb
	}
	if th != nil {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th}}
	}
	if o := policy.OutlierDetection; o != nil {
		c.OutlierDetection = outlierDetection(o)
		if o.PanicThreshold != nil {
			c.CommonLbConfig = &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: float64(*o.PanicThreshold)}}
		}
	}
	if h := policy.HealthCheck; h != nil {
		c.HealthChecks = []*corev3.HealthCheck{healthCheck(h)}
	}
}

// outlierDetection writes every detector's enforcing percentage: 100 for
// the detectors the policy turns on, 0 for the others (Envoy's defaults
// would turn success-rate detection on).
func outlierDetection(o *v1alpha1.OutlierDetection) *clusterv3.OutlierDetection {
	od := &clusterv3.OutlierDetection{
		MaxEjectionPercent:                 u32(o.MaxEjectionPercent),
		EnforcingConsecutive_5Xx:           enforce(positive(o.Consecutive5xx)),
		EnforcingConsecutiveGatewayFailure: enforce(positive(o.ConsecutiveGatewayErrors)),
		EnforcingSuccessRate:               enforce(o.SuccessRate != nil),
		EnforcingFailurePercentage:         enforce(o.FailurePercentage != nil),
	}
	if !o.Interval.IsZero() {
		od.Interval = duration(o.Interval.Duration)
	}
	if !o.BaseEjectionTime.IsZero() {
		od.BaseEjectionTime = duration(o.BaseEjectionTime.Duration)
	}
	if !o.MaxEjectionTime.IsZero() {
		od.MaxEjectionTime = duration(o.MaxEjectionTime.Duration)
	}
	if positive(o.Consecutive5xx) {
		od.Consecutive_5Xx = u32(o.Consecutive5xx)
	}
	if positive(o.ConsecutiveGatewayErrors) {
		od.ConsecutiveGatewayFailure = u32(o.ConsecutiveGatewayErrors)
	}
	if positive(o.ConsecutiveLocalOriginFailures) {
		od.SplitExternalLocalOriginErrors = true
		od.ConsecutiveLocalOriginFailure = u32(o.ConsecutiveLocalOriginFailures)
		od.EnforcingConsecutiveLocalOriginFailure = enforce(true)
		od.EnforcingLocalOriginSuccessRate = enforce(o.SuccessRate != nil)
		od.EnforcingFailurePercentageLocalOrigin = enforce(o.FailurePercentage != nil)
	}
	if sr := o.SuccessRate; sr != nil {
		od.SuccessRateMinimumHosts = u32(sr.MinimumHosts)
		od.SuccessRateRequestVolume = u32(sr.RequestVolume)
		od.SuccessRateStdevFactor = u32(sr.StdevFactor)
	}
	if fp := o.FailurePercentage; fp != nil {
		od.FailurePercentageThreshold = u32(fp.Threshold)
		od.FailurePercentageMinimumHosts = u32(fp.MinimumHosts)
		od.FailurePercentageRequestVolume = u32(fp.RequestVolume)
	}
	return od
}

// healthCheck is the Envoy HealthCheck of a policy, with weft's defaults
// for anything left unset (a policy built in code may skip SetDefaults).
func healthCheck(h *v1alpha1.HealthCheck) *corev3.HealthCheck {
	orDef := func(p *int32, def int32) *wrapperspb.UInt32Value {
		if p == nil {
			return wrapperspb.UInt32(uint32(def))
		}
		return wrapperspb.UInt32(uint32(*p))
	}
	hc := &corev3.HealthCheck{
		Timeout:            duration(h.Timeout.Or(v1alpha1.DefaultHealthTimeout)),
		Interval:           duration(h.Interval.Or(v1alpha1.DefaultHealthInterval)),
		UnhealthyThreshold: orDef(h.UnhealthyThreshold, v1alpha1.DefaultUnhealthyThreshold),
		HealthyThreshold:   orDef(h.HealthyThreshold, v1alpha1.DefaultHealthyThreshold),
	}
	switch {
	case h.HTTP != nil:
		hc.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: &corev3.HealthCheck_HttpHealthCheck{
			Path:             h.HTTP.Path,
			ExpectedStatuses: statusRanges(h.HTTP.ExpectedStatuses),
		}}
	case h.GRPC != nil:
		hc.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{ServiceName: h.GRPC.Service}}
	default:
		hc.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
	}
	return hc
}

// statusRanges turns status codes into Envoy's half-open ranges, merging
// neighbours ([200, 201, 204] → [200, 202), [204, 205)). Empty stays empty
// (Envoy's default: 200 only).
func statusRanges(codes []int32) []*typev3.Int64Range {
	sorted := slices.Clone(codes)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var out []*typev3.Int64Range
	for _, c := range sorted {
		if n := len(out); n > 0 && out[n-1].End == int64(c) {
			out[n-1].End++
			continue
		}
		out = append(out, &typev3.Int64Range{Start: int64(c), End: int64(c) + 1})
	}
	return out
}

// percentOf is a FractionalPercent of p percent (nil: 100%).
func percentOf(p *int32) *typev3.FractionalPercent {
	v := int32(100)
	if p != nil {
		v = *p
	}
	return &typev3.FractionalPercent{Numerator: uint32(max(v, 0)), Denominator: typev3.FractionalPercent_HUNDRED}
}

// httpFault is the route-level fault filter configuration of f.
func httpFault(f *v1alpha1.FaultInjectionSpec) *faultv3.HTTPFault {
	out := &faultv3.HTTPFault{}
	if d := f.Delay; d != nil {
		out.Delay = &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: duration(d.FixedDelay.Duration)},
			Percentage:         percentOf(d.Percent),
		}
	}
	if a := f.Abort; a != nil {
		out.Abort = &faultv3.FaultAbort{Percentage: percentOf(a.Percent)}
		switch {
		case a.GRPCStatus != nil:
			out.Abort.ErrorType = &faultv3.FaultAbort_GrpcStatus{GrpcStatus: uint32(*a.GRPCStatus)}
		case a.HTTPStatus != nil:
			out.Abort.ErrorType = &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(*a.HTTPStatus)}
		}
	}
	for _, h := range f.Headers {
		m := &routev3.HeaderMatcher{Name: strings.ToLower(h.Name)}
		if h.Present {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		} else {
			m.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
				MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Value},
			}}
		}
		out.Headers = append(out.Headers, m)
	}
	return out
}

// mirrorFraction is a Gateway API mirror share as a FractionalPercent:
// percent out of a hundred, a fraction over 100, 10,000 or 1,000,000 as
// such, any other denominator rescaled to a million (rounded down); 100%
// when neither is set.
func mirrorFraction(m *gwv1.HTTPRequestMirrorFilter) *typev3.FractionalPercent {
	if f := m.Fraction; f != nil && m.Percent == nil {
		den := int64(100)
		if f.Denominator != nil && *f.Denominator > 0 {
			den = int64(*f.Denominator)
		}
		num := min(max(int64(f.Numerator), 0), den)
		switch den {
		case 100:
			return &typev3.FractionalPercent{Numerator: uint32(num), Denominator: typev3.FractionalPercent_HUNDRED}
		case 10_000:
			return &typev3.FractionalPercent{Numerator: uint32(num), Denominator: typev3.FractionalPercent_TEN_THOUSAND}
		case 1_000_000:
			return &typev3.FractionalPercent{Numerator: uint32(num), Denominator: typev3.FractionalPercent_MILLION}
		}
		return &typev3.FractionalPercent{Numerator: uint32(num * 1_000_000 / den), Denominator: typev3.FractionalPercent_MILLION}
	}
	return percentOf(m.Percent)
}

// ruleFilters are what a rule's filters add to each of its routes.
type ruleFilters struct {
	mirrors []*routev3.RouteAction_RequestMirrorPolicy
	fault   *faultv3.HTTPFault
}

// mirrorPolicy resolves a RequestMirror filter to the mirror backend's
// outbound cluster; ok is false when the proxy cannot reach the Service.
func (t *translator) mirrorPolicy(routeNS string, m *gwv1.HTTPRequestMirrorFilter) (*routev3.RouteAction_RequestMirrorPolicy, bool) {
	bs := t.resolveBackends(routeNS, []gwv1.BackendRef{{BackendObjectReference: m.BackendRef}})
	if len(bs) == 0 {
		return nil, false
	}
	return &routev3.RouteAction_RequestMirrorPolicy{
		Cluster:         t.outboundCluster(bs[0].svc, bs[0].port),
		RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: mirrorFraction(m)},
	}, true
}

// faultRef returns the FaultInjection an ExtensionRef names, or nil.
func (t *translator) faultRef(routeNS string, r *gwv1.LocalObjectReference) *faultv3.HTTPFault {
	if r == nil || string(r.Group) != v1alpha1.GroupName || string(r.Kind) != v1alpha1.KindFaultInjection {
		return nil
	}
	f := t.in.Resources.faults[nsName{routeNS, string(r.Name)}]
	if f == nil {
		return nil
	}
	return httpFault(f)
}

func (t *translator) httpRuleFilters(routeNS string, fs []gwv1.HTTPRouteFilter) ruleFilters {
	var out ruleFilters
	for _, f := range fs {
		if f.RequestMirror != nil {
			if mp, ok := t.mirrorPolicy(routeNS, f.RequestMirror); ok {
				out.mirrors = append(out.mirrors, mp)
			}
		}
		if fc := t.faultRef(routeNS, f.ExtensionRef); fc != nil && out.fault == nil {
			out.fault = fc
		}
	}
	return out
}

func (t *translator) grpcRuleFilters(routeNS string, fs []gwv1.GRPCRouteFilter) ruleFilters {
	var out ruleFilters
	for _, f := range fs {
		if f.RequestMirror != nil {
			if mp, ok := t.mirrorPolicy(routeNS, f.RequestMirror); ok {
				out.mirrors = append(out.mirrors, mp)
			}
		}
		if fc := t.faultRef(routeNS, f.ExtensionRef); fc != nil && out.fault == nil {
			out.fault = fc
		}
	}
	return out
}

// apply adds the filters to a route built by action.
func (rf ruleFilters) apply(r *routev3.Route) {
	if len(rf.mirrors) > 0 {
		r.GetRoute().RequestMirrorPolicies = rf.mirrors
	}
	if rf.fault != nil {
		r.TypedPerFilterConfig = map[string]*anypb.Any{FaultFilterName: mustAny(rf.fault)}
	}
}

// usesFault reports whether a route of rc configures the fault filter.
func usesFault(rc *routev3.RouteConfiguration) bool {
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if _, ok := r.GetTypedPerFilterConfig()[FaultFilterName]; ok {
				return true
			}
		}
	}
	return false
}
