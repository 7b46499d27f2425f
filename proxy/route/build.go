package route

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushostsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrUnsupported is wrapped by errors for fields weft does not implement.
var ErrUnsupported = errors.New("unsupported")

// FieldError names the field of a RouteConfiguration that was rejected. It is
// immutable once returned and safe for concurrent use.
type FieldError struct {
	Path string // e.g. "virtual_hosts[0].routes[2].match.safe_regex.regex"
	Err  error
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(path string, format string, args ...any) error {
	return &FieldError{Path: path, Err: fmt.Errorf(format, args...)}
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

func index(path, field string, i int) string {
	return join(path, field) + "[" + strconv.Itoa(i) + "]"
}

// checkFields rejects every populated field of m not named in allowed, in
// declaration order, so that no field that would change behaviour is
// silently ignored.
func checkFields(m proto.Message, path string, allowed ...string) error {
	rm := m.ProtoReflect()
	fds := rm.Descriptor().Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if !rm.Has(fd) || slices.Contains(allowed, string(fd.Name())) {
			continue
		}
		return &FieldError{Path: join(path, string(fd.Name())), Err: ErrUnsupported}
	}
	return nil
}

// Limits.
const (
	defaultMaxDirectBody = 4096 // max_direct_response_body_size_bytes default, as Envoy
	maxRegexLen          = 4096 // longest accepted regular expression
)

// builder carries config-wide state while compiling.
type builder struct {
	rc           *routev3.RouteConfiguration
	maxBody      int
	mostSpecific bool
	cfgReq       []HeaderOp
	cfgResp      []HeaderOp
	clusters     map[string]bool
}

// Build compiles rc into a Table. Errors name the offending field's path,
// e.g. `route config "outbound|80": virtual_hosts[0].routes[2].match.safe_regex.regex: invalid RE2: ...`;
// fields weft does not implement are rejected with ErrUnsupported.
func Build(rc *routev3.RouteConfiguration) (*Table, error) {
	if rc == nil {
		return nil, errors.New("route config: nil")
	}
	t, err := build(rc)
	if err != nil {
		return nil, fmt.Errorf("route config %q: %w", rc.GetName(), err)
	}
	return t, nil
}

func build(rc *routev3.RouteConfiguration) (*Table, error) {
	if err := checkFields(rc, "", "name", "virtual_hosts", "response_headers_to_add", "response_headers_to_remove",
		"request_headers_to_add", "request_headers_to_remove", "most_specific_header_mutations_wins",
		"validate_clusters", "max_direct_response_body_size_bytes", "ignore_port_in_host_matching", "metadata"); err != nil {
		return nil, err
	}
	b := &builder{rc: rc, maxBody: defaultMaxDirectBody, mostSpecific: rc.GetMostSpecificHeaderMutationsWins(), clusters: map[string]bool{}}
	if v := rc.GetMaxDirectResponseBodySizeBytes(); v != nil {
		b.maxBody = int(v.GetValue())
	}
	var err error
	if b.cfgReq, err = headerOps(rc.GetRequestHeadersToRemove(), rc.GetRequestHeadersToAdd(), "", "request", true); err != nil {
		return nil, err
	}
	if b.cfgResp, err = headerOps(rc.GetResponseHeadersToRemove(), rc.GetResponseHeadersToAdd(), "", "response", false); err != nil {
		return nil, err
	}
	t := &Table{name: rc.GetName(), ignorePort: rc.GetIgnorePortInHostMatching()}
	seen := map[string]string{} // lower-case domain → path of its first use
	for i, vhc := range rc.GetVirtualHosts() {
		p := index("", "virtual_hosts", i)
		vh, err := b.virtualHost(vhc, p)
		if err != nil {
			return nil, err
		}
		t.vhosts = append(t.vhosts, vh)
		for j, d := range vhc.GetDomains() {
			dp := index(p, "domains", j)
			ld := strings.ToLower(d)
			if prev, dup := seen[ld]; dup {
				return nil, fieldErr(dp, "duplicate domain %q (also %s)", d, prev)
			}
			seen[ld] = dp
			if err := t.addDomain(ld, vh, dp); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(t.exact, func(a, b domainEntry) int { return strings.Compare(a.domain, b.domain) })
	byLenDesc := func(a, b domainEntry) int {
		if c := len(b.domain) - len(a.domain); c != 0 {
			return c
		}
		return strings.Compare(a.domain, b.domain)
	}
	slices.SortFunc(t.suffix, byLenDesc)
	slices.SortFunc(t.prefix, byLenDesc)
	if len(t.exact) >= mapThreshold {
		t.exactMap = make(map[string]*virtualHost, len(t.exact))
		for _, e := range t.exact {
			t.exactMap[e.domain] = e.vh
		}
	}
	t.onlyStar = t.star != nil && len(t.exact)+len(t.suffix)+len(t.prefix) == 0
	for c := range b.clusters {
		t.clusters = append(t.clusters, c)
	}
	slices.Sort(t.clusters)
	return t, nil
}

func (t *Table) addDomain(d string, vh *virtualHost, path string) error {
	if d == "" {
		return fieldErr(path, "empty domain")
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; c < 0x21 || c == 0x7f {
			return fieldErr(path, "invalid character %q in domain", c)
		}
	}
	switch {
	case d == "*":
		t.star = vh
	case len(d) > 1 && (strings.IndexByte(d[1:len(d)-1], '*') >= 0 || (d[0] == '*' && d[len(d)-1] == '*')):
		return fieldErr(path, "domain %q: a wildcard is allowed only at the start or the end", d)
	case d[0] == '*':
		t.suffix = append(t.suffix, domainEntry{domain: d[1:], vh: vh})
	case d[len(d)-1] == '*':
		t.prefix = append(t.prefix, domainEntry{domain: d[:len(d)-1], vh: vh})
	default:
		t.exact = append(t.exact, domainEntry{domain: d, vh: vh})
	}
	return nil
}

func (b *builder) virtualHost(vhc *routev3.VirtualHost, p string) (*virtualHost, error) {
	if err := checkFields(vhc, p, "name", "domains", "routes", "request_headers_to_add", "request_headers_to_remove",
		"response_headers_to_add", "response_headers_to_remove", "retry_policy", "metadata", "typed_per_filter_config"); err != nil {
		return nil, err
	}
	vhFault, err := perFilterFault(vhc.GetTypedPerFilterConfig(), join(p, "typed_per_filter_config"))
	if err != nil {
		return nil, err
	}
	if vhc.GetName() == "" {
		return nil, fieldErr(join(p, "name"), "required")
	}
	if len(vhc.GetDomains()) == 0 {
		return nil, fieldErr(join(p, "domains"), "at least one domain required")
	}
	vhReq, err := headerOps(vhc.GetRequestHeadersToRemove(), vhc.GetRequestHeadersToAdd(), p, "request", true)
	if err != nil {
		return nil, err
	}
	vhResp, err := headerOps(vhc.GetResponseHeadersToRemove(), vhc.GetResponseHeadersToAdd(), p, "response", false)
	if err != nil {
		return nil, err
	}
	var vhRetry *RetryPolicy
	if rp := vhc.GetRetryPolicy(); rp != nil {
		if vhRetry, err = retryPolicy(rp, join(p, "retry_policy")); err != nil {
			return nil, err
		}
	}
	vh := &virtualHost{name: vhc.GetName()}
	for i, rtc := range vhc.GetRoutes() {
		rp := index(p, "routes", i)
		rt, err := b.route(rtc, rp, vh.name, vhRetry)
		if err != nil {
			return nil, err
		}
		routeReq, err := headerOps(rtc.GetRequestHeadersToRemove(), rtc.GetRequestHeadersToAdd(), rp, "request", true)
		if err != nil {
			return nil, err
		}
		routeResp, err := headerOps(rtc.GetResponseHeadersToRemove(), rtc.GetResponseHeadersToAdd(), rp, "response", false)
		if err != nil {
			return nil, err
		}
		rt.RequestHeaders = b.mutation(routeReq, vhReq, b.cfgReq)
		rt.ResponseHeaders = b.mutation(routeResp, vhResp, b.cfgResp)
		if rt.Fault == nil {
			rt.Fault = vhFault
		}
		vh.routes = append(vh.routes, rt)
	}
	return vh, nil
}

// mutation concatenates the levels in Envoy's order: route, virtual host,
// config; reversed with most_specific_header_mutations_wins.
func (b *builder) mutation(route, vhost, config []HeaderOp) *HeaderMutation {
	levels := [][]HeaderOp{route, vhost, config}
	if b.mostSpecific {
		slices.Reverse(levels)
	}
	ops := slices.Concat(levels...)
	if len(ops) == 0 {
		return nil
	}
	return &HeaderMutation{ops: ops}
}

func (b *builder) route(rtc *routev3.Route, p, vhName string, vhRetry *RetryPolicy) (*Route, error) {
	if err := checkFields(rtc, p, "name", "match", "route", "redirect", "direct_response", "metadata", "decorator",
		"request_headers_to_add", "request_headers_to_remove", "response_headers_to_add", "response_headers_to_remove",
		"typed_per_filter_config"); err != nil {
		return nil, err
	}
	rt := &Route{Name: rtc.GetName(), VirtualHost: vhName}
	f, err := perFilterFault(rtc.GetTypedPerFilterConfig(), join(p, "typed_per_filter_config"))
	if err != nil {
		return nil, err
	}
	rt.Fault = f
	if d := rtc.GetDecorator(); d != nil {
		if err := checkFields(d, join(p, "decorator"), "operation", "propagate"); err != nil {
			return nil, err
		}
		rt.Decorator = d.GetOperation()
	}
	if rtc.GetMatch() == nil {
		return nil, fieldErr(join(p, "match"), "required")
	}
	m, err := routeMatchOf(rtc.GetMatch(), join(p, "match"))
	if err != nil {
		return nil, err
	}
	rt.match = m
	switch {
	case rtc.GetRoute() != nil:
		rt.Action = ActionForward
		err = b.routeAction(rt, rtc.GetRoute(), join(p, "route"), vhRetry)
	case rtc.GetRedirect() != nil:
		rt.Action = ActionRedirect
		rt.Redirect, err = redirectOf(rtc.GetRedirect(), join(p, "redirect"))
	case rtc.GetDirectResponse() != nil:
		rt.Action = ActionDirect
		rt.DirectResponse, err = b.directResponse(rtc.GetDirectResponse(), join(p, "direct_response"))
	default:
		return nil, fieldErr(p, "action required: route, redirect or direct_response")
	}
	if err != nil {
		return nil, err
	}
	return rt, nil
}

func routeMatchOf(mc *routev3.RouteMatch, p string) (routeMatch, error) {
	var m routeMatch
	if err := checkFields(mc, p, "prefix", "path", "safe_regex", "path_separated_prefix", "case_sensitive",
		"headers", "query_parameters", "grpc"); err != nil {
		return m, err
	}
	m.caseSensitive = mc.GetCaseSensitive() == nil || mc.GetCaseSensitive().GetValue()
	fold := func(s string) string {
		if m.caseSensitive {
			return s
		}
		return strings.ToLower(s)
	}
	switch ps := mc.GetPathSpecifier().(type) {
	case *routev3.RouteMatch_Prefix:
		m.kind, m.value = pathPrefix, fold(ps.Prefix)
	case *routev3.RouteMatch_Path:
		m.kind, m.value = pathExact, fold(ps.Path)
	case *routev3.RouteMatch_PathSeparatedPrefix:
		v := ps.PathSeparatedPrefix
		if v == "" || strings.ContainsAny(v, "?#") || strings.HasSuffix(v, "/") {
			return m, fieldErr(join(p, "path_separated_prefix"), "%q must be non-empty, without '?' or '#', and not end with '/'", v)
		}
		m.kind, m.value = pathSeparatedPrefix, fold(v)
	case *routev3.RouteMatch_SafeRegex:
		re, err := compileRegex(ps.SafeRegex, join(p, "safe_regex"), true)
		if err != nil {
			return m, err
		}
		m.kind, m.re = pathRegex, re
		m.reLit, _ = re.LiteralPrefix()
	default:
		return m, fieldErr(p, "one of prefix, path, safe_regex or path_separated_prefix required")
	}
	if g := mc.GetGrpc(); g != nil {
		if err := checkFields(g, join(p, "grpc")); err != nil {
			return m, err
		}
		m.grpc = true
	}
	for i, hc := range mc.GetHeaders() {
		hm, err := headerMatcherOf(hc, index(p, "headers", i))
		if err != nil {
			return m, err
		}
		m.headers = append(m.headers, hm)
	}
	for i, qc := range mc.GetQueryParameters() {
		qp := index(p, "query_parameters", i)
		if err := checkFields(qc, qp, "name", "string_match", "present_match"); err != nil {
			return m, err
		}
		if qc.GetName() == "" {
			return m, fieldErr(join(qp, "name"), "required")
		}
		q := queryMatcher{name: qc.GetName(), presence: true}
		if sm := qc.GetStringMatch(); sm != nil {
			s, err := stringMatcherOf(sm, join(qp, "string_match"))
			if err != nil {
				return m, err
			}
			q.presence, q.sm = false, s
		}
		m.query = append(m.query, q)
	}
	return m, nil
}

func headerMatcherOf(hc *routev3.HeaderMatcher, p string) (headerMatcher, error) {
	var h headerMatcher
	if err := checkFields(hc, p, "name", "exact_match", "safe_regex_match", "present_match", "prefix_match",
		"suffix_match", "contains_match", "string_match", "invert_match", "treat_missing_header_as_empty"); err != nil {
		return h, err
	}
	name := strings.ToLower(hc.GetName())
	if err := validHeaderName(name, true); err != nil {
		return h, fieldErr(join(p, "name"), "%w", err)
	}
	h.name, h.pseudo = name, pseudoOf(name)
	if strings.HasPrefix(name, ":") && h.pseudo == pseudoNone {
		return h, fieldErr(join(p, "name"), "pseudo-header %q: %w", name, ErrUnsupported)
	}
	h.invert, h.missingAsEmpty = hc.GetInvertMatch(), hc.GetTreatMissingHeaderAsEmpty()
	switch s := hc.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_StringMatch:
		sm, err := stringMatcherOf(s.StringMatch, join(p, "string_match"))
		if err != nil {
			return h, err
		}
		h.sm = sm
	case *routev3.HeaderMatcher_PresentMatch:
		h.presence, h.present = true, s.PresentMatch
	case *routev3.HeaderMatcher_ExactMatch:
		h.sm = stringMatcher{kind: strExact, value: s.ExactMatch}
	case *routev3.HeaderMatcher_PrefixMatch:
		h.sm = stringMatcher{kind: strPrefix, value: s.PrefixMatch}
	case *routev3.HeaderMatcher_SuffixMatch:
		h.sm = stringMatcher{kind: strSuffix, value: s.SuffixMatch}
	case *routev3.HeaderMatcher_ContainsMatch:
		h.sm = stringMatcher{kind: strContains, value: s.ContainsMatch}
	case *routev3.HeaderMatcher_SafeRegexMatch:
		re, err := compileRegex(s.SafeRegexMatch, join(p, "safe_regex_match"), true)
		if err != nil {
			return h, err
		}
		lit, _ := re.LiteralPrefix()
		h.sm = stringMatcher{kind: strRegex, re: re, reLit: lit}
	default:
		// No specifier: Envoy treats it as a presence match.
		h.presence, h.present = true, true
	}
	return h, nil
}

func stringMatcherOf(sc *matcherv3.StringMatcher, p string) (stringMatcher, error) {
	var s stringMatcher
	if err := checkFields(sc, p, "exact", "prefix", "suffix", "safe_regex", "contains", "ignore_case"); err != nil {
		return s, err
	}
	s.ignoreCase = sc.GetIgnoreCase()
	v := func(x string) string {
		if s.ignoreCase {
			return strings.ToLower(x)
		}
		return x
	}
	switch ms := sc.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		s.kind, s.value = strExact, v(ms.Exact)
	case *matcherv3.StringMatcher_Prefix:
		if ms.Prefix == "" {
			return s, fieldErr(join(p, "prefix"), "must not be empty")
		}
		s.kind, s.value = strPrefix, v(ms.Prefix)
	case *matcherv3.StringMatcher_Suffix:
		if ms.Suffix == "" {
			return s, fieldErr(join(p, "suffix"), "must not be empty")
		}
		s.kind, s.value = strSuffix, v(ms.Suffix)
	case *matcherv3.StringMatcher_Contains:
		if ms.Contains == "" {
			return s, fieldErr(join(p, "contains"), "must not be empty")
		}
		s.kind, s.value = strContains, v(ms.Contains)
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileRegex(ms.SafeRegex, join(p, "safe_regex"), true)
		if err != nil {
			return s, err
		}
		s.kind, s.re = strRegex, re
		s.reLit, _ = re.LiteralPrefix()
	default:
		return s, fieldErr(p, "one of exact, prefix, suffix, contains or safe_regex required")
	}
	return s, nil
}

// compileRegex compiles a RegexMatcher as RE2. With full, the expression must
// match the whole input (Envoy's full match).
func compileRegex(rc *matcherv3.RegexMatcher, p string, full bool) (*regexp.Regexp, error) {
	if rc == nil {
		return nil, fieldErr(p, "required")
	}
	if err := checkFields(rc, p, "regex", "google_re2"); err != nil {
		return nil, err
	}
	if g := rc.GetGoogleRe2(); g != nil {
		if err := checkFields(g, join(p, "google_re2"), "max_program_size"); err != nil {
			return nil, err
		}
	}
	expr := rc.GetRegex()
	rp := join(p, "regex")
	if expr == "" {
		return nil, fieldErr(rp, "required")
	}
	if len(expr) > maxRegexLen {
		return nil, fieldErr(rp, "longer than %d bytes", maxRegexLen)
	}
	// Check the expression alone first so that anchoring cannot hide an error
	// (for example an unbalanced ")(").
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		return nil, fieldErr(rp, "invalid RE2: %w", err)
	}
	if full {
		expr = `^(?:` + expr + `)$`
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fieldErr(rp, "invalid RE2: %w", err)
	}
	return re, nil
}

