package translate

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/resource"
)

// parent is what a route attaches to: a Service port (mesh, GAMMA) or a
// Gateway's listeners on one port.
type parent struct {
	gateway  bool
	ns, name string
	port     int32           // 0: any
	sections map[string]bool // Gateway listener names on the port
}

// attaches reports whether one of refs (of a route in routeNS) names p.
func (p parent) attaches(routeNS string, refs []gwv1.ParentReference) bool {
	for _, ref := range refs {
		kind := "Gateway"
		if ref.Kind != nil {
			kind = string(*ref.Kind)
		}
		group := resource.GatewayGroup
		if ref.Group != nil {
			group = string(*ref.Group)
		}
		ns := routeNS
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if ns != p.ns || string(ref.Name) != p.name {
			continue
		}
		if ref.Port != nil && p.port != 0 && int32(*ref.Port) != p.port {
			continue
		}
		if p.gateway {
			if kind != "Gateway" || group != resource.GatewayGroup {
				continue
			}
			if ref.SectionName != nil && !p.sections[string(*ref.SectionName)] {
				continue
			}
			return true
		}
		// A Service parent (GAMMA) is written with group "" (core); an
		// omitted group is accepted too.
		if kind == "Service" && (ref.Group == nil || serviceGroup(group)) {
			return true
		}
	}
	return false
}

func serviceGroup(g string) bool { return g == "" || g == "core" || g == v1alpha1.GroupName }

// backend is a resolved backendRef.
type backend struct {
	svc    *resource.Object
	port   v1alpha1.ServicePort
	weight uint32
}

// resolveBackends keeps the references to Services the proxy may reach,
// with a port and a non-zero weight.
func (t *translator) resolveBackends(routeNS string, refs []gwv1.BackendRef) []backend {
	var out []backend
	for _, ref := range refs {
		if ref.Kind != nil && *ref.Kind != "Service" {
			continue
		}
		if ref.Group != nil && !serviceGroup(string(*ref.Group)) {
			continue
		}
		ns := routeNS
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		svc := t.in.Resources.services[nsName{ns, string(ref.Name)}]
		if svc == nil || !t.in.Resources.VisibleTo(svc, t.in.Proxy) || len(svc.Service().Ports) == 0 {
			continue
		}
		port := svc.Service().Ports[0]
		if ref.Port != nil {
			p, ok := svc.Service().Port(fmt.Sprint(*ref.Port))
			if !ok {
				continue
			}
			port = p
		}
		weight := uint32(1)
		if ref.Weight != nil {
			if *ref.Weight <= 0 {
				continue
			}
			weight = uint32(*ref.Weight)
		}
		out = append(out, backend{svc: svc, port: port, weight: weight})
	}
	return out
}

// entry is one Envoy route with what Gateway API precedence sorts on.
type entry struct {
	route    *routev3.Route
	pathKind int // 0 exact, 1 regular expression, 2 prefix
	pathLen  int
	method   bool
	headers  int
	queries  int
	order    int
}

