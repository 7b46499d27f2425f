package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/weft-mesh/weft/proxy/cluster"
)

// Golden telemetry (docs/observability.md): every HTTP request and TCP
// connection ends in one reqRecord, which feeds the request metrics, the
// access log (and /tap), and the span of the hop. The record lives in the
// connection (fast path) or a pool (net/http path) and is filled as the
// request goes; nothing in it is allocated per request unless an access
// log, a tap or an exporter wants the record.

// TelemetrySink receives finished spans and access records encoded as
// OTLP protobuf (proxy/otlpexport.Exporter implements it). Its methods are
// called on the proxy's telemetry goroutine, a batch at a time, and must
// not block on the network.
type TelemetrySink interface {
	// ExportSpans takes n spans: n fields 2 (spans) of an encoded
	// opentelemetry.proto.trace.v1.ScopeSpans. enc is reused after the
	// call returns. With records, each span also carries its request's
	// access record (accessrec.AttrCarries), and no log record was made
	// for it: the sink counts it as a log record too.
	ExportSpans(enc []byte, n int, records bool) error
	// ExportLogs takes n log records: n fields 2 (log_records) of an
	// encoded opentelemetry.proto.logs.v1.ScopeLogs, as ExportSpans.
	ExportLogs(enc []byte, n int) error
	// SpansCarryRecords reports whether the collector takes a span that
	// carries its request's access record in place of the log record
	// (weft control does), as its last answer said.
	SpansCarryRecords() bool
	// DropRecords counts spans and log records dropped before the sink
	// got them (the proxy's record queue was full). Called on request
	// goroutines; it must not block.
	DropRecords(spans, logs int)
}

// reporter is which side of a hop reports a record.
type reporter uint8

const (
	repSource      reporter = iota // outbound listeners, the HTTP proxy listener
	repDestination                 // inbound listeners
	repGateway                     // inbound listeners of a gateway
)

func (r reporter) String() string {
	switch r {
	case repDestination:
		return "destination"
	case repGateway:
		return "gateway"
	}
	return "source"
}

// respFlags are Envoy's response flags as a bit set.
type respFlags uint32

const (
	flagNR respFlags = 1 << iota
	flagNC
	flagUH
	flagUF
	flagUO
	flagURX
	flagUT
	flagUC
	flagUR
	flagDC
	flagDI
	flagFI
	flagRL
	flagUAEX
	flagJWT
)

var flagNames = [...]string{"NR", "NC", "UH", "UF", "UO", "URX", "UT", "UC", "UR", "DC", "DI", "FI", "RL", "UAEX", "JWT"}

// appendTo appends the comma-separated short flags, "-" for none.
func (f respFlags) appendTo(b []byte) []byte {
	if f == 0 {
		return append(b, '-')
	}
	first := true
	for i, n := range flagNames {
		if f&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, n...)
	}
	return b
}

func (f respFlags) String() string { return string(f.appendTo(nil)) }

// flagForReason maps a local reply reason (x-weft-reason) to its flag.
func flagForReason(reason string) respFlags {
	switch reason {
	case reasonNoRoute:
		return flagNR
	case reasonNoCluster:
		return flagNC
	case reasonNoHealthy:
		return flagUH
	case reasonConnectFail:
		return flagUF
	case reasonOverflow:
		return flagUO
	case reasonTimeout:
		return flagUT
	case reasonReset:
		return flagUR
	case reasonDownstream:
		return flagDC
	case reasonFaultAbort:
		return flagFI
	case reasonRBACDenied:
		return flagUAEX
	}
	if strings.HasPrefix(reason, "jwt_") || strings.HasPrefix(reason, "jwks_") {
		return flagJWT
	}
	return 0
}

const unknown = "unknown"

// orUnknown returns s, or "unknown" when it is empty.
func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

