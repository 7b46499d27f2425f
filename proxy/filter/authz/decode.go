package authz

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	uritemplatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/subset"
)

// maxDepth bounds the nesting of and/or/not matchers.
const maxDepth = 32

// DecodeAny decodes a typed config holding an HTTP RBAC filter config.
func DecodeAny(a *anypb.Any) (*Filter, error) {
	var c rbachttpv3.RBAC
	if err := a.UnmarshalTo(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return Decode(&c)
}

// Decode validates an HTTP RBAC filter config; errors name the field
// path. Without rules the filter allows everything (Envoy's behaviour).
func Decode(c *rbachttpv3.RBAC) (*Filter, error) {
	// The stat prefixes and per-rule stats only name metrics.
	if err := subset.Fields(c, "", "rules", "rules_stat_prefix", "track_per_rule_stats"); err != nil {
		return nil, err
	}
	return decodeRules(c.GetRules(), "rules", false)
}

// DecodeNetworkAny decodes a typed config holding a network RBAC filter.
func DecodeNetworkAny(a *anypb.Any) (*Filter, error) {
	var c rbacnetv3.RBAC
	if err := a.UnmarshalTo(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", NetworkName, err)
	}
	return DecodeNetwork(&c)
}

// DecodeNetwork validates a network (TCP) RBAC filter config, evaluated
// once per connection: only L4 matchers (ports, peer principals, any and
// their combinations) are accepted.
func DecodeNetwork(c *rbacnetv3.RBAC) (*Filter, error) {
	if err := subset.Fields(c, "", "rules", "stat_prefix", "enforcement_type"); err != nil {
		return nil, err
	}
	if c.GetEnforcementType() != rbacnetv3.RBAC_ONE_TIME_ON_FIRST_BYTE {
		return nil, errors.New("enforcement_type: only ONE_TIME_ON_FIRST_BYTE is supported by weft")
	}
	return decodeRules(c.GetRules(), "rules", true)
}

func decodeRules(r *rbacv3.RBAC, path string, l4 bool) (*Filter, error) {
	if r == nil {
		return newFilter(Allow, false, nil), nil
	}
	if err := subset.Fields(r, path, "action", "policies"); err != nil {
		return nil, err
	}
	var action Action
	switch r.GetAction() {
	case rbacv3.RBAC_ALLOW:
		action = Allow
	case rbacv3.RBAC_DENY:
		action = Deny
	default:
		return nil, fmt.Errorf("%s.action: %s is unsupported by weft", path, r.GetAction())
	}
	d := decoder{l4: l4}
	names := make([]string, 0, len(r.GetPolicies()))
	for name := range r.GetPolicies() {
		names = append(names, name)
	}
	sort.Strings(names) // the first error is the same on every decode
	ps := make([]policy, 0, len(names))
	for _, name := range names {
		p := r.GetPolicies()[name]
		pp := fmt.Sprintf("%s.policies[%q]", path, name)
		if err := subset.Fields(p, pp, "permissions", "principals"); err != nil {
			return nil, err
		}
		if len(p.GetPermissions()) == 0 {
			return nil, fmt.Errorf("%s.permissions: at least one required", pp)
		}
		if len(p.GetPrincipals()) == 0 {
			return nil, fmt.Errorf("%s.principals: at least one required", pp)
		}
		out := policy{name: name, permissions: node{kind: kOr}, principals: node{kind: kOr}}
		for i, perm := range p.GetPermissions() {
			n, err := d.permission(perm, fmt.Sprintf("%s.permissions[%d]", pp, i), 0)
			if err != nil {
				return nil, err
			}
			out.permissions.kids = append(out.permissions.kids, n)
		}
		for i, pr := range p.GetPrincipals() {
			n, err := d.principal(pr, fmt.Sprintf("%s.principals[%d]", pp, i), 0)
			if err != nil {
				return nil, err
			}
			out.principals.kids = append(out.principals.kids, n)
		}
		ps = append(ps, out)
	}
	return newFilter(action, true, ps), nil
}

type decoder struct {
	l4 bool // network filter: L4 matchers only
}

func (d decoder) l7(path string) error {
	if d.l4 {
		return fmt.Errorf("%s: an HTTP matcher cannot be used in a network (TCP) RBAC filter", path)
	}
	return nil
}

func (d decoder) permission(p *rbacv3.Permission, path string, depth int) (node, error) {
	if depth > maxDepth {
		return node{}, fmt.Errorf("%s: nested deeper than %d", path, maxDepth)
	}
	switch r := p.GetRule().(type) {
	case *rbacv3.Permission_Any:
		if !r.Any {
			return node{}, fmt.Errorf("%s.any: must be true", path)
		}
		return node{kind: kAny}, nil
	case *rbacv3.Permission_AndRules:
		return d.permissionSet(kAnd, r.AndRules, path+".and_rules", depth)
	case *rbacv3.Permission_OrRules:
		return d.permissionSet(kOr, r.OrRules, path+".or_rules", depth)
	case *rbacv3.Permission_NotRule:
		n, err := d.permission(r.NotRule, path+".not_rule", depth+1)
		if err != nil {
			return node{}, err
		}
		return node{kind: kNot, kids: []node{n}}, nil
	case *rbacv3.Permission_Header:
		if err := d.l7(path + ".header"); err != nil {
			return node{}, err
		}
		h, err := decodeHeader(r.Header, path+".header")
		return node{kind: kHeader, hdr: &h}, err
	case *rbacv3.Permission_UrlPath:
		if err := d.l7(path + ".url_path"); err != nil {
			return node{}, err
		}
		return decodePath(r.UrlPath, path+".url_path")
	case *rbacv3.Permission_UriTemplate:
		if err := d.l7(path + ".uri_template"); err != nil {
			return node{}, err
		}
		return decodeTemplate(r.UriTemplate.GetTypedConfig(), path+".uri_template")
	case *rbacv3.Permission_DestinationPort:
		if r.DestinationPort > math.MaxUint16 {
			return node{}, fmt.Errorf("%s.destination_port: %d is not a port", path, r.DestinationPort)
		}
		return node{kind: kPort, lo: r.DestinationPort, hi: r.DestinationPort + 1}, nil
	case *rbacv3.Permission_DestinationPortRange:
		s, e := r.DestinationPortRange.GetStart(), r.DestinationPortRange.GetEnd()
		if s < 0 || e > math.MaxUint16+1 || s >= e {
			return node{}, fmt.Errorf("%s.destination_port_range: want 0 <= start < end <= 65536, got [%d, %d)", path, s, e)
		}
		return node{kind: kPort, lo: uint32(s), hi: uint32(e)}, nil
	case nil:
		return node{}, fmt.Errorf("%s: a rule is required", path)
	}
	return node{}, unsupported(p, path)
}

func (d decoder) permissionSet(k kind, s *rbacv3.Permission_Set, path string, depth int) (node, error) {
	if len(s.GetRules()) == 0 {
		return node{}, fmt.Errorf("%s.rules: at least one required", path)
	}
	n := node{kind: k}
	for i, r := range s.GetRules() {
		c, err := d.permission(r, fmt.Sprintf("%s.rules[%d]", path, i), depth+1)
		if err != nil {
			return node{}, err
		}
		n.kids = append(n.kids, c)
	}
	return n, nil
}

func (d decoder) principal(p *rbacv3.Principal, path string, depth int) (node, error) {
	if depth > maxDepth {
		return node{}, fmt.Errorf("%s: nested deeper than %d", path, maxDepth)
	}
	switch r := p.GetIdentifier().(type) {
	case *rbacv3.Principal_Any:
		if !r.Any {
			return node{}, fmt.Errorf("%s.any: must be true", path)
		}
		return node{kind: kAny}, nil
	case *rbacv3.Principal_AndIds:
		return d.principalSet(kAnd, r.AndIds, path+".and_ids", depth)
	case *rbacv3.Principal_OrIds:
		return d.principalSet(kOr, r.OrIds, path+".or_ids", depth)
	case *rbacv3.Principal_NotId:
		n, err := d.principal(r.NotId, path+".not_id", depth+1)
		if err != nil {
			return node{}, err
		}
		return node{kind: kNot, kids: []node{n}}, nil
	case *rbacv3.Principal_Authenticated_:
		ap := path + ".authenticated"
		if err := subset.Fields(r.Authenticated, ap, "principal_name"); err != nil {
			return node{}, err
		}
		n := node{kind: kAuthenticated}
		if pn := r.Authenticated.GetPrincipalName(); pn != nil {
			s, err := decodeString(pn, ap+".principal_name")
			if err != nil {
				return node{}, err
			}
			n.str = s
		}
		return n, nil
	case *rbacv3.Principal_Header:
		if err := d.l7(path + ".header"); err != nil {
			return node{}, err
		}
		h, err := decodeHeader(r.Header, path+".header")
		return node{kind: kHeader, hdr: &h}, err
	case *rbacv3.Principal_UrlPath:
		if err := d.l7(path + ".url_path"); err != nil {
			return node{}, err
		}
		return decodePath(r.UrlPath, path+".url_path")
	case *rbacv3.Principal_Metadata:
		if err := d.l7(path + ".metadata"); err != nil {
			return node{}, err
		}
		c, err := decodeClaim(r.Metadata, path+".metadata")
		return node{kind: kClaim, claim: &c}, err
	case nil:
		return node{}, fmt.Errorf("%s: an identifier is required", path)
	}
	return node{}, unsupported(p, path)
}

func (d decoder) principalSet(k kind, s *rbacv3.Principal_Set, path string, depth int) (node, error) {
	if len(s.GetIds()) == 0 {
		return node{}, fmt.Errorf("%s.ids: at least one required", path)
	}
	n := node{kind: k}
	for i, r := range s.GetIds() {
		c, err := d.principal(r, fmt.Sprintf("%s.ids[%d]", path, i), depth+1)
		if err != nil {
			return node{}, err
		}
		n.kids = append(n.kids, c)
	}
	return n, nil
}

// unsupported names the populated oneof member of m.
func unsupported(m proto.Message, path string) error {
	name := "field"
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name = string(fd.Name())
		return false
	})
	return fmt.Errorf("%s.%s: unsupported by weft", path, name)
}

