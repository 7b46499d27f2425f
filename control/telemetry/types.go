package telemetry

import "time"

// The JSON documents of the hub's HTTP API (docs/observability.md). They
// are plain values; a decoded document may be used from any goroutine.

// Span is one stored span (GET /api/v1/traces/{id}).
type Span struct {
	TraceID      string `json:"traceId"`
	SpanID       string `json:"spanId"`
	ParentSpanID string `json:"parentSpanId,omitempty"`
	Name         string `json:"name"`
	// Kind is SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER or UNSPECIFIED.
	Kind       string    `json:"kind"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	DurationMS float64   `json:"durationMs"`
	// Status is OK, ERROR or UNSET.
	Status        string `json:"status"`
	StatusMessage string `json:"statusMessage,omitempty"`
	// Service is the exporter's resource service.name (the workload);
	// Namespace its service.namespace; Instance its service.instance.id
	// (the proxy's node id).
	Service   string `json:"service"`
	Namespace string `json:"namespace,omitempty"`
	Instance  string `json:"instance,omitempty"`
	// Attributes hold the span's attributes as JSON scalars (arrays and
	// maps as JSON text).
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Trace is one trace's spans, sorted by start time.
type Trace struct {
	TraceID string `json:"traceId"`
	Spans   []Span `json:"spans"`
}

// TraceSummary describes one trace (GET /api/v1/traces).
type TraceSummary struct {
	TraceID string `json:"traceId"`
	// Root is the name of the root span (the span without a parent, else
	// the earliest); RootService its service.
	Root        string    `json:"root"`
	RootService string    `json:"rootService"`
	Start       time.Time `json:"start"`
	DurationMS  float64   `json:"durationMs"`
	Spans       int       `json:"spans"`
	// Errors counts the spans whose status is ERROR.
	Errors   int      `json:"errors"`
	Services []string `json:"services"`
}

// TraceList answers GET /api/v1/traces: the most recent traces first.
type TraceList struct {
	Traces []TraceSummary `json:"traces"`
}

// Log kinds.
const (
	LogAccess = "access" // a proxy's access record: Body is its JSON object
	LogApp    = "app"    // a line an application wrote
)

// LogRecord is one stored log record (GET /api/v1/logs, one per line).
type LogRecord struct {
	// Seq numbers the records the hub received, from 1; a follower asks
	// for those after the last it saw.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Kind is "access" or "app".
	Kind     string `json:"kind"`
	Severity string `json:"severity,omitempty"`
	// Body is the access record's JSON object (as text) or the line.
	Body      string `json:"body"`
	TraceID   string `json:"traceId,omitempty"`
	SpanID    string `json:"spanId,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Workload  string `json:"workload,omitempty"`
	// Instance is the application instance (app logs) or the proxy's node
	// id (access logs).
	Instance string `json:"instance,omitempty"`
	// Stream is stdout or stderr (app logs).
	Stream string `json:"stream,omitempty"`
}

// Golden are the golden metrics of one workload or edge over one interval.
// The rate-derived fields are nil when no request ended in the interval.
type Golden struct {
	// Requests counts the requests that ended in the interval.
	Requests float64 `json:"requests"`
	// RPS is requests per second.
	RPS float64 `json:"rps"`
	// SuccessRate is the share of responses that were not 5xx (0 to 1).
	SuccessRate *float64 `json:"successRate,omitempty"`
	// P50MS, P90MS and P99MS are latency percentiles in milliseconds,
	// interpolated within the histogram buckets.
	P50MS *float64 `json:"p50Ms,omitempty"`
	P90MS *float64 `json:"p90Ms,omitempty"`
	P99MS *float64 `json:"p99Ms,omitempty"`
}

// WorkloadStats are a workload's golden metrics as its own (destination)
// sidecars report them.
type WorkloadStats struct {
	Namespace string `json:"namespace"`
	Workload  string `json:"workload"`
	Golden
}

// EdgeStats are the golden metrics of the calls from a source workload to
// a destination service, as the source's sidecars (or a gateway) report
// them.
type EdgeStats struct {
	SourceNamespace string `json:"sourceNamespace"`
	SourceWorkload  string `json:"sourceWorkload"`
	// DestinationService is "<service>.<namespace>".
	DestinationService   string `json:"destinationService"`
	DestinationNamespace string `json:"destinationNamespace"`
	Golden
}

// Top answers GET /api/v1/top: the last interval's metrics.
type Top struct {
	// Time is the end of the interval (the last scrape); zero before the
	// second scrape.
	Time      time.Time       `json:"time,omitzero"`
	Workloads []WorkloadStats `json:"workloads"`
	Edges     []EdgeStats     `json:"edges"`
}

// Point is one interval of a time series.
type Point struct {
	Time time.Time `json:"time"`
	Golden
}

// Series is the history of one workload ("workload") or edge ("edge").
type Series struct {
	Kind string `json:"kind"`
	// Workload series: Namespace, Workload. Edge series: the Source* and
	// Destination* fields.
	Namespace            string  `json:"namespace,omitempty"`
	Workload             string  `json:"workload,omitempty"`
	SourceNamespace      string  `json:"sourceNamespace,omitempty"`
	SourceWorkload       string  `json:"sourceWorkload,omitempty"`
	DestinationService   string  `json:"destinationService,omitempty"`
	DestinationNamespace string  `json:"destinationNamespace,omitempty"`
	Points               []Point `json:"points"`
}

// MetricsResponse answers GET /api/v1/metrics.
type MetricsResponse struct {
	// Interval is the resolution of the points ("5s").
	Interval string   `json:"interval"`
	Series   []Series `json:"series"`
}

// TopologyNode is a workload or gateway.
type TopologyNode struct {
	// ID is "<namespace>/<workload>".
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	Workload  string `json:"workload"`
	// Kind is "workload" or "gateway".
	Kind string `json:"kind"`
	// Proxies counts its connected proxies.
	Proxies int `json:"proxies"`
	// Golden holds its inbound traffic (destination reporter).
	Golden
}

// TopologyEdge is the traffic from one workload to another, as the source
// reports it.
type TopologyEdge struct {
	Source string `json:"source"` // node ID
	Target string `json:"target"` // node ID
	// Service is the destination service ("<service>.<namespace>").
	Service string `json:"service"`
	Golden
}

// Topology answers GET /api/v1/topology.
type Topology struct {
	Time  time.Time      `json:"time,omitzero"`
	Nodes []TopologyNode `json:"nodes"`
	Edges []TopologyEdge `json:"edges"`
}

// TargetGroup is one Prometheus HTTP service discovery target group
// (GET /api/v1/prometheus/targets answers a list of them).
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}
