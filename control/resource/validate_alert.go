package resource

import (
	"math"
	"net/url"
	"slices"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
)

func (v *validator) alertRule(s *v1alpha1.AlertRuleSpec) {
	t := s.Target
	set := 0
	if t.Service != "" {
		set++
		v.dnsLabel("spec.target.service", t.Service, true)
	}
	if t.Workload != "" {
		set++
		v.dnsLabel("spec.target.workload", t.Workload, true)
	}
	if e := t.Edge; e != nil {
		set++
		v.dnsLabel("spec.target.edge.from", e.From, true)
		v.dnsLabel("spec.target.edge.to", e.To, true)
	}
	if set != 1 {
		v.errf("spec.target", "set exactly one of service, workload and edge, got %d", set)
	}
	if !slices.Contains(v1alpha1.AlertMetrics, s.Metric) {
		v.errf("spec.metric", "must be one of %v, got %q", v1alpha1.AlertMetrics, s.Metric)
	}
	if s.Op != v1alpha1.AlertBelow && s.Op != v1alpha1.AlertAbove {
		v.errf("spec.op", `must be "<" or ">", got %q`, s.Op)
	}
	switch {
	case math.IsNaN(s.Threshold) || math.IsInf(s.Threshold, 0) || s.Threshold < 0:
		v.errf("spec.threshold", "must be a finite number >= 0, got %v", s.Threshold)
	case s.Metric == v1alpha1.AlertSuccessRate && s.Threshold > 1:
		v.errf("spec.threshold", "successRate is a ratio in 0-1 (0.99 for 99%%), got %v", s.Threshold)
	}
	if s.Window.Duration < v1alpha1.MinAlertWindow {
		v.errf("spec.window", "must be at least %s (two scrapes), got %s", v1alpha1.MinAlertWindow, s.Window.Duration)
	}
	if s.For.Duration < 0 {
		v.errf("spec.for", "must not be negative, got %s", s.For.Duration)
	}
	v.atLeast("spec.minRequests", s.MinRequests, 0)
	if s.Severity != "warning" && s.Severity != "critical" {
		v.errf("spec.severity", `must be "warning" or "critical", got %q`, s.Severity)
	}
	if w := s.Webhook; w != nil {
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			v.errf("spec.webhook.url", "required")
		case err != nil:
			v.errf("spec.webhook.url", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			v.errf("spec.webhook.url", "must be an absolute http or https URL, got %q", w.URL)
		}
	}
}