func decodeString(m *matcherv3.StringMatcher, path string) (strMatch, error) {
	if err := subset.Fields(m, path, "exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"); err != nil {
		return strMatch{}, err
	}
	s := strMatch{ignoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		s.op, s.s = opExact, p.Exact
	case *matcherv3.StringMatcher_Prefix:
		s.op, s.s = opPrefix, p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		s.op, s.s = opSuffix, p.Suffix
	case *matcherv3.StringMatcher_Contains:
		s.op, s.s = opContains, p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		if s.ignoreCase {
			return s, fmt.Errorf("%s.ignore_case: not allowed with safe_regex", path)
		}
		re, err := compileRegex(p.SafeRegex, path+".safe_regex")
		if err != nil {
			return s, err
		}
		s.op, s.re = opRegex, re
	default:
		return s, fmt.Errorf("%s: exact, prefix, suffix, contains or safe_regex required", path)
	}
	if s.op != opExact && s.op != opRegex && s.s == "" {
		return s, fmt.Errorf("%s: empty pattern", path)
	}
	return s, nil
}

func compileRegex(m *matcherv3.RegexMatcher, path string) (*regexp.Regexp, error) {
	if err := subset.Fields(m, path, "regex", "google_re2"); err != nil {
		return nil, err
	}
	// Envoy's RE2 and Go's regexp share a syntax; Envoy matches the
	// whole value.
	re, err := regexp.Compile("^(?:" + m.GetRegex() + ")$")
	if err != nil {
		return nil, fmt.Errorf("%s.regex: %w", path, err)
	}
	return re, nil
}

