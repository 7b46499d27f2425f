package resource

import (
	"math"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
)

func protocolNames() []string {
	out := make([]string, len(v1alpha1.Protocols))
	for i, p := range v1alpha1.Protocols {
		out[i] = string(p)
	}
	return out
}

func (v *validator) service(s *v1alpha1.ServiceSpec) {
	if len(s.Ports) == 0 {
		v.errf("spec.ports", "at least one port is required")
	}
	names := map[string]int{}
	numbers := map[int32]int{}
	for i, p := range s.Ports {
		path := "spec.ports[" + strconv.Itoa(i) + "]"
		if p.Name == "" && len(s.Ports) > 1 {
			v.errf(path+".name", "required when the Service has more than one port")
		} else if p.Name != "" && v.dnsLabel(path+".name", p.Name, false) {
			if j, dup := names[p.Name]; dup {
				v.errf(path+".name", "duplicate port name %q (also spec.ports[%d])", p.Name, j)
			}
			names[p.Name] = i
		}
		v.port(path+".port", p.Port, true)
		if j, dup := numbers[p.Port]; dup && p.Port != 0 {
			v.errf(path+".port", "duplicate port %d (also spec.ports[%d])", p.Port, j)
		}
		numbers[p.Port] = i
		v.port(path+".targetPort", p.TargetPort, false)
		if p.Protocol != "" && !p.Protocol.Valid() {
			v.errf(path+".protocol", "must be one of %s, got %q", strings.Join(protocolNames(), ", "), p.Protocol)
		}
	}
	if s.Visibility != "" && !s.Visibility.Valid() {
		vs := make([]string, len(v1alpha1.Visibilities))
		for i, x := range v1alpha1.Visibilities {
			vs[i] = string(x)
		}
		v.errf("spec.visibility", "must be one of %s, got %q", strings.Join(vs, ", "), s.Visibility)
	}
	v.labels("spec.selector", s.Selector)
	if s.Workload != v.obj.Name { // the default repeats the name, checked already
		v.dnsLabel("spec.workload", s.Workload, false)
	}
}

func (v *validator) workload(s *v1alpha1.WorkloadSpec) {
	if len(s.Command) > 0 && s.Command[0] == "" {
		v.errf("spec.command[0]", "the program must not be empty")
	}
	for i, a := range s.Command {
		if strings.ContainsRune(a, 0) {
			v.errf("spec.command["+strconv.Itoa(i)+"]", "must not contain NUL")
		}
	}
	if b := s.Build; b != nil {
		switch {
		case b.Go == "":
			v.errf("spec.build.go", "required: the Go package to build (e.g. \"./cmd/app\")")
		case strings.ContainsRune(b.Go, 0) || strings.HasPrefix(b.Go, "-"):
			v.errf("spec.build.go", "must be a Go package path, got %q", b.Go)
		}
		if len(s.Command) > 0 {
			v.errf("spec.command", "set either command or build, not both (the built binary is the program; put its arguments in args)")
		}
	}
	for i, a := range s.Args {
		if strings.ContainsRune(a, 0) {
			v.errf("spec.args["+strconv.Itoa(i)+"]", "must not contain NUL")
		}
	}
	if len(s.Args) > 0 && len(s.Command) == 0 && s.Build == nil {
		v.errf("spec.args", "needs command or build: there is no program to pass arguments to")
	}
	envNames := map[string]int{}
	for i, e := range s.Env {
		path := "spec.env[" + strconv.Itoa(i) + "].name"
		switch {
		case e.Name == "":
			v.errf(path, "required")
		case strings.ContainsAny(e.Name, "=\x00"):
			v.errf(path, "must not contain '=' or NUL, got %q", e.Name)
		}
		if j, dup := envNames[e.Name]; dup && e.Name != "" {
			v.errf(path, "duplicate variable %q (also spec.env[%d])", e.Name, j)
		}
		envNames[e.Name] = i
		if strings.ContainsRune(e.Value, 0) {
			v.errf("spec.env["+strconv.Itoa(i)+"].value", "must not contain NUL")
		}
	}
	if s.Replicas != nil && (*s.Replicas < 0 || *s.Replicas > 10000) {
		v.errf("spec.replicas", "must be in 0-10000, got %d", *s.Replicas)
	}
	if s.Service != v.obj.Name {
		v.dnsLabel("spec.service", s.Service, false)
	}
	if s.Protocol != "" && !s.Protocol.Valid() {
		v.errf("spec.protocol", "must be one of %s, got %q", strings.Join(protocolNames(), ", "), s.Protocol)
	}
	v.portRef("spec.port", s.Port)
	v.dnsLabel("spec.serviceAccount", s.ServiceAccount, false)
	if r := s.Readiness; r != nil {
		switch {
		case r.HTTPPath != "" && r.TCP:
			v.errf("spec.readiness", "set either httpPath or tcp, not both")
		case r.HTTPPath == "" && !r.TCP:
			v.errf("spec.readiness", "set httpPath or tcp: true")
		case r.HTTPPath != "" && !strings.HasPrefix(r.HTTPPath, "/"):
			v.errf("spec.readiness.httpPath", "must start with '/', got %q", r.HTTPPath)
		}
		v.positive("spec.readiness.period", r.Period)
		if r.FailureThreshold < 0 {
			v.errf("spec.readiness.failureThreshold", "must be >= 1, got %d", r.FailureThreshold)
		}
	}
	ports := map[int32]int{}
	for i, u := range s.Upstreams {
		path := "spec.upstreams[" + strconv.Itoa(i) + "]"
		ok := v.dnsLabel(path+".service", u.Service, true)
		v.dnsLabel(path+".namespace", u.Namespace, false)
		v.port(path+".port", u.Port, true)
		if j, dup := ports[u.Port]; dup && u.Port != 0 {
			v.errf(path+".port", "local port %d is already used by spec.upstreams[%d]", u.Port, j)
		}
		ports[u.Port] = i
		v.portRef(path+".servicePort", u.ServicePort)
		if ok {
			ns := u.Namespace
			if ns == "" {
				ns = v.obj.Namespace
			}
			var num int32
			if u.ServicePort != nil && u.ServicePort.Type == intstr.Int {
				num = u.ServicePort.IntVal
			}
			v.serviceRef(path+".service", ns, u.Service, num)
		}
	}
	v.labels("spec.labels", s.Labels)
	if dnsLabelRE.MatchString(s.Service) && v.w.get(KindService, v.obj.Namespace, s.Service) == nil {
		v.warnf("spec.service", "Service %s/%s not found", v.obj.Namespace, s.Service)
	}
}

