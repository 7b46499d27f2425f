package v1alpha1

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The auth kinds follow Istio's security API (security.istio.io/v1) closely,
// so that a team that knows Istio reads them without a manual; differences
// are documented on the fields.

// MTLSMode says whether a workload's inbound sidecar accepts plaintext.
type MTLSMode string

// mTLS modes.
const (
	// MTLSUnset inherits the namespace's mode, then the mesh default.
	MTLSUnset MTLSMode = "UNSET"
	// MTLSStrict: only mutual TLS with a mesh certificate is accepted.
	MTLSStrict MTLSMode = "STRICT"
	// MTLSPermissive: mutual TLS and plaintext are both accepted (for
	// migrating clients that are not in the mesh yet).
	MTLSPermissive MTLSMode = "PERMISSIVE"
	// MTLSDisable: plaintext only; callers in the mesh send plaintext too.
	MTLSDisable MTLSMode = "DISABLE"
)

// MTLSModes lists the valid modes.
var MTLSModes = []MTLSMode{MTLSUnset, MTLSStrict, MTLSPermissive, MTLSDisable}

// Valid reports whether m is one of MTLSModes.
func (m MTLSMode) Valid() bool {
	for _, v := range MTLSModes {
		if m == v {
			return true
		}
	}
	return false
}

// WorkloadSelector picks workloads by their instance labels (Workload
// spec.labels). An empty or absent selector selects every workload of the
// namespace.
type WorkloadSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// Matches reports whether labels carry every label of the selector. A nil
// selector matches everything.
func (s *WorkloadSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return true
	}
	for k, v := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// PeerAuthentication sets the mTLS mode of the inbound sidecars of a
// namespace (no selector) or of the workloads its selector picks. The most
// specific policy wins: workload, then namespace, then a policy without
// selector in the mesh root namespace ("weft-system"), then the control
// plane's default (STRICT under `weft up`, PERMISSIVE for `weft control`
// unless --mtls-mode says otherwise). Within one level the oldest policy
// wins.
type PeerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PeerAuthenticationSpec `json:"spec"`
	Status *Status                `json:"status,omitempty"`
}

// PeerAuthenticationSpec is the desired state of a PeerAuthentication.
type PeerAuthenticationSpec struct {
	// Selector picks the workloads; absent: the whole namespace.
	Selector *WorkloadSelector `json:"selector,omitempty"`
	// MTLS is the mode. Absent: UNSET (inherit).
	MTLS *PeerMTLS `json:"mtls,omitempty"`
}

// PeerMTLS holds the mode.
type PeerMTLS struct {
	Mode MTLSMode `json:"mode,omitempty"`
}

// MeshRootNamespace holds mesh-wide PeerAuthentication (and, later, other
// mesh-wide policies), as Istio's root namespace.
const MeshRootNamespace = "weft-system"

// SetDefaults fills the spec defaults.
func (p *PeerAuthentication) SetDefaults() {
	if p.Spec.MTLS == nil {
		p.Spec.MTLS = &PeerMTLS{}
	}
	if p.Spec.MTLS.Mode == "" {
		p.Spec.MTLS.Mode = MTLSUnset
	}
}

// AuthorizationAction is what a matching AuthorizationPolicy does.
type AuthorizationAction string

// Actions.
const (
	ActionAllow AuthorizationAction = "ALLOW"
	ActionDeny  AuthorizationAction = "DENY"
)

// AuthorizationPolicy allows or denies requests to the inbound sidecars of
// a namespace (no selector) or of the workloads its selector picks. DENY
// policies are evaluated first; a request any DENY rule matches is refused.
// Then, if any ALLOW policy applies to the workload, the request must match
// one of their rules; with no ALLOW policy everything not denied passes.
// An ALLOW policy without rules matches nothing, so it denies everything
// (Istio's "allow-nothing").
//
// Denials are answered 403 (HTTP) or PERMISSION_DENIED (gRPC) and logged
// with the policy's namespace/name.
type AuthorizationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AuthorizationPolicySpec `json:"spec"`
	Status *Status                 `json:"status,omitempty"`
}

// AuthorizationPolicySpec is the desired state of an AuthorizationPolicy.
type AuthorizationPolicySpec struct {
	// Selector picks the workloads; absent: the whole namespace.
	Selector *WorkloadSelector `json:"selector,omitempty"`
	// Action is ALLOW (default) or DENY.
	Action AuthorizationAction `json:"action,omitempty"`
	// Rules: a request matches the policy if it matches any rule.
	Rules []AuthorizationRule `json:"rules,omitempty"`
}

