package translate

// The auth kinds in Envoy terms: RequestAuthentication becomes the
// envoy.filters.http.jwt_authn filter, AuthorizationPolicy (and the
// Service visibility rule) becomes envoy.filters.http.rbac (HTTP) or
// envoy.filters.network.rbac (TCP) filters, DENY before ALLOW, as Istio
// emits them. PeerAuthentication resolves to a mode (MTLSMode) that the
// listener code turns into its transport socket.
//
// Mapping, per AuthorizationPolicy field:
//
//	principals "td/ns/x/sa/y"   authenticated.principal_name exact "spiffe://td/ns/x/sa/y"
//	                            ("p*" prefix, "*s" suffix, "*" any authenticated peer)
//	namespaces "x"              principal_name prefix "spiffe://<td>/ns/x/sa/" ("x*" prefix
//	                            "spiffe://<td>/ns/x"; "*x" prefix "spiffe://<td>/ns/" and
//	                            contains "x/sa/"; "*" prefix "spiffe://<td>/ns/")
//	requestPrincipals "iss/sub" and of claim matchers iss == "iss", sub == "sub", split at the
//	                            last "/" ("iss/*": sub present; "*/sub": iss present;
//	                            "*": iss present, i.e. any verified token)
//	methods                     header ":method"
//	paths                       url_path exact/prefix/suffix; uri_template for "{*}"/"{**}"
//	hosts                       header ":authority", case-insensitive
//	ports, destination.port     resolved here against the listener being built (its port,
//	                            the application port and the Service ports targeting it):
//	                            a rule on another port is dropped, on this port it matches
//	request.headers[h]          principal header matcher h
//	request.auth.claims[a][b]   metadata matcher jwt_payload.a.b, a string claim or a list
//	                            claim holding the value
//	request.auth.audiences      claim "aud"; request.auth.presenter: claim "azp"
//	notX, notValues             not_rule / not_id of the or of the values
//
// One RBAC policy per AuthorizationPolicy, named "<namespace>/<name>":
// its rules are or-ed when they share their permission part or their
// principal part (an RBAC policy matches when one permission and one
// principal match, so that is all one policy can express). Otherwise each
// rule is its own policy, "<namespace>/<name>[<rule index>]".
//
// On a TCP listener, HTTP-only fields (methods, paths, hosts,
// requestPrincipals, request.* conditions) make an ALLOW rule never match;
// in a DENY rule they are ignored, so the rule denies more, not less.
// Both are what Istio does.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	uritemplatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/path/match/uri_template/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
)

// Auth filter names and the keys they share.
const (
	JWTFilterName         = "envoy.filters.http.jwt_authn"
	RBACFilterName        = "envoy.filters.http.rbac"
	RBACNetworkFilterName = "envoy.filters.network.rbac"
	// JWTPayloadKey is the jwt_authn payload_in_metadata key, the first
	// path key of the claim matchers.
	JWTPayloadKey = "jwt_payload"
	// JWKSCluster is the http_uri.cluster of remote JWKS (weft's proxy
	// fetches the URI itself and ignores it).
	JWKSCluster       = "jwks"
	jwksTimeout       = 5 * time.Second
	jwksCacheDuration = 5 * time.Minute
	uriTemplateName   = "envoy.path.match.uri_template.uri_template_matcher"
)

// MTLSMode resolves the effective mTLS mode of a workload in ns with
// labels: the oldest PeerAuthentication in ns whose selector picks the
// labels, else the oldest namespace-wide one in ns, else the oldest
// namespace-wide one in v1alpha1.MeshRootNamespace, else meshDefault (""
// or UNSET: PERMISSIVE). A level whose policy says UNSET falls through to
// the next.
func (r *Resources) MTLSMode(ns string, labels map[string]string, meshDefault v1alpha1.MTLSMode) v1alpha1.MTLSMode {
	level := func(ns string, workload bool) v1alpha1.MTLSMode {
		for _, o := range r.peerAuths { // oldest first
			pa := o.PeerAuthentication()
			if o.Namespace != ns || namespaceWide(pa.Selector) == workload || !pa.Selector.Matches(labels) {
				continue
			}
			if pa.MTLS == nil {
				return v1alpha1.MTLSUnset
			}
			return pa.MTLS.Mode
		}
		return v1alpha1.MTLSUnset
	}
	for _, m := range []v1alpha1.MTLSMode{level(ns, true), level(ns, false), level(v1alpha1.MeshRootNamespace, false)} {
		if m != "" && m != v1alpha1.MTLSUnset {
			return m
		}
	}
	if meshDefault == "" || meshDefault == v1alpha1.MTLSUnset {
		return v1alpha1.MTLSPermissive
	}
	return meshDefault
}