// portRef checks a port given by name or number.
func (v *validator) portRef(path string, p *intstr.IntOrString) {
	if p == nil {
		return
	}
	if p.Type == intstr.Int {
		v.port(path, p.IntVal, true)
		return
	}
	v.dnsLabel(path, p.StrVal, true)
}

func (v *validator) backendPolicy(s *v1alpha1.BackendPolicySpec) {
	t := s.TargetRef
	v.oneOf("spec.targetRef.group", t.Group, v1alpha1.GroupName, "", "core")
	v.oneOf("spec.targetRef.kind", t.Kind, v1alpha1.KindService)
	if v.dnsLabel("spec.targetRef.name", t.Name, true) {
		v.serviceRef("spec.targetRef", v.obj.Namespace, t.Name, 0)
		for k, o := range v.w.byKey {
			if k.Kind == KindBackendPolicy && k.Namespace == v.obj.Namespace && k.Name != v.obj.Name {
				if bp := o.BackendPolicy(); bp != nil && bp.TargetRef.Name == t.Name {
					v.warnf("spec.targetRef", "BackendPolicy %s/%s also targets Service %s", k.Namespace, k.Name, t.Name)
				}
			}
		}
	}
	if lb := s.LoadBalancer; lb != nil {
		if lb.Policy != "" && !lb.Policy.Valid() {
			ps := make([]string, len(v1alpha1.LBPolicies))
			for i, p := range v1alpha1.LBPolicies {
				ps[i] = string(p)
			}
			v.errf("spec.loadBalancer.policy", "must be one of %s, got %q", strings.Join(ps, ", "), lb.Policy)
		}
		if ss := lb.SlowStart; ss != nil {
			switch lb.Policy {
			case "", v1alpha1.LBPeakEWMA, v1alpha1.LBRoundRobin, v1alpha1.LBLeastRequest:
			default:
				v.errf("spec.loadBalancer.slowStart", "only with policy peak_ewma, round_robin or least_request, not %s", lb.Policy)
			}
			if ss.Window.Duration <= 0 {
				v.errf("spec.loadBalancer.slowStart.window", "required: how long an instance ramps up, e.g. \"30s\"")
			}
			if a := ss.Aggression; a != nil && (!(*a > 0) || math.IsInf(*a, 0)) {
				v.errf("spec.loadBalancer.slowStart.aggression", "must be a number > 0, got %v", *a)
			}
			v.inRange("spec.loadBalancer.slowStart.minWeightPercent", ss.MinWeightPercent, 0, 100)
		}
		switch {
		case lb.Policy.IsHash() && lb.Hash == nil:
			v.errf("spec.loadBalancer.hash", "required for policy %s", lb.Policy)
		case !lb.Policy.IsHash() && lb.Hash != nil:
			v.errf("spec.loadBalancer.hash", "only allowed with policy ring_hash or maglev")
		case lb.Hash != nil:
			n := 0
			if lb.Hash.Header != "" {
				n++
				v.headerName("spec.loadBalancer.hash.header", lb.Hash.Header)
			}
			if lb.Hash.Cookie != "" {
				n++
				v.headerName("spec.loadBalancer.hash.cookie", lb.Hash.Cookie)
			}
			if lb.Hash.SourceIP {
				n++
			}
			if n != 1 {
				v.errf("spec.loadBalancer.hash", "set exactly one of header, cookie, sourceIP (got %d)", n)
			}
		}
	}
	v.positive("spec.connectTimeout", s.ConnectTimeout)
	v.positive("spec.requestTimeout", s.RequestTimeout)
	v.positive("spec.idleTimeout", s.IdleTimeout)
	if r := s.Retries; r != nil {
		if r.Attempts != nil && (*r.Attempts < 0 || *r.Attempts > 10) {
			v.errf("spec.retries.attempts", "must be in 0-10, got %d", *r.Attempts)
		}
		v.positive("spec.retries.perTryTimeout", r.PerTryTimeout)
		for i, c := range r.RetryOn {
			v.oneOf("spec.retries.retryOn["+strconv.Itoa(i)+"]", c, v1alpha1.RetryConditions...)
		}
		if b := r.Backoff; b != nil {
			v.positive("spec.retries.backoff.base", b.Base)
			v.positive("spec.retries.backoff.max", b.Max)
			if b.Base.Duration > 0 && b.Max.Duration > 0 && b.Max.Duration < b.Base.Duration {
				v.errf("spec.retries.backoff.max", "must be >= base (%s), got %s", b.Base.Duration, b.Max.Duration)
			}
		}
	}
	if c := s.ConnectionLimits; c != nil {
		for _, f := range []struct {
			name string
			val  *int32
			min  int32
		}{
			{"maxConnections", c.MaxConnections, 1},
			{"maxPendingRequests", c.MaxPendingRequests, 1},
			{"maxRequests", c.MaxRequests, 1},
			{"maxRetries", c.MaxRetries, 0},
		} {
			v.atLeast("spec.connectionLimits."+f.name, f.val, f.min)
		}
	}
	if b := s.RetryBudget; b != nil {
		v.inRange("spec.retryBudget.percent", b.Percent, 0, 100)
		v.atLeast("spec.retryBudget.minRetryConcurrency", b.MinRetryConcurrency, 0)
		if c := s.ConnectionLimits; c != nil && c.MaxRetries != nil {
			v.errf("spec.retryBudget", "set either retryBudget or connectionLimits.maxRetries, not both: the budget replaces the fixed limit")
		}
	}
	if o := s.OutlierDetection; o != nil {
		v.outlierDetection("spec.outlierDetection", o)
	}
	if h := s.HealthCheck; h != nil {
		v.healthCheck("spec.healthCheck", h)
	}
}