// regexRewrite compiles a RegexMatchAndSubstitute; the substitution uses
// RE2's syntax (\0..\9 capture groups, \\ a backslash) and is converted to
// regexp.Expand's.
func regexRewrite(rc *matcherv3.RegexMatchAndSubstitute, p string) (*regexp.Regexp, string, error) {
	if err := checkFields(rc, p, "pattern", "substitution"); err != nil {
		return nil, "", err
	}
	re, err := compileRegex(rc.GetPattern(), join(p, "pattern"), false)
	if err != nil {
		return nil, "", err
	}
	sub := rc.GetSubstitution()
	var b strings.Builder
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		switch {
		case c == '$':
			b.WriteString("$$")
		case c != '\\':
			b.WriteByte(c)
		case i+1 < len(sub) && sub[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case i+1 < len(sub) && sub[i+1] >= '0' && sub[i+1] <= '9':
			n := int(sub[i+1] - '0')
			if n > re.NumSubexp() {
				return nil, "", fieldErr(join(p, "substitution"), "\\%d refers to a missing capture group (the pattern has %d)", n, re.NumSubexp())
			}
			b.WriteString("${" + strconv.Itoa(n) + "}")
			i++
		default:
			return nil, "", fieldErr(join(p, "substitution"), "invalid escape at offset %d: use \\0-\\9 or \\\\", i)
		}
	}
	return re, b.String(), nil
}

