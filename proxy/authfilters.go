package proxy

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/weft-mesh/weft/proxy/filter/authz"
	"github.com/weft-mesh/weft/proxy/filter/jwt"
	"github.com/weft-mesh/weft/proxy/route"
)

// The authentication and authorization filters of an HTTP listener, in
// Envoy's order: x-forwarded-client-cert is sanitized, then
// envoy.filters.http.jwt_authn verifies the token (a failure answers 401,
// or 403 for a wrong audience, with www-authenticate), then the
// envoy.filters.http.rbac chain decides (a denial answers 403 "RBAC:
// access denied"); only then the fault filter and the router run. gRPC
// requests get their answer as a trailers-only gRPC status (HTTP 200,
// grpc-status 16 UNAUTHENTICATED or 7 PERMISSION_DENIED), as Envoy's
// local replies. Both HTTP paths (the fast HTTP/1.1 path and net/http for
// HTTP/2 and gRPC) call authorize; TCP listeners evaluate their network
// RBAC chain on accept (authorizeConn).

// rbacDeniedBody is Envoy's body for an RBAC denial.
const rbacDeniedBody = "RBAC: access denied"

// authHeaders adds the pseudo-headers the filters ask for (:method,
// :authority, :scheme, :path; host answers the authority too) to a
// request's headers; edits go to the request. Not safe for concurrent use.
type authHeaders struct {
	h                               route.MutableHeaders
	method, authority, scheme, path string
}

// Get returns a header or pseudo-header.
func (a *authHeaders) Get(name string) (string, bool) {
	if name == "host" || (len(name) > 0 && name[0] == ':') {
		var v string
		switch name {
		case ":method":
			v = a.method
		case ":authority", "host":
			v = a.authority
		case ":scheme":
			v = a.scheme
		case ":path":
			v = a.path
		}
		return v, v != ""
	}
	return a.h.Get(name)
}

// authDenial is a request refused by the JWT or RBAC filter.
type authDenial struct {
	status int
	reason string // x-weft-reason
	body   string
	// wwwAuthenticate is set on JWT failures.
	wwwAuthenticate string
}

// authorize runs the listener's JWT filter and then its RBAC chain on one
// request. A passing request has the JWT filter's header edits applied
// to h (token header removed, claim_to_headers set). A denial is counted
// and logged; the caller answers it. It runs on the request's goroutine.
func (ll *liveListener) authorize(spec *hcmSpec, h *authHeaders, peer string) (authDenial, bool) {
	var claims map[string]any
	if spec.jwt != nil {
		res := spec.jwt.Decide(h, h.path)
		if res.Status != 0 {
			ll.p.metrics.jwtFailure(ll.name, res.Reason)
			ll.p.log.Info("request denied", "listener", ll.name, "filter", jwt.Name, "reason", res.Reason,
				"provider", res.Provider, "peer", peer, "method", h.method, "path", h.path, "err", res.Err)
			return authDenial{
				status:          res.Status,
				reason:          res.Reason,
				body:            jwtFailureBody(res.Reason),
				wwwAuthenticate: bearerChallenge(h, res.Reason),
			}, false
		}
		if res.RemoveHeader != "" {
			h.h.Del(res.RemoveHeader)
		}
		for _, hv := range res.SetHeaders {
			h.h.Set(hv.Name, hv.Value)
		}
		claims = res.Claims
	}
	if spec.rbac != nil {
		d := spec.rbac.Evaluate(authz.Request{
			PeerPrincipal:   peer,
			Method:          h.method,
			Path:            h.path,
			Headers:         h,
			DestinationPort: ll.port(),
			Claims:          claims,
		})
		ll.p.metrics.rbacDecision(ll.name, d.Allowed, d.Policy)
		if !d.Allowed {
			ll.p.log.Info("request denied", "listener", ll.name, "filter", authz.Name, "policy", d.Policy,
				"reason", d.Reason, "peer", peer, "method", h.method, "path", h.path)
			return authDenial{status: http.StatusForbidden, reason: reasonRBACDenied, body: rbacDeniedBody}, false
		}
	}
	return authDenial{}, true
}

// authorizeConn evaluates a TCP listener's network RBAC chain for a new
// connection; false (counted and logged) means it must be closed.
func (ll *liveListener) authorizeConn(chain *authz.Chain, c net.Conn, peer string) bool {
	d := chain.Evaluate(authz.Request{PeerPrincipal: peer, DestinationPort: ll.port()})
	ll.p.metrics.rbacDecision(ll.name, d.Allowed, d.Policy)
	if d.Allowed {
		return true
	}
	ll.p.metrics.localReply(ll.name, reasonRBACDenied)
	ll.p.log.Info("connection denied", "listener", ll.name, "filter", authz.NetworkName, "policy", d.Policy,
		"reason", d.Reason, "peer", peer, "remote", c.RemoteAddr().String())
	return false
}

