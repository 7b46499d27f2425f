package otlpexport

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	logscol "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	tracecol "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/accessrec"
)

// collector is a real OTLP gRPC server: it records every export and can
// fail the first calls.
type collector struct {
	tracecol.UnimplementedTraceServiceServer
	mu       sync.Mutex
	failures int // calls left to fail
	calls    int
	auth     []string
	carry    bool // answer that it takes spans carrying access records
	spans    chan *tracecol.ExportTraceServiceRequest
	logs     chan *logscol.ExportLogsServiceRequest
}

func (c *collector) admit(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.carry {
		grpc.SetHeader(ctx, metadata.Pairs(strings.ToLower(accessrec.Header), accessrec.HeaderSpans))
	}
	c.calls++
	c.auth = append(c.auth, strings.Join(md.Get("authorization"), ","))
	if c.failures > 0 {
		c.failures--
		return status.Error(codes.Unavailable, "collector busy")
	}
	return nil
}

func (c *collector) Export(ctx context.Context, r *tracecol.ExportTraceServiceRequest) (*tracecol.ExportTraceServiceResponse, error) {
	if err := c.admit(ctx); err != nil {
		return nil, err
	}
	c.spans <- r
	return &tracecol.ExportTraceServiceResponse{}, nil
}

// logsServer adapts collector to LogsServiceServer (both services name
// their method Export).
type logsServer struct {
	logscol.UnimplementedLogsServiceServer
	c *collector
}

func (l logsServer) Export(ctx context.Context, r *logscol.ExportLogsServiceRequest) (*logscol.ExportLogsServiceResponse, error) {
	if err := l.c.admit(ctx); err != nil {
		return nil, err
	}
	l.c.logs <- r
	return &logscol.ExportLogsServiceResponse{}, nil
}

func startCollector(t *testing.T, failures int) (*collector, *grpc.ClientConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{failures: failures, spans: make(chan *tracecol.ExportTraceServiceRequest, 16), logs: make(chan *logscol.ExportLogsServiceRequest, 16)}
	srv := grpc.NewServer()
	tracecol.RegisterTraceServiceServer(srv, c)
	logscol.RegisterLogsServiceServer(srv, logsServer{c: c})
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return c, cc
}

// run starts the exporter and returns a function that stops it and waits
// for Run to return.
func run(t *testing.T, e *Exporter) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func newExporter(t *testing.T, cc *grpc.ClientConn, cfg Config) (*Exporter, chan time.Time) {
	t.Helper()
	tick := make(chan time.Time)
	cfg.Conn = cc
	cfg.Ticker = func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e, tick
}

func span(name string) *tracepb.Span { return &tracepb.Span{Name: name} }

// exportSpans hands spans to e encoded as the proxy does: fields 2 of a
// ScopeSpans.
func exportSpans(t *testing.T, e *Exporter, spans ...*tracepb.Span) {
	t.Helper()
	exportSpansWith(t, e, false, spans...)
}

// exportCarrying is exportSpans for spans that carry access records.
func exportCarrying(t *testing.T, e *Exporter, spans ...*tracepb.Span) {
	t.Helper()
	exportSpansWith(t, e, true, spans...)
}

func exportSpansWith(t *testing.T, e *Exporter, records bool, spans ...*tracepb.Span) {
	t.Helper()
	enc, err := proto.Marshal(&tracepb.ScopeSpans{Spans: spans})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ExportSpans(enc, len(spans), records); err != nil {
		t.Fatal(err)
	}
}

// exportLogs is exportSpans for log records.
func exportLogs(t *testing.T, e *Exporter, recs ...*logspb.LogRecord) {
	t.Helper()
	enc, err := proto.Marshal(&logspb.ScopeLogs{LogRecords: recs})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ExportLogs(enc, len(recs)); err != nil {
		t.Fatal(err)
	}
}