func (b *builder) routeAction(rt *Route, ac *routev3.RouteAction, p string, vhRetry *RetryPolicy) error {
	if err := checkFields(ac, p, "cluster", "weighted_clusters", "cluster_not_found_response_code", "prefix_rewrite",
		"regex_rewrite", "host_rewrite_literal", "timeout", "idle_timeout", "retry_policy", "hash_policy",
		"request_mirror_policies"); err != nil {
		return err
	}
	for i, mp := range ac.GetRequestMirrorPolicies() {
		mirror, err := mirrorOf(mp, index(p, "request_mirror_policies", i))
		if err != nil {
			return err
		}
		b.clusters[mirror.Cluster] = true
		rt.Mirrors = append(rt.Mirrors, mirror)
	}
	switch cs := ac.GetClusterSpecifier().(type) {
	case *routev3.RouteAction_Cluster:
		if cs.Cluster == "" {
			return fieldErr(join(p, "cluster"), "must not be empty")
		}
		rt.Cluster = cs.Cluster
		b.clusters[cs.Cluster] = true
	case *routev3.RouteAction_WeightedClusters:
		if err := b.weighted(rt, cs.WeightedClusters, join(p, "weighted_clusters")); err != nil {
			return err
		}
	default:
		return fieldErr(p, "cluster or weighted_clusters required")
	}
	switch ac.GetClusterNotFoundResponseCode() {
	case routev3.RouteAction_SERVICE_UNAVAILABLE:
		rt.ClusterNotFound = 503
	case routev3.RouteAction_NOT_FOUND:
		rt.ClusterNotFound = 404
	case routev3.RouteAction_INTERNAL_SERVER_ERROR:
		rt.ClusterNotFound = 500
	default:
		return fieldErr(join(p, "cluster_not_found_response_code"), "unknown value %d", ac.GetClusterNotFoundResponseCode())
	}
	if ac.GetPrefixRewrite() != "" && ac.GetRegexRewrite() != nil {
		return fieldErr(join(p, "regex_rewrite"), "only one of prefix_rewrite and regex_rewrite may be set")
	}
	if pr := ac.GetPrefixRewrite(); pr != "" {
		rt.prefixRewrite, rt.hasPrefixRewrite = pr, true
	}
	if rr := ac.GetRegexRewrite(); rr != nil {
		re, sub, err := regexRewrite(rr, join(p, "regex_rewrite"))
		if err != nil {
			return err
		}
		rt.rewriteRe, rt.rewriteSub = re, sub
	}
	if h, ok := ac.GetHostRewriteSpecifier().(*routev3.RouteAction_HostRewriteLiteral); ok {
		if h.HostRewriteLiteral == "" || strings.ContainsAny(h.HostRewriteLiteral, "\r\n\x00 /") {
			return fieldErr(join(p, "host_rewrite_literal"), "invalid host %q", h.HostRewriteLiteral)
		}
		rt.HostRewrite = h.HostRewriteLiteral
	}
	rt.Timeout = DefaultTimeout
	if d := ac.GetTimeout(); d != nil {
		v, err := duration(d, join(p, "timeout"))
		if err != nil {
			return err
		}
		rt.Timeout = v
	}
	if d := ac.GetIdleTimeout(); d != nil {
		v, err := duration(d, join(p, "idle_timeout"))
		if err != nil {
			return err
		}
		rt.IdleTimeout, rt.HasIdleTimeout = v, true
	}
	rt.Retry = vhRetry
	if rp := ac.GetRetryPolicy(); rp != nil {
		r, err := retryPolicy(rp, join(p, "retry_policy"))
		if err != nil {
			return err
		}
		rt.Retry = r
	}
	for i, hc := range ac.GetHashPolicy() {
		hp, err := hashPolicyOf(hc, index(p, "hash_policy", i))
		if err != nil {
			return err
		}
		rt.Hash = append(rt.Hash, hp)
	}
	return nil
}

