package proxy

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/cluster/outlier"
	"github.com/weft-mesh/weft/proxy/http1"
	"github.com/weft-mesh/weft/proxy/route"
)

// The fast HTTP/1.1 path. net/http allocates a request, a header map and a
// response writer per request and copies through bufio twice; this path
// reads heads into pooled buffers, edits them in place and writes head and
// small bodies with one syscall each way. It handles everything HTTP/1.1
// clients send except requests routed to HTTP/2 clusters, which it bridges
// to the general forwarder (h1bridge.go). HTTP/2 connections (prior
// knowledge) are detected by their preface and handed to net/http.

// h2Preface is the HTTP/2 client connection preface.
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// h1Conn is one downstream connection on the fast path. Not safe for
// concurrent use; pooled between connections.
type h1Conn struct {
	ll     *liveListener
	conn   net.Conn
	rd     *http1.Reader
	req    http1.RequestHead
	resp   http1.ResponseHead
	wbuf   []byte
	ridb   [36]byte
	secure bool   // the client connection is TLS
	extra  []byte // one extra header line for the next local reply
	// peer is the verified mTLS peer's SPIFFE ID ("" for none) and xfcc
	// the x-forwarded-client-cert set toward the application ("" for
	// none); both are computed once per connection.
	peer, xfcc string
	ah         authHeaders // the auth filters' view of the current request
	rec        reqRecord   // telemetry of the current request
}

// tlsHandshakeTimeout bounds a downstream TLS handshake.
const tlsHandshakeTimeout = 10 * time.Second

// handshake completes the server side of a downstream TLS handshake within
// tlsHandshakeTimeout; nil (counted) when it fails.
func (ll *liveListener) handshake(c net.Conn, cfg *tls.Config) *tls.Conn {
	tc := tls.Server(c, cfg)
	tc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		ll.p.metrics.localReply(ll.name, "tls_handshake_failed")
		return nil
	}
	tc.SetDeadline(time.Time{})
	return tc
}

var h1Conns = sync.Pool{New: func() any { return &h1Conn{wbuf: make([]byte, 0, 4096)} }}