func namespaceWide(s *v1alpha1.WorkloadSelector) bool { return s == nil || len(s.MatchLabels) == 0 }

// selects reports whether a policy of namespace ns with selector sel
// applies to proxy p.
func selects(ns string, sel *v1alpha1.WorkloadSelector, p xds.ProxyInfo) bool {
	return ns == p.Namespace && sel.Matches(p.Labels)
}

// GatewayExposure returns the exposure of Gateway ns/name: "intranet" when
// its weft.dev/exposure annotation says so, else "internet" (also for an
// unknown Gateway: the narrowest reach).
func (r *Resources) GatewayExposure(ns, name string) string {
	if g := r.gateways[nsName{ns, name}]; g != nil && g.Annotations[resource.ExposureAnnotation] == resource.ExposureIntranet {
		return resource.ExposureIntranet
	}
	return resource.ExposureInternet
}

// VisibleTo reports whether proxy p may be configured to reach svc. A
// sidecar sees a namespace-visible Service only in its own namespace and
// any other anywhere. A gateway (p.Workload names the Gateway in
// p.Namespace) sees only Services visible to its exposure: internet
// Services from an internet gateway, intranet and internet Services from
// an intranet one.
func (r *Resources) VisibleTo(svc *resource.Object, p xds.ProxyInfo) bool {
	vis := v1alpha1.VisibilityMesh
	if s := svc.Service(); s != nil && s.Visibility != "" {
		vis = s.Visibility
	}
	if p.Role == xds.RoleGateway {
		if r.GatewayExposure(p.Namespace, p.Workload) == resource.ExposureIntranet {
			return vis == v1alpha1.VisibilityIntranet || vis == v1alpha1.VisibilityInternet
		}
		return vis == v1alpha1.VisibilityInternet
	}
	return vis != v1alpha1.VisibilityNamespace || svc.Namespace == p.Namespace
}

// inboundHTTPFilters returns the HTTP filters of the proxy's inbound
// (sidecar) or gateway listener on port that precede the fault and router
// filters: envoy.filters.http.jwt_authn when a RequestAuthentication
// selects the proxy, then envoy.filters.http.rbac with action DENY when a
// DENY rule or the visibility rule applies, then envoy.filters.http.rbac
// with action ALLOW when any ALLOW policy applies. nil when none applies.
func (t *translator) inboundHTTPFilters(port uint32) []*hcmv3.HttpFilter {
	var out []*hcmv3.HttpFilter
	if ja := t.jwtAuthn(); ja != nil {
		out = append(out, &hcmv3.HttpFilter{Name: JWTFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(ja)}})
	}
	deny, allow := t.rbacRules(port, false)
	for _, rules := range []*rbacv3.RBAC{deny, allow} {
		if rules != nil {
			out = append(out, &hcmv3.HttpFilter{Name: RBACFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{
				TypedConfig: mustAny(&rbachttpv3.RBAC{Rules: rules}),
			}})
		}
	}
	return out
}

// inboundNetworkFilters returns the envoy.filters.network.rbac filters
// (DENY then ALLOW) of a TCP inbound listener on port, to precede
// tcp_proxy; nil when no policy applies.
func (t *translator) inboundNetworkFilters(port uint32) []*listenerv3.Filter {
	var out []*listenerv3.Filter
	deny, allow := t.rbacRules(port, true)
	for _, rules := range []*rbacv3.RBAC{deny, allow} {
		if rules != nil {
			out = append(out, &listenerv3.Filter{Name: RBACNetworkFilterName, ConfigType: &listenerv3.Filter_TypedConfig{
				TypedConfig: mustAny(&rbacnetv3.RBAC{
					Rules:      rules,
					StatPrefix: fmt.Sprintf("inbound_%d_%s.", port, strings.ToLower(rules.GetAction().String())),
				}),
			}})
		}
	}
	return out
}