// AuthorizationRule matches a request when every present part matches:
// any of From, any of To, and every When.
type AuthorizationRule struct {
	From []RuleFrom      `json:"from,omitempty"`
	To   []RuleTo        `json:"to,omitempty"`
	When []RuleCondition `json:"when,omitempty"`
}

// RuleFrom wraps a Source.
type RuleFrom struct {
	Source Source `json:"source"`
}

// Source matches who calls. Every set field must match; each list matches
// when any element does. Values may start or end with "*" (prefix or
// suffix match), or be "*" alone (any value present).
type Source struct {
	// Principals are peer identities without "spiffe://":
	// "cluster.local/ns/shop/sa/frontend". Needs mTLS.
	Principals    []string `json:"principals,omitempty"`
	NotPrincipals []string `json:"notPrincipals,omitempty"`
	// Namespaces of the peer identity. Needs mTLS.
	Namespaces    []string `json:"namespaces,omitempty"`
	NotNamespaces []string `json:"notNamespaces,omitempty"`
	// RequestPrincipals are "<iss>/<sub>" of a JWT validated by a
	// RequestAuthentication. HTTP only.
	RequestPrincipals    []string `json:"requestPrincipals,omitempty"`
	NotRequestPrincipals []string `json:"notRequestPrincipals,omitempty"`
}

// RuleTo wraps an Operation.
type RuleTo struct {
	Operation Operation `json:"operation"`
}

// Operation matches what is called. Every set field must match; each list
// matches when any element does. Methods, paths and hosts are HTTP only
// (as are requestPrincipals and the request.* conditions): on a TCP
// workload an ALLOW rule with them never matches, and a DENY rule ignores
// them, so it denies more rather than less (as Istio).
type Operation struct {
	Methods    []string `json:"methods,omitempty"`
	NotMethods []string `json:"notMethods,omitempty"`
	// Paths: exact ("/cart"), prefix ("/api/*"), suffix ("*.png") or a
	// glob with "{*}" for one segment and "{**}" for any number
	// ("/users/{*}/orders").
	Paths    []string `json:"paths,omitempty"`
	NotPaths []string `json:"notPaths,omitempty"`
	// Ports of the workload: the application's port, a port of its
	// Service that targets it, or the sidecar's inbound port (gateways:
	// the Gateway listener's port).
	Ports    []string `json:"ports,omitempty"`
	NotPorts []string `json:"notPorts,omitempty"`
	// Hosts: the :authority (Host) of the request.
	Hosts    []string `json:"hosts,omitempty"`
	NotHosts []string `json:"notHosts,omitempty"`
}

// RuleCondition matches one attribute of the request: Key is one of
// "request.headers[<name>]", "request.auth.claims[<claim>]" (nested claims
// as "request.auth.claims[a][b]"), "request.auth.principal",
// "request.auth.audiences", "request.auth.presenter", "source.principal",
// "source.namespace", "destination.port". Values as in Source.
type RuleCondition struct {
	Key       string   `json:"key"`
	Values    []string `json:"values,omitempty"`
	NotValues []string `json:"notValues,omitempty"`
}

// SetDefaults fills the spec defaults.
func (p *AuthorizationPolicy) SetDefaults() {
	if p.Spec.Action == "" {
		p.Spec.Action = ActionAllow
	}
}

// RequestAuthentication validates the JWTs people present, at the
// workloads its selector picks (sidecars or gateways; no selector: every
// proxy of the namespace). A request with an invalid token is refused with
// 401 (UNAUTHENTICATED for gRPC); a request without one passes
// unauthenticated, as in Istio: require a token with an AuthorizationPolicy
// on requestPrincipals. The claims of a valid token are what
// request.auth.claims[...] conditions match.
type RequestAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RequestAuthenticationSpec `json:"spec"`
	Status *Status                   `json:"status,omitempty"`
}

// RequestAuthenticationSpec is the desired state of a RequestAuthentication.
type RequestAuthenticationSpec struct {
	// Selector picks the workloads; absent: the whole namespace.
	Selector *WorkloadSelector `json:"selector,omitempty"`
	// JWTRules: a token is valid if it verifies with the rule of its
	// issuer. At least one.
	JWTRules []JWTRule `json:"jwtRules"`
}

