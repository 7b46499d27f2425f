package resource

import (
	"encoding/json"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
)

// Rules for the auth kinds (PeerAuthentication, AuthorizationPolicy,
// RequestAuthentication). Match values follow Istio: exact, "*" alone,
// or one "*" at the start (suffix match) or the end (prefix match).

var (
	methodRE     = regexp.MustCompile(`^[A-Z][A-Z0-9_-]*$`)
	namespaceLit = regexp.MustCompile(`^[a-z0-9-]*$`)
	hostLit      = regexp.MustCompile(`^[A-Za-z0-9._:\[\]-]*$`)
)

func (v *validator) selector(path string, s *v1alpha1.WorkloadSelector) {
	if s != nil {
		v.labels(path+".matchLabels", s.MatchLabels)
	}
}

func namespaceWide(s *v1alpha1.WorkloadSelector) bool { return s == nil || len(s.MatchLabels) == 0 }

func (v *validator) peerAuthentication(s *v1alpha1.PeerAuthenticationSpec) {
	v.selector("spec.selector", s.Selector)
	if s.MTLS != nil && s.MTLS.Mode != "" && !s.MTLS.Mode.Valid() {
		modes := make([]string, len(v1alpha1.MTLSModes))
		for i, m := range v1alpha1.MTLSModes {
			modes[i] = string(m)
		}
		v.errf("spec.mtls.mode", "must be one of %s, got %q", strings.Join(modes, ", "), s.MTLS.Mode)
	}
	if !namespaceWide(s.Selector) {
		return
	}
	var others []string
	for k, o := range v.w.byKey {
		if k.Kind == KindPeerAuthentication && k.Namespace == v.obj.Namespace && k.Name != v.obj.Name {
			if pa := o.PeerAuthentication(); pa != nil && namespaceWide(pa.Selector) {
				others = append(others, k.Namespace+"/"+k.Name)
			}
		}
	}
	sort.Strings(others)
	for _, n := range others {
		v.warnf("spec.selector", "PeerAuthentication %s also applies to the whole namespace; only the oldest of them takes effect", n)
	}
}

func (v *validator) authorizationPolicy(s *v1alpha1.AuthorizationPolicySpec) {
	v.selector("spec.selector", s.Selector)
	v.oneOf("spec.action", string(s.Action), string(v1alpha1.ActionAllow), string(v1alpha1.ActionDeny))
	for i, r := range s.Rules {
		rp := "spec.rules[" + strconv.Itoa(i) + "]"
		for j, f := range r.From {
			v.source(rp+".from["+strconv.Itoa(j)+"].source", &f.Source)
		}
		for j, t := range r.To {
			v.operation(rp+".to["+strconv.Itoa(j)+"].operation", &t.Operation)
		}
		for j, c := range r.When {
			v.condition(rp+".when["+strconv.Itoa(j)+"]", &c)
		}
	}
}

func (v *validator) source(path string, s *v1alpha1.Source) {
	if len(s.Principals)+len(s.NotPrincipals)+len(s.Namespaces)+len(s.NotNamespaces)+
		len(s.RequestPrincipals)+len(s.NotRequestPrincipals) == 0 {
		v.errf(path, "must not be empty: set principals, namespaces or requestPrincipals (or their not- forms)")
		return
	}
	v.values(path+".principals", s.Principals, v.principal)
	v.values(path+".notPrincipals", s.NotPrincipals, v.principal)
	v.values(path+".namespaces", s.Namespaces, v.namespaceValue)
	v.values(path+".notNamespaces", s.NotNamespaces, v.namespaceValue)
	v.values(path+".requestPrincipals", s.RequestPrincipals, v.requestPrincipal)
	v.values(path+".notRequestPrincipals", s.NotRequestPrincipals, v.requestPrincipal)
}

func (v *validator) operation(path string, o *v1alpha1.Operation) {
	if len(o.Methods)+len(o.NotMethods)+len(o.Paths)+len(o.NotPaths)+len(o.Ports)+len(o.NotPorts)+
		len(o.Hosts)+len(o.NotHosts) == 0 {
		v.errf(path, "must not be empty: set methods, paths, ports or hosts (or their not- forms)")
		return
	}
	v.values(path+".methods", o.Methods, v.method)
	v.values(path+".notMethods", o.NotMethods, v.method)
	v.values(path+".paths", o.Paths, v.pathValue)
	v.values(path+".notPaths", o.NotPaths, v.pathValue)
	v.values(path+".ports", o.Ports, v.portValue)
	v.values(path+".notPorts", o.NotPorts, v.portValue)
	v.values(path+".hosts", o.Hosts, v.hostValue)
	v.values(path+".notHosts", o.NotHosts, v.hostValue)
}