// rbacRules builds the DENY and ALLOW rules of the proxy's listener on
// port; nil for a filter that is not needed.
func (t *translator) rbacRules(port uint32, tcp bool) (deny, allow *rbacv3.RBAC) {
	p := t.in.Proxy
	c := &ruleCtx{tcp: tcp, td: t.in.Mesh.trustDomain(), ports: t.listenerPorts(port)}
	denyPolicies := map[string]*rbacv3.Policy{}
	allowPolicies := map[string]*rbacv3.Policy{}
	anyAllow := false
	for _, o := range t.in.Resources.authzs {
		spec := o.AuthorizationPolicy()
		if !selects(o.Namespace, spec.Selector, p) {
			continue
		}
		c.deny = spec.Action == v1alpha1.ActionDeny
		dst := allowPolicies
		if c.deny {
			dst = denyPolicies
		} else {
			anyAllow = true
		}
		c.policies(o.Namespace+"/"+o.Name, spec.Rules, dst)
	}
	if name, pol := t.visibilityPolicy(); pol != nil {
		denyPolicies[name] = pol
	}
	if len(denyPolicies) > 0 {
		deny = &rbacv3.RBAC{Action: rbacv3.RBAC_DENY, Policies: denyPolicies}
	}
	if anyAllow {
		allow = &rbacv3.RBAC{Action: rbacv3.RBAC_ALLOW, Policies: allowPolicies}
	}
	return deny, allow
}

// ownService returns the Service the sidecar backs, or nil.
func (t *translator) ownService() *resource.Object {
	p := t.in.Proxy
	if p.Role == xds.RoleGateway || p.Service == "" {
		return nil
	}
	return t.in.Resources.services[nsName{p.Namespace, p.Service}]
}

// listenerPorts are the numbers a policy may use for the listener on
// port: the port itself and, for a sidecar, the application port and the
// ports of its Service that target the application port.
func (t *translator) listenerPorts(port uint32) map[uint32]bool {
	ps := map[uint32]bool{port: true}
	p := t.in.Proxy
	if p.Role == xds.RoleGateway || p.AppPort == 0 {
		return ps
	}
	ps[uint32(p.AppPort)] = true
	if svc := t.ownService(); svc != nil {
		for _, sp := range svc.Service().Ports {
			if sp.TargetPort == int32(p.AppPort) && sp.Port > 0 {
				ps[uint32(sp.Port)] = true
			}
		}
	}
	return ps
}

// visibilityPolicy returns the DENY policy enforcing the visibility of
// the sidecar's Service, named "visibility/<service>":
//
//	namespace  deny callers without an identity of the Service's
//	           namespace, and every Gateway
//	mesh       deny callers without a mesh identity, and every Gateway
//	intranet   deny callers without a mesh identity, and internet Gateways
//	internet   no rule
//
// A Gateway's identity is spiffe://<td>/ns/<namespace>/sa/<gateway name>.
// There is no rule when the Service is not declared, for gateways, and
// when the workload's effective mTLS mode is DISABLE (also: the mesh has
// no CA): without mTLS no caller has an identity to check, and the rule
// would deny everyone.
// Under PERMISSIVE, plaintext callers have no identity either; they pass
// (PERMISSIVE exists to let callers outside the mesh in while they
// migrate), and only callers whose certificate is out of scope are denied.
func (t *translator) visibilityPolicy() (string, *rbacv3.Policy) {
	svc := t.ownService()
	if svc == nil {
		return "", nil
	}
	vis := svc.Service().Visibility
	if vis == v1alpha1.VisibilityInternet || t.ownMTLSMode() == v1alpha1.MTLSDisable {
		return "", nil
	}
	td := t.in.Mesh.trustDomain()
	strict := t.ownMTLSMode() == v1alpha1.MTLSStrict
	var ids []*rbacv3.Principal
	outside := prNot(authenticated(prefixMatch("spiffe://" + td + "/ns/" + svc.Namespace + "/")))
	switch {
	case vis == v1alpha1.VisibilityNamespace && strict:
		ids = append(ids, outside)
	case vis == v1alpha1.VisibilityNamespace:
		ids = append(ids, &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{
			Ids: []*rbacv3.Principal{authenticated(nil), outside},
		}}})
	case strict: // mesh (and "", its default), intranet
		ids = append(ids, prNot(authenticated(nil)))
	}
	for _, g := range t.in.Resources.gatewayLst {
		if vis == v1alpha1.VisibilityIntranet && t.in.Resources.GatewayExposure(g.Namespace, g.Name) != resource.ExposureInternet {
			continue
		}
		ids = append(ids, authenticated(exactMatch(workloadID(td, g.Namespace, g.Name))))
	}
	if len(ids) == 0 {
		return "", nil
	}
	return "visibility/" + svc.Name, &rbacv3.Policy{
		Permissions: []*rbacv3.Permission{permAny()},
		Principals:  ids,
	}
}