func sortEntries(es []entry) {
	slices.SortStableFunc(es, func(a, b entry) int {
		return cmp.Or(
			cmp.Compare(a.pathKind, b.pathKind),
			cmp.Compare(b.pathLen, a.pathLen),
			cmp.Compare(boolInt(b.method), boolInt(a.method)),
			cmp.Compare(b.headers, a.headers),
			cmp.Compare(b.queries, a.queries),
			cmp.Compare(a.order, b.order),
		)
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ruleOpts are what an HTTPRoute rule says about timing: its request and
// per-backend-request timeouts and its retry stanza.
type ruleOpts struct {
	request, backend time.Duration
	retry            *gwv1.HTTPRouteRetry
}

func httpRuleOpts(rule gwv1.HTTPRouteRule) ruleOpts {
	out := ruleOpts{retry: rule.Retry}
	t := rule.Timeouts
	if t == nil {
		return out
	}
	if t.Request != nil {
		out.request, _ = time.ParseDuration(string(*t.Request))
	}
	if t.BackendRequest != nil {
		out.backend, _ = time.ParseDuration(string(*t.BackendRequest))
	}
	return out
}

// Retry conditions of a Gateway API retry stanza: connection errors always
// (the spec requires it), listed status codes when given.
const (
	gatewayRetryOn      = "connect-failure,refused-stream,reset"
	gatewayRetryOnCodes = gatewayRetryOn + ",retriable-status-codes"
)

// action builds the route action to bs: cluster or weighted clusters, with
// the timeout, retries and hashing of the first backend's BackendPolicy.
//
// Timeout: the rule's timeouts.request wins over the policy's
// requestTimeout; without either the route has no timeout (0s: Envoy's
// default would be 15s). Retries: the rule's retry stanza replaces the
// policy's retries. Per try: timeouts.backendRequest wins over the policy's
// perTryTimeout; without any retries it bounds the single try, so the route
// timeout becomes the shorter of the two.
func (t *translator) action(bs []backend, to ruleOpts) *routev3.RouteAction {
	a := &routev3.RouteAction{}
	if len(bs) == 1 {
		a.ClusterSpecifier = &routev3.RouteAction_Cluster{Cluster: t.outboundCluster(bs[0].svc, bs[0].port)}
	} else {
		wc := &routev3.WeightedCluster{}
		for _, b := range bs {
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
				Name:   t.outboundCluster(b.svc, b.port),
				Weight: wrapperspb.UInt32(b.weight),
			})
		}
		a.ClusterSpecifier = &routev3.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	policy := t.in.Resources.policies[nsName{bs[0].svc.Namespace, bs[0].svc.Name}]
	timeout := to.request
	if timeout == 0 && policy != nil {
		timeout = policy.RequestTimeout.Duration
	}
	var rp *routev3.RetryPolicy
	var perTry time.Duration
	switch {
	case to.retry != nil:
		rp = gatewayRetry(to.retry)
	case policy != nil && policy.Retries != nil:
		r := policy.Retries
		rp = &routev3.RetryPolicy{RetryOn: strings.Join(r.RetryOn, ",")}
		if r.Attempts != nil {
			rp.NumRetries = wrapperspb.UInt32(uint32(*r.Attempts))
		}
		perTry = r.PerTryTimeout.Duration
		if b := r.Backoff; b != nil && b.Base.Duration > 0 {
			rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: duration(b.Base.Duration)}
			if b.Max.Duration > 0 {
				rp.RetryBackOff.MaxInterval = duration(b.Max.Duration)
			}
		}
	}
	if to.backend != 0 {
		perTry = to.backend
	}
	switch {
	case rp != nil:
		if perTry > 0 {
			rp.PerTryTimeout = duration(perTry)
		}
		a.RetryPolicy = rp
	case to.backend != 0 && (timeout == 0 || to.backend < timeout):
		timeout = to.backend
	}
	a.Timeout = duration(timeout)
	if policy == nil {
		return a
	}
	if lb := policy.LoadBalancer; lb != nil && lb.Policy.IsHash() && lb.Hash != nil {
		hp := &routev3.RouteAction_HashPolicy{}
		switch {
		case lb.Hash.Header != "":
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: lb.Hash.Header}}
		case lb.Hash.Cookie != "":
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: lb.Hash.Cookie}}
		case lb.Hash.SourceIP:
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}
		}
		if hp.PolicySpecifier != nil {
			a.HashPolicy = []*routev3.RouteAction_HashPolicy{hp}
		}
	}
	return a
}

// gatewayRetry translates a Gateway API retry stanza: attempts (unset:
// Envoy's default, 1), codes as retriable status codes, backoff as the base
// interval (the maximum is the proxy's default, 10 × base).
func gatewayRetry(r *gwv1.HTTPRouteRetry) *routev3.RetryPolicy {
	rp := &routev3.RetryPolicy{RetryOn: gatewayRetryOn}
	if r.Attempts != nil {
		rp.NumRetries = wrapperspb.UInt32(uint32(max(*r.Attempts, 0)))
	}
	if len(r.Codes) > 0 {
		rp.RetryOn = gatewayRetryOnCodes
		for _, c := range r.Codes {
			rp.RetriableStatusCodes = append(rp.RetriableStatusCodes, uint32(c))
		}
	}
	if r.Backoff != nil {
		if d, err := time.ParseDuration(string(*r.Backoff)); err == nil && d > 0 {
			rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{BaseInterval: duration(d)}
		}
	}
	return rp
}