// port returns the port the listener is bound to (RBAC's destination_port).
func (ll *liveListener) port() uint32 {
	if a, ok := ll.ln.Addr().(*net.TCPAddr); ok {
		return uint32(a.Port)
	}
	return 0
}

// jwtFailureBody returns Envoy's local reply body for a JWT failure.
func jwtFailureBody(reason string) string {
	switch reason {
	case "jwt_missing":
		return "Jwt is missing"
	case "jwt_expired":
		return "Jwt is expired"
	case "jwt_not_yet_valid":
		return "Jwt not yet valid"
	case "jwt_audience_mismatch":
		return "Audiences in Jwt are not allowed"
	case "jwt_issuer_mismatch":
		return "Jwt issuer is not configured"
	case "jwt_unknown_kid":
		return "Jwks doesn't have key to match kid or alg from Jwt"
	case "jwks_unavailable":
		return "Jwks remote fetch is failed"
	}
	return "Jwt verification fails"
}

// bearerChallenge is Envoy's www-authenticate for a JWT failure:
// Bearer realm="<scheme>://<host><path>", with error="invalid_token"
// unless the token was missing.
func bearerChallenge(h *authHeaders, reason string) string {
	v := `Bearer realm="` + h.scheme + "://" + h.authority + h.path + `"`
	if reason != "jwt_missing" {
		v += `, error="invalid_token"`
	}
	return v
}

// grpcStatusFor maps a local reply's HTTP status to a gRPC status code,
// as Envoy does for gRPC requests.
func grpcStatusFor(status int) int {
	switch status {
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	}
	return 2 // UNKNOWN
}

// isGRPC reports whether a content-type is gRPC's.
func isGRPC(contentType string) bool { return strings.HasPrefix(contentType, "application/grpc") }

// denyHTTP answers a denied request on the net/http path.
func (h *httpHandler) denyHTTP(w http.ResponseWriter, r *http.Request, d authDenial) {
	h.ll.p.metrics.localReply(h.ll.name, d.reason)
	if rec := recordOf(w); rec != nil {
		rec.localReply(d.status, d.reason)
	}
	hdr := w.Header()
	hdr.Set("X-Weft-Reason", d.reason)
	if d.wwwAuthenticate != "" {
		hdr.Set("Www-Authenticate", d.wwwAuthenticate)
	}
	if isGRPC(r.Header.Get("Content-Type")) {
		hdr.Set("Content-Type", "application/grpc")
		hdr.Set("Grpc-Status", strconv.Itoa(grpcStatusFor(d.status)))
		hdr.Set("Grpc-Message", d.body)
		w.WriteHeader(http.StatusOK)
		return
	}
	hdr.Set("Content-Type", "text/plain")
	w.WriteHeader(d.status)
	io.WriteString(w, d.body)
}

// authorizeH1 sanitizes x-forwarded-client-cert and runs the filters on
// the fast path's current request. It returns whether the request goes
// on and, when it does not, whether the connection may serve another
// request after the denial was written.
func (hc *h1Conn) authorizeH1(spec *hcmSpec, keep bool) (pass, cont bool) {
	req := &hc.req
	req.Del(xfccHeader)
	if hc.xfcc != "" {
		req.Set(xfccHeader, hc.xfcc)
	}
	if spec.jwt == nil && spec.rbac == nil {
		return true, true
	}
	path := ""
	if bstr(req.Method) != http.MethodConnect {
		path = bstr(req.OriginForm())
	}
	hc.ah = authHeaders{h: h1Headers{req}, method: bstr(req.Method), authority: bstr(req.Host), scheme: hc.scheme(), path: path}
	d, ok := hc.ll.authorize(spec, &hc.ah, hc.peer)
	hc.ah = authHeaders{}
	if ok {
		return true, true
	}
	ct, _ := req.Get("content-type")
	return false, hc.deny(d, isGRPC(bstr(ct)), keep)
}