// workloadID is the SPIFFE ID of service account sa in namespace ns; a
// Gateway's proxies run as the service account named after it.
func workloadID(td, ns, sa string) string {
	return "spiffe://" + td + "/ns/" + ns + "/sa/" + sa
}

// --- jwt_authn ---

// jwtAuthn returns the jwt_authn config of the RequestAuthentications
// that select the proxy (oldest first, one provider per jwtRule named
// "<namespace>/<name>/<rule index>"), or nil. A request passes with no
// token, or with a token one provider verifies; a token none verifies is
// refused (401).
func (t *translator) jwtAuthn() *jwtv3.JwtAuthentication {
	providers := map[string]*jwtv3.JwtProvider{}
	var reqs []*jwtv3.JwtRequirement
	for _, o := range t.in.Resources.requestAuths {
		spec := o.RequestAuthentication()
		if !selects(o.Namespace, spec.Selector, t.in.Proxy) {
			continue
		}
		for i, r := range spec.JWTRules {
			name := o.Namespace + "/" + o.Name + "/" + strconv.Itoa(i)
			providers[name] = jwtProvider(r)
			reqs = append(reqs, &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_ProviderName{ProviderName: name}})
		}
	}
	if len(reqs) == 0 {
		return nil
	}
	reqs = append(reqs, &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}})
	return &jwtv3.JwtAuthentication{
		Providers: providers,
		Rules: []*jwtv3.RequirementRule{{
			Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			RequirementType: &jwtv3.RequirementRule_Requires{Requires: &jwtv3.JwtRequirement{
				RequiresType: &jwtv3.JwtRequirement_RequiresAny{RequiresAny: &jwtv3.JwtRequirementOrList{Requirements: reqs}},
			}},
		}},
	}
}

func jwtProvider(r v1alpha1.JWTRule) *jwtv3.JwtProvider {
	p := &jwtv3.JwtProvider{
		Issuer:            r.Issuer,
		Audiences:         slices.Clone(r.Audiences),
		Forward:           r.ForwardOriginalToken,
		FromCookies:       slices.Clone(r.FromCookies),
		PayloadInMetadata: JWTPayloadKey,
	}
	if r.JWKSURI != "" {
		p.JwksSourceSpecifier = &jwtv3.JwtProvider_RemoteJwks{RemoteJwks: &jwtv3.RemoteJwks{
			HttpUri: &corev3.HttpUri{
				Uri:              r.JWKSURI,
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: JWKSCluster},
				Timeout:          duration(jwksTimeout),
			},
			CacheDuration: duration(jwksCacheDuration),
		}}
	} else {
		p.JwksSourceSpecifier = &jwtv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
			Specifier: &corev3.DataSource_InlineString{InlineString: r.JWKS},
		}}
	}
	for _, h := range r.FromHeaders {
		p.FromHeaders = append(p.FromHeaders, &jwtv3.JwtHeader{Name: h.Name, ValuePrefix: h.Prefix})
	}
	if len(p.FromHeaders) == 0 && len(p.FromCookies) == 0 {
		p.FromHeaders = []*jwtv3.JwtHeader{{Name: "Authorization", ValuePrefix: "Bearer "}}
	}
	return p
}

// --- AuthorizationPolicy rules ---

// ruleCtx compiles the rules of one listener's policies.
type ruleCtx struct {
	tcp   bool // a network filter: HTTP-only fields cannot be evaluated
	deny  bool // the policy being compiled is a DENY policy
	td    string
	ports map[uint32]bool // what "this port" may be written as
}