func (v *validator) outlierDetection(path string, o *v1alpha1.OutlierDetection) {
	v.atLeast(path+".consecutive5xx", o.Consecutive5xx, 0)
	v.atLeast(path+".consecutiveGatewayErrors", o.ConsecutiveGatewayErrors, 0)
	v.atLeast(path+".consecutiveLocalOriginFailures", o.ConsecutiveLocalOriginFailures, 0)
	v.positive(path+".interval", o.Interval)
	v.positive(path+".baseEjectionTime", o.BaseEjectionTime)
	v.positive(path+".maxEjectionTime", o.MaxEjectionTime)
	if b, m := o.BaseEjectionTime.Duration, o.MaxEjectionTime.Duration; b > 0 && m > 0 && m < b {
		v.errf(path+".maxEjectionTime", "must be >= baseEjectionTime (%s), got %s", b, m)
	}
	v.inRange(path+".maxEjectionPercent", o.MaxEjectionPercent, 1, 100)
	v.inRange(path+".panicThreshold", o.PanicThreshold, 0, 100)
	if sr := o.SuccessRate; sr != nil {
		v.atLeast(path+".successRate.minimumHosts", sr.MinimumHosts, 1)
		v.atLeast(path+".successRate.requestVolume", sr.RequestVolume, 1)
		v.atLeast(path+".successRate.stdevFactor", sr.StdevFactor, 1)
	}
	if fp := o.FailurePercentage; fp != nil {
		v.inRange(path+".failurePercentage.threshold", fp.Threshold, 1, 100)
		v.atLeast(path+".failurePercentage.minimumHosts", fp.MinimumHosts, 1)
		v.atLeast(path+".failurePercentage.requestVolume", fp.RequestVolume, 1)
	}
	on := func(p *int32) bool { return p != nil && *p > 0 }
	if !on(o.Consecutive5xx) && !on(o.ConsecutiveGatewayErrors) && !on(o.ConsecutiveLocalOriginFailures) &&
		o.SuccessRate == nil && o.FailurePercentage == nil {
		v.errf(path, "no detector is on: set consecutive5xx, consecutiveGatewayErrors or consecutiveLocalOriginFailures above 0, or successRate or failurePercentage")
	}
}