// JWTRule is one token issuer.
type JWTRule struct {
	// Issuer is the "iss" the token must carry. Required, unique within
	// the policy.
	Issuer string `json:"issuer"`
	// Audiences the "aud" must contain one of; empty: any.
	Audiences []string `json:"audiences,omitempty"`
	// JWKSURI is where the issuer's keys are fetched (https, or http on
	// loopback), cached and refreshed. Exactly one of JWKSURI and JWKS.
	JWKSURI string `json:"jwksUri,omitempty"`
	// JWKS is an inline key set (JSON).
	JWKS string `json:"jwks,omitempty"`
	// FromHeaders: where the token is read. Default: the Authorization
	// header with prefix "Bearer ".
	FromHeaders []JWTHeader `json:"fromHeaders,omitempty"`
	// FromCookies names cookies that may carry the token.
	FromCookies []string `json:"fromCookies,omitempty"`
	// ForwardOriginalToken keeps the token in the request sent to the
	// application. Default: removed.
	ForwardOriginalToken bool `json:"forwardOriginalToken,omitempty"`
}

// JWTHeader is a header carrying a token after an optional prefix.
type JWTHeader struct {
	Name   string `json:"name"`
	Prefix string `json:"prefix,omitempty"`
}

// ConditionAttr is the request attribute a RuleCondition key names.
type ConditionAttr string

// The attributes of RuleCondition keys.
const (
	// AttrRequestHeader: "request.headers[<name>]" (HTTP only).
	AttrRequestHeader ConditionAttr = "request.headers"
	// AttrRequestClaims: "request.auth.claims[<claim>]", nested claims as
	// "request.auth.claims[a][b]" (HTTP only).
	AttrRequestClaims ConditionAttr = "request.auth.claims"
	// AttrRequestPrincipal: "<iss>/<sub>" of the verified JWT (HTTP only).
	AttrRequestPrincipal ConditionAttr = "request.auth.principal"
	// AttrRequestAudiences: the "aud" of the verified JWT (HTTP only).
	AttrRequestAudiences ConditionAttr = "request.auth.audiences"
	// AttrRequestPresenter: the "azp" of the verified JWT (HTTP only).
	AttrRequestPresenter ConditionAttr = "request.auth.presenter"
	// AttrSourcePrincipal: the peer identity, as Source.Principals.
	AttrSourcePrincipal ConditionAttr = "source.principal"
	// AttrSourceNamespace: the peer identity's namespace.
	AttrSourceNamespace ConditionAttr = "source.namespace"
	// AttrDestinationPort: the workload's port, as Operation.Ports.
	AttrDestinationPort ConditionAttr = "destination.port"
)

// ConditionKeys lists the valid key forms, for messages.
const ConditionKeys = "request.headers[<name>], request.auth.claims[<claim>], request.auth.principal, " +
	"request.auth.audiences, request.auth.presenter, source.principal, source.namespace, destination.port"

// HTTPOnly reports whether the attribute exists only for HTTP requests.
func (a ConditionAttr) HTTPOnly() bool {
	switch a {
	case AttrSourcePrincipal, AttrSourceNamespace, AttrDestinationPort:
		return false
	}
	return true
}

// ParseConditionKey splits a RuleCondition key into its attribute and,
// for request.headers and request.auth.claims, the names in brackets
// (one header name; one or more claim names, outermost first).
func ParseConditionKey(key string) (ConditionAttr, []string, error) {
	switch a := ConditionAttr(key); a {
	case AttrRequestPrincipal, AttrRequestAudiences, AttrRequestPresenter,
		AttrSourcePrincipal, AttrSourceNamespace, AttrDestinationPort:
		return a, nil, nil
	}
	for _, a := range []ConditionAttr{AttrRequestHeader, AttrRequestClaims} {
		rest, ok := strings.CutPrefix(key, string(a))
		if !ok || !strings.HasPrefix(rest, "[") {
			continue
		}
		var names []string
		for rest != "" {
			inner, tail, ok := strings.Cut(rest[1:], "]")
			if rest[0] != '[' || !ok || inner == "" || strings.Contains(inner, "[") {
				return a, nil, fmt.Errorf("%s: want %s[<name>], each name non-empty and in brackets", key, a)
			}
			names, rest = append(names, inner), tail
		}
		if a == AttrRequestHeader && len(names) != 1 {
			return a, nil, fmt.Errorf("%s: want one header name: request.headers[<name>]", key)
		}
		return a, names, nil
	}
	return "", nil, fmt.Errorf("unknown key %q: want one of %s", key, ConditionKeys)
}

// SplitRequestPrincipal splits "<iss>/<sub>" at its last "/" (issuers are
// often URLs; subjects rarely hold a "/"). ok is false without a "/".
func SplitRequestPrincipal(s string) (iss, sub string, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