func decodeHeader(h *routev3.HeaderMatcher, path string) (headerMatch, error) {
	if err := subset.Fields(h, path, "name", "exact_match", "safe_regex_match", "present_match", "prefix_match",
		"suffix_match", "contains_match", "string_match", "invert_match", "treat_missing_header_as_empty"); err != nil {
		return headerMatch{}, err
	}
	m := headerMatch{name: strings.ToLower(h.GetName()), invert: h.GetInvertMatch(), missingEmpty: h.GetTreatMissingHeaderAsEmpty()}
	if m.name == "" {
		return m, fmt.Errorf("%s.name: required", path)
	}
	var err error
	switch s := h.GetHeaderMatchSpecifier().(type) {
	case *routev3.HeaderMatcher_PresentMatch:
		m.present, m.presentValue = true, s.PresentMatch
	case *routev3.HeaderMatcher_StringMatch:
		m.str, err = decodeString(s.StringMatch, path+".string_match")
	case *routev3.HeaderMatcher_ExactMatch:
		m.str = strMatch{op: opExact, s: s.ExactMatch}
	case *routev3.HeaderMatcher_PrefixMatch:
		m.str = strMatch{op: opPrefix, s: s.PrefixMatch}
	case *routev3.HeaderMatcher_SuffixMatch:
		m.str = strMatch{op: opSuffix, s: s.SuffixMatch}
	case *routev3.HeaderMatcher_ContainsMatch:
		m.str = strMatch{op: opContains, s: s.ContainsMatch}
	case *routev3.HeaderMatcher_SafeRegexMatch:
		m.str.op = opRegex
		m.str.re, err = compileRegex(s.SafeRegexMatch, path+".safe_regex_match")
	case nil:
		// Envoy: no specifier matches a present header.
		m.present, m.presentValue = true, true
	}
	return m, err
}