func (v *validator) condition(path string, c *v1alpha1.RuleCondition) {
	if c.Key == "" {
		v.errf(path+".key", "required: one of %s", v1alpha1.ConditionKeys)
		return
	}
	attr, names, err := v1alpha1.ParseConditionKey(c.Key)
	if err != nil {
		v.errf(path+".key", "%v", err)
		return
	}
	if len(c.Values)+len(c.NotValues) == 0 {
		v.errf(path, "set values or notValues")
	}
	check := v.plainValue
	switch attr {
	case v1alpha1.AttrRequestHeader:
		v.headerName(path+".key", names[0])
	case v1alpha1.AttrRequestPrincipal:
		check = v.requestPrincipal
	case v1alpha1.AttrSourcePrincipal:
		check = v.principal
	case v1alpha1.AttrSourceNamespace:
		check = v.namespaceValue
	case v1alpha1.AttrDestinationPort:
		check = v.portValue
	}
	v.values(path+".values", c.Values, check)
	v.values(path+".notValues", c.NotValues, check)
}

// values checks each element of a match list with check.
func (v *validator) values(path string, vals []string, check func(path, s string)) {
	for i, s := range vals {
		check(path+"["+strconv.Itoa(i)+"]", s)
	}
}

// wildcard checks the "*" placement of a match value and returns the
// value without it; ok is false after an error.
func (v *validator) wildcard(path, s string) (lit string, ok bool) {
	switch n := strings.Count(s, "*"); {
	case s == "":
		v.errf(path, "must not be empty")
		return "", false
	case n == 0:
		return s, true
	case s == "*":
		return "", true
	case n == 1 && strings.HasPrefix(s, "*"):
		return s[1:], true
	case n == 1 && strings.HasSuffix(s, "*"):
		return s[:len(s)-1], true
	}
	v.errf(path, "%q: \"*\" is allowed only once, at the start (suffix match) or at the end (prefix match)", s)
	return "", false
}