// policies adds the RBAC policies of one AuthorizationPolicy to dst
// (see the file comment for the naming).
func (c *ruleCtx) policies(name string, rules []v1alpha1.AuthorizationRule, dst map[string]*rbacv3.Policy) {
	type compiled struct {
		index int
		perm  *rbacv3.Permission
		id    *rbacv3.Principal
	}
	var cs []compiled
	for i, r := range rules {
		perm, id := c.rule(r)
		if perm.c < 0 || id.c < 0 {
			continue // never matches
		}
		cs = append(cs, compiled{i, permAlg.final(perm), prAlg.final(id)})
	}
	samePerm, sameID := true, true
	for _, x := range cs[min(1, len(cs)):] {
		samePerm = samePerm && proto.Equal(x.perm, cs[0].perm)
		sameID = sameID && proto.Equal(x.id, cs[0].id)
	}
	switch {
	case len(cs) == 0:
	case samePerm:
		pol := &rbacv3.Policy{Permissions: []*rbacv3.Permission{cs[0].perm}}
		for _, x := range cs {
			pol.Principals = append(pol.Principals, x.id)
		}
		dst[name] = pol
	case sameID:
		pol := &rbacv3.Policy{Principals: []*rbacv3.Principal{cs[0].id}}
		for _, x := range cs {
			pol.Permissions = append(pol.Permissions, x.perm)
		}
		dst[name] = pol
	default:
		for _, x := range cs {
			dst[name+"["+strconv.Itoa(x.index)+"]"] = &rbacv3.Policy{
				Permissions: []*rbacv3.Permission{x.perm},
				Principals:  []*rbacv3.Principal{x.id},
			}
		}
	}
}

// rule compiles one rule into its permission and principal parts; the
// rule matches when both do.
func (c *ruleCtx) rule(r v1alpha1.AuthorizationRule) (term[*rbacv3.Permission], term[*rbacv3.Principal]) {
	from := prAlg.always()
	if len(r.From) > 0 {
		var fs []term[*rbacv3.Principal]
		for _, f := range r.From {
			fs = append(fs, c.source(&f.Source))
		}
		from = prAlg.or(fs...)
	}
	to := permAlg.always()
	if len(r.To) > 0 {
		var ts []term[*rbacv3.Permission]
		for _, o := range r.To {
			ts = append(ts, c.operation(&o.Operation))
		}
		to = permAlg.or(ts...)
	}
	perms := []term[*rbacv3.Permission]{to}
	ids := []term[*rbacv3.Principal]{from}
	for _, w := range r.When {
		attr, names, err := v1alpha1.ParseConditionKey(w.Key)
		if err != nil { // refused by validation; never match
			return permAlg.never(), prAlg.never()
		}
		if attr == v1alpha1.AttrDestinationPort {
			perms = append(perms, field(c, permAlg, w.Values, w.NotValues, false, c.port))
			continue
		}
		ids = append(ids, field(c, prAlg, w.Values, w.NotValues, attr.HTTPOnly(), c.conditionValue(attr, names)))
	}
	return permAlg.and(perms...), prAlg.and(ids...)
}

func (c *ruleCtx) source(s *v1alpha1.Source) term[*rbacv3.Principal] {
	return prAlg.and(
		field(c, prAlg, s.Principals, s.NotPrincipals, false, c.principal),
		field(c, prAlg, s.Namespaces, s.NotNamespaces, false, c.namespace),
		field(c, prAlg, s.RequestPrincipals, s.NotRequestPrincipals, true, requestPrincipal),
	)
}

func (c *ruleCtx) operation(o *v1alpha1.Operation) term[*rbacv3.Permission] {
	return permAlg.and(
		field(c, permAlg, o.Methods, o.NotMethods, true, method),
		field(c, permAlg, o.Paths, o.NotPaths, true, urlPath),
		field(c, permAlg, o.Hosts, o.NotHosts, true, host),
		field(c, permAlg, o.Ports, o.NotPorts, false, c.port),
	)
}

