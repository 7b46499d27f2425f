// Package otlpexport ships the proxy's spans and access records to the
// control plane's telemetry hub (or any collector) over OTLP/gRPC
// (opentelemetry.proto.collector.trace.v1.TraceService/Export and
// ...logs.v1.LogsService/Export) or OTLP/HTTP with binary protobuf (POST
// /v1/traces and /v1/logs), as docs/observability.md fixes: batches of
// up to 512 records or every second, a bounded queue per signal (8192)
// whose overflow is dropped and counted, one retry of a failed batch, and
// never a blocked request.
//
// The exporter takes records already encoded as protobuf (the proxy
// encodes them on its telemetry goroutine, see [Exporter.ExportSpans]) and
// wraps each batch in a pre-encoded resource and scope when it sends it,
// so no OTLP message is built in memory: the bytes go to gRPC through a
// pass-through codec, or are the HTTP request's body, and the collector
// decodes them as the usual
// ExportTraceServiceRequest / ExportLogsServiceRequest.
package otlpexport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	logscol "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	tracecol "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/accessrec"
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
	DefaultBatchSize     = 2048
	DefaultBatchBytes    = 1 << 20
	DefaultQueueSize     = 8192
	DefaultTimeout       = 5 * time.Second
)

// Config configures an Exporter.
type Config struct {
	// Conn reaches the collector over OTLP/gRPC (the control plane's xDS
	// port). The exporter does not close it.
	Conn grpc.ClientConnInterface
	// URL, instead of Conn, sends over OTLP/HTTP with binary protobuf:
	// POST URL/v1/traces and URL/v1/logs (weft control serves them on its
	// API port). unix:///path/to/socket sends the same requests over a
	// Unix socket (weft control's <state-dir>/otlp.sock). One of Conn and
	// URL is required.
	URL string
	// HTTPClient makes the OTLP/HTTP calls; default a client of its own.
	HTTPClient *http.Client
	// Token is sent as "authorization: Bearer <token>"; none when empty.
	Token string
	// Resource is attached to every export.
	Resource Resource
	// FlushInterval sends a partial batch this long after the last send;
	// default 1s.
	FlushInterval time.Duration
	// BatchSize sends a batch as soon as it holds this many records;
	// default 2048.
	BatchSize int
	// BatchBytes sends a batch as soon as its records reach this many
	// bytes, and starts a new one rather than go past it (a record bigger
	// than that goes alone); default 1 MiB, well within the 4 MiB a gRPC
	// server takes by default. Bigger exports cost less per byte
	// (BenchmarkTransport*): this bound, not BatchSize, usually ends a
	// batch of spans.
	BatchBytes int
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

// Exporter batches and sends encoded spans and log records. ExportSpans,
// ExportLogs and DropRecords are safe for concurrent use and never block
// on the network; Run sends, on its caller's goroutine.
type Exporter struct {
	cfg  Config
	log  *slog.Logger
	conn grpc.ClientConnInterface
	// head is the encoded Resource and InstrumentationScope fields put
	// before the records of every batch (see wrap).
	resField, scopeField []byte
	q                    [2]sigQueue
	ready                chan struct{} // a full batch waits; capacity 1

	dropped [2]atomic.Uint64
	sent    [2]atomic.Uint64
	failed  [2]atomic.Uint64 // failed Export calls (each retried once)
	failing [2]atomic.Bool   // the last batch failed: further failures log at debug level
	carry   atomic.Bool      // the collector takes spans carrying access records
}

// New returns an exporter; nothing is sent until Run.
func New(cfg Config) (*Exporter, error) {
	if (cfg.Conn == nil) == (cfg.URL == "") {
		return nil, errors.New("otlpexport: one of Conn (OTLP/gRPC) and URL (OTLP/HTTP) is required")
	}
	if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		switch {
		case err == nil && u.Scheme == "unix" && u.Host == "" && strings.HasPrefix(u.Path, "/"):
			if cfg.HTTPClient == nil {
				cfg.HTTPClient = unixClient(u.Path)
			}
			cfg.URL = "http://localhost" // the socket is the whole address
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return nil, fmt.Errorf("otlpexport: URL %q: want http(s)://host[:port][/path] or unix:///absolute/path", cfg.URL)
		}
		cfg.URL = strings.TrimSuffix(cfg.URL, "/")
		if cfg.HTTPClient == nil {
			cfg.HTTPClient = &http.Client{}
		}
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = DefaultBatchBytes
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
	e := &Exporter{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "otlpexport"),
		conn:       cfg.Conn,
		resField:   protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), resource(cfg.Resource)),
		scopeField: protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), scope),
		ready:      make(chan struct{}, 1),
	}
	// The largest header wrap writes: two tags and two lengths of at most
	// 5 bytes each for ResourceSpans and ScopeSpans (the export request's
	// own field is counted too), plus the fixed fields.
	e.q[Traces].headRoom = 3*(1+binaryMaxVarint32) + len(e.resField) + len(e.scopeField)
	e.q[Logs].headRoom = e.q[Traces].headRoom
	return e, nil
}

