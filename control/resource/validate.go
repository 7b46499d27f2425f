package resource

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
)

// Lister lists stored objects; the store implements it. namespace "" means
// every namespace.
type Lister interface {
	List(ctx context.Context, kind Kind, namespace string) ([]Object, error)
}

// Validate checks objs (typically from one Decode) on their own and against
// existing (may be nil): field rules per kind, duplicates within objs, and
// conflicting routes. References to objects that exist in neither objs nor
// existing are warnings, not errors. Every error is an *Error with the
// object's source, document, field path and reason; all are returned joined.
// Warnings use the same format.
//
// Validate does not modify objs and is safe for concurrent use.
func Validate(ctx context.Context, objs []Object, existing Lister) (warnings []string, err error) {
	var errs []error
	w := &world{byKey: map[Key]*Object{}, batch: map[Key]bool{}}
	if existing != nil {
		for _, k := range []Kind{KindService, KindGateway, KindHTTPRoute, KindBackendPolicy, KindFaultInjection, KindPeerAuthentication} {
			list, lerr := existing.List(ctx, k, "")
			if lerr != nil {
				return nil, fmt.Errorf("validate: list existing %s: %w", k, lerr)
			}
			for i := range list {
				w.byKey[list[i].Key()] = &list[i]
			}
		}
	}
	seen := map[Key]*Object{}
	for i := range objs {
		o := &objs[i]
		k := o.Key()
		if first, dup := seen[k]; dup {
			errs = append(errs, objectError(o, &FieldError{Reason: fmt.Sprintf("duplicate object: %s is also defined in %s", k, where(first))}))
			continue
		}
		seen[k] = o
		w.byKey[k] = o
		w.batch[k] = true
	}
	for i := range objs {
		o := &objs[i]
		v := &validator{w: w, obj: o}
		v.object()
		errs = append(errs, v.errs.wrap(o)...)
		for _, fe := range v.warns {
			warnings = append(warnings, objectError(o, fe).Error())
		}
	}
	errs = append(errs, w.routeConflicts()...)
	return warnings, join(errs)
}

func where(o *Object) string {
	switch {
	case o.Source != "" && o.Index > 0:
		return fmt.Sprintf("%s document %d", o.Source, o.Index)
	case o.Index > 0:
		return fmt.Sprintf("document %d", o.Index)
	}
	return "the same request"
}

// world is the set of objects as they would be after the apply: the stored
// ones overlaid with the batch.
type world struct {
	byKey map[Key]*Object
	batch map[Key]bool
}

func (w *world) get(k Kind, ns, name string) *Object {
	return w.byKey[Key{Kind: k, Namespace: ns, Name: name}]
}

// validator collects the errors and warnings of one object.
type validator struct {
	w     *world
	obj   *Object
	errs  fieldErrs
	warns fieldErrs
}

func (v *validator) errf(path, format string, args ...any) { v.errs.add(path, format, args...) }
func (v *validator) warnf(path, format string, args ...any) {
	v.warns.add(path, format, args...)
}

func (v *validator) object() {
	o := v.obj
	v.dnsLabel("metadata.name", o.Name, true)
	v.dnsLabel("metadata.namespace", o.Namespace, true)
	v.labels("metadata.labels", o.Labels)
	if o.ResourceVersion != "" {
		if _, err := strconv.ParseUint(o.ResourceVersion, 10, 64); err != nil {
			v.errf("metadata.resourceVersion", "must be a decimal number, got %q", o.ResourceVersion)
		}
	}
	if o.Spec == nil {
		v.errf("spec", "required")
		return
	}
	switch o.Kind {
	case KindService:
		v.service(o.Service())
	case KindWorkload:
		v.workload(o.Workload())
	case KindBackendPolicy:
		v.backendPolicy(o.BackendPolicy())
	case KindFaultInjection:
		v.faultInjection(o.FaultInjection())
	case KindPeerAuthentication:
		v.peerAuthentication(o.PeerAuthentication())
	case KindAlertRule:
		v.alertRule(o.AlertRule())
	case KindAuthorizationPolicy:
		v.authorizationPolicy(o.AuthorizationPolicy())
	case KindRequestAuthentication:
		v.requestAuthentication(o.RequestAuthentication())
	case KindGateway:
		v.gateway(o.Gateway())
	case KindHTTPRoute:
		v.httpRoute(o.HTTPRoute())
	case KindGRPCRoute:
		v.grpcRoute(o.GRPCRoute())
	case KindTCPRoute:
		v.tcpRoute(o.TCPRoute())
	default:
		v.errf("kind", "unknown kind %q", o.Kind)
	}
}

// --- shared field rules ---

