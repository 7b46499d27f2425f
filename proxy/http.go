package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/route"
)

// newHTTPServer returns the net/http server of an HTTP listener: HTTP/1.1 and
// cleartext HTTP/2 with prior knowledge (per codec_type), the HCM's header
// size limit (431 beyond it) and timeouts.
func (ll *liveListener) newHTTPServer(h *hcmSpec) *http.Server {
	var protos http.Protocols
	switch h.codec.String() {
	case "HTTP1":
		protos.SetHTTP1(true)
	case "HTTP2":
		protos.SetUnencryptedHTTP2(true)
	default:
		protos.SetHTTP1(true)
		protos.SetUnencryptedHTTP2(true)
	}
	if spec := ll.spec.Load(); spec.tls != nil {
		protos.SetHTTP2(true) // TLS connections that negotiated h2 are handed over
	}
	return &http.Server{
		Handler:           &httpHandler{ll: ll},
		Protocols:         &protos,
		ReadHeaderTimeout: h.headersTimeout,
		IdleTimeout:       h.idleTimeout,
		MaxHeaderBytes:    h.maxHeaderBytes,
		ErrorLog:          log.New(slogWriter{ll.p.log.With("listener", ll.name)}, "", 0),
	}
}

// slogWriter forwards net/http's internal log lines (bad requests, TLS
// noise) to slog at debug level.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(b []byte) (int, error) {
	w.l.Debug(strings.TrimSpace(string(b)))
	return len(b), nil
}

// httpHandler serves one HTTP listener.
type httpHandler struct{ ll *liveListener }

// Local reply reasons, as Envoy's response flags.
const (
	reasonNoRoute       = "no_route"            // NR
	reasonNoCluster     = "no_cluster"          // NC
	reasonNoHealthy     = "no_healthy_upstream" // UH
	reasonConnectFail   = "connect_failure"     // UF
	reasonReset         = "upstream_reset"      // UR
	reasonTimeout       = "upstream_timeout"    // UT
	reasonDownstream    = "downstream_cancel"   // DC
	reasonOverflow      = "overflow"            // UO: a circuit breaker refused it
	reasonUpgradeDenied = "upgrade_denied"
	reasonRBACDenied    = "rbac_access_denied" // RBAC denied the request or connection
	// The JWT filter's refusals carry its own reasons (jwt.Reason:
	// jwt_missing, jwt_expired, jwt_bad_signature, jwks_unavailable, ...).
)

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ll := h.ll
	ls := ll.spec.Load()
	spec := ls.http
	if spec == nil { // listener kind changed under us; the socket is being replaced
		http.Error(w, "listener reconfiguring", http.StatusServiceUnavailable)
		return
	}
	g := ll.p.graph.Load()
	table := spec.inline
	if table == nil {
		table = g.routes[spec.rdsName]
	}
	var peer string
	if r.TLS != nil && ls.tls != nil {
		peer = downstreamPeer(ls.tls.Config, r.TLS)
	}
	rec := h.begin(ls, spec, w, r, peer)
	w = &rec.rw
	defer h.finish(rec, r)
	sanitizeXFCC(r.Header, xfccFor(ls, peer))
	if spec.jwt != nil || spec.rbac != nil {
		path := ""
		if r.Method != http.MethodConnect {
			path = r.URL.RequestURI()
		}
		ah := authHeaders{h: route.HTTPHeader(r.Header), method: r.Method, authority: r.Host, scheme: scheme(r), path: path}
		if d, ok := ll.authorize(spec, &ah, peer); !ok {
			h.denyHTTP(w, r, d)
			return
		}
	}
	if r.Method == http.MethodConnect {
		h.serveConnect(w, r, spec, table, g)
		return
	}
	if isUpgrade(r.Header) && !(spec.websocket && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")) {
		h.localReply(w, http.StatusForbidden, reasonUpgradeDenied)
		return
	}
	if table == nil {
		h.localReply(w, http.StatusNotFound, reasonNoRoute)
		return
	}
	rreq := routeRequest(r)
	rt := table.Match(&rreq)
	if rt == nil {
		h.localReply(w, http.StatusNotFound, reasonNoRoute)
		return
	}
	rec.route = rt.Name
	switch rt.Action {
	case route.ActionDirect:
		if !rt.ResponseHeaders.Empty() {
			rt.ResponseHeaders.Apply(route.HTTPHeader(w.Header()))
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(rt.DirectResponse.Status)
		io.WriteString(w, rt.DirectResponse.Body)
		return
	case route.ActionRedirect:
		w.Header().Set("Location", rt.RedirectLocation(&rreq))
		w.WriteHeader(rt.Redirect.Code)
		return
	}
	f := forwarder{h: h, spec: spec, g: g, rt: rt, rec: rec}
	f.serve(w, r)
}

// recPool holds the records of the net/http path.
var recPool = sync.Pool{New: func() any { return new(reqRecord) }}

// begin starts the record of a net/http request; its recWriter wraps the
// response writer.
func (h *httpHandler) begin(ls *listenerSpec, spec *hcmSpec, w http.ResponseWriter, r *http.Request, peer string) *reqRecord {
	t := h.ll.p.tel
	rec := recPool.Get().(*reqRecord)
	t.begin(rec, ls, peer, r.TLS != nil)
	rec.rw = recWriter{ResponseWriter: w, rec: rec}
	rec.sampling = spec.sampling
	rec.method, rec.authority, rec.path, rec.protocol = r.Method, r.Host, r.URL.Path, r.Proto
	rec.grpc = isGRPC(r.Header.Get("Content-Type"))
	if rec.rep == repDestination {
		if v := r.Header.Get(sourceHeader); v != "" {
			rec.setSource(v)
		}
		r.Header.Del(sourceHeader)
	}
	if r.ContentLength > 0 {
		rec.bytesIn = r.ContentLength
	}
	if t.wantRecord() {
		rec.userAgent = r.UserAgent()
		t.startTrace(rec, route.HTTPHeader(r.Header))
	}
	return rec
}