func (b *builder) weighted(rt *Route, wc *routev3.WeightedCluster, p string) error {
	if err := checkFields(wc, p, "clusters", "total_weight"); err != nil {
		return err
	}
	if len(wc.GetClusters()) == 0 {
		return fieldErr(join(p, "clusters"), "at least one cluster required")
	}
	var total uint64
	for i, cw := range wc.GetClusters() {
		cp := index(p, "clusters", i)
		if err := checkFields(cw, cp, "name", "weight"); err != nil {
			return err
		}
		if cw.GetName() == "" {
			return fieldErr(join(cp, "name"), "required")
		}
		w := cw.GetWeight().GetValue()
		total += uint64(w)
		rt.Weighted = append(rt.Weighted, WeightedCluster{Name: cw.GetName(), Weight: w})
		b.clusters[cw.GetName()] = true
	}
	if total == 0 {
		return fieldErr(join(p, "clusters"), "total weight is zero")
	}
	if total > math.MaxUint32 {
		return fieldErr(join(p, "clusters"), "total weight %d exceeds %d", total, uint32(math.MaxUint32))
	}
	if tw := wc.GetTotalWeight(); tw != nil && uint64(tw.GetValue()) != total {
		return fieldErr(join(p, "total_weight"), "%d differs from the sum of the weights %d", tw.GetValue(), total)
	}
	rt.totalWeight = total
	return nil
}

