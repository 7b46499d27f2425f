package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/cluster/outlier"
	"github.com/weft-mesh/weft/proxy/route"
)

// maxReplayBody bounds how much of a request body is kept to replay it on a
// retry; larger bodies are streamed and not retried.
const maxReplayBody = 64 << 10

// forwarder carries one request through route → cluster → endpoint, with
// retries, and copies the response back. It lives for one request.
type forwarder struct {
	h    *httpHandler
	spec *hcmSpec
	g    *graph
	rt   *route.Route
	rec  *reqRecord // the request's telemetry record
}

var replayBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (f *forwarder) serve(w http.ResponseWriter, r *http.Request) {
	p := f.h.ll.p
	name := f.rt.PickCluster(rand.Uint64())
	cl := f.g.clusters[name]
	rec := f.rec
	rec.route = f.rt.Name
	if cl == nil {
		f.h.localReply(w, http.StatusServiceUnavailable, reasonNoCluster)
		return
	}
	rec.setCluster(cl)
	if act := faultAction(f.spec, f.rt, route.HTTPHeader(r.Header), cl.Name); act.Delay > 0 || act.AbortStatus > 0 {
		if act.Delay > 0 {
			rec.flags |= flagDI
		}
		if act.Delay > 0 && !sleepCtx(r.Context(), act.Delay) {
			rec.flags |= flagDC
			return
		}
		if act.AbortStatus > 0 {
			if act.GRPCStatus >= 0 {
				rec.localReply(http.StatusOK, reasonFaultAbort)
				rec.grpcStatus = strconv.Itoa(act.GRPCStatus)
				writeGRPCAbort(w, act.GRPCStatus)
				return
			}
			f.h.localReply(w, act.AbortStatus, reasonFaultAbort)
			return
		}
	}
	ctx := r.Context()
	if d := f.rt.Timeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	ctx = context.WithValue(ctx, connectTimeoutKey{}, cl.ConnectTimeout)

	out := r.Clone(ctx)
	out.RequestURI = ""
	out.URL.Scheme = "http"
	rreq := routeRequest(r)
	rewriteURL(f.rt, out, rreq.Path)
	if f.rt.HostRewrite != "" {
		out.Host = f.rt.HostRewrite
	}
	upgrade := ""
	if isUpgrade(r.Header) {
		upgrade = r.Header.Get("Upgrade")
	}
	removeHopHeaders(out.Header)
	if upgrade != "" {
		out.Header.Set("Connection", "Upgrade")
		out.Header.Set("Upgrade", upgrade)
	}
	setForwardedHeaders(out.Header, r, f.spec)
	p.tel.setHeaders(rec, out.Header)
	rec.requestID = out.Header.Get("X-Request-Id")
	if !f.rt.RequestHeaders.Empty() {
		f.rt.RequestHeaders.Apply(route.HTTPHeader(out.Header))
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}

	pol := f.rt.Retry
	attempts := 1
	var replay *bytes.Buffer
	retries := 0
	if pol != nil && upgrade == "" {
		retries = int(pol.NumRetries)
	}
	if (retries > 0 || len(f.rt.Mirrors) > 0) && upgrade == "" {
		switch {
		case out.Body == nil:
			attempts += retries
		case r.ContentLength > 0 && r.ContentLength <= maxReplayBody:
			// Buffered so that it can be replayed (retries) or copied (mirrors).
			replay = replayBufs.Get().(*bytes.Buffer)
			replay.Reset()
			defer replayBufs.Put(replay)
			if _, err := io.Copy(replay, io.LimitReader(r.Body, maxReplayBody+1)); err != nil {
				f.h.localReply(w, http.StatusBadRequest, reasonDownstream)
				return
			}
			attempts += retries
		}
	}
	if len(f.rt.Mirrors) > 0 && (out.Body == nil || replay != nil) {
		var body []byte
		if replay != nil {
			body = replay.Bytes()
		}
		for _, m := range f.rt.Mirrors {
			if m.Hit(rand.Uint64()) {
				p.mirrorHTTP(m.Cluster, out, body)
			}
		}
	}
	transport := p.transportFor(cl)
	if cl.TLS != nil {
		out.URL.Scheme = "https"
	}
	info := routeHash(f.rt, &rreq)
	if ov := cl.AdmitRequest(); ov != cluster.OverflowNone {
		w.Header().Set("X-Weft-Overflow", string(ov))
		f.h.localReply(w, http.StatusServiceUnavailable, reasonOverflow)
		return
	}
	defer cl.ReleaseRequest()
	retryHeld := false
	defer func() {
		if retryHeld {
			cl.ReleaseRetry()
		}
	}()
	var tried [4]*cluster.Endpoint
	timeUp := rec.rep != repDestination
	var upStart time.Time
	if timeUp {
		upStart = p.tel.clock()
	}
	for attempt := 0; ; attempt++ {
		ep, idx, err := pickAvoiding(cl, info, tried[:min(attempt, len(tried))])
		if err != nil {
			cl.Stats.NoEndpoint.Add(1)
			f.h.localReply(w, http.StatusServiceUnavailable, reasonNoHealthy)
			return
		}
		if attempt < len(tried) {
			tried[attempt] = ep
		}
		rec.attempts++
		rec.setEndpoint(cl, idx)
		cl.Stats.Requests.Add(1)
		out.URL.Host = ep.Addr
		if replay != nil {
			out.Body = io.NopCloser(bytes.NewReader(replay.Bytes()))
			out.ContentLength = int64(replay.Len())
		}
		tryCtx, tryCancel := ctx, context.CancelFunc(func() {})
		if pol != nil && pol.PerTryTimeout > 0 {
			tryCtx, tryCancel = context.WithTimeout(ctx, pol.PerTryTimeout)
		}
		ticket := ep.Load.Start()
		resp, err := transport.RoundTrip(out.WithContext(tryCtx))
		if retryHeld {
			cl.ReleaseRetry()
			retryHeld = false
		}
		if err != nil {
			tryCancel()
			if r.Context().Err() != nil {
				ep.Finish(ticket, outlier.Result{Failure: outlier.ClientCancel})
				p.metrics.localReply(f.h.ll.name, reasonDownstream)
				rec.flags |= flagDC
				rec.reason = reasonDownstream
				return // never blame the endpoint for a client cancel
			}
			status, reason := classifyError(ctx, tryCtx, err)
			ep.Finish(ticket, outlier.Result{Failure: failureKind(reason)})
			if reason == reasonConnectFail {
				cl.Stats.ConnectFail.Add(1)
			}
			if reason == reasonTimeout {
				cl.Stats.Timeouts.Add(1)
			}
			retriable := reason != reasonTimeout || tryCtx.Err() != nil && ctx.Err() == nil
			if attempt+1 < attempts && retriable && pol.RetriableReset(reason == reasonConnectFail, false, reason != reasonConnectFail) && ctx.Err() == nil &&
				cl.AdmitRetry() == cluster.OverflowNone {
				retryHeld = true
				cl.Stats.Retries.Add(1)
				if !sleepCtx(ctx, backoff(pol, attempt)) {
					f.h.localReply(w, http.StatusGatewayTimeout, reasonTimeout)
					return
				}
				continue
			}
			if attempts > 1 && attempt+1 >= attempts {
				rec.flags |= flagURX
			}
			f.h.localReply(w, status, reason)
			return
		}
		if timeUp {
			rec.upDur, rec.hasUp = p.tel.clock().Sub(upStart), true
		}
		if resp.TLS != nil {
			rec.upstreamPeer = spiffeSAN(resp.TLS.PeerCertificates)
		}
		ep.Finish(ticket, outlier.Result{Status: resp.StatusCode})
		if attempt+1 < attempts && pol.RetriableStatus(resp.StatusCode) && ctx.Err() == nil && cl.AdmitRetry() == cluster.OverflowNone {
			retryHeld = true
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			tryCancel()
			cl.Stats.Retries.Add(1)
			if !sleepCtx(ctx, backoff(pol, attempt)) {
				f.h.localReply(w, http.StatusGatewayTimeout, reasonTimeout)
				return
			}
			continue
		}
		cl.Stats.Responses[min(resp.StatusCode/100, 5)].Add(1)
		if attempts > 1 && attempt+1 >= attempts && pol.RetriableStatus(resp.StatusCode) {
			rec.flags |= flagURX
		}
		f.copyResponse(w, r, resp, ctx)
		tryCancel()
		return
	}
}

