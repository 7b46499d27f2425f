package resource

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
)

var (
	gatewayProtocols = []string{"HTTP", "HTTPS", "TLS", "TCP", "UDP"}
	httpMethods      = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
	httpFilterTypes  = []string{"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite", "ExtensionRef", "CORS"}
	grpcFilterTypes  = []string{"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "ExtensionRef"}
)

const maxWeight = 1000000

// ExposureAnnotation on a Gateway says which network its listeners face:
// ExposureInternet (the default when absent) or ExposureIntranet. It
// decides which Service visibilities the Gateway may reach.
const (
	ExposureAnnotation = "weft.dev/exposure"
	ExposureInternet   = "internet"
	ExposureIntranet   = "intranet"
)

func (v *validator) gateway(s *gwv1.GatewaySpec) {
	if e, ok := v.obj.Annotations[ExposureAnnotation]; ok {
		v.oneOf(mapPath("metadata.annotations", ExposureAnnotation), e, ExposureInternet, ExposureIntranet)
	}
	if s.GatewayClassName == "" {
		v.errf("spec.gatewayClassName", "required (weft serves any class; use \"weft\")")
	}
	if len(s.Listeners) == 0 {
		v.errf("spec.listeners", "at least one listener is required")
	}
	names := map[gwv1.SectionName]int{}
	type portUse struct {
		proto string
		index int
	}
	ports := map[int32]portUse{}
	for i, l := range s.Listeners {
		path := "spec.listeners[" + strconv.Itoa(i) + "]"
		if v.dnsLabel(path+".name", string(l.Name), true) {
			if j, dup := names[l.Name]; dup {
				v.errf(path+".name", "duplicate listener name %q (also spec.listeners[%d])", l.Name, j)
			}
			names[l.Name] = i
		}
		v.port(path+".port", l.Port, true)
		if !v.oneOf(path+".protocol", string(l.Protocol), gatewayProtocols...) {
			continue
		}
		if l.Hostname != nil {
			v.hostname(path+".hostname", string(*l.Hostname), true)
		}
		if u, ok := ports[l.Port]; ok && u.proto != string(l.Protocol) && l.Port != 0 {
			v.errf(path+".protocol", "port %d is already used with protocol %s by spec.listeners[%d]", l.Port, u.proto, u.index)
		} else if !ok {
			ports[l.Port] = portUse{string(l.Protocol), i}
		}
		if (l.Protocol == gwv1.HTTPSProtocolType) && (l.TLS == nil || len(l.TLS.CertificateRefs) == 0) {
			v.errf(path+".tls.certificateRefs", "required for protocol HTTPS")
		}
	}
}

// parent is a normalized parentRef.
type parent struct {
	Kind      string // "Gateway" or "Service"
	Namespace string
	Name      string
	Section   string
	Port      int32
}

func (p parent) String() string {
	s := p.Kind + " " + p.Namespace + "/" + p.Name
	if p.Section != "" {
		s += " section " + p.Section
	}
	if p.Port != 0 {
		s += " port " + strconv.Itoa(int(p.Port))
	}
	return s
}

func normalizeParent(ns string, r gwv1.ParentReference) parent {
	p := parent{Kind: "Gateway", Namespace: ns, Name: string(r.Name)}
	if r.Kind != nil {
		p.Kind = string(*r.Kind)
	}
	if r.Namespace != nil && *r.Namespace != "" {
		p.Namespace = string(*r.Namespace)
	}
	if r.SectionName != nil {
		p.Section = string(*r.SectionName)
	}
	if r.Port != nil {
		p.Port = *r.Port
	}
	return p
}

func (v *validator) parentRefs(refs []gwv1.ParentReference) {
	if len(refs) == 0 {
		v.errf("spec.parentRefs", "at least one parentRef is required (a Gateway, or a Service for mesh routes)")
	}
	for i, r := range refs {
		path := "spec.parentRefs[" + strconv.Itoa(i) + "]"
		kind := "Gateway"
		if r.Kind != nil {
			kind = string(*r.Kind)
		}
		group := ""
		if r.Group != nil {
			group = string(*r.Group)
		}
		switch kind {
		case "Gateway":
			if r.Group != nil && group != GatewayGroup {
				v.errf(path+".group", "must be %q for kind Gateway, got %q", GatewayGroup, group)
			}
		case "Service":
			if r.Group == nil {
				break
			}
			v.oneOf(path+".group", group, "", "core", v1alpha1.GroupName)
		default:
			v.errf(path+".kind", "must be Gateway or Service, got %q", kind)
			continue
		}
		ok := v.dnsLabel(path+".name", string(r.Name), true)
		if r.Namespace != nil {
			ok = v.dnsLabel(path+".namespace", string(*r.Namespace), true) && ok
		}
		if r.SectionName != nil {
			v.dnsLabel(path+".sectionName", string(*r.SectionName), true)
		}
		if r.Port != nil {
			v.port(path+".port", *r.Port, true)
		}
		if !ok {
			continue
		}
		p := normalizeParent(v.obj.Namespace, r)
		if kind == "Service" {
			v.serviceRef(path, p.Namespace, p.Name, p.Port)
			continue
		}
		gw := v.w.get(KindGateway, p.Namespace, p.Name)
		if gw == nil {
			v.warnf(path, "Gateway %s/%s not found", p.Namespace, p.Name)
			continue
		}
		if spec := gw.Gateway(); spec != nil && p.Section != "" {
			found := false
			for _, l := range spec.Listeners {
				found = found || string(l.Name) == p.Section
			}
			if !found {
				v.warnf(path+".sectionName", "Gateway %s/%s has no listener %q", p.Namespace, p.Name, p.Section)
			}
		}
	}
}

func (v *validator) hostnames(hs []gwv1.Hostname) {
	for i, h := range hs {
		v.hostname("spec.hostnames["+strconv.Itoa(i)+"]", string(h), true)
	}
}

// backendRef checks one backend reference and warns when its Service or
// port is missing.
func (v *validator) backendRef(path string, r gwv1.BackendRef) {
	kind := "Service"
	if r.Kind != nil {
		kind = string(*r.Kind)
	}
	if kind != "Service" {
		v.errf(path+".kind", "only Service backends are supported, got %q", kind)
		return
	}
	if r.Group != nil {
		v.oneOf(path+".group", string(*r.Group), "", "core", v1alpha1.GroupName)
	}
	ok := v.dnsLabel(path+".name", string(r.Name), true)
	ns := v.obj.Namespace
	if r.Namespace != nil {
		ns = string(*r.Namespace)
		ok = v.dnsLabel(path+".namespace", ns, true) && ok
	}
	var port int32
	if r.Port == nil {
		v.errf(path+".port", "required for a Service backend")
	} else {
		port = *r.Port
		v.port(path+".port", port, true)
	}
	if r.Weight != nil {
		if w := *r.Weight; w < 0 {
			v.errf(path+".weight", "must be >= 0, got %d", w)
		} else if w > maxWeight {
			v.errf(path+".weight", "must be <= %d, got %d", maxWeight, w)
		}
	}
	if ok {
		v.serviceRef(path, ns, string(r.Name), port)
	}
}

func (v *validator) headerFilter(path string, f *gwv1.HTTPHeaderFilter) {
	for i, h := range f.Set {
		v.headerName(path+".set["+strconv.Itoa(i)+"].name", string(h.Name))
	}
	for i, h := range f.Add {
		v.headerName(path+".add["+strconv.Itoa(i)+"].name", string(h.Name))
	}
	for i, h := range f.Remove {
		v.headerName(path+".remove["+strconv.Itoa(i)+"]", h)
	}
}

// filterScope says where a filter list is: a rule's filters (where a
// FaultInjection may be referenced once) or a backendRef's.
type filterScope struct {
	rule    bool
	faultAt int // index of the rule's FaultInjection filter; -1: none yet
}

func (v *validator) httpFilters(path string, fs []gwv1.HTTPRouteFilter, hasBackends, rule bool) {
	sc := &filterScope{rule: rule, faultAt: -1}
	for i, f := range fs {
		p := path + "[" + strconv.Itoa(i) + "]"
		if !v.oneOf(p+".type", string(f.Type), httpFilterTypes...) {
			continue
		}
		set := map[string]bool{
			"RequestHeaderModifier":  f.RequestHeaderModifier != nil,
			"ResponseHeaderModifier": f.ResponseHeaderModifier != nil,
			"RequestMirror":          f.RequestMirror != nil,
			"RequestRedirect":        f.RequestRedirect != nil,
			"URLRewrite":             f.URLRewrite != nil,
			"ExtensionRef":           f.ExtensionRef != nil,
			"CORS":                   f.CORS != nil,
		}
		v.filterFields(p, string(f.Type), set)
		switch {
		case f.RequestHeaderModifier != nil:
			v.headerFilter(p+".requestHeaderModifier", f.RequestHeaderModifier)
		case f.ResponseHeaderModifier != nil:
			v.headerFilter(p+".responseHeaderModifier", f.ResponseHeaderModifier)
		case f.RequestMirror != nil:
			v.requestMirror(p+".requestMirror", f.RequestMirror)
		case f.ExtensionRef != nil:
			v.extensionRef(p, i, f.ExtensionRef, sc)
		}
		if f.Type == gwv1.HTTPRouteFilterRequestRedirect && hasBackends {
			v.errf(p, "a RequestRedirect filter must not be used together with backendRefs")
		}
	}
}

func (v *validator) grpcFilters(path string, fs []gwv1.GRPCRouteFilter, rule bool) {
	sc := &filterScope{rule: rule, faultAt: -1}
	for i, f := range fs {
		p := path + "[" + strconv.Itoa(i) + "]"
		if !v.oneOf(p+".type", string(f.Type), grpcFilterTypes...) {
			continue
		}
		v.filterFields(p, string(f.Type), map[string]bool{
			"RequestHeaderModifier":  f.RequestHeaderModifier != nil,
			"ResponseHeaderModifier": f.ResponseHeaderModifier != nil,
			"RequestMirror":          f.RequestMirror != nil,
			"ExtensionRef":           f.ExtensionRef != nil,
		})
		if f.RequestHeaderModifier != nil {
			v.headerFilter(p+".requestHeaderModifier", f.RequestHeaderModifier)
		}
		if f.ResponseHeaderModifier != nil {
			v.headerFilter(p+".responseHeaderModifier", f.ResponseHeaderModifier)
		}
		if f.RequestMirror != nil {
			v.requestMirror(p+".requestMirror", f.RequestMirror)
		}
		if f.ExtensionRef != nil {
			v.extensionRef(p, i, f.ExtensionRef, sc)
		}
	}
}

// requestMirror checks the mirror's backend (a missing Service is a
// warning) and its share: percent 0-100 or fraction numerator/denominator.
func (v *validator) requestMirror(path string, m *gwv1.HTTPRequestMirrorFilter) {
	v.backendRef(path+".backendRef", gwv1.BackendRef{BackendObjectReference: m.BackendRef})
	if m.Percent != nil && m.Fraction != nil {
		v.errf(path, "set either percent or fraction, not both")
	}
	if m.Percent != nil && (*m.Percent < 0 || *m.Percent > 100) {
		v.errf(path+".percent", "must be in 0-100, got %d", *m.Percent)
	}
	if f := m.Fraction; f != nil {
		den := int32(100)
		if f.Denominator != nil {
			den = *f.Denominator
			if den < 1 {
				v.errf(path+".fraction.denominator", "must be >= 1, got %d", den)
			}
		}
		switch {
		case f.Numerator < 0:
			v.errf(path+".fraction.numerator", "must be >= 0, got %d", f.Numerator)
		case den >= 1 && f.Numerator > den:
			v.errf(path+".fraction.numerator", "must not be above the denominator (%d), got %d", den, f.Numerator)
		}
	}
}

// extensionRef checks an ExtensionRef filter: the only extension is a
// weft.dev FaultInjection of the route's namespace, at most one per rule
// and not on a backendRef. A reference to a FaultInjection that does not
// exist is an error (the fault would silently not happen).
func (v *validator) extensionRef(path string, index int, r *gwv1.LocalObjectReference, sc *filterScope) {
	path += ".extensionRef"
	ok := v.oneOf(path+".group", string(r.Group), v1alpha1.GroupName)
	ok = v.oneOf(path+".kind", string(r.Kind), v1alpha1.KindFaultInjection) && ok
	if !ok {
		return
	}
	ok = v.dnsLabel(path+".name", string(r.Name), true)
	if !sc.rule {
		v.errf(path, "a FaultInjection applies to a whole rule: reference it from the rule's filters, not a backendRef's")
		return
	}
	if sc.faultAt >= 0 {
		v.errf(path, "only one FaultInjection per rule (also filters[%d])", sc.faultAt)
	}
	sc.faultAt = index
	if ok && v.w.get(KindFaultInjection, v.obj.Namespace, string(r.Name)) == nil {
		v.errf(path, "FaultInjection %s/%s not found", v.obj.Namespace, r.Name)
	}
}

// filterFields checks that exactly the field matching the filter type is set.
func (v *validator) filterFields(path, typ string, set map[string]bool) {
	field := func(t string) string {
		if t == "URLRewrite" {
			return "urlRewrite"
		}
		return strings.ToLower(t[:1]) + t[1:]
	}
	if !set[typ] {
		v.errf(path+"."+field(typ), "required for filter type %s", typ)
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if set[k] && k != typ {
			v.errf(path+"."+field(k), "must not be set for filter type %s", typ)
		}
	}
}

func (v *validator) httpRoute(s *gwv1.HTTPRouteSpec) {
	v.parentRefs(s.ParentRefs)
	v.hostnames(s.Hostnames)
	for i, r := range s.Rules {
		rp := "spec.rules[" + strconv.Itoa(i) + "]"
		for j, m := range r.Matches {
			v.httpMatch(rp+".matches["+strconv.Itoa(j)+"]", m)
		}
		v.httpFilters(rp+".filters", r.Filters, len(r.BackendRefs) > 0, true)
		for j, b := range r.BackendRefs {
			bp := rp + ".backendRefs[" + strconv.Itoa(j) + "]"
			v.backendRef(bp, b.BackendRef)
			v.httpFilters(bp+".filters", b.Filters, false, false)
		}
		if t := r.Timeouts; t != nil {
			var req, be = -1, -1
			if t.Request != nil {
				if d, err := gatewayDuration(string(*t.Request)); err != nil {
					v.errf(rp+".timeouts.request", "%v", err)
				} else {
					req = int(d)
				}
			}
			if t.BackendRequest != nil {
				if d, err := gatewayDuration(string(*t.BackendRequest)); err != nil {
					v.errf(rp+".timeouts.backendRequest", "%v", err)
				} else {
					be = int(d)
				}
			}
			if req > 0 && be > req {
				v.errf(rp+".timeouts.backendRequest", "must not be longer than the request timeout (%s), got %s", *t.Request, *t.BackendRequest)
			}
		}
		if rt := r.Retry; rt != nil {
			if rt.Attempts != nil && (*rt.Attempts < 0 || *rt.Attempts > 10) {
				v.errf(rp+".retry.attempts", "must be in 0-10, got %d", *rt.Attempts)
			}
			for j, c := range rt.Codes {
				if c < 400 || c > 599 {
					v.errf(rp+".retry.codes["+strconv.Itoa(j)+"]", "must be an HTTP status in 400-599, got %d", c)
				}
			}
			if rt.Backoff != nil {
				if _, err := gatewayDuration(string(*rt.Backoff)); err != nil {
					v.errf(rp+".retry.backoff", "%v", err)
				}
			}
		}
	}
}

func (v *validator) httpMatch(path string, m gwv1.HTTPRouteMatch) {
	if p := m.Path; p != nil {
		typ := gwv1.PathMatchPathPrefix
		if p.Type != nil {
			typ = *p.Type
		}
		val := "/"
		if p.Value != nil {
			val = *p.Value
		}
		switch typ {
		case gwv1.PathMatchExact, gwv1.PathMatchPathPrefix:
			switch {
			case !strings.HasPrefix(val, "/"):
				v.errf(path+".path.value", "must be an absolute path starting with '/' for type %s, got %q", typ, val)
			case strings.Contains(val, "//") || strings.Contains(val, "/./") || strings.Contains(val, "/../") ||
				strings.HasSuffix(val, "/..") || strings.HasSuffix(val, "/.") || strings.ContainsAny(val, "#?"):
				v.errf(path+".path.value", "must be a normalized path without '//', '/./', '/../', '?' or '#', got %q", val)
			}
		case gwv1.PathMatchRegularExpression:
			v.regex(path+".path.value", val)
		default:
			v.errf(path+".path.type", "must be one of Exact, PathPrefix, RegularExpression, got %q", typ)
		}
	}
	seen := map[string]int{}
	for i, h := range m.Headers {
		hp := path + ".headers[" + strconv.Itoa(i) + "]"
		v.headerName(hp+".name", string(h.Name))
		if j, dup := seen[strings.ToLower(string(h.Name))]; dup {
			v.errf(hp+".name", "duplicate header %q (also headers[%d])", h.Name, j)
		}
		seen[strings.ToLower(string(h.Name))] = i
		v.valueMatch(hp, headerType(h.Type), h.Value)
	}
	seenQ := map[string]int{}
	for i, q := range m.QueryParams {
		qp := path + ".queryParams[" + strconv.Itoa(i) + "]"
		if q.Name == "" {
			v.errf(qp+".name", "required")
		}
		if j, dup := seenQ[string(q.Name)]; dup {
			v.errf(qp+".name", "duplicate query parameter %q (also queryParams[%d])", q.Name, j)
		}
		seenQ[string(q.Name)] = i
		typ := "Exact"
		if q.Type != nil {
			typ = string(*q.Type)
		}
		v.valueMatch(qp, typ, q.Value)
	}
	if m.Method != nil {
		v.oneOf(path+".method", string(*m.Method), httpMethods...)
	}
}

func headerType[T ~string](t *T) string {
	if t == nil {
		return "Exact"
	}
	return string(*t)
}

func (v *validator) valueMatch(path, typ, value string) {
	switch typ {
	case "Exact":
	case "RegularExpression":
		v.regex(path+".value", value)
	default:
		v.errf(path+".type", "must be Exact or RegularExpression, got %q", typ)
	}
}

func (v *validator) grpcRoute(s *gwv1.GRPCRouteSpec) {
	v.parentRefs(s.ParentRefs)
	v.hostnames(s.Hostnames)
	for i, r := range s.Rules {
		rp := "spec.rules[" + strconv.Itoa(i) + "]"
		for j, m := range r.Matches {
			mp := rp + ".matches[" + strconv.Itoa(j) + "]"
			if mm := m.Method; mm != nil {
				typ := headerType(mm.Type)
				svc, meth := deref(mm.Service), deref(mm.Method)
				switch typ {
				case "Exact":
					if svc == "" && meth == "" {
						v.errf(mp+".method", "set service, method or both")
					}
					if svc != "" && !grpcNameRE.MatchString(svc) {
						v.errf(mp+".method.service", "must be a fully qualified gRPC service name (letters, digits, '_', '.'), got %q", svc)
					}
					if meth != "" && !grpcMethodRE.MatchString(meth) {
						v.errf(mp+".method.method", "must be a gRPC method name (letters, digits, '_'), got %q", meth)
					}
				case "RegularExpression":
					v.regex(mp+".method.service", svc)
					v.regex(mp+".method.method", meth)
				default:
					v.errf(mp+".method.type", "must be Exact or RegularExpression, got %q", typ)
				}
			}
			seen := map[string]int{}
			for k, h := range m.Headers {
				hp := mp + ".headers[" + strconv.Itoa(k) + "]"
				v.headerName(hp+".name", string(h.Name))
				if j, dup := seen[strings.ToLower(string(h.Name))]; dup {
					v.errf(hp+".name", "duplicate header %q (also headers[%d])", h.Name, j)
				}
				seen[strings.ToLower(string(h.Name))] = k
				v.valueMatch(hp, headerType(h.Type), h.Value)
			}
		}
		v.grpcFilters(rp+".filters", r.Filters, true)
		for j, b := range r.BackendRefs {
			bp := rp + ".backendRefs[" + strconv.Itoa(j) + "]"
			v.backendRef(bp, b.BackendRef)
			v.grpcFilters(bp+".filters", b.Filters, false)
		}
	}
}

var (
	grpcNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*(\.[A-Za-z_][A-Za-z_0-9]*)*$`)
	grpcMethodRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*$`)
)

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (v *validator) tcpRoute(s *gwv1.TCPRouteSpec) {
	v.parentRefs(s.ParentRefs)
	if len(s.Rules) == 0 {
		v.errf("spec.rules", "at least one rule is required")
	}
	for i, r := range s.Rules {
		rp := "spec.rules[" + strconv.Itoa(i) + "]"
		if len(r.BackendRefs) == 0 {
			v.errf(rp+".backendRefs", "at least one backendRef is required")
		}
		for j, b := range r.BackendRefs {
			v.backendRef(rp+".backendRefs["+strconv.Itoa(j)+"]", b)
		}
	}
}