func decodePath(p *matcherv3.PathMatcher, path string) (node, error) {
	if err := subset.Fields(p, path, "path"); err != nil {
		return node{}, err
	}
	if p.GetPath() == nil {
		return node{}, fmt.Errorf("%s.path: required", path)
	}
	s, err := decodeString(p.GetPath(), path+".path")
	return node{kind: kPath, str: s}, err
}

// decodeTemplate decodes a uri_template extension: segments are literals,
// "*" or "{name}" (one segment) and, last, "**" or "{name=**}" (the rest).
func decodeTemplate(a *anypb.Any, path string) (node, error) {
	var c uritemplatev3.UriTemplateMatchConfig
	if a == nil || a.UnmarshalTo(&c) != nil {
		return node{}, fmt.Errorf("%s.typed_config: want an envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig", path)
	}
	t := c.GetPathTemplate()
	tp := path + ".typed_config.path_template"
	if !strings.HasPrefix(t, "/") {
		return node{}, fmt.Errorf("%s: %q must start with /", tp, t)
	}
	parts := strings.Split(t, "/")
	n := node{kind: kTemplate}
	for i, s := range parts {
		var seg segment
		switch {
		case s == "*" || (strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && (!strings.Contains(s, "=") || strings.HasSuffix(s, "=*}"))):
			seg.kind = segOne
		case s == "**" || (strings.HasPrefix(s, "{") && strings.HasSuffix(s, "=**}")):
			if i != len(parts)-1 {
				return node{}, fmt.Errorf("%s: %q: ** must be the last segment", tp, t)
			}
			seg.kind = segRest
		case strings.ContainsAny(s, "*{}"):
			return node{}, fmt.Errorf("%s: %q: segment %q mixes text and wildcards", tp, t, s)
		default:
			seg.lit = s
		}
		n.tmpl = append(n.tmpl, seg)
	}
	return n, nil
}