func duration(d *durationpb.Duration, p string) (time.Duration, error) {
	if err := d.CheckValid(); err != nil {
		return 0, fieldErr(p, "%w", err)
	}
	if d.GetSeconds() < 0 || d.GetNanos() < 0 {
		return 0, fieldErr(p, "must not be negative")
	}
	if d.GetSeconds() > int64(math.MaxInt64/time.Second)-1 {
		return 0, fieldErr(p, "too large")
	}
	return d.AsDuration(), nil
}

func retryPolicy(rc *routev3.RetryPolicy, p string) (*RetryPolicy, error) {
	if err := checkFields(rc, p, "retry_on", "num_retries", "per_try_timeout", "retry_back_off", "retriable_status_codes",
		"retry_host_predicate", "host_selection_retry_max_attempts"); err != nil {
		return nil, err
	}
	rp := &RetryPolicy{NumRetries: DefaultNumRetries, BackoffBase: DefaultBackoffBase}
	for tok := range strings.SplitSeq(rc.GetRetryOn(), ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		i := slices.IndexFunc(retryOnNames, func(n retryOnName) bool { return n.name == tok })
		switch {
		case i >= 0:
			rp.On |= retryOnNames[i].bit
		case slices.Contains(retryOnUnsupported, tok):
			return nil, fieldErr(join(p, "retry_on"), "%q: %w", tok, ErrUnsupported)
		default:
			return nil, fieldErr(join(p, "retry_on"), "unknown condition %q", tok)
		}
	}
	if n := rc.GetNumRetries(); n != nil {
		rp.NumRetries = n.GetValue()
	}
	if d := rc.GetPerTryTimeout(); d != nil {
		v, err := duration(d, join(p, "per_try_timeout"))
		if err != nil {
			return nil, err
		}
		rp.PerTryTimeout = v
	}
	rp.BackoffMax = 10 * rp.BackoffBase
	if bo := rc.GetRetryBackOff(); bo != nil {
		bp := join(p, "retry_back_off")
		if err := checkFields(bo, bp, "base_interval", "max_interval"); err != nil {
			return nil, err
		}
		if bo.GetBaseInterval() == nil {
			return nil, fieldErr(join(bp, "base_interval"), "required")
		}
		base, err := duration(bo.GetBaseInterval(), join(bp, "base_interval"))
		if err != nil {
			return nil, err
		}
		if base < time.Millisecond {
			return nil, fieldErr(join(bp, "base_interval"), "must be at least 1ms")
		}
		rp.BackoffBase, rp.BackoffMax = base, 10*base
		if bo.GetMaxInterval() != nil {
			mx, err := duration(bo.GetMaxInterval(), join(bp, "max_interval"))
			if err != nil {
				return nil, err
			}
			if mx < base {
				return nil, fieldErr(join(bp, "max_interval"), "%v is less than base_interval %v", mx, base)
			}
			rp.BackoffMax = mx
		}
	}
	for i, c := range rc.GetRetriableStatusCodes() {
		if c < 100 || c > 599 {
			return nil, fieldErr(index(p, "retriable_status_codes", i), "%d is not an HTTP status", c)
		}
		rp.RetriableStatusCodes = append(rp.RetriableStatusCodes, int(c))
	}
	slices.Sort(rp.RetriableStatusCodes)
	rp.RetriableStatusCodes = slices.Compact(rp.RetriableStatusCodes)
	for i, hp := range rc.GetRetryHostPredicate() {
		pp := index(p, "retry_host_predicate", i)
		if err := checkFields(hp, pp, "name", "typed_config"); err != nil {
			return nil, err
		}
		tc := hp.GetTypedConfig()
		if tc != nil && !tc.MessageIs(&previoushostsv3.PreviousHostsPredicate{}) {
			return nil, fieldErr(join(pp, "typed_config"), "%s: %w", tc.GetTypeUrl(), ErrUnsupported)
		}
		if tc == nil && hp.GetName() != "envoy.retry_host_predicates.previous_hosts" {
			return nil, fieldErr(join(pp, "name"), "%q: %w", hp.GetName(), ErrUnsupported)
		}
		rp.AvoidPreviousHosts = true
	}
	if n := rc.GetHostSelectionRetryMaxAttempts(); n != 0 {
		if n < 0 {
			return nil, fieldErr(join(p, "host_selection_retry_max_attempts"), "must not be negative")
		}
		rp.HostSelectionMaxAttempts = n
	}
	return rp, nil
}