// --- conflicts between HTTPRoutes ---

type matchUse struct {
	route *Object
	path  string // field path of the match
	hosts []string
}

// routeConflicts reports HTTPRoutes attached to the same parent with an
// identical match and overlapping hostnames. At least one of the two routes
// must be in the batch; the error is reported on a batch route.
func (w *world) routeConflicts() []error {
	var keys []Key
	for k := range w.byKey {
		if k.Kind == KindHTTPRoute {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		// batch routes first, so errors land on them
		if w.batch[a] != w.batch[b] {
			return w.batch[a]
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	uses := map[string][]matchUse{}
	var errs []error
	for _, k := range keys {
		o := w.byKey[k]
		spec := o.HTTPRoute()
		if spec == nil {
			continue
		}
		hosts := make([]string, len(spec.Hostnames))
		for i, h := range spec.Hostnames {
			hosts[i] = string(h)
		}
		reported := map[Key]bool{}
		for _, pr := range spec.ParentRefs {
			p := normalizeParent(o.Namespace, pr)
			for ri, r := range spec.Rules {
				matches := r.Matches
				implicit := len(matches) == 0
				if implicit {
					matches = []gwv1.HTTPRouteMatch{{}}
				}
				for mi, m := range matches {
					path := fmt.Sprintf("spec.rules[%d].matches[%d]", ri, mi)
					if implicit {
						path = fmt.Sprintf("spec.rules[%d]", ri)
					}
					mk := p.String() + "\x00" + matchKey(m)
					for _, u := range uses[mk] {
						if u.route == o || !hostsOverlap(u.hosts, hosts) || reported[u.route.Key()] {
							continue
						}
						if !w.batch[k] && !w.batch[u.route.Key()] {
							continue
						}
						reported[u.route.Key()] = true
						target, other, tpath, opath := u.route, o, u.path, path
						if !w.batch[target.Key()] {
							target, other, tpath, opath = o, u.route, path, u.path
						}
						errs = append(errs, objectError(target, &FieldError{Path: tpath, Reason: fmt.Sprintf(
							"conflicts with HTTPRoute %s/%s (%s): both attach to %s with the identical match %s",
							other.Namespace, other.Name, opath, p, describeMatch(m))}))
					}
					uses[mk] = append(uses[mk], matchUse{route: o, path: path, hosts: hosts})
				}
			}
		}
	}
	return errs
}

// matchKey is a canonical form of a match: path type and value, method,
// headers and query parameters (order-insensitive, header names
// case-insensitive).
func matchKey(m gwv1.HTTPRouteMatch) string {
	var b strings.Builder
	typ, val := "PathPrefix", "/"
	if m.Path != nil {
		if m.Path.Type != nil {
			typ = string(*m.Path.Type)
		}
		if m.Path.Value != nil {
			val = *m.Path.Value
		}
	}
	if typ == "PathPrefix" && len(val) > 1 {
		val = strings.TrimSuffix(val, "/")
	}
	b.WriteString(typ + " " + val)
	if m.Method != nil {
		b.WriteString(" method=" + string(*m.Method))
	}
	hs := make([]string, 0, len(m.Headers))
	for _, h := range m.Headers {
		hs = append(hs, strings.ToLower(string(h.Name))+" "+headerType(h.Type)+" "+h.Value)
	}
	sort.Strings(hs)
	for _, h := range hs {
		b.WriteString(" header=" + h)
	}
	qs := make([]string, 0, len(m.QueryParams))
	for _, q := range m.QueryParams {
		qs = append(qs, string(q.Name)+" "+headerType(q.Type)+" "+q.Value)
	}
	sort.Strings(qs)
	for _, q := range qs {
		b.WriteString(" query=" + q)
	}
	return b.String()
}

func describeMatch(m gwv1.HTTPRouteMatch) string {
	k := matchKey(m)
	typ, rest, _ := strings.Cut(k, " ")
	val, more, _ := strings.Cut(rest, " ")
	s := typ + " " + strconv.Quote(val)
	if more != "" {
		s += " " + more
	}
	return s
}

func hostsOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if x == y || wildcardMatch(x, y) || wildcardMatch(y, x) {
				return true
			}
		}
	}
	return false
}

// wildcardMatch reports whether pattern "*.example.com" covers host.
func wildcardMatch(pattern, host string) bool {
	suffix, ok := strings.CutPrefix(pattern, "*")
	return ok && strings.HasSuffix(host, suffix) && len(host) > len(suffix)
}