// routeEntries converts the HTTPRoutes and GRPCRoutes attached to p.
// order numbers the entries across calls (route age, then rule and match).
func (t *translator) routeEntries(p parent, hostnames func([]gwv1.Hostname) bool) []entry {
	var es []entry
	order := 0
	for _, o := range t.in.Resources.httpRoutes {
		spec := o.HTTPRoute()
		if !p.attaches(o.Namespace, spec.ParentRefs) || (hostnames != nil && !hostnames(spec.Hostnames)) {
			continue
		}
		for ri, rule := range spec.Rules {
			refs := make([]gwv1.BackendRef, len(rule.BackendRefs))
			for i, br := range rule.BackendRefs {
				refs[i] = br.BackendRef
			}
			bs := t.resolveBackends(o.Namespace, refs)
			if len(bs) == 0 {
				continue
			}
			matches := rule.Matches
			if len(matches) == 0 {
				matches = []gwv1.HTTPRouteMatch{{}}
			}
			for mi, m := range matches {
				e := httpMatch(m)
				e.order = order
				order++
				e.route.Name = fmt.Sprintf("httproute/%s/%s/%d/%d", o.Namespace, o.Name, ri, mi)
				e.route.Action = &routev3.Route_Route{Route: t.action(bs, httpRuleOpts(rule))}
				for _, f := range rule.Filters {
					headerFilter(e.route, f.RequestHeaderModifier, f.ResponseHeaderModifier)
				}
				t.httpRuleFilters(o.Namespace, rule.Filters).apply(e.route)
				es = append(es, e)
			}
		}
	}
	for _, o := range t.in.Resources.grpcRoutes {
		spec := o.GRPCRoute()
		if !p.attaches(o.Namespace, spec.ParentRefs) || (hostnames != nil && !hostnames(spec.Hostnames)) {
			continue
		}
		for ri, rule := range spec.Rules {
			refs := make([]gwv1.BackendRef, len(rule.BackendRefs))
			for i, br := range rule.BackendRefs {
				refs[i] = br.BackendRef
			}
			bs := t.resolveBackends(o.Namespace, refs)
			if len(bs) == 0 {
				continue
			}
			matches := rule.Matches
			if len(matches) == 0 {
				matches = []gwv1.GRPCRouteMatch{{}}
			}
			for mi, m := range matches {
				e := grpcMatch(m)
				e.order = order
				order++
				e.route.Name = fmt.Sprintf("grpcroute/%s/%s/%d/%d", o.Namespace, o.Name, ri, mi)
				e.route.Action = &routev3.Route_Route{Route: t.action(bs, ruleOpts{})}
				for _, f := range rule.Filters {
					headerFilter(e.route, f.RequestHeaderModifier, f.ResponseHeaderModifier)
				}
				t.grpcRuleFilters(o.Namespace, rule.Filters).apply(e.route)
				es = append(es, e)
			}
		}
	}
	return es
}

// serviceRoutes are the routes of a client calling svc:port: the attached
// routes by precedence, then a catch-all to the Service itself unless a
// route already catches everything.
func (t *translator) serviceRoutes(svc *resource.Object, port v1alpha1.ServicePort) []*routev3.Route {
	es := t.routeEntries(parent{ns: svc.Namespace, name: svc.Name, port: port.Port}, nil)
	sortEntries(es)
	var out []*routev3.Route
	catchAll := false
	for _, e := range es {
		out = append(out, e.route)
		m := e.route.GetMatch()
		if m.GetPrefix() == "/" && len(m.GetHeaders()) == 0 && len(m.GetQueryParameters()) == 0 {
			catchAll = true
		}
	}
	if !catchAll {
		out = append(out, &routev3.Route{
			Name:   "default",
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: t.action([]backend{{svc: svc, port: port, weight: 1}}, ruleOpts{})},
		})
	}
	return out
}

func httpMatch(m gwv1.HTTPRouteMatch) entry {
	e := entry{route: &routev3.Route{Match: &routev3.RouteMatch{}}, pathKind: 2, pathLen: 1}
	rm := e.route.Match
	rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
	if p := m.Path; p != nil && p.Value != nil {
		typ := gwv1.PathMatchPathPrefix
		if p.Type != nil {
			typ = *p.Type
		}
		v := *p.Value
		e.pathLen = len(v)
		switch typ {
		case gwv1.PathMatchExact:
			e.pathKind = 0
			rm.PathSpecifier = &routev3.RouteMatch_Path{Path: v}
		case gwv1.PathMatchRegularExpression:
			e.pathKind = 1
			rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: v}}
		default:
			if trimmed := strings.TrimRight(v, "/"); trimmed != "" {
				rm.PathSpecifier = &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: trimmed}
				e.pathLen = len(trimmed)
			}
		}
	}
	for _, h := range m.Headers {
		regex := h.Type != nil && *h.Type == gwv1.HeaderMatchRegularExpression
		rm.Headers = append(rm.Headers, headerMatcher(strings.ToLower(string(h.Name)), h.Value, regex))
	}
	for _, q := range m.QueryParams {
		sm := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: q.Value}}
		if q.Type != nil && *q.Type == gwv1.QueryParamMatchRegularExpression {
			sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: q.Value}}
		}
		rm.QueryParameters = append(rm.QueryParameters, &routev3.QueryParameterMatcher{
			Name:                         string(q.Name),
			QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: sm},
		})
	}
	if m.Method != nil {
		e.method = true
		rm.Headers = append(rm.Headers, headerMatcher(":method", string(*m.Method), false))
	}
	e.headers, e.queries = len(m.Headers), len(m.QueryParams)
	return e
}