func TestBatchesBySizeAndTick(t *testing.T) {
	c, cc := startCollector(t, 0)
	e, tick := newExporter(t, cc, Config{Token: "tok", BatchSize: 3, Resource: Resource{ServiceName: "frontend", Namespace: "shop", InstanceID: "frontend-1.shop", Role: "sidecar"}})
	stop := run(t, e)
	for i := range 7 {
		exportSpans(t, e, span(string(rune('a'+i))))
	}
	for _, want := range []string{"abc", "def"} {
		r := <-c.spans
		if got := names(r); got != want {
			t.Fatalf("batch = %q, want %q", got, want)
		}
	}
	tick <- time.Now()
	r := <-c.spans
	if got := names(r); got != "g" {
		t.Fatalf("batch after tick = %q, want g", got)
	}
	var attrs []string
	for _, kv := range r.GetResourceSpans()[0].GetResource().GetAttributes() {
		attrs = append(attrs, kv.GetKey()+"="+kv.GetValue().GetStringValue())
	}
	if got, want := strings.Join(attrs, " "), "service.name=frontend service.namespace=shop service.instance.id=frontend-1.shop weft.role=sidecar"; got != want {
		t.Errorf("resource = %q, want %q", got, want)
	}
	stop() // every send has settled
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.auth {
		if a != "Bearer tok" {
			t.Errorf("authorization = %q, want Bearer tok", a)
		}
	}
	if e.Sent(Traces) != 7 || e.Dropped(Traces) != 0 {
		t.Errorf("sent %d dropped %d, want 7 and 0", e.Sent(Traces), e.Dropped(Traces))
	}
}

// A batch ends at BatchBytes: it never goes past them, except for a
// record bigger than that, which goes alone.
func TestBatchesByBytes(t *testing.T) {
	c, cc := startCollector(t, 0)
	// A span named with 100 bytes is a record of 104 bytes: two fit in 250.
	e, tick := newExporter(t, cc, Config{BatchBytes: 250})
	stop := run(t, e)
	name := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	for _, s := range []string{name('a', 100), name('b', 100), name('c', 100), name('d', 300), name('e', 100)} {
		exportSpans(t, e, span(s))
	}
	for _, want := range []string{name('a', 100) + name('b', 100), name('c', 100), name('d', 300)} {
		if got := names(<-c.spans); got != want {
			t.Fatalf("batch of %d bytes of names, want %d", len(got), len(want))
		}
	}
	tick <- time.Now()
	if got := names(<-c.spans); got != name('e', 100) {
		t.Fatalf("batch after tick: %d bytes of names, want e×100", len(got))
	}
	stop()
	if e.Sent(Traces) != 5 {
		t.Errorf("sent %d, want 5", e.Sent(Traces))
	}
}

func names(r *tracecol.ExportTraceServiceRequest) string {
	var b strings.Builder
	for _, s := range r.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans() {
		b.WriteString(s.GetName())
	}
	return b.String()
}

func TestLogsExported(t *testing.T) {
	c, cc := startCollector(t, 0)
	e, tick := newExporter(t, cc, Config{})
	run(t, e)
	exportLogs(t, e, &logspb.LogRecord{SeverityText: "INFO"})
	tick <- time.Now()
	r := <-c.logs
	if n := len(r.GetResourceLogs()[0].GetScopeLogs()[0].GetLogRecords()); n != 1 {
		t.Fatalf("log records = %d, want 1", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.auth[0] != "" {
		t.Errorf("authorization without a token = %q, want none", c.auth[0])
	}
}

// The queue is bounded: beyond it records are dropped at once, never
// waited for.
func TestQueueOverflowDrops(t *testing.T) {
	_, cc := startCollector(t, 0)
	e, _ := newExporter(t, cc, Config{QueueSize: 2})
	// Run is not started: nothing drains the queue.
	for range 5 {
		exportSpans(t, e, span("x"))
		exportLogs(t, e, &logspb.LogRecord{})
	}
	if e.Dropped(Traces) != 3 || e.Dropped(Logs) != 3 {
		t.Fatalf("dropped traces %d logs %d, want 3 and 3", e.Dropped(Traces), e.Dropped(Logs))
	}
	var b strings.Builder
	e.WritePrometheus(&b)
	for _, line := range []string{`weft_telemetry_dropped_total{signal="logs"} 3`, `weft_telemetry_dropped_total{signal="traces"} 3`} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, b.String())
		}
	}
}

