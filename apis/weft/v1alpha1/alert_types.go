package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AlertRule watches one golden metric of a Service, a Workload or an edge
// (a source workload calling a destination Service) over a sliding window,
// evaluated by the control plane from the metrics it scrapes from the
// proxies. The alert fires when the condition has held for For, and
// resolves when it has not held for For: a value that crosses the
// threshold back and forth inside For changes nothing (no flapping).
// Firing and resolved notifications go to the dashboard, `weft get alerts`
// and, when set, a webhook.
type AlertRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   AlertRuleSpec `json:"spec"`
	Status *Status       `json:"status,omitempty"`
}

// AlertMetric names what a rule watches.
type AlertMetric string

// Alert metrics.
const (
	// AlertSuccessRate is the share of requests not answered 5xx (or a
	// local reply), 0-1.
	AlertSuccessRate AlertMetric = "successRate"
	// AlertRequestRate is requests per second.
	AlertRequestRate AlertMetric = "requestRate"
	// AlertLatencyP50, P90 and P99 are request duration percentiles, in
	// milliseconds.
	AlertLatencyP50 AlertMetric = "latencyP50"
	AlertLatencyP90 AlertMetric = "latencyP90"
	AlertLatencyP99 AlertMetric = "latencyP99"
)

// AlertMetrics lists the valid metrics.
var AlertMetrics = []AlertMetric{AlertSuccessRate, AlertRequestRate, AlertLatencyP50, AlertLatencyP90, AlertLatencyP99}

// AlertOp compares the metric with the threshold.
type AlertOp string

// Comparisons.
const (
	AlertBelow AlertOp = "<"
	AlertAbove AlertOp = ">"
)

// AlertRuleSpec is the desired state of an AlertRule.
type AlertRuleSpec struct {
	// Target is what is watched: exactly one of Service, Workload and
	// Edge, in the rule's namespace.
	Target AlertTarget `json:"target"`
	// Metric watched. Required.
	Metric AlertMetric `json:"metric"`
	// Op is "<" or ">". Default: "<" for successRate, ">" otherwise.
	Op AlertOp `json:"op,omitempty"`
	// Threshold compared with the metric: a ratio for successRate,
	// requests/s for requestRate, milliseconds for latencies.
	Threshold float64 `json:"threshold"`
	// Window over which the metric is computed. Default 1m; at least 10s
	// (two scrapes).
	Window Duration `json:"window,omitzero"`
	// For is how long the condition must hold before the alert fires, and
	// not hold before it resolves. Default 30s.
	For Duration `json:"for,omitzero"`
	// MinRequests: the rule is not evaluated (keeps its state) while the
	// window holds fewer requests, so an idle service does not fire on a
	// success rate of 0/0. Default 10. Not used by requestRate.
	MinRequests *int32 `json:"minRequests,omitempty"`
	// Severity is informational: "warning" (default) or "critical".
	Severity string `json:"severity,omitempty"`
	// Webhook, when set, receives a POST with the alert as JSON on every
	// firing and resolution.
	Webhook *AlertWebhook `json:"webhook,omitempty"`
	// Summary is a human text shown with the alert.
	Summary string `json:"summary,omitempty"`
}

// AlertTarget names what a rule watches.
type AlertTarget struct {
	// Service watched as a destination (every caller).
	Service string `json:"service,omitempty"`
	// Workload watched as a destination.
	Workload string `json:"workload,omitempty"`
	// Edge watches the calls of one workload to one service.
	Edge *AlertEdge `json:"edge,omitempty"`
}

// AlertEdge is a source workload calling a destination Service.
type AlertEdge struct {
	From string `json:"from"` // source workload
	To   string `json:"to"`   // destination Service
}

// AlertWebhook is where notifications are posted.
type AlertWebhook struct {
	// URL (http or https). Required.
	URL string `json:"url"`
}

// Alert rule defaults.
const (
	DefaultAlertWindow      = time.Minute
	DefaultAlertFor         = 30 * time.Second
	DefaultAlertMinRequests = int32(10)
	MinAlertWindow          = 10 * time.Second
)

// SetDefaults fills the documented defaults of the spec in place.
func (s *AlertRuleSpec) SetDefaults() {
	if s.Op == "" {
		s.Op = AlertAbove
		if s.Metric == AlertSuccessRate {
			s.Op = AlertBelow
		}
	}
	if s.Window.Duration == 0 {
		s.Window.Duration = DefaultAlertWindow
	}
	if s.For.Duration == 0 {
		s.For.Duration = DefaultAlertFor
	}
	orDefault(&s.MinRequests, DefaultAlertMinRequests)
	if s.Severity == "" {
		s.Severity = "warning"
	}
}

// SetDefaults fills the spec defaults.
func (a *AlertRule) SetDefaults() { a.Spec.SetDefaults() }