func (v *validator) healthCheck(path string, h *v1alpha1.HealthCheck) {
	n := 0
	if h.HTTP != nil {
		n++
		switch p := h.HTTP.Path; {
		case p == "":
			v.errf(path+".http.path", "required, e.g. \"/healthz\"")
		case !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t\r\n#"):
			v.errf(path+".http.path", "must be a path starting with '/' without spaces or '#', got %q", p)
		}
		seen := map[int32]int{}
		for i, c := range h.HTTP.ExpectedStatuses {
			sp := path + ".http.expectedStatuses[" + strconv.Itoa(i) + "]"
			if c < 100 || c > 599 {
				v.errf(sp, "must be an HTTP status in 100-599, got %d", c)
			}
			if j, dup := seen[c]; dup {
				v.errf(sp, "duplicate status %d (also expectedStatuses[%d])", c, j)
			}
			seen[c] = i
		}
	}
	if h.GRPC != nil {
		n++
		if s := h.GRPC.Service; s != "" && !grpcNameRE.MatchString(s) {
			v.errf(path+".grpc.service", "must be a fully qualified gRPC service name (letters, digits, '_', '.'), got %q", s)
		}
	}
	if h.TCP {
		n++
	}
	switch {
	case n == 0:
		v.errf(path, "set one of http, grpc, tcp: true")
	case n > 1:
		v.errf(path, "set exactly one of http, grpc, tcp (got %d)", n)
	}
	v.positive(path+".interval", h.Interval)
	v.positive(path+".timeout", h.Timeout)
	if i, t := h.Interval.Duration, h.Timeout.Duration; i > 0 && t > i {
		v.errf(path+".timeout", "must not be longer than interval (%s), got %s", i, t)
	}
	v.atLeast(path+".unhealthyThreshold", h.UnhealthyThreshold, 1)
	v.atLeast(path+".healthyThreshold", h.HealthyThreshold, 1)
}

func (v *validator) faultInjection(s *v1alpha1.FaultInjectionSpec) {
	if s.Delay == nil && s.Abort == nil {
		v.errf("spec", "set delay, abort or both")
	}
	if d := s.Delay; d != nil {
		if d.FixedDelay.Duration == 0 {
			v.errf("spec.delay.fixedDelay", "required: how long to hold requests, e.g. \"500ms\"")
		}
		v.positive("spec.delay.fixedDelay", d.FixedDelay)
		v.inRange("spec.delay.percent", d.Percent, 0, 100)
	}
	if a := s.Abort; a != nil {
		switch {
		case a.HTTPStatus != nil && a.GRPCStatus != nil:
			v.errf("spec.abort", "set either httpStatus or grpcStatus, not both")
		case a.HTTPStatus == nil && a.GRPCStatus == nil:
			v.errf("spec.abort", "set httpStatus or grpcStatus")
		}
		v.inRange("spec.abort.httpStatus", a.HTTPStatus, 200, 599)
		v.inRange("spec.abort.grpcStatus", a.GRPCStatus, 1, 16)
		v.inRange("spec.abort.percent", a.Percent, 0, 100)
	}
	seen := map[string]int{}
	for i, h := range s.Headers {
		hp := "spec.headers[" + strconv.Itoa(i) + "]"
		if h.Name == "" {
			v.errf(hp+".name", "required")
		} else {
			v.headerName(hp+".name", h.Name)
		}
		if j, dup := seen[strings.ToLower(h.Name)]; dup && h.Name != "" {
			v.errf(hp+".name", "duplicate header %q (also headers[%d])", h.Name, j)
		}
		seen[strings.ToLower(h.Name)] = i
		switch {
		case h.Value != "" && h.Present:
			v.errf(hp, "set either value or present: true, not both")
		case h.Value == "" && !h.Present:
			v.errf(hp, "set value (an exact match) or present: true")
		}
	}
}

// inRange checks an optional integer against [lo, hi].
func (v *validator) inRange(path string, p *int32, lo, hi int32) {
	if p != nil && (*p < lo || *p > hi) {
		v.errf(path, "must be in %d-%d, got %d", lo, hi, *p)
	}
}

// atLeast checks an optional integer against a lower bound.
func (v *validator) atLeast(path string, p *int32, lo int32) {
	if p != nil && *p < lo {
		v.errf(path, "must be >= %d, got %d", lo, *p)
	}
}