func TestRetryOnceThenDrop(t *testing.T) {
	tests := []struct {
		name              string
		failures          int
		wantCalls         int
		wantSent, wantDrp uint64
	}{
		{"first call fails, retry succeeds", 1, 2, 2, 0},
		{"both calls fail, batch dropped", 2, 2, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cc := startCollector(t, tt.failures)
			e, _ := newExporter(t, cc, Config{BatchSize: 2})
			stop := run(t, e)
			exportSpans(t, e, span("a"), span("b"))
			if tt.wantSent > 0 {
				<-c.spans
			}
			stop() // Run has returned: the batch is settled
			c.mu.Lock()
			calls := c.calls
			c.mu.Unlock()
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if e.Sent(Traces) != tt.wantSent || e.Dropped(Traces) != tt.wantDrp {
				t.Errorf("sent %d dropped %d, want %d and %d", e.Sent(Traces), e.Dropped(Traces), tt.wantSent, tt.wantDrp)
			}
		})
	}
}

// On shutdown the queued records are sent.
func TestFlushOnStop(t *testing.T) {
	c, cc := startCollector(t, 0)
	e, _ := newExporter(t, cc, Config{})
	exportSpans(t, e, span("x"), span("x"), span("x"))
	stop := run(t, e)
	stop()
	select {
	case r := <-c.spans:
		if got := names(r); got != "xxx" {
			t.Fatalf("flushed %q, want xxx", got)
		}
	default:
		t.Fatal("nothing flushed on stop")
	}
}

func TestNewNeedsOneTransport(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "otlpexport: one of Conn (OTLP/gRPC) and URL (OTLP/HTTP) is required"},
		{Config{URL: "127.0.0.1:4318"}, `otlpexport: URL "127.0.0.1:4318": want http(s)://host[:port][/path] or unix:///absolute/path`},
		{Config{URL: "ftp://collector"}, `otlpexport: URL "ftp://collector": want http(s)://host[:port][/path] or unix:///absolute/path`},
		{Config{URL: "unix://relative/otlp.sock"}, `otlpexport: URL "unix://relative/otlp.sock": want http(s)://host[:port][/path] or unix:///absolute/path`},
	} {
		if _, err := New(tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// httpCollector is an OTLP/HTTP collector: it checks each export's
// method, path and headers, answers the first failures calls with 503,
// and rejects one log record of every logs export in a partial success.
type httpCollector struct {
	t        *testing.T
	mu       sync.Mutex
	failures int
	calls    int
	carry    bool // answer that it takes spans carrying access records
	root     bool // serve /v1/... rather than /otlp/v1/...
	spans    chan *tracecol.ExportTraceServiceRequest
	logs     chan *logscol.ExportLogsServiceRequest
}

func (c *httpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.calls++
	fail := c.failures > 0
	c.failures--
	c.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	switch {
	case err != nil:
		c.t.Errorf("read: %v", err)
	case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("Authorization") != "Bearer tok":
		c.t.Errorf("%s %s, content type %q, authorization %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"))
	}
	if fail {
		http.Error(w, "collector busy", http.StatusServiceUnavailable)
		return
	}
	var resp proto.Message
	path := r.URL.Path
	if c.root {
		path = "/otlp" + path
	}
	switch path {
	case "/otlp/v1/traces":
		req := &tracecol.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			c.t.Errorf("traces: %v", err)
		}
		c.spans <- req
		resp = &tracecol.ExportTraceServiceResponse{}
	case "/otlp/v1/logs":
		req := &logscol.ExportLogsServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			c.t.Errorf("logs: %v", err)
		}
		c.logs <- req
		resp = &logscol.ExportLogsServiceResponse{PartialSuccess: &logscol.ExportLogsPartialSuccess{RejectedLogRecords: 1}}
	default:
		http.NotFound(w, r)
		return
	}
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	if c.carry {
		w.Header().Set(accessrec.Header, accessrec.HeaderSpans)
	}
	w.Write(out)
}

