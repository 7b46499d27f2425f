// Package otlpexport ships the proxy's spans and access records to the
// control plane's telemetry hub over OTLP/gRPC
// (opentelemetry.proto.collector.trace.v1.TraceService/Export and
// ...logs.v1.LogsService/Export), as docs/observability.md fixes: batches of
// up to 512 records or every second, a bounded queue per signal (8192)
// whose overflow is dropped and counted, one retry of a failed batch, and
// never a blocked request.
package otlpexport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	logscol "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	tracecol "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Signal names a kind of telemetry record.
type Signal int

const (
	Traces Signal = iota
	Logs
)

func (s Signal) String() string {
	if s == Logs {
		return "logs"
	}
	return "traces"
}

// Resource describes the process the records come from; it becomes the
// OTLP resource attributes service.name, service.namespace,
// service.instance.id and weft.role. Empty values are left out.
type Resource struct {
	ServiceName string // the workload
	Namespace   string
	InstanceID  string // the xDS node id
	Role        string // sidecar or gateway
}

// Defaults of Config.
const (
	DefaultFlushInterval = time.Second
	DefaultBatchSize     = 512
	DefaultQueueSize     = 8192
	DefaultTimeout       = 5 * time.Second
)

// Config configures an Exporter.
type Config struct {
	// Conn reaches the collector (the control plane's xDS port); required.
	// The exporter does not close it.
	Conn grpc.ClientConnInterface
	// Token is sent as "authorization: Bearer <token>"; none when empty.
	Token string
	// Resource is attached to every export.
	Resource Resource
	// FlushInterval sends a partial batch this long after the last send;
	// default 1s.
	FlushInterval time.Duration
	// BatchSize sends a batch as soon as it holds this many records;
	// default 512.
	BatchSize int
	// QueueSize bounds the records waiting per signal; beyond it records
	// are dropped and counted. Default 8192.
	QueueSize int
	// Timeout bounds one Export call; default 5s.
	Timeout time.Duration
	// Ticker returns the flush ticks and a function that stops them;
	// default a time.Ticker. Tests pass a channel they control.
	Ticker func(d time.Duration) (<-chan time.Time, func())
	// Logger receives export failures; default slog.Default().
	Logger *slog.Logger
}

// Exporter batches and sends spans and log records. ExportSpan and
// ExportLog are safe for concurrent use and never block; Run sends, on
// its caller's goroutine.
type Exporter struct {
	cfg    Config
	log    *slog.Logger
	res    *resourcepb.Resource
	traces tracecol.TraceServiceClient
	logs   logscol.LogsServiceClient
	spanq  chan *tracepb.Span
	logq   chan *logspb.LogRecord

	dropped [2]atomic.Uint64
	sent    [2]atomic.Uint64
	failed  [2]atomic.Uint64 // failed Export calls (each retried once)
	failing [2]atomic.Bool   // the last batch failed: further failures log at debug level
}

// New returns an exporter; nothing is sent until Run.
func New(cfg Config) (*Exporter, error) {
	if cfg.Conn == nil {
		return nil, errors.New("otlpexport: Conn is required")
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Ticker == nil {
		cfg.Ticker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Exporter{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "otlpexport"),
		res:    resource(cfg.Resource),
		traces: tracecol.NewTraceServiceClient(cfg.Conn),
		logs:   logscol.NewLogsServiceClient(cfg.Conn),
		spanq:  make(chan *tracepb.Span, cfg.QueueSize),
		logq:   make(chan *logspb.LogRecord, cfg.QueueSize),
	}, nil
}

func resource(r Resource) *resourcepb.Resource {
	res := &resourcepb.Resource{}
	for _, kv := range [][2]string{
		{"service.name", r.ServiceName},
		{"service.namespace", r.Namespace},
		{"service.instance.id", r.InstanceID},
		{"weft.role", r.Role},
	} {
		if kv[1] != "" {
			res.Attributes = append(res.Attributes, &commonpb.KeyValue{Key: kv[0], Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: kv[1]}}})
		}
	}
	return res
}

// ExportSpan queues a span; it is dropped (and counted) when the queue is
// full. The exporter owns s afterwards.
func (e *Exporter) ExportSpan(s *tracepb.Span) {
	select {
	case e.spanq <- s:
	default:
		e.dropped[Traces].Add(1)
	}
}

// ExportLog queues a log record, as ExportSpan.
func (e *Exporter) ExportLog(r *logspb.LogRecord) {
	select {
	case e.logq <- r:
	default:
		e.dropped[Logs].Add(1)
	}
}

// Dropped reports the records of a signal dropped so far: queue overflow
// and batches that failed twice.
func (e *Exporter) Dropped(s Signal) uint64 { return e.dropped[s].Load() }