// field compiles one list and its not-list: any of values, and none of
// notValues. An HTTP-only field on a TCP listener never matches in an
// ALLOW policy and is ignored in a DENY policy.
func field[M any](c *ruleCtx, a algebra[M], values, notValues []string, httpOnly bool, one func(string) term[M]) term[M] {
	if len(values) == 0 && len(notValues) == 0 {
		return a.always()
	}
	if httpOnly && c.tcp {
		if c.deny {
			return a.always()
		}
		return a.never()
	}
	pos, neg := a.always(), a.always()
	if len(values) > 0 {
		var ts []term[M]
		for _, v := range values {
			ts = append(ts, one(v))
		}
		pos = a.or(ts...)
	}
	if len(notValues) > 0 {
		var ts []term[M]
		for _, v := range notValues {
			ts = append(ts, one(v))
		}
		neg = a.not(a.or(ts...))
	}
	return a.and(pos, neg)
}

func (c *ruleCtx) conditionValue(attr v1alpha1.ConditionAttr, names []string) func(string) term[*rbacv3.Principal] {
	switch attr {
	case v1alpha1.AttrRequestHeader:
		return func(v string) term[*rbacv3.Principal] { return prAlg.of(prHeader(names[0], v)) }
	case v1alpha1.AttrRequestClaims:
		return func(v string) term[*rbacv3.Principal] { return prAlg.of(claim(names, v)) }
	case v1alpha1.AttrRequestAudiences:
		return func(v string) term[*rbacv3.Principal] { return prAlg.of(claim([]string{"aud"}, v)) }
	case v1alpha1.AttrRequestPresenter:
		return func(v string) term[*rbacv3.Principal] { return prAlg.of(claim([]string{"azp"}, v)) }
	case v1alpha1.AttrRequestPrincipal:
		return requestPrincipal
	case v1alpha1.AttrSourcePrincipal:
		return c.principal
	case v1alpha1.AttrSourceNamespace:
		return c.namespace
	}
	return func(string) term[*rbacv3.Principal] { return prAlg.never() }
}

// --- value mappings ---

// stringMatch maps a match value ("x", "x*", "*x") to a StringMatcher on
// pre+x (prefix and exact) or x (suffix); nil for "*".
func stringMatch(pre, v string) *matcherv3.StringMatcher {
	switch {
	case v == "*":
		return nil
	case strings.HasPrefix(v, "*"):
		return suffixMatch(v[1:])
	case strings.HasSuffix(v, "*"):
		return prefixMatch(pre + v[:len(v)-1])
	}
	return exactMatch(pre + v)
}

func exactMatch(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
}

func prefixMatch(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: s}}
}

func suffixMatch(s string) *matcherv3.StringMatcher {
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: s}}
}

// authenticated matches a peer with a verified certificate whose SPIFFE
// ID matches m; any such peer when m is nil.
func authenticated(m *matcherv3.StringMatcher) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Authenticated_{Authenticated: &rbacv3.Principal_Authenticated{PrincipalName: m}}}
}

func (c *ruleCtx) principal(v string) term[*rbacv3.Principal] {
	return prAlg.of(authenticated(stringMatch("spiffe://", v)))
}

func (c *ruleCtx) namespace(v string) term[*rbacv3.Principal] {
	base := "spiffe://" + c.td + "/ns/"
	switch {
	case v == "*":
		return prAlg.of(authenticated(prefixMatch(base)))
	case strings.HasPrefix(v, "*"):
		contains := &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: v[1:] + "/sa/"}}
		return prAlg.and(prAlg.of(authenticated(prefixMatch(base))), prAlg.of(authenticated(contains)))
	case strings.HasSuffix(v, "*"):
		return prAlg.of(authenticated(prefixMatch(base + v[:len(v)-1])))
	}
	return prAlg.of(authenticated(prefixMatch(base + v + "/sa/")))
}