func (v *validator) plainValue(path, s string) {
	if lit, ok := v.wildcard(path, s); ok && strings.ContainsFunc(lit, isControl) {
		v.errf(path, "must not contain control characters, got %q", s)
	}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func (v *validator) principal(path, s string) {
	if strings.HasPrefix(s, "spiffe://") {
		v.errf(path, "write the identity without \"spiffe://\" (\"<trust-domain>/ns/<namespace>/sa/<service-account>\"), got %q", s)
		return
	}
	lit, ok := v.wildcard(path, s)
	if !ok {
		return
	}
	if strings.ContainsFunc(lit, func(r rune) bool { return isControl(r) || r == ' ' }) {
		v.errf(path, "must not contain spaces or control characters, got %q", s)
		return
	}
	if lit == s { // exact: warn when it cannot be a weft identity
		parts := strings.Split(s, "/")
		if len(parts) != 5 || parts[1] != "ns" || parts[3] != "sa" || parts[0] == "" || parts[2] == "" || parts[4] == "" {
			v.warnf(path, "%q does not look like \"<trust-domain>/ns/<namespace>/sa/<service-account>\" and will match no weft identity", s)
		}
	}
}

func (v *validator) namespaceValue(path, s string) {
	lit, ok := v.wildcard(path, s)
	switch {
	case !ok:
	case lit == s:
		v.dnsLabel(path, s, true)
	case !namespaceLit.MatchString(lit):
		v.errf(path, "must be a namespace name (lower-case letters, digits and '-'), optionally with a leading or trailing \"*\", got %q", s)
	}
}

func (v *validator) requestPrincipal(path, s string) {
	lit, ok := v.wildcard(path, s)
	switch {
	case !ok:
	case strings.ContainsFunc(lit, func(r rune) bool { return isControl(r) || r == ' ' }):
		v.errf(path, "must not contain spaces or control characters, got %q", s)
	case lit == s:
		if iss, sub, ok := v1alpha1.SplitRequestPrincipal(s); !ok || iss == "" || sub == "" {
			v.errf(path, "must be \"<issuer>/<subject>\" (or use \"*\"), got %q", s)
		}
	}
}

func (v *validator) method(path, s string) {
	if s != "*" && !methodRE.MatchString(s) {
		v.errf(path, "must be an upper-case HTTP method such as GET or POST (or \"*\"), got %q", s)
	}
}

// pathValue checks an Operation path: exact, prefix ("/api/*"), suffix
// ("*.png"), "*", or a template with "{*}" (one segment) and "{**}" (the
// rest, last).
func (v *validator) pathValue(path, s string) {
	if strings.ContainsAny(s, "?# \t\r\n") {
		v.errf(path, "must be a path without query, fragment or spaces, got %q", s)
		return
	}
	if !strings.ContainsAny(s, "{}") {
		if _, ok := v.wildcard(path, s); ok && s != "*" && !strings.HasPrefix(s, "*") && !strings.HasPrefix(s, "/") {
			v.errf(path, "must start with \"/\" (or \"*\" for a suffix match), got %q", s)
		}
		return
	}
	if !strings.HasPrefix(s, "/") {
		v.errf(path, "a path template must start with \"/\", got %q", s)
		return
	}
	segs := strings.Split(s[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "{*}":
		case seg == "{**}":
			if i != len(segs)-1 {
				v.errf(path, "%q: \"{**}\" must be the last segment", s)
				return
			}
		case strings.ContainsAny(seg, "{}*"):
			v.errf(path, "%q: segment %q: a template segment must be exactly \"{*}\" or \"{**}\", and \"*\" cannot be combined with them", s, seg)
			return
		}
	}
}

func (v *validator) portValue(path, s string) {
	if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 65535 {
		v.errf(path, "must be a port number in 1-65535, got %q", s)
	}
}

func (v *validator) hostValue(path, s string) {
	if lit, ok := v.wildcard(path, s); ok && !hostLit.MatchString(lit) {
		v.errf(path, "must be a host name, optionally with a port and a leading or trailing \"*\", got %q", s)
	}
}

func (v *validator) requestAuthentication(s *v1alpha1.RequestAuthenticationSpec) {
	v.selector("spec.selector", s.Selector)
	if len(s.JWTRules) == 0 {
		v.errf("spec.jwtRules", "at least one rule is required")
	}
	issuers := map[string]int{}
	for i, r := range s.JWTRules {
		rp := "spec.jwtRules[" + strconv.Itoa(i) + "]"
		switch {
		case r.Issuer == "":
			v.errf(rp+".issuer", "required: the \"iss\" of the tokens")
		case strings.ContainsFunc(r.Issuer, func(r rune) bool { return isControl(r) || r == ' ' }):
			v.errf(rp+".issuer", "must not contain spaces or control characters, got %q", r.Issuer)
		default:
			if j, dup := issuers[r.Issuer]; dup {
				v.errf(rp+".issuer", "duplicate issuer %q (also spec.jwtRules[%d])", r.Issuer, j)
			}
			issuers[r.Issuer] = i
		}
		for j, a := range r.Audiences {
			if a == "" {
				v.errf(rp+".audiences["+strconv.Itoa(j)+"]", "must not be empty")
			}
		}
		switch {
		case r.JWKSURI != "" && r.JWKS != "":
			v.errf(rp, "set either jwksUri or jwks, not both")
		case r.JWKSURI == "" && r.JWKS == "":
			v.errf(rp, "set jwksUri (where the issuer's keys are fetched) or jwks (the keys inline)")
		case r.JWKSURI != "":
			v.jwksURI(rp+".jwksUri", r.JWKSURI)
		default:
			v.jwks(rp+".jwks", r.JWKS)
		}
		for j, h := range r.FromHeaders {
			hp := rp + ".fromHeaders[" + strconv.Itoa(j) + "]"
			if h.Name == "" {
				v.errf(hp+".name", "required")
			} else {
				v.headerName(hp+".name", h.Name)
			}
			if strings.ContainsFunc(h.Prefix, isControl) {
				v.errf(hp+".prefix", "must not contain control characters, got %q", h.Prefix)
			}
		}
		for j, c := range r.FromCookies {
			if !headerNameRE.MatchString(c) {
				v.errf(rp+".fromCookies["+strconv.Itoa(j)+"]", "must be a cookie name (an HTTP token), got %q", c)
			}
		}
	}
}

func (v *validator) jwksURI(path, s string) {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Fragment != "":
		v.errf(path, "must be an absolute https URL without user info or fragment, got %q", s)
	case u.Scheme == "https":
	case u.Scheme == "http" && loopbackHost(u.Hostname()):
	case u.Scheme == "http":
		v.errf(path, "must use https (http is allowed only to a loopback host), got %q", s)
	default:
		v.errf(path, "must be an https URL, got %q", s)
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// jwks checks the shape of an inline JWK set: an object with a non-empty
// "keys" array of objects, each with a "kty". The proxy parses the keys.
func (v *validator) jwks(path, s string) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		v.errf(path, "must be a JWK set (JSON object with \"keys\"): %v", err)
		return
	}
	var keys []map[string]any
	if raw, ok := doc["keys"]; !ok || json.Unmarshal(raw, &keys) != nil || len(keys) == 0 {
		v.errf(path, "must be a JWK set: want a non-empty \"keys\" array of objects")
		return
	}
	for i, k := range keys {
		if kty, _ := k["kty"].(string); kty == "" {
			v.errf(path, "keys[%d]: \"kty\" is required", i)
		}
	}
}