// Sent reports the records of a signal the collector accepted.
func (e *Exporter) Sent(s Signal) uint64 { return e.sent[s].Load() }

// WritePrometheus writes weft_telemetry_dropped_total{signal} and
// weft_telemetry_sent_total{signal}.
func (e *Exporter) WritePrometheus(w io.Writer) error {
	_, err := fmt.Fprintf(w, "# TYPE weft_telemetry_dropped_total counter\n"+
		"weft_telemetry_dropped_total{signal=\"logs\"} %d\nweft_telemetry_dropped_total{signal=\"traces\"} %d\n"+
		"# TYPE weft_telemetry_sent_total counter\n"+
		"weft_telemetry_sent_total{signal=\"logs\"} %d\nweft_telemetry_sent_total{signal=\"traces\"} %d\n",
		e.Dropped(Logs), e.Dropped(Traces), e.Sent(Logs), e.Sent(Traces))
	return err
}

// Run collects queued records into batches and sends them until ctx is
// done; then it sends what is queued (within Config.Timeout) and returns.
// Call it once.
func (e *Exporter) Run(ctx context.Context) {
	tick, stop := e.cfg.Ticker(e.cfg.FlushInterval)
	defer stop()
	var spans []*tracepb.Span
	var logs []*logspb.LogRecord
	addSpan := func(ctx context.Context, s *tracepb.Span) {
		if spans = append(spans, s); len(spans) >= e.cfg.BatchSize {
			e.sendSpans(ctx, spans)
			spans = nil
		}
	}
	addLog := func(ctx context.Context, l *logspb.LogRecord) {
		if logs = append(logs, l); len(logs) >= e.cfg.BatchSize {
			e.sendLogs(ctx, logs)
			logs = nil
		}
	}
	// flush takes what is queued now and sends everything collected.
	flush := func(ctx context.Context) {
		for {
			select {
			case s := <-e.spanq:
				addSpan(ctx, s)
				continue
			case l := <-e.logq:
				addLog(ctx, l)
				continue
			default:
			}
			break
		}
		if len(spans) > 0 {
			e.sendSpans(ctx, spans)
			spans = nil
		}
		if len(logs) > 0 {
			e.sendLogs(ctx, logs)
			logs = nil
		}
	}
	for {
		select {
		case s := <-e.spanq:
			addSpan(ctx, s)
		case l := <-e.logq:
			addLog(ctx, l)
		case <-tick:
			flush(ctx)
		case <-ctx.Done():
			flush(ctx)
			return
		}
	}
}

func (e *Exporter) sendSpans(ctx context.Context, spans []*tracepb.Span) {
	req := &tracecol.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   e.res,
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: scope, Spans: spans}},
	}}}
	e.send(ctx, Traces, len(spans), func(ctx context.Context) error {
		resp, err := e.traces.Export(ctx, req)
		if err == nil {
			e.dropped[Traces].Add(uint64(resp.GetPartialSuccess().GetRejectedSpans()))
		}
		return err
	})
}

func (e *Exporter) sendLogs(ctx context.Context, logs []*logspb.LogRecord) {
	req := &logscol.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  e.res,
		ScopeLogs: []*logspb.ScopeLogs{{Scope: scope, LogRecords: logs}},
	}}}
	e.send(ctx, Logs, len(logs), func(ctx context.Context) error {
		resp, err := e.logs.Export(ctx, req)
		if err == nil {
			e.dropped[Logs].Add(uint64(resp.GetPartialSuccess().GetRejectedLogRecords()))
		}
		return err
	})
}

var scope = &commonpb.InstrumentationScope{Name: "weft-proxy"}

// send makes one export call, and one retry when it fails; a batch that
// fails twice is dropped and counted. A call in flight is not cancelled
// with Run's context: each is bounded by Config.Timeout.
func (e *Exporter) send(ctx context.Context, sig Signal, n int, call func(context.Context) error) {
	ctx = context.WithoutCancel(ctx)
	if e.cfg.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.cfg.Token)
	}
	var err error
	for try := 0; try < 2; try++ {
		cctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
		err = call(cctx)
		cancel()
		if err == nil {
			e.sent[sig].Add(uint64(n))
			if e.failing[sig].Swap(false) {
				e.log.Info("export recovered", "signal", sig.String())
			}
			return
		}
		e.failed[sig].Add(1)
	}
	e.dropped[sig].Add(uint64(n))
	lvl := slog.LevelWarn
	if e.failing[sig].Swap(true) {
		lvl = slog.LevelDebug // said once until it recovers
	}
	e.log.Log(ctx, lvl, "export failed; batch dropped", "signal", sig.String(), "records", n, "err", err)
}