// finish accounts for the request of rec and recycles rec.
func (h *httpHandler) finish(rec *reqRecord, r *http.Request) {
	if rec.grpcStatus == "" {
		rec.grpcStatus = grpcStatusOf(rec.rw.Header())
	}
	if rec.requestID == "" {
		rec.requestID = r.Header.Get("X-Request-Id")
	}
	h.ll.p.tel.finish(rec)
	*rec = reqRecord{}
	recPool.Put(rec)
}

// localReply answers a request the proxy handles itself.
func (h *httpHandler) localReply(w http.ResponseWriter, status int, reason string) {
	h.ll.p.metrics.localReply(h.ll.name, reason)
	if rec := recordOf(w); rec != nil {
		rec.localReply(status, reason)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Weft-Reason", reason)
	w.WriteHeader(status)
	io.WriteString(w, strings.ReplaceAll(reason, "_", " ")+"\n")
}

// hopHeaders are removed when forwarding (RFC 9110 7.6.1), in canonical form.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopHeaders strips hop-by-hop headers, including those listed in
// Connection. "Te: trailers" is kept for gRPC.
func removeHopHeaders(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	te := h.Get("Te")
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if te != "" && strings.Contains(strings.ToLower(te), "trailers") {
		h["Te"] = []string{"trailers"}
	}
}

func isUpgrade(h http.Header) bool {
	for _, v := range h["Connection"] {
		for sf := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(sf), "upgrade") {
				return h.Get("Upgrade") != ""
			}
		}
	}
	return false
}

// newRequestID returns a random UUID v4, as Envoy's x-request-id.
func newRequestID() string {
	var s [36]byte
	fillRequestID(&s)
	return string(s[:])
}

// fillRequestID writes a random UUID v4 into s without allocating.
func fillRequestID(s *[36]byte) {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
}

// setForwardedHeaders applies Envoy's x-forwarded-* and x-request-id rules.
func setForwardedHeaders(out http.Header, r *http.Request, spec *hcmSpec) {
	if spec.useRemoteAddress {
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			if prior := out.Get("X-Forwarded-For"); prior != "" {
				out.Set("X-Forwarded-For", prior+", "+ip)
			} else {
				out.Set("X-Forwarded-For", ip)
			}
		}
		out.Set("X-Forwarded-Proto", scheme(r))
	} else if out.Get("X-Forwarded-Proto") == "" {
		out.Set("X-Forwarded-Proto", scheme(r))
	}
	if spec.generateRequestID && out.Get("X-Request-Id") == "" {
		out.Set("X-Request-Id", newRequestID())
	}
}

func scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// transportFor returns the upstream transport of a cluster: shared ones
// for plaintext, one per TLS configuration otherwise (pools stay keyed by
// address within each).
func (p *Proxy) transportFor(cl *cluster.Cluster) *http.Transport {
	if cl.TLS == nil {
		if cl.Protocol == cluster.HTTP2 {
			return p.h2
		}
		return p.h1
	}
	key := cl.TLS.Key + "|" + cl.Protocol.String()
	if t, ok := p.tlsTransports.Load(key); ok {
		return t.(*http.Transport)
	}
	var protos http.Protocols
	if cl.Protocol == cluster.HTTP2 {
		protos.SetHTTP2(true)
	} else {
		protos.SetHTTP1(true)
	}
	base := p.h1
	tc := cl.TLS
	t := &http.Transport{
		// Dialing TLS here makes handshake failures connect failures (503),
		// as Envoy counts them.
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialTLS(ctx, addr, connectTimeout(ctx), tc)
		},
		TLSClientConfig:       tc.Config,
		MaxIdleConnsPerHost:   base.MaxIdleConnsPerHost,
		IdleConnTimeout:       base.IdleConnTimeout,
		DisableCompression:    true,
		ExpectContinueTimeout: base.ExpectContinueTimeout,
		Protocols:             &protos,
	}
	actual, _ := p.tlsTransports.LoadOrStore(key, t)
	return actual.(*http.Transport)
}

// newTransports returns the shared upstream transports. They pool
// connections by endpoint address, so pools survive config updates.
func newTransports() (h1, h2 *http.Transport) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: connectTimeout(ctx), KeepAlive: 30 * time.Second}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &connectError{err}
		}
		return c, nil
	}
	mk := func(p func(*http.Protocols)) *http.Transport {
		var protos http.Protocols
		p(&protos)
		return &http.Transport{
			DialContext:           dial,
			MaxIdleConnsPerHost:   1024,
			IdleConnTimeout:       time.Hour,
			DisableCompression:    true,
			ExpectContinueTimeout: time.Second,
			Protocols:             &protos,
		}
	}
	return mk(func(p *http.Protocols) { p.SetHTTP1(true) }), mk(func(p *http.Protocols) { p.SetUnencryptedHTTP2(true) })
}

type connectTimeoutKey struct{}

// connectTimeout is the routed cluster's connect timeout carried in ctx by
// the forwarder (5s, Envoy's default, when absent).
func connectTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(connectTimeoutKey{}).(time.Duration); ok && d > 0 {
		return d
	}
	return 5 * time.Second
}

// connectError marks a failure to establish the upstream connection.
type connectError struct{ err error }

func (e *connectError) Error() string { return "connect: " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func isConnectError(err error) bool {
	var ce *connectError
	return errors.As(err, &ce)
}