// requestPrincipal maps "<iss>/<sub>" (split at the last "/") to claim
// matchers on iss and sub.
func requestPrincipal(v string) term[*rbacv3.Principal] {
	// claimOr matches the claim with m, or its presence when s is "".
	claimOr := func(name, s string, m func(string) *matcherv3.StringMatcher) term[*rbacv3.Principal] {
		if s == "" {
			return prAlg.of(claimPresent(name))
		}
		return prAlg.of(claimString(name, m(s)))
	}
	switch {
	case v == "*":
		return prAlg.of(claimPresent("iss"))
	case strings.HasSuffix(v, "*"): // "<iss>/<sub prefix>*", or "<iss prefix>*"
		lit := v[:len(v)-1]
		if iss, sub, ok := v1alpha1.SplitRequestPrincipal(lit); ok {
			return prAlg.and(prAlg.of(claimString("iss", exactMatch(iss))), claimOr("sub", sub, prefixMatch))
		}
		return prAlg.of(claimString("iss", prefixMatch(lit)))
	case strings.HasPrefix(v, "*"): // "*<iss suffix>/<sub>", or "*<sub suffix>"
		lit := v[1:]
		if iss, sub, ok := v1alpha1.SplitRequestPrincipal(lit); ok {
			return prAlg.and(claimOr("iss", iss, suffixMatch), prAlg.of(claimString("sub", exactMatch(sub))))
		}
		return prAlg.of(claimString("sub", suffixMatch(lit)))
	}
	iss, sub, ok := v1alpha1.SplitRequestPrincipal(v)
	if !ok {
		return prAlg.never() // refused by validation
	}
	return prAlg.and(prAlg.of(claimString("iss", exactMatch(iss))), prAlg.of(claimString("sub", exactMatch(sub))))
}

func claimMetadata(path []string, vm *matcherv3.ValueMatcher) *rbacv3.Principal {
	segs := []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: JWTPayloadKey}}}
	for _, k := range path {
		segs = append(segs, &matcherv3.MetadataMatcher_PathSegment{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: k}})
	}
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Metadata{Metadata: &matcherv3.MetadataMatcher{
		Filter: JWTFilterName, Path: segs, Value: vm,
	}}}
}

func claimPresent(name string) *rbacv3.Principal {
	return claimMetadata([]string{name}, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_PresentMatch{PresentMatch: true}})
}

func claimString(name string, m *matcherv3.StringMatcher) *rbacv3.Principal {
	return claimMetadata([]string{name}, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: m}})
}

// claim matches a claim at path that is the value, or a list holding it;
// "*" matches a present claim.
func claim(path []string, v string) *rbacv3.Principal {
	m := stringMatch("", v)
	if m == nil {
		return claimMetadata(path, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_PresentMatch{PresentMatch: true}})
	}
	str := &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: m}}
	list := &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_ListMatch{ListMatch: &matcherv3.ListMatcher{
		MatchPattern: &matcherv3.ListMatcher_OneOf{OneOf: proto.Clone(str).(*matcherv3.ValueMatcher)},
	}}}
	return claimMetadata(path, &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_OrMatch{
		OrMatch: &matcherv3.OrMatcher{ValueMatchers: []*matcherv3.ValueMatcher{str, list}},
	}})
}

func authzHeader(name, v string, ignoreCase bool) *routev3.HeaderMatcher {
	h := &routev3.HeaderMatcher{Name: name}
	if m := stringMatch("", v); m != nil {
		m.IgnoreCase = ignoreCase
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: m}
	} else {
		h.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	}
	return h
}

func prHeader(name, v string) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_Header{Header: authzHeader(name, v, false)}}
}

func permHeader(name, v string, ignoreCase bool) *rbacv3.Permission {
	return &rbacv3.Permission{Rule: &rbacv3.Permission_Header{Header: authzHeader(name, v, ignoreCase)}}
}

func method(v string) term[*rbacv3.Permission] {
	if v == "*" {
		return permAlg.always()
	}
	return permAlg.of(permHeader(":method", v, false))
}

func host(v string) term[*rbacv3.Permission] {
	if v == "*" {
		return permAlg.always()
	}
	return permAlg.of(permHeader(":authority", v, true))
}

// urlPath maps a path value: "*" any, "/a*" prefix, "*.png" suffix, a
// template with "{*}" and "{**}" to uri_template, else exact.
func urlPath(v string) term[*rbacv3.Permission] {
	if v == "*" {
		return permAlg.always()
	}
	if strings.ContainsAny(v, "{}") {
		tmpl := strings.NewReplacer("{**}", "**", "{*}", "*").Replace(v)
		return permAlg.of(&rbacv3.Permission{Rule: &rbacv3.Permission_UriTemplate{UriTemplate: &corev3.TypedExtensionConfig{
			Name:        uriTemplateName,
			TypedConfig: mustAny(&uritemplatev3.UriTemplateMatchConfig{PathTemplate: tmpl}),
		}}})
	}
	return permAlg.of(&rbacv3.Permission{Rule: &rbacv3.Permission_UrlPath{UrlPath: &matcherv3.PathMatcher{
		Rule: &matcherv3.PathMatcher_Path{Path: stringMatch("", v)},
	}}})
}