func hashPolicyOf(hc *routev3.RouteAction_HashPolicy, p string) (HashPolicy, error) {
	var h HashPolicy
	if err := checkFields(hc, p, "header", "cookie", "connection_properties", "query_parameter", "terminal"); err != nil {
		return h, err
	}
	h.Terminal = hc.GetTerminal()
	switch s := hc.GetPolicySpecifier().(type) {
	case *routev3.RouteAction_HashPolicy_Header_:
		hp := join(p, "header")
		if err := checkFields(s.Header, hp, "header_name"); err != nil {
			return h, err
		}
		name := strings.ToLower(s.Header.GetHeaderName())
		if err := validHeaderName(name, true); err != nil {
			return h, fieldErr(join(hp, "header_name"), "%w", err)
		}
		h.Kind, h.Name, h.pseudo = HashHeader, name, pseudoOf(name)
	case *routev3.RouteAction_HashPolicy_Cookie_:
		cp := join(p, "cookie")
		// ttl and path only matter when Envoy generates the cookie, which
		// weft does not do: accepted, no effect.
		if err := checkFields(s.Cookie, cp, "name", "ttl", "path"); err != nil {
			return h, err
		}
		if s.Cookie.GetName() == "" {
			return h, fieldErr(join(cp, "name"), "required")
		}
		h.Kind, h.Name = HashCookie, s.Cookie.GetName()
	case *routev3.RouteAction_HashPolicy_ConnectionProperties_:
		cp := join(p, "connection_properties")
		if err := checkFields(s.ConnectionProperties, cp, "source_ip"); err != nil {
			return h, err
		}
		if !s.ConnectionProperties.GetSourceIp() {
			return h, fieldErr(join(cp, "source_ip"), "must be true")
		}
		h.Kind = HashSourceIP
	case *routev3.RouteAction_HashPolicy_QueryParameter_:
		qp := join(p, "query_parameter")
		if err := checkFields(s.QueryParameter, qp, "name"); err != nil {
			return h, err
		}
		if s.QueryParameter.GetName() == "" {
			return h, fieldErr(join(qp, "name"), "required")
		}
		h.Kind, h.Name = HashQueryParameter, s.QueryParameter.GetName()
	default:
		return h, fieldErr(p, "one of header, cookie, connection_properties or query_parameter required")
	}
	return h, nil
}