// A collector that answers with accessrec.Header turns SpansCarryRecords
// on; spans handed over as carrying records count as log records too.
func TestCarriedRecords(t *testing.T) {
	for _, transport := range []string{"gRPC", "HTTP", "Unix"} {
		t.Run(transport, func(t *testing.T) {
			tick := make(chan time.Time)
			cfg := Config{Token: "tok", Ticker: func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }}
			var spans chan *tracecol.ExportTraceServiceRequest
			var logs chan *logscol.ExportLogsServiceRequest
			rejectedLogs := uint64(0)
			if transport == "gRPC" {
				c, cc := startCollector(t, 0)
				c.carry, cfg.Conn, spans, logs = true, cc, c.spans, c.logs
			} else {
				c := &httpCollector{t: t, carry: true, spans: make(chan *tracecol.ExportTraceServiceRequest, 4), logs: make(chan *logscol.ExportLogsServiceRequest, 4)}
				srv := httptest.NewUnstartedServer(c)
				cfg.URL = "http://" + srv.Listener.Addr().String() + "/otlp"
				if transport == "Unix" {
					// OTLP/HTTP over a Unix socket: the URL names the
					// socket alone, so the collector serves at the root.
					sock := filepath.Join(t.TempDir(), "otlp.sock")
					ln, err := net.Listen("unix", sock)
					if err != nil {
						t.Fatal(err)
					}
					srv.Listener.Close()
					srv.Listener = ln
					c.root = true
					cfg.URL = "unix://" + sock
				}
				srv.Start()
				t.Cleanup(srv.Close)
				spans, logs = c.spans, c.logs
				rejectedLogs = 1 // httpCollector rejects one record of each logs export
			}
			e, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			stop := run(t, e)
			if e.SpansCarryRecords() {
				t.Fatal("SpansCarryRecords before the collector answered")
			}
			exportCarrying(t, e, span("a"), span("b"))
			exportSpans(t, e, span("c"))
			exportLogs(t, e, &logspb.LogRecord{SeverityText: "INFO"})
			tick <- time.Now()
			if got := names(<-spans); got != "abc" {
				t.Fatalf("spans %q", got)
			}
			<-logs
			stop() // the answers are in
			if !e.SpansCarryRecords() {
				t.Fatal("the collector said it takes spans carrying records; SpansCarryRecords is false")
			}
			if e.Sent(Traces) != 3 || e.Sent(Logs) != 3 || e.Dropped(Logs) != rejectedLogs {
				t.Fatalf("sent %d spans, %d records (%d dropped); want 3, 3 (two in spans), %d", e.Sent(Traces), e.Sent(Logs), e.Dropped(Logs), rejectedLogs)
			}
			// An answer without the header (another collector behind the
			// same address) turns it off again.
			e.noteCarry(nil)
			if e.SpansCarryRecords() {
				t.Fatal("SpansCarryRecords after an answer without the header")
			}
		})
	}
}

func TestHTTPExport(t *testing.T) {
	c := &httpCollector{t: t, failures: 1, spans: make(chan *tracecol.ExportTraceServiceRequest, 4), logs: make(chan *logscol.ExportLogsServiceRequest, 4)}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	tick := make(chan time.Time)
	e, err := New(Config{URL: srv.URL + "/otlp/", Token: "tok", Resource: Resource{ServiceName: "frontend", Namespace: "shop"},
		Ticker: func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, e)
	exportSpans(t, e, span("a"), span("b"))
	exportLogs(t, e, &logspb.LogRecord{SeverityText: "INFO"}, &logspb.LogRecord{SeverityText: "WARN"})
	tick <- time.Now()
	// The first call got a 503 and was retried.
	sp, lg := <-c.spans, <-c.logs
	stop()
	if got := names(sp); got != "ab" || sp.GetResourceSpans()[0].GetResource().GetAttributes()[0].GetValue().GetStringValue() != "frontend" {
		t.Fatalf("spans %v", sp)
	}
	if n := len(lg.GetResourceLogs()[0].GetScopeLogs()[0].GetLogRecords()); n != 2 {
		t.Fatalf("log records = %d, want 2", n)
	}
	if e.Sent(Traces) != 2 || e.Dropped(Traces) != 0 || e.Sent(Logs) != 2 || e.Dropped(Logs) != 1 {
		t.Fatalf("traces sent %d dropped %d, logs sent %d dropped %d; want 2 0 2 1 (one record rejected)",
			e.Sent(Traces), e.Dropped(Traces), e.Sent(Logs), e.Dropped(Logs))
	}
	if e.SpansCarryRecords() {
		t.Fatal("SpansCarryRecords with a collector that did not say so")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls != 3 {
		t.Fatalf("calls = %d, want 3 (one retried)", c.calls)
	}
}