// reqRecord is what is known about one request (or TCP connection) when
// it ends. Strings may view connection buffers: they are valid until
// finish returns. Not safe for concurrent use.
type reqRecord struct {
	start    time.Time
	tcp      bool
	listener string
	rep      reporter
	route    string
	grpc     bool

	method, authority, path, protocol string
	userAgent, requestID              string

	status     int
	grpcStatus string
	flags      respFlags
	reason     string // x-weft-reason of a local reply
	local      bool   // the proxy answered itself
	attempts   int
	cluster    string
	upstream   string
	upDur      time.Duration
	hasUp      bool
	bytesIn    int64
	bytesOut   int64

	srcWL, srcNS, srcPrincipal                string
	dstWL, dstNS, dstSvc, dstPrincipal, dstSA string
	downstreamTLS, upstreamTLS                bool
	upstreamPeer                              string // SPIFFE ID of the upstream's certificate
	trace                                     traceState
	rw                                        recWriter // net/http path: wraps the ResponseWriter
	sampling                                  float64   // the listener's random sampling, -1: the proxy's
	tpBuf                                     [55]byte  // the forwarded traceparent (fast path)
}

// localReply records a reply the proxy made itself.
func (r *reqRecord) localReply(status int, reason string) {
	r.status, r.reason, r.local = status, reason, true
	r.flags |= flagForReason(reason)
}

// setEndpoint records the picked endpoint i of clu.
func (r *reqRecord) setEndpoint(clu *cluster.Cluster, i int) {
	ep := clu.Endpoints[i]
	r.upstream = ep.Addr
	if r.rep != repDestination {
		m := &clu.Meta[i]
		r.dstWL, r.dstNS = m.Workload, m.Namespace
	}
}

// setCluster records the routed cluster.
func (r *reqRecord) setCluster(clu *cluster.Cluster) {
	r.cluster = clu.Name
	r.upstreamTLS = clu.TLS != nil
	if r.rep != repDestination {
		r.dstSvc = serviceOf(clu.Name)
	}
}

// setSource records the caller named by x-weft-source ("workload.namespace").
func (r *reqRecord) setSource(v string) {
	if i := strings.LastIndexByte(v, '.'); i > 0 && i < len(v)-1 {
		r.srcWL, r.srcNS = v[:i], v[i+1:]
	}
}

// spiffeNamespace returns the namespace of a SPIFFE ID of the form
// spiffe://<td>/ns/<namespace>/sa/<sa>, "" otherwise.
func spiffeNamespace(id string) string {
	rest, ok := strings.CutPrefix(id, "spiffe://")
	if !ok {
		return ""
	}
	_, rest, ok = strings.Cut(rest, "/ns/")
	if !ok {
		return ""
	}
	ns, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return ns
}