func redirectOf(rc *routev3.RedirectAction, p string) (*Redirect, error) {
	if err := checkFields(rc, p, "https_redirect", "scheme_redirect", "host_redirect", "port_redirect",
		"path_redirect", "prefix_rewrite", "regex_rewrite", "response_code", "strip_query"); err != nil {
		return nil, err
	}
	rd := &Redirect{Host: rc.GetHostRedirect(), StripQuery: rc.GetStripQuery()}
	switch s := rc.GetSchemeRewriteSpecifier().(type) {
	case *routev3.RedirectAction_HttpsRedirect:
		if s.HttpsRedirect {
			rd.Scheme = "https"
		}
	case *routev3.RedirectAction_SchemeRedirect:
		sc := strings.ToLower(s.SchemeRedirect)
		if sc == "" || strings.Trim(sc, "abcdefghijklmnopqrstuvwxyz0123456789+-.") != "" {
			return nil, fieldErr(join(p, "scheme_redirect"), "invalid scheme %q", s.SchemeRedirect)
		}
		rd.Scheme = sc
	}
	if strings.ContainsAny(rd.Host, "\r\n\x00 /?#") {
		return nil, fieldErr(join(p, "host_redirect"), "invalid host %q", rd.Host)
	}
	if port := rc.GetPortRedirect(); port != 0 {
		if port > 65535 {
			return nil, fieldErr(join(p, "port_redirect"), "%d out of range", port)
		}
		rd.Port = port
	}
	switch s := rc.GetPathRewriteSpecifier().(type) {
	case *routev3.RedirectAction_PathRedirect:
		if !strings.HasPrefix(s.PathRedirect, "/") || strings.ContainsAny(s.PathRedirect, "\r\n\x00 ") {
			return nil, fieldErr(join(p, "path_redirect"), "invalid path %q", s.PathRedirect)
		}
		rd.Path = s.PathRedirect
	case *routev3.RedirectAction_PrefixRewrite:
		if strings.ContainsAny(s.PrefixRewrite, "\r\n\x00 ") {
			return nil, fieldErr(join(p, "prefix_rewrite"), "invalid prefix %q", s.PrefixRewrite)
		}
		rd.PrefixRewrite, rd.HasPrefix = s.PrefixRewrite, true
	case *routev3.RedirectAction_RegexRewrite:
		re, sub, err := regexRewrite(s.RegexRewrite, join(p, "regex_rewrite"))
		if err != nil {
			return nil, err
		}
		rd.re, rd.reSub = re, sub
	}
	switch rc.GetResponseCode() {
	case routev3.RedirectAction_MOVED_PERMANENTLY:
		rd.Code = 301
	case routev3.RedirectAction_FOUND:
		rd.Code = 302
	case routev3.RedirectAction_SEE_OTHER:
		rd.Code = 303
	case routev3.RedirectAction_TEMPORARY_REDIRECT:
		rd.Code = 307
	case routev3.RedirectAction_PERMANENT_REDIRECT:
		rd.Code = 308
	default:
		return nil, fieldErr(join(p, "response_code"), "unknown value %d", rc.GetResponseCode())
	}
	return rd, nil
}