// grpcMatch maps a GRPCRoute match to a path match on /service/method.
func grpcMatch(m gwv1.GRPCRouteMatch) entry {
	e := entry{route: &routev3.Route{Match: &routev3.RouteMatch{}}, pathKind: 2, pathLen: 1}
	rm := e.route.Match
	rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/"}
	if mm := m.Method; mm != nil {
		svc, method := deref(mm.Service), deref(mm.Method)
		regex := mm.Type != nil && *mm.Type == gwv1.GRPCMethodMatchRegularExpression
		switch {
		case regex:
			e.pathKind, e.pathLen = 1, len(svc)+len(method)
			rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/" + orAny(svc) + "/" + orAny(method)}}
		case svc != "" && method != "":
			e.pathKind, e.pathLen = 0, len(svc)+len(method)+2
			rm.PathSpecifier = &routev3.RouteMatch_Path{Path: "/" + svc + "/" + method}
		case svc != "":
			e.pathLen = len(svc) + 2
			rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: "/" + svc + "/"}
		case method != "":
			e.pathKind, e.pathLen = 1, len(method)
			rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "/[^/]+/" + regexp.QuoteMeta(method)}}
		}
	}
	for _, h := range m.Headers {
		regex := h.Type != nil && *h.Type == gwv1.GRPCHeaderMatchRegularExpression
		rm.Headers = append(rm.Headers, headerMatcher(strings.ToLower(string(h.Name)), h.Value, regex))
	}
	e.headers = len(m.Headers)
	return e
}

func orAny(s string) string {
	if s == "" {
		return "[^/]+"
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func headerMatcher(name, value string, regex bool) *routev3.HeaderMatcher {
	sm := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: value}}
	if regex {
		sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: value}}
	}
	return &routev3.HeaderMatcher{Name: name, HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}}
}

// headerFilter applies Request/ResponseHeaderModifier filters: set
// overwrites, add appends, remove removes.
func headerFilter(r *routev3.Route, req, resp *gwv1.HTTPHeaderFilter) {
	if req != nil {
		r.RequestHeadersToAdd = append(r.RequestHeadersToAdd, headerOptions(req)...)
		for _, h := range req.Remove {
			r.RequestHeadersToRemove = append(r.RequestHeadersToRemove, strings.ToLower(h))
		}
	}
	if resp != nil {
		r.ResponseHeadersToAdd = append(r.ResponseHeadersToAdd, headerOptions(resp)...)
		for _, h := range resp.Remove {
			r.ResponseHeadersToRemove = append(r.ResponseHeadersToRemove, strings.ToLower(h))
		}
	}
}

func headerOptions(f *gwv1.HTTPHeaderFilter) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, h := range f.Set {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(string(h.Name)), Value: h.Value},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	for _, h := range f.Add {
		out = append(out, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: strings.ToLower(string(h.Name)), Value: h.Value},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
	return out
}

// RouteBackends maps each Service that is the parent of HTTP or gRPC
// routes (GAMMA) to the Services those routes send to, as
// "<name>.<namespace>", sorted; the keys are "<namespace>/<name>". A
// caller's sidecar reports such calls under the backend's service, so
// whoever watches the parent (an AlertRule) watches these.
func RouteBackends(objs []resource.Object) map[string][]string {
	out := map[string][]string{}
	add := func(o *resource.Object, parents []gwv1.ParentReference, refs []gwv1.BackendRef) {
		for _, ref := range parents {
			if ref.Kind == nil || *ref.Kind != "Service" || (ref.Group != nil && !serviceGroup(string(*ref.Group))) {
				continue
			}
			ns := o.Namespace
			if ref.Namespace != nil {
				ns = string(*ref.Namespace)
			}
			key := ns + "/" + string(ref.Name)
			for _, b := range refs {
				if b.Kind != nil && *b.Kind != "Service" {
					continue
				}
				bns := o.Namespace
				if b.Namespace != nil {
					bns = string(*b.Namespace)
				}
				if svc := string(b.Name) + "." + bns; !slices.Contains(out[key], svc) {
					out[key] = append(out[key], svc)
				}
			}
		}
	}
	for i := range objs {
		o := &objs[i]
		if r := o.HTTPRoute(); r != nil {
			for _, rule := range r.Rules {
				for _, b := range rule.BackendRefs {
					add(o, r.ParentRefs, []gwv1.BackendRef{b.BackendRef})
				}
			}
		}
		if r := o.GRPCRoute(); r != nil {
			for _, rule := range r.Rules {
				for _, b := range rule.BackendRefs {
					add(o, r.ParentRefs, []gwv1.BackendRef{b.BackendRef})
				}
			}
		}
	}
	for _, list := range out {
		slices.Sort(list)
	}
	return out
}