// serviceOf returns the service of a cluster name: the host of Istio-style
// names (outbound|8080||catalog.shop), else the name itself.
func serviceOf(name string) string {
	if i := strings.LastIndexByte(name, '|'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// self is the proxy's own identity as labels.
type self struct {
	workload, namespace string
	service             string // <service>.<namespace>, "" unknown
	source              string // x-weft-source value; "" when the workload is unknown
	gateway             bool
}

// telemetry holds the golden metrics and the record outputs. Safe for
// concurrent use.
type telemetry struct {
	clock    func() time.Time
	self     self
	identity CertificateSource
	sampling float64 // default random sampling ratio, 0-1
	sink     TelemetrySink
	log      io.Writer // nil: off; written on the telemetry goroutine only
	taps     tapHub
	q        *recQueue  // nil without a sink and a log
	enc      recEncoder // the telemetry goroutine's buffers

	edges cowMap[edgeKey, edge]
	tcp   cowMap[tcpKey, tcpEdge]
	ownID atomic.Pointer[ownIdentity]
	bufs  sync.Pool // *[]byte for rendered records
}

type ownIdentity struct {
	cert *tls.Certificate
	id   string
}

func newTelemetry(opts Options) *telemetry {
	t := &telemetry{clock: opts.Clock, identity: opts.Identity, sink: opts.Telemetry}
	t.self = self{workload: opts.Workload, namespace: opts.Namespace, gateway: opts.Role == "gateway"}
	if opts.Service != "" {
		t.self.service = opts.Service
		if opts.Namespace != "" {
			t.self.service += "." + opts.Namespace
		}
	}
	if opts.Workload != "" && opts.Namespace != "" {
		t.self.source = opts.Workload + "." + opts.Namespace
	}
	switch {
	case opts.TraceSampling < 0:
		t.sampling = 0
	case opts.TraceSampling == 0:
		t.sampling = DefaultTraceSampling
	default:
		t.sampling = min(opts.TraceSampling, 1)
	}
	t.log = opts.AccessLog
	t.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	if t.sink != nil || t.log != nil {
		t.q = newRecQueue()
		go t.q.run(t.encode)
	}
	return t
}

// close stops the telemetry goroutine once it has handed out every
// record queued so far. Call it when no request is running any more.
func (t *telemetry) close() {
	if t.q != nil {
		t.q.close()
	}
}

// DefaultTraceSampling is the random sampling ratio of requests that carry
// no sampling decision, when neither the listener nor Options set one.
const DefaultTraceSampling = 0.01

// wantRecord reports whether anything consumes rendered records or spans
// beyond the metrics.
func (t *telemetry) wantRecord() bool {
	return t.sink != nil || t.log != nil || t.taps.n.Load() > 0
}

// reporterFor returns who reports for a listener.
func (t *telemetry) reporterFor(ls *listenerSpec) reporter {
	if ls.raw.GetTrafficDirection() == corev3.TrafficDirection_INBOUND {
		if t.self.gateway {
			return repGateway
		}
		return repDestination
	}
	return repSource
}

// begin resets r for a new request on listener ls with downstream peer
// (the caller's SPIFFE ID, "" for none).
func (t *telemetry) begin(r *reqRecord, ls *listenerSpec, peer string, secure bool) {
	*r = reqRecord{start: t.clock(), listener: ls.name, rep: t.reporterFor(ls), sampling: -1}
	r.downstreamTLS = secure
	switch r.rep {
	case repDestination:
		r.srcPrincipal = peer
		r.srcNS = spiffeNamespace(peer)
		r.dstWL, r.dstNS, r.dstSvc = t.self.workload, t.self.namespace, t.self.service
	default:
		r.srcWL, r.srcNS = t.self.workload, t.self.namespace
	}
}

// ownPrincipal returns the SPIFFE ID of the proxy's own certificate, ""
// when it has none. It is cached per certificate.
func (t *telemetry) ownPrincipal() string {
	if t.identity == nil {
		return ""
	}
	c, err := t.identity.Certificate()
	if err != nil || c == nil {
		return ""
	}
	if o := t.ownID.Load(); o != nil && o.cert == c {
		return o.id
	}
	o := &ownIdentity{cert: c}
	leaf := c.Leaf
	if leaf == nil && len(c.Certificate) > 0 {
		leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	if leaf != nil {
		o.id = spiffeSAN([]*x509.Certificate{leaf})
	}
	t.ownID.Store(o)
	return o.id
}

// finish accounts for a finished request: metrics always; the access log,
// taps and the exporter when they are on.
func (t *telemetry) finish(r *reqRecord) {
	dur := t.clock().Sub(r.start)
	t.observe(r, dur)
	if !t.wantRecord() {
		return
	}
	t.emit(r, dur)
}

// principals fills the principal labels once the request is done.
func (t *telemetry) principals(r *reqRecord) (src, dst string) {
	switch r.rep {
	case repDestination:
		src = r.srcPrincipal
		if r.downstreamTLS {
			dst = t.ownPrincipal()
		}
	default:
		if r.upstreamTLS {
			src = t.ownPrincipal()
			dst = r.upstreamPeer
		}
	}
	return orUnknown(src), orUnknown(dst)
}

// sourceHeader names the caller's workload ("<workload>.<namespace>"): set
// by the source sidecar, read and removed by the destination sidecar. A
// label only, never trusted for security.
const sourceHeader = "x-weft-source"

// setTelemetryHeaders sets x-weft-source (outbound) and traceparent (with
// an exporter) on the fast path's forwarded request.
func (hc *h1Conn) setTelemetryHeaders() {
	t, r := hc.ll.p.tel, &hc.rec
	if r.rep != repDestination && t.self.source != "" {
		hc.req.Set(sourceHeader, t.self.source)
	}
	if r.trace.own {
		// SetBytes copies; a stack array would escape through it.
		hc.req.SetBytes("traceparent", r.trace.appendTraceparent(r.tpBuf[:0]))
	}
}

// setTelemetryHeaders is the net/http path's setTelemetryHeaders.
func (t *telemetry) setHeaders(r *reqRecord, h http.Header) {
	if r.rep != repDestination && t.self.source != "" {
		h.Set(sourceHeader, t.self.source)
	}
	if r.trace.own {
		var b [55]byte
		h.Set("Traceparent", string(r.trace.appendTraceparent(b[:0])))
	}
}