// pickAvoiding picks an endpoint, trying a few times to avoid the ones
// already tried by this request. It returns the endpoint's index too.
func pickAvoiding(cl *cluster.Cluster, info lb.PickInfo, tried []*cluster.Endpoint) (*cluster.Endpoint, int, error) {
	var ep *cluster.Endpoint
	var idx int
	for i := 0; i < 3; i++ {
		var err error
		idx, err = cl.PickIndex(info)
		if err != nil {
			return nil, 0, err
		}
		ep = cl.Endpoints[idx]
		if !contains(tried, ep) {
			return ep, idx, nil
		}
	}
	return ep, idx, nil
}

func contains(eps []*cluster.Endpoint, e *cluster.Endpoint) bool {
	for _, x := range eps {
		if x == e {
			return true
		}
	}
	return false
}

// failureKind maps a local reply reason to the outlier detector's kind of
// failure without a response.
func failureKind(reason string) outlier.Kind {
	switch reason {
	case reasonConnectFail:
		return outlier.ConnectFailure
	case reasonTimeout:
		return outlier.Timeout
	case reasonDownstream:
		return outlier.ClientCancel
	}
	return outlier.Reset
}

// classifyError maps a transport error to the local reply status and reason.
func classifyError(ctx, tryCtx context.Context, err error) (int, string) {
	switch {
	case ctx.Err() != nil, tryCtx.Err() != nil:
		return http.StatusGatewayTimeout, reasonTimeout
	case isConnectError(err):
		return http.StatusServiceUnavailable, reasonConnectFail
	default:
		return http.StatusBadGateway, reasonReset
	}
}

