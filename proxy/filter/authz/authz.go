// Package authz evaluates authorization policies in the proxy: Envoy's
// role-based access control filters (envoy.filters.http.rbac and, for TCP,
// envoy.filters.network.rbac) decoded into immutable matcher trees.
//
// weft's AuthorizationPolicy maps onto RBAC as Istio's does: the control
// plane emits up to two filters per workload, a DENY filter (all DENY
// rules) followed by an ALLOW filter (all ALLOW rules); a Chain evaluates
// them in that order. With no ALLOW policy no ALLOW filter is emitted and
// everything not denied passes; an ALLOW filter whose policies map is
// empty (only empty ALLOW policies exist) denies everything.
//
// Matchers supported (anything else is refused at decode with its field
// path): permissions any, header, url_path, uri_template (globs),
// destination_port, destination_port_range, and_rules, or_rules,
// not_rule; principals any, authenticated.principal_name (the SPIFFE ID
// of the mTLS peer), header, url_path, and_ids, or_ids, not_id and
// metadata for JWT claims.
//
// JWT claims are matched with a principal metadata matcher naming the
// jwt_authn filter and its payload_in_metadata key, exactly as an Envoy
// sidecar would see them:
//
//	metadata:
//	  filter: envoy.filters.http.jwt_authn
//	  path: [{key: jwt_payload}, {key: groups}]   # then nested claim keys
//	  value: {list_match: {one_of: {string_match: {exact: admins}}}}
//
// The first path key must be ClaimsMetadataKey; the rest walk the claims.
// Values follow Envoy's ValueMatcher: string_match matches a string claim,
// list_match an array claim with a matching element, or_match either; so
// "request.auth.claims[groups] contains admins" for a claim that may be a
// string or an array is an or_match of the two.
package authz

import (
	"sort"
)

// Names of the filters in http_filters and network filters.
const (
	Name        = "envoy.filters.http.rbac"
	NetworkName = "envoy.filters.network.rbac"
)

// ClaimsMetadataKey is the payload_in_metadata key under which the JWT
// filter publishes the verified claims, and the first path key of a
// claims metadata matcher.
const (
	ClaimsMetadataFilter = "envoy.filters.http.jwt_authn"
	ClaimsMetadataKey    = "jwt_payload"
)

// Headers is read by Evaluate; names are lower-case. :method and :path
// come from the Request; other pseudo-headers (:authority, :scheme) are
// asked of Headers.
type Headers interface {
	Get(name string) (string, bool)
}

// Request is what a policy sees of one request or connection.
type Request struct {
	// PeerPrincipal is the SPIFFE ID from the verified mTLS peer
	// certificate; "" for a plaintext or unauthenticated peer.
	PeerPrincipal string
	// Method and Path (the :path, query included) are "" for TCP.
	Method, Path string
	// Headers may be nil (TCP).
	Headers Headers
	// DestinationPort is the port the connection was accepted on.
	DestinationPort uint32
	// Claims are the verified JWT claims (jwt.Result.Claims); nil when
	// no token was verified.
	Claims map[string]any

	urlPath string // Path without query and fragment, set by Evaluate
}

// Reasons of a Decision.
const (
	ReasonNoPolicy        = "no_policy"                // no filter, or a filter without rules
	ReasonAllowedByPolicy = "allowed_by_policy"        // an ALLOW policy matched
	ReasonNoDenyMatch     = "no_matching_deny_policy"  // a DENY filter, nothing matched
	ReasonDeniedByPolicy  = "denied_by_policy"         // a DENY policy matched
	ReasonNoAllowMatch    = "no_matching_allow_policy" // an ALLOW filter, nothing matched
)

// Decision is the outcome of Evaluate.
type Decision struct {
	Allowed bool
	// Policy names the policy that matched ("" when none did).
	Policy string
	Reason string
}

// Action is a filter's action.
type Action uint8

// Actions.
const (
	Allow Action = iota
	Deny
)

// Filter is one decoded RBAC filter. Immutable and safe for concurrent
// use; a nil *Filter allows everything.
type Filter struct {
	action   Action
	enabled  bool     // rules set
	policies []policy // sorted by name
}

type policy struct {
	name        string
	permissions node // kOr of the permissions
	principals  node // kOr of the principals
}

// Action returns the filter's action.
func (f *Filter) Action() Action { return f.action }

// Policies returns the policy names, sorted.
func (f *Filter) Policies() []string {
	out := make([]string, len(f.policies))
	for i := range f.policies {
		out[i] = f.policies[i].name
	}
	return out
}

func newFilter(action Action, enabled bool, ps []policy) *Filter {
	sort.Slice(ps, func(i, j int) bool { return ps[i].name < ps[j].name })
	return &Filter{action: action, enabled: enabled, policies: ps}
}

// Evaluate applies the filter to one request: an ALLOW filter allows when
// a policy matches, a DENY filter denies when one does. A policy matches
// when one of its permissions and one of its principals match. Policies
// are tried in name order; the first match names the Decision.
func (f *Filter) Evaluate(req Request) Decision {
	req.urlPath = pathOnly(req.Path)
	return f.evaluate(&req)
}

func (f *Filter) evaluate(r *Request) Decision {
	if f == nil || !f.enabled {
		return Decision{Allowed: true, Reason: ReasonNoPolicy}
	}
	for i := range f.policies {
		p := &f.policies[i]
		if p.permissions.match(r) && p.principals.match(r) {
			if f.action == Deny {
				return Decision{Policy: p.name, Reason: ReasonDeniedByPolicy}
			}
			return Decision{Allowed: true, Policy: p.name, Reason: ReasonAllowedByPolicy}
		}
	}
	if f.action == Deny {
		return Decision{Allowed: true, Reason: ReasonNoDenyMatch}
	}
	return Decision{Reason: ReasonNoAllowMatch}
}

// Chain is the RBAC filters of one listener in filter-chain order
// (DENY before ALLOW). Immutable and safe for concurrent use.
type Chain struct {
	filters []*Filter
}

// NewChain returns a chain of filters, evaluated in the given order; nil
// filters are skipped.
func NewChain(filters ...*Filter) *Chain {
	c := &Chain{}
	for _, f := range filters {
		if f != nil {
			c.filters = append(c.filters, f)
		}
	}
	return c
}

// Evaluate runs the filters in order: the first denial is the answer;
// when all allow, the last filter's decision is. An empty chain allows.
func (c *Chain) Evaluate(req Request) Decision {
	d := Decision{Allowed: true, Reason: ReasonNoPolicy}
	if c == nil {
		return d
	}
	req.urlPath = pathOnly(req.Path)
	for _, f := range c.filters {
		if d = f.evaluate(&req); !d.Allowed {
			return d
		}
	}
	return d
}