const binaryMaxVarint32 = 5

// unixClient is an HTTP client whose connections all go to the Unix
// socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     time.Minute,
	}}
}

// resource encodes the opentelemetry.proto.resource.v1.Resource of r.
func resource(r Resource) []byte {
	b := []byte{}
	for _, kv := range [][2]string{
		{"service.name", r.ServiceName},
		{"service.namespace", r.Namespace},
		{"service.instance.id", r.InstanceID},
		{"weft.role", r.Role},
	} {
		if kv[1] != "" {
			b = AppendStringAttr(b, 1, kv[0], kv[1])
		}
	}
	return b
}

// scope is the encoded InstrumentationScope{Name: "weft-proxy"}.
var scope = protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "weft-proxy")

// AppendStringAttr appends field num holding the KeyValue{key, AnyValue{string_value: v}}
// (opentelemetry.proto.common.v1), as proto.Marshal writes it.
func AppendStringAttr(b []byte, num protowire.Number, key, v string) []byte {
	b = appendKVHead(b, num, key, 1+protowire.SizeBytes(len(v)))
	b = append(b, 0x0a) // string_value
	b = appendLen(b, len(v))
	return append(b, v...)
}

// AppendIntAttr appends field num holding the KeyValue{key, AnyValue{int_value: v}}.
func AppendIntAttr(b []byte, num protowire.Number, key string, v int64) []byte {
	b = appendKVHead(b, num, key, 1+protowire.SizeVarint(uint64(v)))
	b = append(b, 0x18) // int_value
	return protowire.AppendVarint(b, uint64(v))
}

// appendKVHead appends field num's tag and length, the KeyValue's key,
// and the tag and length of its AnyValue of av bytes.
func appendKVHead(b []byte, num protowire.Number, key string, av int) []byte {
	kv := 1 + protowire.SizeBytes(len(key)) + 1 + protowire.SizeBytes(av)
	if kv < 0x80 && num < 16 {
		// Every length fits one byte (the usual case): no varint calls.
		b = append(b, byte(num)<<3|byte(protowire.BytesType), byte(kv), 0x0a, byte(len(key)))
		b = append(b, key...)
		return append(b, 0x12, byte(av))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kv))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(av))
}

// appendLen appends a length, in one byte when it fits.
func appendLen(b []byte, n int) []byte {
	if n < 0x80 {
		return append(b, byte(n))
	}
	return protowire.AppendVarint(b, uint64(n))
}

// ExportSpans queues n encoded spans: enc is n fields 2 of
// opentelemetry.proto.trace.v1.ScopeSpans (each a tag and a
// length-delimited Span), that is the encoding of a ScopeSpans that holds
// only spans. The records are copied; the caller keeps enc. Records
// beyond the queue bound are dropped and counted. It returns an error,
// and queues nothing, when enc does not hold n such fields.
//
// With records, each span carries its request's access record: the spans
// are counted as log records too (sent, dropped) in the metrics.
func (e *Exporter) ExportSpans(enc []byte, n int, records bool) error {
	return e.export(Traces, enc, n, records)
}

// SpansCarryRecords reports whether the collector said, in its last
// answer to an export, that it takes spans carrying access records in
// place of log records (accessrec.Header).
func (e *Exporter) SpansCarryRecords() bool { return e.carry.Load() }

// ExportLogs queues n encoded log records: fields 2 of
// opentelemetry.proto.logs.v1.ScopeLogs, as ExportSpans.
func (e *Exporter) ExportLogs(enc []byte, n int) error { return e.export(Logs, enc, n, false) }