// deny writes the local reply of a denied request on the fast path and
// reports whether the connection may serve another request.
func (hc *h1Conn) deny(d authDenial, grpc, keep bool) bool {
	hc.ll.p.metrics.localReply(hc.ll.name, d.reason)
	hc.rec.localReply(d.status, d.reason)
	if grpc {
		hc.rec.status, hc.rec.grpcStatus = http.StatusOK, strconv.Itoa(grpcStatusFor(d.status))
	}
	status, ctype, body := d.status, "text/plain", d.body
	if grpc {
		status, ctype, body = http.StatusOK, "application/grpc", ""
	}
	b := hc.wbuf[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\ncontent-type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nx-weft-reason: "...)
	b = append(b, d.reason...)
	if d.wwwAuthenticate != "" {
		b = append(b, "\r\nwww-authenticate: "...)
		b = append(b, d.wwwAuthenticate...)
	}
	if grpc {
		b = append(b, "\r\ngrpc-status: "...)
		b = strconv.AppendInt(b, int64(grpcStatusFor(d.status)), 10)
		b = append(b, "\r\ngrpc-message: "...)
		b = append(b, d.body...)
	}
	b = append(b, "\r\n"...)
	return hc.finishReply(b, body, keep)
}

// sanitizeXFCC removes the caller's x-forwarded-client-cert and sets the
// listener's own when it vouches for the peer (net/http path).
func sanitizeXFCC(h http.Header, xfcc string) {
	const key = "X-Forwarded-Client-Cert"
	delete(h, key)
	if xfcc != "" {
		h[key] = []string{xfcc}
	}
}

// jwtFilters keeps the JWT filters of the installed listeners running:
// a filter with remote JWKS fetches keys in the background from Start to
// Stop. Filters are keyed by their config (hcmSpec.jwtKey), so a listener
// update that leaves the JWT config unchanged keeps the running filter,
// its fetched keys and its schedule. Not safe for concurrent use: the
// proxy calls it with p.mu held.
type jwtFilters struct {
	running map[string]*jwt.Filter
	log     *slog.Logger

	// Fetch results, reported on the fetchers' goroutines (refreshed).
	mu      sync.Mutex
	fetched int             // fetches that installed a key set
	failing map[string]bool // URIs whose last fetch failed
	changed chan struct{}   // closed at the next fetch attempt; nil until watched
}

// refreshed notes one remote JWKS fetch attempt: a failure is logged once
// (the filter keeps its last good keys and retries with backoff), and so
// is the recovery.
func (j *jwtFilters) refreshed(uri string, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case err != nil && !j.failing[uri]:
		if j.failing == nil {
			j.failing = map[string]bool{}
		}
		j.failing[uri] = true
		j.log.Warn("JWKS fetch failed; tokens are checked with the last keys fetched, if any", "uri", uri, "err", err)
	case err == nil && j.failing[uri]:
		delete(j.failing, uri)
		j.log.Info("JWKS fetch recovered", "uri", uri)
	}
	if err == nil {
		j.fetched++
	}
	if j.changed != nil {
		close(j.changed)
		j.changed = nil
	}
}

// fetches returns how many remote JWKS fetches have installed a key set,
// and a channel closed at the next fetch attempt (tests wait on it).
func (j *jwtFilters) fetches() (int, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.changed == nil {
		j.changed = make(chan struct{})
	}
	return j.fetched, j.changed
}

// listenerHCMs returns the HTTP connection managers of a listener.
func listenerHCMs(l *listenerSpec) []*hcmSpec {
	if l.http == nil {
		return nil
	}
	return []*hcmSpec{l.http}
}

// adopt makes freshly decoded listener specs use the running filter of
// the same config (or, for a config new in this update, one shared
// filter). It runs before the specs are published and starts nothing.
func (j *jwtFilters) adopt(ls map[string]*listenerSpec) {
	fresh := map[string]*jwt.Filter{}
	for _, name := range sortedNames(ls) {
		for _, h := range listenerHCMs(ls[name]) {
			if h.jwt == nil {
				continue
			}
			if f := j.running[h.jwtKey]; f != nil {
				h.jwt = f
			} else if f := fresh[h.jwtKey]; f != nil {
				h.jwt = f
			} else {
				fresh[h.jwtKey] = h.jwt
			}
		}
	}
}

// commit starts the filters of the installed listeners that are not
// running yet and stops the ones no listener uses any more. Stopping waits
// for the filter's fetchers; requests still holding an old spec keep
// verifying with its last fetched keys.
func (j *jwtFilters) commit(ls map[string]*listenerSpec) {
	want := map[string]*jwt.Filter{}
	for _, l := range ls {
		for _, h := range listenerHCMs(l) {
			if h.jwt != nil {
				want[h.jwtKey] = h.jwt
			}
		}
	}
	for k, f := range j.running {
		if want[k] != f {
			f.Stop()
			delete(j.running, k)
		}
	}
	for k, f := range want {
		if j.running[k] == nil {
			if j.running == nil {
				j.running = map[string]*jwt.Filter{}
			}
			f.Start(j.refreshed)
			j.running[k] = f
		}
	}
}

// stop stops every running filter (proxy shutdown).
func (j *jwtFilters) stop() {
	for k, f := range j.running {
		f.Stop()
		delete(j.running, k)
	}
}