var (
	dnsLabelRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	headerNameRE = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
	labelValueRE = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	labelNameRE  = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
)

func (v *validator) dnsLabel(path, s string, required bool) bool {
	switch {
	case s == "":
		if required {
			v.errf(path, "required")
		}
		return false
	case len(s) > maxNameLength:
		v.errf(path, "must be at most %d characters, got %d", maxNameLength, len(s))
		return false
	case !dnsLabelRE.MatchString(s):
		v.errf(path, "must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit), got %q", s)
		return false
	}
	return true
}

// hostname checks a DNS-1123 subdomain, optionally with a leading "*.".
func (v *validator) hostname(path, s string, wildcard bool) {
	h := s
	if wildcard {
		h = strings.TrimPrefix(h, "*.")
	}
	if h == "" || len(s) > maxQualifiedLength {
		v.errf(path, "must be a hostname of 1-%d characters, got %q", maxQualifiedLength, s)
		return
	}
	for _, l := range strings.Split(h, ".") {
		if len(l) > maxNameLength || !dnsLabelRE.MatchString(l) {
			if wildcard {
				v.errf(path, "must be a lower-case DNS name, optionally starting with \"*.\", got %q", s)
			} else {
				v.errf(path, "must be a lower-case DNS name, got %q", s)
			}
			return
		}
	}
	if net4RE.MatchString(h) {
		v.errf(path, "must be a DNS name, not an IP address, got %q", s)
	}
}

var net4RE = regexp.MustCompile(`^[0-9]+(\.[0-9]+){3}$`)

func (v *validator) port(path string, p int32, required bool) {
	if p == 0 && !required {
		return
	}
	if p < 1 || p > 65535 {
		v.errf(path, "must be a port number in 1-65535, got %d", p)
	}
}

func (v *validator) labels(path string, m map[string]string) {
	for _, k := range sortedStringKeys(m) {
		kp := mapPath(path, k)
		name := k
		if prefix, n, ok := strings.Cut(k, "/"); ok {
			name = n
			v.hostnameLike(kp, prefix)
		}
		if len(name) > maxNameLength || !labelNameRE.MatchString(name) {
			v.errf(kp, "invalid label key %q: the name part must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", k)
		}
		if val := m[k]; len(val) > maxNameLength || !labelValueRE.MatchString(val) {
			v.errf(kp, "invalid label value %q: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit", val)
		}
	}
}

func (v *validator) hostnameLike(path, s string) {
	for _, l := range strings.Split(s, ".") {
		if !dnsLabelRE.MatchString(l) {
			v.errf(path, "invalid label key prefix %q: must be a DNS subdomain", s)
			return
		}
	}
}

func (v *validator) headerName(path, s string) {
	if !headerNameRE.MatchString(s) {
		v.errf(path, "must be a valid HTTP header name, got %q", s)
	}
}

func (v *validator) regex(path, s string) {
	if _, err := regexp.Compile(s); err != nil {
		v.errf(path, "invalid regular expression (RE2 syntax): %v", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
}

// positive checks that a set duration is > 0; zero means unset.
func (v *validator) positive(path string, d v1alpha1.Duration) {
	if d.Duration < 0 {
		v.errf(path, "must be > 0, got %s", d.Duration)
	}
}

func (v *validator) oneOf(path, got string, allowed ...string) bool {
	for _, a := range allowed {
		if got == a {
			return true
		}
	}
	v.errf(path, "must be one of %s, got %q", strings.Join(allowed, ", "), got)
	return false
}

// serviceRef warns when a Service is missing, or when it lacks port.
func (v *validator) serviceRef(path, ns, name string, port int32) {
	svc := v.w.get(KindService, ns, name)
	if svc == nil {
		v.warnf(path, "Service %s/%s not found", ns, name)
		return
	}
	spec := svc.Service()
	if port == 0 || spec == nil {
		return
	}
	var ports []string
	for _, p := range spec.Ports {
		if p.Port == port {
			return
		}
		ports = append(ports, strconv.Itoa(int(p.Port)))
	}
	v.warnf(path, "Service %s/%s has no port %d (ports: %s)", ns, name, port, strings.Join(ports, ", "))
}

func sortedStringKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// gatewayDurationRE is GEP-2257's duration format.
var gatewayDurationRE = regexp.MustCompile(`^([0-9]{1,5}(h|m|s|ms)){1,4}$`)

func gatewayDuration(s string) (time.Duration, error) {
	if !gatewayDurationRE.MatchString(s) {
		return 0, fmt.Errorf("invalid duration %q: want up to four number-unit pairs with units h, m, s, ms, e.g. \"1m30s\" or \"250ms\"", s)
	}
	return time.ParseDuration(s)
}