func decodeClaim(m *matcherv3.MetadataMatcher, path string) (claimMatch, error) {
	if err := subset.Fields(m, path, "filter", "path", "value", "invert"); err != nil {
		return claimMatch{}, err
	}
	if m.GetFilter() != ClaimsMetadataFilter {
		return claimMatch{}, fmt.Errorf("%s.filter: only %q (JWT claims) is supported by weft, got %q", path, ClaimsMetadataFilter, m.GetFilter())
	}
	ps := m.GetPath()
	if len(ps) < 2 || ps[0].GetKey() != ClaimsMetadataKey {
		return claimMatch{}, fmt.Errorf("%s.path: want [%q, <claim>, ...]", path, ClaimsMetadataKey)
	}
	c := claimMatch{invert: m.GetInvert()}
	for i, s := range ps[1:] {
		if s.GetKey() == "" {
			return claimMatch{}, fmt.Errorf("%s.path[%d].key: required", path, i+1)
		}
		c.path = append(c.path, s.GetKey())
	}
	if m.GetValue() == nil {
		return claimMatch{}, fmt.Errorf("%s.value: required", path)
	}
	v, err := decodeValue(m.GetValue(), path+".value", 0)
	c.value = v
	return c, err
}

func decodeValue(m *matcherv3.ValueMatcher, path string, depth int) (valueMatch, error) {
	if depth > maxDepth {
		return valueMatch{}, fmt.Errorf("%s: nested deeper than %d", path, maxDepth)
	}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.ValueMatcher_NullMatch_:
		return valueMatch{op: vNull}, nil
	case *matcherv3.ValueMatcher_DoubleMatch:
		switch d := p.DoubleMatch.GetMatchPattern().(type) {
		case *matcherv3.DoubleMatcher_Exact:
			return valueMatch{op: vDouble, exact: true, x: d.Exact}, nil
		case *matcherv3.DoubleMatcher_Range:
			return valueMatch{op: vDouble, dlo: d.Range.GetStart(), dhi: d.Range.GetEnd()}, nil
		}
		return valueMatch{}, fmt.Errorf("%s.double_match: exact or range required", path)
	case *matcherv3.ValueMatcher_StringMatch:
		s, err := decodeString(p.StringMatch, path+".string_match")
		return valueMatch{op: vString, str: s}, err
	case *matcherv3.ValueMatcher_BoolMatch:
		return valueMatch{op: vBool, b: p.BoolMatch}, nil
	case *matcherv3.ValueMatcher_PresentMatch:
		if !p.PresentMatch {
			return valueMatch{}, fmt.Errorf("%s.present_match: must be true (use invert for absence)", path)
		}
		return valueMatch{op: vPresent}, nil
	case *matcherv3.ValueMatcher_ListMatch:
		lp := path + ".list_match"
		if p.ListMatch.GetOneOf() == nil {
			return valueMatch{}, fmt.Errorf("%s.one_of: required", lp)
		}
		k, err := decodeValue(p.ListMatch.GetOneOf(), lp+".one_of", depth+1)
		return valueMatch{op: vList, kids: []valueMatch{k}}, err
	case *matcherv3.ValueMatcher_OrMatch:
		op := path + ".or_match"
		vs := p.OrMatch.GetValueMatchers()
		if len(vs) < 2 {
			return valueMatch{}, fmt.Errorf("%s.value_matchers: at least 2 required", op)
		}
		out := valueMatch{op: vOr}
		for i, v := range vs {
			k, err := decodeValue(v, fmt.Sprintf("%s.value_matchers[%d]", op, i), depth+1)
			if err != nil {
				return valueMatch{}, err
			}
			out.kids = append(out.kids, k)
		}
		return out, nil
	}
	return valueMatch{}, fmt.Errorf("%s: a match pattern is required", path)
}