// serveConn serves one accepted connection of an HTTP listener: HTTP/2
// prior knowledge goes to net/http, the rest stays on the fast path.
func (ll *liveListener) serveConn(c net.Conn) {
	ls := ll.spec.Load()
	spec := ls.http
	if spec == nil {
		c.Close()
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	var src io.Reader
	var peer string
	c, secure := ll.sniffTLS(c, ls)
	if secure {
		// TLS: ALPN decides between HTTP/2 (net/http) and HTTP/1.1.
		tc := ll.handshake(c, ls.tls.Config)
		if tc == nil {
			c.Close()
			return
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			if !ll.h2conns.deliver(tc) {
				c.Close()
			}
			return
		}
		cs := tc.ConnectionState()
		peer = downstreamPeer(ls.tls.Config, &cs)
		c, src = tc, tc
	} else {
		// Cleartext: the HTTP/2 preface (prior knowledge) goes to net/http.
		var pre [len(h2Preface)]byte
		n := 0
		if spec.headersTimeout > 0 {
			c.SetReadDeadline(time.Now().Add(spec.headersTimeout))
		}
		for n < len(pre) {
			m, err := c.Read(pre[n:])
			n += m
			if err != nil {
				c.Close()
				return
			}
			if !bytes.HasPrefix([]byte(h2Preface), pre[:n]) {
				break
			}
		}
		pc := &prefixConn{Conn: c, prefix: append([]byte(nil), pre[:n]...)}
		if n == len(pre) && string(pre[:]) == h2Preface {
			if !ll.h2conns.deliver(pc) {
				c.Close()
			}
			return
		}
		src = pc
	}
	hc := h1Conns.Get().(*h1Conn)
	hc.ll, hc.conn, hc.secure = ll, c, secure
	hc.peer, hc.xfcc = peer, xfccFor(ls, peer)
	hc.rd = http1.NewReader(src, spec.maxHeaderBytes)
	state := new(atomic.Int32)
	ll.mu.Lock()
	ll.idle[c] = state
	ll.mu.Unlock()
	defer func() {
		ll.mu.Lock()
		delete(ll.idle, c)
		ll.mu.Unlock()
		c.Close()
		hc.rd.Release()
		hc.ll, hc.conn, hc.rd = nil, nil, nil
		hc.peer, hc.xfcc = "", ""
		h1Conns.Put(hc)
	}()
	// The idle timeout is enforced with a read deadline that is refreshed
	// only when less than half of it is left, so that most requests cost no
	// deadline updates; a request body may therefore be read for at least
	// half the idle timeout (default 1h) before the connection is cut.
	var deadline time.Time
	if spec.headersTimeout > 0 {
		c.SetReadDeadline(time.Time{}) // the sniffing deadline
	}
	for {
		spec = ll.spec.Load().http
		if spec == nil || ll.closed.Load() {
			return
		}
		if spec.idleTimeout > 0 {
			if now := time.Now(); deadline.IsZero() || deadline.Sub(now) < spec.idleTimeout/2 {
				deadline = now.Add(spec.idleTimeout)
				c.SetReadDeadline(deadline)
			}
		} else if !deadline.IsZero() {
			deadline = time.Time{}
			c.SetReadDeadline(deadline)
		}
		state.Store(0)
		if ll.closed.Load() {
			return
		}
		err := hc.rd.ReadRequestHead(&hc.req)
		if err == nil && !state.CompareAndSwap(0, 1) {
			return // the listener is closing
		}
		if err != nil {
			switch {
			case errors.Is(err, http1.ErrHeaderTooLarge):
				hc.reply(http.StatusRequestHeaderFieldsTooLarge, "header_too_large", false)
			case errors.Is(err, http1.ErrMalformed):
				hc.reply(http.StatusBadRequest, "bad_request", false)
			}
			return
		}
		if !hc.serveRequest(spec) {
			return
		}
	}
}

// bstr views b as a string without copying; valid while b is.
func bstr(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// serveRequest handles the request in hc.req, accounts for it, and
// reports whether the connection may serve another one.
func (hc *h1Conn) serveRequest(spec *hcmSpec) bool {
	t := hc.ll.p.tel
	r := &hc.rec
	req := &hc.req
	t.begin(r, hc.ll.spec.Load(), hc.peer, hc.secure)
	r.sampling = spec.sampling
	r.method, r.authority = bstr(req.Method), bstr(req.Host)
	r.path = pathOnly(bstr(req.OriginForm()))
	r.protocol = "HTTP/1.1"
	if req.Minor == 0 {
		r.protocol = "HTTP/1.0"
	}
	if ct, ok := req.Get("content-type"); ok {
		r.grpc = isGRPC(bstr(ct))
	}
	if r.rep == repDestination {
		if v, ok := req.Get(sourceHeader); ok {
			r.setSource(bstr(v))
			req.Del(sourceHeader)
		}
	}
	if cl, chunked := req.BodyFraming(); !chunked && cl > 0 {
		r.bytesIn = cl
	}
	if t.wantRecord() {
		ua, _ := req.Get("user-agent")
		r.userAgent = bstr(ua)
		t.startTrace(r, h1Headers{req})
	}
	keep := hc.handle(spec)
	if r.requestID == "" && t.wantRecord() {
		rid, _ := req.Get("x-request-id")
		r.requestID = bstr(rid)
	}
	t.finish(r)
	return keep
}

// handle serves the request in hc.req.
func (hc *h1Conn) handle(spec *hcmSpec) bool {
	req := &hc.req
	g := hc.ll.p.graph.Load()
	cl, chunked := req.BodyFraming()
	bodyPending := chunked || cl > 0
	keep := !req.Close && !bodyPending // for local replies sent before the body is read
	table := spec.inline
	if table == nil {
		table = g.routes[spec.rdsName]
	}
	if pass, cont := hc.authorizeH1(spec, keep); !pass {
		return cont
	}
	if bstr(req.Method) == http.MethodConnect {
		return hc.connect(spec, table, g)
	}
	if req.Upgrade {
		if v, _ := req.Get("upgrade"); !spec.websocket || !equalFoldASCII(v, "websocket") {
			return hc.reply(http.StatusForbidden, reasonUpgradeDenied, false)
		}
	}
	if table == nil {
		return hc.reply(http.StatusNotFound, reasonNoRoute, keep)
	}
	origin := req.OriginForm()
	rreq := route.Request{Authority: bstr(req.Host), Method: bstr(req.Method), Path: bstr(origin), Header: h1Headers{req}}
	rt := table.Match(&rreq)
	if rt == nil {
		return hc.reply(http.StatusNotFound, reasonNoRoute, keep)
	}
	switch rt.Action {
	case route.ActionDirect:
		hc.rec.route = rt.Name
		return hc.replyBody(rt.DirectResponse.Status, "", "text/plain", rt.DirectResponse.Body, keep)
	case route.ActionRedirect:
		hc.rec.route = rt.Name
		return hc.replyBody(rt.Redirect.Code, rt.RedirectLocation(&rreq), "", "", keep)
	}
	hc.rec.route = rt.Name
	clu := g.clusters[rt.PickCluster(rand.Uint64())]
	if clu == nil {
		return hc.reply(http.StatusServiceUnavailable, reasonNoCluster, keep)
	}
	hc.rec.setCluster(clu)
	if act := faultAction(spec, rt, h1Headers{req}, clu.Name); act.Delay > 0 || act.AbortStatus > 0 {
		if act.Delay > 0 {
			hc.rec.flags |= flagDI
			time.Sleep(act.Delay)
		}
		if act.AbortStatus > 0 {
			if act.GRPCStatus >= 0 {
				hc.extra = append(hc.extra[:0], "grpc-status: "...)
				hc.extra = strconv.AppendInt(hc.extra, int64(act.GRPCStatus), 10)
			}
			return hc.reply(act.AbortStatus, reasonFaultAbort, keep)
		}
	}
	if clu.Protocol == cluster.HTTP2 || req.Minor == 0 {
		// HTTP/2 upstreams, and HTTP/1.0 clients (which cannot take chunked
		// responses), go through the general forwarder.
		return hc.bridge(spec, g, rt, string(origin))
	}
	return hc.forward(spec, rt, clu, &rreq, origin)
}

// forward sends the request to an endpoint of clu, with retries, and relays
// the response.
func (hc *h1Conn) forward(spec *hcmSpec, rt *route.Route, clu *cluster.Cluster, rreq *route.Request, origin []byte) bool {
	p := hc.ll.p
	req := &hc.req
	info := routeHash(rt, rreq) // before the head is edited
	if len(origin) != len(req.Target) {
		// Absolute form (HTTP proxy mode): forward in origin form.
		if _, ok := req.Get("host"); !ok {
			req.SetBytes("host", req.Host)
		}
		req.Target = origin
	}
	if np := rt.Rewrite(rreq.Path); np != rreq.Path {
		req.Target = []byte(np)
	}
	req.RemoveHopByHop(spec.websocket)
	hc.setForwarded(spec)
	hc.setTelemetryHeaders()
	if !rt.RequestHeaders.Empty() {
		rt.RequestHeaders.Apply(h1Headers{req})
	}
	if rt.HostRewrite != "" {
		req.Set("host", rt.HostRewrite)
	}
	req.Minor = 1
	clientClose := req.Close

	bl, chunked := req.BodyFraming()
	hasBody := chunked || bl > 0
	var body []byte
	buffered := true
	if hasBody {
		body, buffered = hc.rd.TakeBufferedBody(bl, chunked, false)
	}
	pol := rt.Retry
	attempts := 1
	if pol != nil && buffered && !req.Upgrade && !req.Expect100 {
		attempts += int(pol.NumRetries)
	}
	var deadline time.Time
	if rt.Timeout > 0 {
		deadline = time.Now().Add(rt.Timeout)
	}
	if len(rt.Mirrors) > 0 && buffered {
		hc.mirror(rt, body)
	}
	if ov := clu.AdmitRequest(); ov != cluster.OverflowNone {
		return hc.overflow(ov, buffered && !clientClose)
	}
	defer clu.ReleaseRequest()
	var tried [4]*cluster.Endpoint
	stale := 0
	retryHeld := false // a retry slot (max_retries / budget) is held for this attempt
	defer func() {
		if retryHeld {
			clu.ReleaseRetry()
		}
	}()
	rec := &hc.rec
	timeUp := rec.rep != repDestination
	var upStart time.Time
	if timeUp {
		upStart = p.tel.clock()
	}
	for attempt := 0; ; attempt++ {
		ep, idx, err := pickAvoiding(clu, info, tried[:min(attempt, len(tried))])
		if err != nil {
			clu.Stats.NoEndpoint.Add(1)
			return hc.reply(http.StatusServiceUnavailable, reasonNoHealthy, !clientClose && !hasBody || buffered && !clientClose)
		}
		if attempt < len(tried) {
			tried[attempt] = ep
		}
		rec.attempts++
		rec.setEndpoint(clu, idx)
		clu.Stats.Requests.Add(1)
		tryDeadline := deadline
		if pol != nil && pol.PerTryTimeout > 0 {
			if t := time.Now().Add(pol.PerTryTimeout); tryDeadline.IsZero() || t.Before(tryDeadline) {
				tryDeadline = t
			}
		}
		ticket := ep.Load.Start()
		uc, status, reason, sent := hc.exchange(p, ep, clu, tryDeadline, body, buffered, bl, chunked)
		if retryHeld {
			clu.ReleaseRetry()
			retryHeld = false
		}
		if uc == nil { // no response head
			if reason == reasonOverflow {
				ep.Load.Done(ticket, false) // the limit is ours, not the endpoint's
				return hc.reply(status, reason, buffered && !clientClose)
			}
			switch {
			case reason == "stale" && stale == 0:
				ep.Load.Done(ticket, false) // retried at once on a fresh connection
			case reason == "stale":
				ep.Finish(ticket, outlier.Result{Failure: outlier.Reset})
			default:
				ep.Finish(ticket, outlier.Result{Failure: failureKind(reason)})
			}
			if reason == reasonDownstream {
				p.metrics.localReply(hc.ll.name, reasonDownstream)
				rec.flags |= flagDC
				rec.reason = reasonDownstream
				return false
			}
			if reason == "stale" && stale == 0 {
				stale++ // a pooled connection the upstream had closed: try once more
				attempt--
				continue
			}
			if reason == "stale" {
				status, reason = http.StatusBadGateway, reasonReset
			}
			switch reason {
			case reasonConnectFail:
				clu.Stats.ConnectFail.Add(1)
			case reasonTimeout:
				clu.Stats.Timeouts.Add(1)
			}
			overall := !deadline.IsZero() && !time.Now().Before(deadline)
			if attempt+1 < attempts && !overall && (reason != reasonTimeout || pol.PerTryTimeout > 0) &&
				pol.RetriableReset(reason == reasonConnectFail, false, sent) && clu.AdmitRetry() == cluster.OverflowNone {
				retryHeld = true
				clu.Stats.Retries.Add(1)
				time.Sleep(backoff(pol, attempt))
				continue
			}
			if attempts > 1 && attempt+1 >= attempts {
				rec.flags |= flagURX
			}
			return hc.reply(status, reason, buffered && !clientClose)
		}
		if timeUp {
			rec.upDur, rec.hasUp = p.tel.clock().Sub(upStart), true
		}
		rec.upstreamPeer = uc.peer
		resp := &hc.resp
		ep.Finish(ticket, outlier.Result{Status: resp.Status})
		if attempt+1 < attempts && pol.RetriableStatus(resp.Status) && (deadline.IsZero() || time.Now().Before(deadline)) &&
			clu.AdmitRetry() == cluster.OverflowNone {
			retryHeld = true
			rl, rch, reof := resp.BodyFraming()
			if _, err := uc.rd.CopyBody(io.Discard, rl, rch, reof); err == nil && !resp.Close && !reof {
				uc.conn.SetDeadline(time.Time{})
				uc.put(time.Now())
			} else {
				uc.close()
			}
			clu.Stats.Retries.Add(1)
			time.Sleep(backoff(pol, attempt))
			continue
		}
		clu.Stats.Responses[min(resp.Status/100, 5)].Add(1)
		if attempts > 1 && attempt+1 >= attempts && pol.RetriableStatus(resp.Status) {
			rec.flags |= flagURX
		}
		return hc.relay(uc, rt, clientClose)
	}
}

// exchange writes the request to a pooled connection to ep and reads the
// response head into hc.resp. With no response it returns a nil conn, the
// local reply status and reason ("stale" for a reused connection that was
// closed before answering), and whether the request was fully sent.
func (hc *h1Conn) exchange(p *Proxy, ep *cluster.Endpoint, clu *cluster.Cluster, deadline time.Time, body []byte, buffered bool, bl int64, chunked bool) (*upConn, int, string, bool) {
	req := &hc.req
	uc, err := p.h1PoolFor(ep.Addr, clu.TLS).get(contextBackground, clu, time.Now())
	if errors.Is(err, errConnLimit) {
		hc.extra = append(hc.extra[:0], "x-weft-overflow: max_connections"...)
		return nil, http.StatusServiceUnavailable, reasonOverflow, false
	}
	if err != nil {
		return nil, http.StatusServiceUnavailable, reasonConnectFail, false
	}
	if !deadline.IsZero() {
		uc.conn.SetDeadline(deadline)
	}
	hc.wbuf = http1.AppendRequestHead(hc.wbuf[:0], req)
	if buffered {
		hc.wbuf = append(hc.wbuf, body...)
	}
	_, err = uc.conn.Write(hc.wbuf)
	sent := err == nil && buffered
	if err == nil && !buffered && !req.Expect100 {
		_, err = hc.rd.CopyBody(uc.conn, bl, chunked, false)
		if err != nil && !errors.Is(err, http1.ErrBodyWrite) {
			uc.close()
			return nil, 0, reasonDownstream, false
		}
		sent = err == nil
	}
	for err == nil {
		err = uc.rd.ReadResponseHead(&hc.resp, req.Method)
		if err != nil {
			break
		}
		s := hc.resp.Status
		if s >= 200 || s == http.StatusSwitchingProtocols {
			return uc, 0, "", true
		}
		if s == http.StatusContinue && req.Expect100 && !buffered {
			if _, err = io.WriteString(hc.conn, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
				uc.close()
				return nil, 0, reasonDownstream, false
			}
			if _, err = hc.rd.CopyBody(uc.conn, bl, chunked, false); err != nil && !errors.Is(err, http1.ErrBodyWrite) {
				uc.close()
				return nil, 0, reasonDownstream, false
			}
			sent = err == nil
			continue
		}
		// Other interim responses (103 Early Hints) are relayed as they are.
		hc.resp.RemoveHopByHop(false)
		if _, err = hc.conn.Write(http1.AppendResponseHead(hc.wbuf[:0], &hc.resp)); err != nil {
			uc.close()
			return nil, 0, reasonDownstream, false
		}
	}
	reused := uc.reused
	uc.close()
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusGatewayTimeout, reasonTimeout, sent
	case reused && (errors.Is(err, io.EOF) || isConnReset(err)) && buffered:
		return nil, 0, "stale", false
	case errors.Is(err, http1.ErrMalformed):
		return nil, http.StatusBadGateway, reasonReset, sent
	}
	return nil, http.StatusBadGateway, reasonReset, sent
}

// relay writes hc.resp and its body from uc to the client and returns uc to
// its pool when it can be reused.
func (hc *h1Conn) relay(uc *upConn, rt *route.Route, clientClose bool) bool {
	resp := &hc.resp
	rec := &hc.rec
	rec.status = resp.Status
	if rec.grpc {
		if v, ok := resp.Get("grpc-status"); ok {
			rec.grpcStatus = string(v)
		}
	}
	if resp.Status == http.StatusSwitchingProtocols {
		return hc.tunnel(uc)
	}
	resp.RemoveHopByHop(false)
	if !rt.ResponseHeaders.Empty() {
		rt.ResponseHeaders.Apply(h1RespHeaders{resp})
	}
	rl, rch, reof := resp.BodyFraming()
	keepClient := !clientClose && !reof
	if !keepClient {
		resp.Set("connection", "close")
	}
	resp.Minor = 1
	hc.wbuf = http1.AppendResponseHead(hc.wbuf[:0], resp)
	upOK := !resp.Close && !reof
	if b, ok := uc.rd.TakeBufferedBody(rl, rch, reof); ok {
		hc.wbuf = append(hc.wbuf, b...)
		rec.bytesOut = int64(len(b))
		if _, err := hc.conn.Write(hc.wbuf); err != nil {
			keepClient = false
			rec.flags |= flagDC
		}
	} else if _, err := hc.conn.Write(hc.wbuf); err != nil {
		keepClient, upOK = false, false
		rec.flags |= flagDC
	} else if n, err := uc.rd.CopyBody(hc.conn, rl, rch, reof); err != nil && !(reof && errors.Is(err, io.EOF)) {
		// Either side failed mid-body: the client cannot be told with a
		// status any more, so the connection is closed.
		rec.bytesOut = n
		if !errors.Is(err, http1.ErrBodyWrite) {
			hc.ll.p.metrics.localReply(hc.ll.name, reasonReset)
			rec.flags |= flagUR
		} else {
			rec.flags |= flagDC
		}
		keepClient, upOK = false, false
	} else {
		rec.bytesOut = n
	}
	if upOK {
		uc.conn.SetDeadline(time.Time{})
		uc.put(time.Now())
	} else {
		uc.close()
	}
	return keepClient
}

// tunnel relays a 101 response and then joins both connections.
func (hc *h1Conn) tunnel(uc *upConn) bool {
	defer uc.close()
	uc.conn.SetDeadline(time.Time{})
	hc.wbuf = http1.AppendResponseHead(hc.wbuf[:0], &hc.resp)
	if _, err := hc.conn.Write(hc.wbuf); err != nil {
		return false
	}
	if err := drainBuffered(hc.conn, uc.rd); err != nil {
		return false
	}
	if err := drainBuffered(uc.conn, hc.rd); err != nil {
		return false
	}
	splice(hc.conn, uc.conn, 0)
	return false
}

// drainBuffered writes the bytes r has buffered to w.
func drainBuffered(w io.Writer, r *http1.Reader) error {
	if n := r.Buffered(); n > 0 {
		b := make([]byte, n)
		m, _ := r.Read(b)
		_, err := w.Write(b[:m])
		return err
	}
	return nil
}

// connect tunnels a CONNECT request to the routed cluster.
func (hc *h1Conn) connect(spec *hcmSpec, table *route.Table, g *graph) bool {
	up, ep, clu, status, reason := dialConnect(contextBackground, spec, table, g,
		&route.Request{Authority: bstr(hc.req.Host), Method: http.MethodConnect, Header: h1Headers{&hc.req}})
	if up == nil {
		return hc.reply(status, reason, false)
	}
	defer up.Close()
	if _, err := io.WriteString(hc.conn, connectTunnelOK); err != nil {
		return false
	}
	if err := drainBuffered(up, hc.rd); err != nil {
		return false
	}
	hc.ll.tunnel(hc.conn, up, ep, clu, spec)
	return false
}

// setForwarded applies Envoy's x-forwarded-* and x-request-id rules.
func (hc *h1Conn) setForwarded(spec *hcmSpec) {
	req := &hc.req
	if spec.useRemoteAddress {
		if ap, ok := hc.conn.RemoteAddr().(*net.TCPAddr); ok {
			var ipb [64]byte
			req.AppendList("x-forwarded-for", ap.AddrPort().Addr().AppendTo(ipb[:0]))
		}
		req.Set("x-forwarded-proto", hc.scheme())
	} else if _, ok := req.Get("x-forwarded-proto"); !ok {
		req.Set("x-forwarded-proto", hc.scheme())
	}
	if spec.generateRequestID {
		if _, ok := req.Get("x-request-id"); !ok {
			fillRequestID(&hc.ridb)
			req.SetBytes("x-request-id", hc.ridb[:])
		}
	}
}

func (hc *h1Conn) scheme() string {
	if hc.secure {
		return "https"
	}
	return "http"
}

// mirror sends copies of the current (edited) request to the route's
// mirror clusters, with the host suffixed "-shadow".
func (hc *h1Conn) mirror(rt *route.Route, body []byte) {
	req := &hc.req
	for _, m := range rt.Mirrors {
		if !m.Hit(rand.Uint64()) {
			continue
		}
		host, _ := req.Get("host")
		orig := string(host)
		req.Set("host", shadowHost(orig))
		raw := http1.AppendRequestHead(nil, req)
		raw = append(raw, body...)
		req.Set("host", orig)
		hc.ll.p.mirrorRaw(m.Cluster, string(req.Method), raw)
	}
}

// overflow answers a request refused by a circuit breaker: 503 with the
// limit in x-weft-overflow, as Envoy's x-envoy-overloaded.
func (hc *h1Conn) overflow(ov cluster.Overflow, keep bool) bool {
	hc.req.Close = !keep
	hc.extra = append(hc.extra[:0], "x-weft-overflow: "...)
	hc.extra = append(hc.extra, ov...)
	return hc.reply(http.StatusServiceUnavailable, reasonOverflow, keep)
}

// reply writes a local reply with the reason in x-weft-reason.
func (hc *h1Conn) reply(status int, reason string, keep bool) bool {
	hc.ll.p.metrics.localReply(hc.ll.name, reason)
	hc.rec.localReply(status, reason)
	hc.rec.bytesOut = int64(len(reason) + 1)
	b := hc.wbuf[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\ncontent-type: text/plain\r\nx-weft-reason: "...)
	b = append(b, reason...)
	if len(hc.extra) > 0 {
		b = append(b, "\r\n"...)
		b = append(b, hc.extra...)
		hc.extra = hc.extra[:0]
	}
	b = append(b, "\r\ncontent-length: "...)
	b = strconv.AppendInt(b, int64(len(reason)+1), 10)
	if !keep {
		b = append(b, "\r\nconnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		if c == '_' {
			c = ' '
		}
		b = append(b, c)
	}
	b = append(b, '\n')
	hc.wbuf = b
	_, err := hc.conn.Write(b)
	return keep && err == nil
}

// replyBody writes a configured response (direct response or redirect).
func (hc *h1Conn) replyBody(status int, location, contentType, body string, keep bool) bool {
	hc.rec.status = status
	b := hc.wbuf[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\n"...)
	if location != "" {
		b = append(b, "location: "...)
		b = append(b, location...)
		b = append(b, "\r\n"...)
	}
	if contentType != "" {
		b = append(b, "content-type: "...)
		b = append(b, contentType...)
		b = append(b, "\r\n"...)
	}
	return hc.finishReply(b, body, keep)
}

// finishReply appends content-length (and connection: close unless keep),
// the body, and writes the local reply; it reports whether the connection
// stays open.
func (hc *h1Conn) finishReply(b []byte, body string, keep bool) bool {
	hc.rec.bytesOut = int64(len(body))
	b = append(b, "content-length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if !keep {
		b = append(b, "\r\nconnection: close"...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	hc.wbuf = b
	_, err := hc.conn.Write(b)
	return keep && err == nil
}