// port resolves a port value against the listener's ports.
func (c *ruleCtx) port(v string) term[*rbacv3.Permission] {
	if n, err := strconv.ParseUint(v, 10, 16); err == nil && c.ports[uint32(n)] {
		return permAlg.always()
	}
	return permAlg.never()
}

// --- a boolean algebra over matchers with constants ---

// term is a matcher, or a constant: c > 0 always matches, c < 0 never.
type term[M any] struct {
	m M
	c int8
}

// algebra builds and/or/not matchers of one type and folds constants.
type algebra[M any] struct {
	mkAnd, mkOr func([]M) M
	mkNot       func(M) M
	mkAny       func() M
}

func (a algebra[M]) of(m M) term[M]  { return term[M]{m: m} }
func (a algebra[M]) always() term[M] { return term[M]{c: 1} }
func (a algebra[M]) never() term[M]  { return term[M]{c: -1} }
func (a algebra[M]) final(t term[M]) M { // t must not be never
	if t.c > 0 {
		return a.mkAny()
	}
	return t.m
}

func (a algebra[M]) and(ts ...term[M]) term[M] {
	var ms []M
	for _, t := range ts {
		switch {
		case t.c < 0:
			return a.never()
		case t.c == 0:
			ms = append(ms, t.m)
		}
	}
	switch len(ms) {
	case 0:
		return a.always()
	case 1:
		return a.of(ms[0])
	}
	return a.of(a.mkAnd(ms))
}

func (a algebra[M]) or(ts ...term[M]) term[M] {
	var ms []M
	for _, t := range ts {
		switch {
		case t.c > 0:
			return a.always()
		case t.c == 0:
			ms = append(ms, t.m)
		}
	}
	switch len(ms) {
	case 0:
		return a.never()
	case 1:
		return a.of(ms[0])
	}
	return a.of(a.mkOr(ms))
}

func (a algebra[M]) not(t term[M]) term[M] {
	if t.c != 0 {
		return term[M]{c: -t.c}
	}
	return a.of(a.mkNot(t.m))
}

var permAlg = algebra[*rbacv3.Permission]{
	mkAnd: func(ms []*rbacv3.Permission) *rbacv3.Permission {
		return &rbacv3.Permission{Rule: &rbacv3.Permission_AndRules{AndRules: &rbacv3.Permission_Set{Rules: ms}}}
	},
	mkOr: func(ms []*rbacv3.Permission) *rbacv3.Permission {
		return &rbacv3.Permission{Rule: &rbacv3.Permission_OrRules{OrRules: &rbacv3.Permission_Set{Rules: ms}}}
	},
	mkNot: func(m *rbacv3.Permission) *rbacv3.Permission {
		return &rbacv3.Permission{Rule: &rbacv3.Permission_NotRule{NotRule: m}}
	},
	mkAny: permAny,
}

var prAlg = algebra[*rbacv3.Principal]{
	mkAnd: func(ms []*rbacv3.Principal) *rbacv3.Principal {
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_AndIds{AndIds: &rbacv3.Principal_Set{Ids: ms}}}
	},
	mkOr: func(ms []*rbacv3.Principal) *rbacv3.Principal {
		return &rbacv3.Principal{Identifier: &rbacv3.Principal_OrIds{OrIds: &rbacv3.Principal_Set{Ids: ms}}}
	},
	mkNot: prNot,
	mkAny: func() *rbacv3.Principal { return &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}} },
}

func permAny() *rbacv3.Permission { return &rbacv3.Permission{Rule: &rbacv3.Permission_Any{Any: true}} }

func prNot(m *rbacv3.Principal) *rbacv3.Principal {
	return &rbacv3.Principal{Identifier: &rbacv3.Principal_NotId{NotId: m}}
}