// DropRecords counts records dropped before they reached the exporter
// (the proxy's own queue was full) in weft_telemetry_dropped_total.
func (e *Exporter) DropRecords(spans, logs int) {
	e.dropped[Traces].Add(uint64(spans))
	e.dropped[Logs].Add(uint64(logs))
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

// sigQueue holds one signal's batches: the one being filled and the full
// ones waiting for Run. Guarded by mu.
type sigQueue struct {
	mu       sync.Mutex
	cur      *batch
	full     []*batch
	free     []*batch
	queued   int // records in cur and full
	headRoom int // bytes left free at the start of every batch for wrap
}

// batch is up to BatchSize encoded records (BatchBytes bytes) after
// headRoom free bytes.
type batch struct {
	b       []byte
	n       int
	records int // spans that carry an access record
}

// newBatch returns an empty batch. Called with mu held.
func (q *sigQueue) newBatch() *batch {
	if k := len(q.free); k > 0 {
		b := q.free[k-1]
		q.free = q.free[:k-1]
		return b
	}
	return &batch{b: make([]byte, q.headRoom, 64<<10)}
}

// release returns a sent batch for reuse.
func (q *sigQueue) release(b *batch) {
	b.b, b.n, b.records = b.b[:q.headRoom], 0, 0
	q.mu.Lock()
	if len(q.free) < 2 {
		q.free = append(q.free, b)
	}
	q.mu.Unlock()
}

// splitRecords checks that enc is n length-delimited fields 2.
func splitRecords(enc []byte, n int) error {
	for i := 0; i < n; i++ {
		m := recordLen(enc)
		if m < 0 {
			return fmt.Errorf("otlpexport: record %d of %d: not a length-delimited field 2", i, n)
		}
		enc = enc[m:]
	}
	if len(enc) != 0 {
		return fmt.Errorf("otlpexport: %d bytes after %d records", len(enc), n)
	}
	return nil
}

// recordLen returns the length of the field 2 at the start of enc, with
// its tag and length; -1 when enc does not start with one.
func recordLen(enc []byte) int {
	num, typ, n := protowire.ConsumeTag(enc)
	if n < 0 || num != 2 || typ != protowire.BytesType {
		return -1
	}
	m := protowire.ConsumeFieldValue(num, typ, enc[n:])
	if m < 0 {
		return -1
	}
	return n + m
}

func (e *Exporter) export(sig Signal, enc []byte, n int, records bool) error {
	if n <= 0 {
		return nil
	}
	if err := splitRecords(enc, n); err != nil {
		return err
	}
	q := &e.q[sig]
	var dropped int
	q.mu.Lock()
	for i := 0; i < n; i++ {
		m := recordLen(enc)
		rec := enc[:m]
		enc = enc[m:]
		if q.queued >= e.cfg.QueueSize {
			dropped = n - i
			break
		}
		if q.cur != nil && len(q.cur.b)-q.headRoom+len(rec) > e.cfg.BatchBytes {
			e.seal(q)
		}
		if q.cur == nil {
			q.cur = q.newBatch()
		}
		q.cur.b = append(q.cur.b, rec...)
		q.cur.n++
		if records {
			q.cur.records++
		}
		q.queued++
		if q.cur.n >= e.cfg.BatchSize || len(q.cur.b)-q.headRoom >= e.cfg.BatchBytes {
			e.seal(q)
		}
	}
	q.mu.Unlock()
	if dropped > 0 {
		e.dropped[sig].Add(uint64(dropped))
		if records {
			e.dropped[Logs].Add(uint64(dropped))
		}
	}
	return nil
}

// seal queues the batch being filled as full and wakes Run. Called with
// q.mu held.
func (e *Exporter) seal(q *sigQueue) {
	q.full = append(q.full, q.cur)
	q.cur = nil
	select {
	case e.ready <- struct{}{}:
	default:
	}
}

// take removes the full batches, and the partial one too when partial.
func (e *Exporter) take(sig Signal, partial bool, into []*batch) []*batch {
	q := &e.q[sig]
	q.mu.Lock()
	into = append(into, q.full...)
	clear(q.full)
	q.full = q.full[:0]
	if partial && q.cur != nil && q.cur.n > 0 {
		into = append(into, q.cur)
		q.cur = nil
	}
	for _, b := range into {
		q.queued -= b.n
	}
	q.mu.Unlock()
	return into
}

// Run sends full batches as they fill and the partial ones every
// FlushInterval, until ctx is done; then it sends what is queued (each
// call within Config.Timeout) and returns. Call it once.
func (e *Exporter) Run(ctx context.Context) {
	tick, stop := e.cfg.Ticker(e.cfg.FlushInterval)
	defer stop()
	var bs []*batch
	flush := func(partial bool) {
		for _, sig := range []Signal{Traces, Logs} {
			bs = e.take(sig, partial, bs[:0])
			for _, b := range bs {
				e.sendBatch(ctx, sig, b)
			}
			clear(bs)
		}
	}
	for {
		select {
		case <-e.ready:
			flush(false)
		case <-tick:
			flush(true)
		case <-ctx.Done():
			flush(true)
			return
		}
	}
}

// exportMethods are the gRPC methods of the two signals.
var exportMethods = [2]string{
	Traces: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
	Logs:   "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
}

// wrap writes the export request's header in the head room of b and
// returns the whole ExportTraceServiceRequest (or ExportLogsServiceRequest):
//
//	1: Resource{Spans,Logs} { 1: resource, 2: Scope{Spans,Logs} { 1: scope, 2: record... } }
func (e *Exporter) wrap(b *batch) []byte {
	room := e.q[Traces].headRoom
	recs := len(b.b) - room
	scopeLen := len(e.scopeField) + recs
	resLen := len(e.resField) + 1 + protowire.SizeVarint(uint64(scopeLen)) + scopeLen
	var h [3 * (1 + binaryMaxVarint32)]byte
	hb := protowire.AppendTag(h[:0], 1, protowire.BytesType)
	hb = protowire.AppendVarint(hb, uint64(resLen))
	start := room - len(hb) - len(e.resField) - 1 - protowire.SizeVarint(uint64(scopeLen)) - len(e.scopeField)
	out := append(b.b[start:start], hb...)
	out = append(out, e.resField...)
	out = protowire.AppendTag(out, 2, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(scopeLen))
	out = append(out, e.scopeField...)
	return b.b[start:]
}

// sendBatch sends one batch and releases it.
func (e *Exporter) sendBatch(ctx context.Context, sig Signal, b *batch) {
	msg := e.wrap(b)
	reuse := e.send(ctx, sig, b, func(ctx context.Context) error {
		resp := newResponse(sig)
		var err error
		if e.cfg.URL != "" {
			err = e.post(ctx, sig, msg, resp)
		} else {
			var md metadata.MD
			err = e.conn.Invoke(ctx, exportMethods[sig], rawMessage(msg), resp, grpc.ForceCodecV2(rawCodec{}), grpc.Header(&md))
			if err == nil {
				e.noteCarry(md.Get(strings.ToLower(accessrec.Header)))
			}
		}
		if err == nil {
			rej := rejected(resp)
			e.dropped[sig].Add(uint64(rej))
			// A rejected span takes its access record with it.
			e.dropped[Logs].Add(uint64(min(rej, int64(b.records))))
		}
		return err
	})
	if reuse {
		e.q[sig].release(b)
	}
}

// noteCarry notes the collector's answer to accessrec.Header: whether it
// takes spans that carry access records is what its last answer said (a
// collector replaced behind the same address is believed at once).
func (e *Exporter) noteCarry(vals []string) {
	want := slices.Contains(vals, accessrec.HeaderSpans)
	if e.carry.Swap(want) != want {
		e.log.Debug("the collector changed its answer on spans that carry access records", "takes", want)
	}
}

// newResponse is an empty Export response of the signal.
func newResponse(sig Signal) proto.Message {
	if sig == Traces {
		return &tracecol.ExportTraceServiceResponse{}
	}
	return &logscol.ExportLogsServiceResponse{}
}

// rejected is what an Export response's partial success rejected.
func rejected(resp proto.Message) int64 {
	switch r := resp.(type) {
	case *tracecol.ExportTraceServiceResponse:
		return r.GetPartialSuccess().GetRejectedSpans()
	case *logscol.ExportLogsServiceResponse:
		return r.GetPartialSuccess().GetRejectedLogRecords()
	}
	return 0
}

// exportPaths are the OTLP/HTTP paths of the two signals.
var exportPaths = [2]string{Traces: "/v1/traces", Logs: "/v1/logs"}

// post makes one OTLP/HTTP export of msg and decodes the answer into resp.
// Any status but 200 is an error (send retries once).
func (e *Exporter) post(ctx context.Context, sig Signal, msg []byte, resp proto.Message) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.cfg.URL+exportPaths[sig], bytes.NewReader(msg))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+e.cfg.Token)
	}
	r, err := e.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return err
	}
	if r.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", req.URL, r.Status, strings.TrimSpace(string(body)))
	}
	e.noteCarry(r.Header.Values(accessrec.Header))
	if err := proto.Unmarshal(body, resp); err != nil {
		return fmt.Errorf("%s: answer: %w", req.URL, err)
	}
	return nil
}

// send makes one export call, and one retry when it fails; a batch that
// fails twice is dropped and counted. A call in flight is not cancelled
// with Run's context: each is bounded by Config.Timeout. It reports
// whether the first call succeeded: only then is gRPC surely done with
// the request's bytes, which may be reused.
func (e *Exporter) send(ctx context.Context, sig Signal, b *batch, call func(context.Context) error) bool {
	n := b.n
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
			e.sent[Logs].Add(uint64(b.records))
			if e.failing[sig].Swap(false) {
				e.log.Info("export recovered", "signal", sig.String())
			}
			return try == 0
		}
		e.failed[sig].Add(1)
	}
	e.dropped[sig].Add(uint64(n))
	e.dropped[Logs].Add(uint64(b.records))
	lvl := slog.LevelWarn
	if e.failing[sig].Swap(true) {
		lvl = slog.LevelDebug // said once until it recovers
	}
	e.log.Log(ctx, lvl, "export failed; batch dropped", "signal", sig.String(), "records", n, "err", err)
	return false
}
