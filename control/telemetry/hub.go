// Package telemetry is the control plane's telemetry hub
// (docs/observability.md): it receives the proxies' spans and access logs
// over OTLP/gRPC on the xDS port and weft up's application log lines in
// process, keeps them in bounded in-memory stores, scrapes every connected
// proxy's Prometheus metrics into a one-hour history of golden metrics per
// workload and per edge, and serves all of it as JSON on the control API:
// /api/v1/{top,metrics,topology,traces,logs,tap,prometheus/targets}.
package telemetry

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/weft-mesh/weft/control/xds"
)

// Defaults of Options.
const (
	DefaultMaxSpans       = 50_000
	DefaultMaxLogs        = 200_000
	DefaultRetention      = time.Hour
	DefaultScrapeInterval = 5 * time.Second
	DefaultHistory        = time.Hour
	DefaultScrapeTimeout  = 3 * time.Second
)

// Authenticator checks the bearer token of an OTLP export; *xds.Server
// implements it. It is called on the RPC's goroutine and must be safe for
// concurrent use; its error is returned to the caller as is (a gRPC
// status).
type Authenticator interface {
	Authenticate(ctx context.Context) (xds.Identity, error)
}

// Proxies lists the connected proxies; *xds.Server implements it. It must
// be safe for concurrent use and must not block.
type Proxies interface {
	Proxies() []xds.ProxyStatus
}

// AuthFunc adapts a function to Authenticator.
type AuthFunc func(ctx context.Context) (xds.Identity, error)

// Authenticate calls f.
func (f AuthFunc) Authenticate(ctx context.Context) (xds.Identity, error) { return f(ctx) }

// ProxiesFunc adapts a function to Proxies.
type ProxiesFunc func() []xds.ProxyStatus

// Proxies calls f.
func (f ProxiesFunc) Proxies() []xds.ProxyStatus { return f() }

// Clock tells the time and makes tickers; tests drive it by hand.
type Clock interface {
	Now() time.Time
	// NewTicker returns a channel that receives the time every d, and a
	// function that stops it.
	NewTicker(d time.Duration) (c <-chan time.Time, stop func())
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTicker wraps time.NewTicker.
func (SystemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Options configure a Hub. Auth and Proxies are required for the OTLP
// receivers and for scraping, tap and service discovery; the rest have
// defaults.
type Options struct {
	// Auth authenticates OTLP exports.
	Auth Authenticator
	// Proxies lists the proxies to scrape, tap and announce.
	Proxies Proxies
	// MaxSpans bounds the span store. Default 50 000.
	MaxSpans int
	// MaxLogs bounds the log store. Default 200 000.
	MaxLogs int
	// Retention drops spans and log records older than it (by arrival).
	// Default 1h.
	Retention time.Duration
	// ScrapeInterval is the period of the metrics scrapes and the
	// resolution of the history. Default 5s.
	ScrapeInterval time.Duration
	// History is how long the metrics history reaches back. Default 1h.
	History time.Duration
	// ScrapeTimeout bounds one proxy's scrape. Default 3s.
	ScrapeTimeout time.Duration
	// Client makes the scrapes and tap requests to the proxies' admin
	// listeners. Default: a client without timeouts (tap streams are
	// long), scrapes are bounded by ScrapeTimeout.
	Client *http.Client
	// Clock; default SystemClock.
	Clock Clock
	// Logger; default slog.Default(). A "component=telemetry" attribute is
	// added.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	o.MaxSpans = cmp.Or(max(o.MaxSpans, 0), DefaultMaxSpans)
	o.MaxLogs = cmp.Or(max(o.MaxLogs, 0), DefaultMaxLogs)
	o.Retention = cmp.Or(max(o.Retention, 0), DefaultRetention)
	o.ScrapeInterval = cmp.Or(max(o.ScrapeInterval, 0), DefaultScrapeInterval)
	o.History = cmp.Or(max(o.History, 0), DefaultHistory)
	o.ScrapeTimeout = cmp.Or(max(o.ScrapeTimeout, 0), DefaultScrapeTimeout)
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.Proxies == nil {
		o.Proxies = ProxiesFunc(func() []xds.ProxyStatus { return nil })
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Hub is the telemetry hub. Its methods are safe for concurrent use.
type Hub struct {
	opts    Options
	log     *slog.Logger
	spans   *spanStore
	logs    *logStore
	metrics *scraper
	// stopped is closed when Run returns: log follows and taps end.
	stopped  chan struct{}
	stopOnce sync.Once
}

// New returns a hub; it scrapes nothing until Run.
func New(opts Options) *Hub {
	opts.setDefaults()
	h := &Hub{
		opts:    opts,
		log:     opts.Logger.With("component", "telemetry"),
		spans:   newSpanStore(opts.MaxSpans, opts.Retention),
		logs:    newLogStore(opts.MaxLogs, opts.Retention),
		stopped: make(chan struct{}),
	}
	h.metrics = newScraper(opts, h.log)
	return h
}

// Register adds the OTLP trace and logs services to g (pass it as
// xds.Options.Register).
func (h *Hub) Register(g grpc.ServiceRegistrar) {
	registerReceivers(g, h)
}

// Run scrapes the proxies every ScrapeInterval until ctx is done; it
// returns nil then, after ending the log follows and taps being served
// (so that the API can shut down at once).
func (h *Hub) Run(ctx context.Context) error {
	defer h.stopOnce.Do(func() { close(h.stopped) })
	tick, stop := h.opts.Clock.NewTicker(h.opts.ScrapeInterval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick:
			h.metrics.scrape(ctx, h.opts.Proxies.Proxies(), now)
		}
	}
}

// Scrape scrapes every connected proxy once, now, and adds one interval
// to the history (Run does it on every tick).
func (h *Hub) Scrape(ctx context.Context) {
	h.metrics.scrape(ctx, h.opts.Proxies.Proxies(), h.opts.Clock.Now())
}

// AddSpans stores spans (as the OTLP receiver does).
func (h *Hub) AddSpans(spans []Span) { h.spans.add(h.opts.Clock.Now(), spans) }

// AddLogs stores log records (weft up calls it with application lines);
// their Seq is set by the hub.
func (h *Hub) AddLogs(recs []LogRecord) { h.logs.add(h.opts.Clock.Now(), recs) }

// Trace returns one trace's spans sorted by start.
func (h *Hub) Trace(id string) (Trace, bool) { return h.spans.trace(h.opts.Clock.Now(), id) }

// Traces returns summaries of the traces q selects, most recent first.
func (h *Hub) Traces(q TraceQuery) []TraceSummary { return h.spans.list(h.opts.Clock.Now(), q) }

// Logs returns the records q selects in arrival order, with the Seq to
// follow from and a channel closed when records arrive.
func (h *Hub) Logs(q LogQuery) ([]LogRecord, uint64, <-chan struct{}) {
	return h.logs.query(h.opts.Clock.Now(), q)
}