func (b *builder) directResponse(dc *routev3.DirectResponseAction, p string) (*DirectResponse, error) {
	if err := checkFields(dc, p, "status", "body"); err != nil {
		return nil, err
	}
	if s := dc.GetStatus(); s < 200 || s > 599 {
		return nil, fieldErr(join(p, "status"), "%d not in [200, 599]", s)
	}
	d := &DirectResponse{Status: int(dc.GetStatus())}
	if body := dc.GetBody(); body != nil {
		bp := join(p, "body")
		if err := checkFields(body, bp, "inline_string", "inline_bytes"); err != nil {
			return nil, err
		}
		switch s := body.GetSpecifier().(type) {
		case *corev3.DataSource_InlineString:
			d.Body = s.InlineString
		case *corev3.DataSource_InlineBytes:
			d.Body = string(s.InlineBytes)
		}
		if len(d.Body) > b.maxBody {
			return nil, fieldErr(bp, "%d bytes exceed max_direct_response_body_size_bytes %d", len(d.Body), b.maxBody)
		}
	}
	return d, nil
}

// headerOps compiles one level's headers_to_remove and headers_to_add:
// removals first, then additions in order, as Envoy evaluates them.
func headerOps(remove []string, add []*corev3.HeaderValueOption, p, dir string, request bool) ([]HeaderOp, error) {
	var ops []HeaderOp
	for i, name := range remove {
		rp := index(p, dir+"_headers_to_remove", i)
		n := strings.ToLower(name)
		if err := validHeaderName(n, false); err != nil {
			return nil, fieldErr(rp, "%w", err)
		}
		if request && n == "host" {
			return nil, fieldErr(rp, "the host header may not be removed")
		}
		ops = append(ops, HeaderOp{Action: Remove, Name: n})
	}
	for i, hv := range add {
		ap := index(p, dir+"_headers_to_add", i)
		if err := checkFields(hv, ap, "header", "append", "append_action", "keep_empty_value"); err != nil {
			return nil, err
		}
		h := hv.GetHeader()
		if h == nil {
			return nil, fieldErr(join(ap, "header"), "required")
		}
		if err := checkFields(h, join(ap, "header"), "key", "value", "raw_value"); err != nil {
			return nil, err
		}
		n := strings.ToLower(h.GetKey())
		if err := validHeaderName(n, false); err != nil {
			return nil, fieldErr(join(ap, "header.key"), "%w", err)
		}
		if request && n == "host" {
			return nil, fieldErr(join(ap, "header.key"), "the host header may not be modified")
		}
		raw := h.GetValue()
		vp := join(ap, "header.value")
		if raw == "" && len(h.GetRawValue()) > 0 {
			raw, vp = string(h.GetRawValue()), join(ap, "header.raw_value")
		}
		v, err := literalValue(raw)
		if err != nil {
			return nil, fieldErr(vp, "%w", err)
		}
		action := AppendAction(hv.GetAppendAction())
		if action > OverwriteIfExists {
			return nil, fieldErr(join(ap, "append_action"), "unknown value %d", hv.GetAppendAction())
		}
		if a := hv.GetAppend(); a != nil {
			if hv.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
				return nil, fieldErr(join(ap, "append"), "append and append_action are mutually exclusive")
			}
			if !a.GetValue() {
				action = OverwriteIfExistsOrAdd
			}
		}
		if v == "" && !hv.GetKeepEmptyValue() {
			continue // Envoy drops empty values unless keep_empty_value
		}
		ops = append(ops, HeaderOp{Action: action, Name: n, Value: v})
	}
	return ops, nil
}

// literalValue checks a header value: no control characters, and no
// %FORMAT% substitutions (unsupported) except "%%", which becomes "%".
func literalValue(s string) (string, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 {
			return "", fmt.Errorf("control character %q in value", c)
		}
	}
	if strings.IndexByte(s, '%') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		return "", fmt.Errorf("format string %q: %w (only literal values; write %%%% for %%)", s, ErrUnsupported)
	}
	return b.String(), nil
}

// validHeaderName checks an RFC 9110 token in lower case. Pseudo-headers
// (":name") are allowed only where allowPseudo.
func validHeaderName(n string, allowPseudo bool) error {
	if n == "" {
		return errors.New("empty header name")
	}
	body := n
	if n[0] == ':' {
		if !allowPseudo {
			return fmt.Errorf("pseudo-header %q may not be modified", n)
		}
		body = n[1:]
		if body == "" {
			return fmt.Errorf("invalid header name %q", n)
		}
	}
	for i := 0; i < len(body); i++ {
		if !isTokenChar(body[i]) {
			return fmt.Errorf("invalid header name %q", n)
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