func backoff(pol *route.RetryPolicy, attempt int) time.Duration {
	d := pol.BackoffBase << attempt
	if d <= 0 || d > pol.BackoffMax {
		d = pol.BackoffMax
	}
	// Full jitter, as Envoy.
	return time.Duration(rand.Int64N(int64(d) + 1))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// copyResponse writes resp to w: headers minus hop-by-hop ones plus the
// route's mutations, the body (flushed as it arrives when streaming), then
// trailers. A 101 response switches to a bidirectional tunnel.
func (f *forwarder) copyResponse(w http.ResponseWriter, r *http.Request, resp *http.Response, ctx context.Context) {
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		f.tunnelUpgrade(w, r, resp)
		return
	}
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	removeHopHeaders(h)
	if !f.rt.ResponseHeaders.Empty() {
		f.rt.ResponseHeaders.Apply(route.HTTPHeader(h))
	}
	announced := len(resp.Trailer)
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	streaming := resp.ContentLength < 0 || announced > 0
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if streaming {
				rc.Flush()
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// Upstream reset mid-body: the status line is gone, so abort
				// the downstream stream (HTTP/2 RST_STREAM, HTTP/1 close).
				f.h.ll.p.metrics.localReply(f.h.ll.name, reasonReset)
				f.rec.flags |= flagUR
				panic(http.ErrAbortHandler)
			}
			break
		}
	}
	if len(resp.Trailer) > 0 {
		if len(resp.Trailer) != announced {
			rc.Flush()
		}
		for k, vv := range resp.Trailer {
			if _, ok := h[k]; !ok && announced == 0 {
				k = http.TrailerPrefix + k
			}
			h[k] = vv
		}
	}
	_ = ctx
}

// tunnelUpgrade joins the downstream connection with the upgraded upstream
// one (WebSocket over HTTP/1.1).
func (f *forwarder) tunnelUpgrade(w http.ResponseWriter, r *http.Request, resp *http.Response) {
	up, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		f.h.localReply(w, http.StatusBadGateway, reasonReset)
		return
	}
	defer up.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		f.h.localReply(w, http.StatusInternalServerError, reasonUpgradeDenied)
		return
	}
	defer conn.Close()
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Write(&head)
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			up.Write(b)
			brw.Reader.Discard(n)
		}
		io.Copy(up, conn)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	io.Copy(conn, up)
	conn.Close()
	<-done
	_ = r
}
