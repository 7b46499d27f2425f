package route

import (
	"regexp"

	"github.com/weft-mesh/weft/proxy/filter/fault"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
)

// ActionKind says what a route does with a matched request.
type ActionKind uint8

// Route actions.
const (
	ActionForward  ActionKind = iota // route: forward to a cluster
	ActionRedirect                   // redirect: answer 3xx with Location
	ActionDirect                     // direct_response: answer from the route
)

// DefaultTimeout is Envoy's route timeout when RouteAction.timeout is unset.
const DefaultTimeout = 15 * time.Second

// Route is one compiled route with everything the forwarder needs. It is
// immutable and safe for concurrent use; fields must not be modified.
type Route struct {
	Name        string     // Route.name (may be empty)
	VirtualHost string     // name of the virtual host the route belongs to
	Action      ActionKind // which of the action fields below is set
	Decorator   string     // decorator.operation, for span names; may be empty

	// ActionForward.
	Cluster          string            // single cluster; empty when Weighted is set
	Weighted         []WeightedCluster // weighted_clusters, in configuration order
	Timeout          time.Duration     // whole-request timeout; 0 disables; default 15s
	IdleTimeout      time.Duration     // stream idle timeout; meaningful only when HasIdleTimeout
	HasIdleTimeout   bool              // idle_timeout was set (0 then disables); else the listener's applies
	Retry            *RetryPolicy      // route's policy, else the virtual host's; nil: no retries
	HostRewrite      string            // host_rewrite_literal; empty: keep :authority
	Hash             []HashPolicy      // hash_policy for consistent-hash load balancers
	ClusterNotFound  int               // status when the cluster is unknown: 503 (default), 404 or 500
	RequestHeaders   *HeaderMutation   // request_headers_to_add/remove of route, vhost and config
	ResponseHeaders  *HeaderMutation   // response_headers_to_add/remove of route, vhost and config
	Redirect         *Redirect         // ActionRedirect
	DirectResponse   *DirectResponse   // ActionDirect
	Fault            *fault.Fault      // typed_per_filter_config of the fault filter (route, else virtual host); nil: the listener's
	Mirrors          []Mirror          // request_mirror_policies
	match            routeMatch
	totalWeight      uint64
	prefixRewrite    string
	hasPrefixRewrite bool
	rewriteRe        *regexp.Regexp
	rewriteSub       string // in regexp.Expand syntax
}

// WeightedCluster is one entry of weighted_clusters; a plain value, read-only
// once built.
type WeightedCluster struct {
	Name   string
	Weight uint32
}

// PickCluster returns the cluster for this request. With weighted clusters,
// rnd (a caller-provided random number) selects one in proportion to the
// weights: entry i is chosen when rnd % total falls in its cumulative range,
// as Envoy does.
func (r *Route) PickCluster(rnd uint64) string {
	if len(r.Weighted) == 0 {
		return r.Cluster
	}
	x := rnd % r.totalWeight
	var end uint64
	for i := range r.Weighted {
		end += uint64(r.Weighted[i].Weight)
		if x < end {
			return r.Weighted[i].Name
		}
	}
	return r.Weighted[len(r.Weighted)-1].Name // unreachable: total > 0
}

// Rewrite returns the upstream :path for path (the request's :path, query
// included): prefix_rewrite replaces the matched prefix (for path and
// safe_regex matches, the whole path before the query); regex_rewrite
// replaces every match in the path before the query. The query string is
// kept. Without a rewrite path is returned unchanged, without allocating.
func (r *Route) Rewrite(path string) string {
	switch {
	case r.hasPrefixRewrite:
		n := r.match.matchedLen(path)
		return r.prefixRewrite + path[n:]
	case r.rewriteRe != nil:
		p := pathOnly(path)
		return regexReplace(r.rewriteRe, r.rewriteSub, p) + path[len(p):]
	}
	return path
}

func regexReplace(re *regexp.Regexp, tmpl, s string) string {
	var b []byte
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		b = append(b, s[last:m[0]]...)
		b = re.ExpandString(b, tmpl, s, m)
		last = m[1]
	}
	return string(append(b, s[last:]...))
}

// RetryOn is the set of retry_on conditions.
type RetryOn uint32

// Retry conditions (retry_on tokens).
const (
	Retry5xx                   RetryOn = 1 << iota // "5xx": any 5xx, reset, connect failure, refused stream
	RetryGatewayError                              // "gateway-error": 502, 503, 504, reset, connect failure
	RetryReset                                     // "reset": no response (disconnect, reset, read timeout)
	RetryResetBeforeRequest                        // "reset-before-request": reset before the request was sent
	RetryConnectFailure                            // "connect-failure"
	RetryRetriable4xx                              // "retriable-4xx": 409
	RetryRefusedStream                             // "refused-stream": HTTP/2 REFUSED_STREAM
	RetryRetriableStatusCodes                      // "retriable-status-codes": RetriableStatusCodes
	RetryGRPCCancelled                             // "cancelled": grpc-status 1
	RetryGRPCDeadlineExceeded                      // "deadline-exceeded": grpc-status 4
	RetryGRPCInternal                              // "internal": grpc-status 13
	RetryGRPCResourceExhausted                     // "resource-exhausted": grpc-status 8
	RetryGRPCUnavailable                           // "unavailable": grpc-status 14
)

type retryOnName struct {
	name string
	bit  RetryOn
}

var retryOnNames = []retryOnName{
	{"5xx", Retry5xx},
	{"gateway-error", RetryGatewayError},
	{"reset", RetryReset},
	{"reset-before-request", RetryResetBeforeRequest},
	{"connect-failure", RetryConnectFailure},
	{"retriable-4xx", RetryRetriable4xx},
	{"refused-stream", RetryRefusedStream},
	{"retriable-status-codes", RetryRetriableStatusCodes},
	{"cancelled", RetryGRPCCancelled},
	{"deadline-exceeded", RetryGRPCDeadlineExceeded},
	{"internal", RetryGRPCInternal},
	{"resource-exhausted", RetryGRPCResourceExhausted},
	{"unavailable", RetryGRPCUnavailable},
}

// retryOnUnsupported are valid Envoy tokens weft does not implement.
var retryOnUnsupported = []string{"envoy-ratelimited", "retriable-headers", "http3-post-connect-failure"}

func (o RetryOn) String() string {
	var parts []string
	for _, n := range retryOnNames {
		if o&n.bit != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ",")
}

// Retry defaults, as Envoy.
const (
	DefaultNumRetries  = 1
	DefaultBackoffBase = 25 * time.Millisecond
)

// RetryPolicy is a compiled RetryPolicy. It is immutable and safe for
// concurrent use.
type RetryPolicy struct {
	On                       RetryOn
	NumRetries               uint32        // default 1
	PerTryTimeout            time.Duration // 0: the route timeout bounds each try
	BackoffBase              time.Duration // default 25ms
	BackoffMax               time.Duration // default 10 × BackoffBase
	RetriableStatusCodes     []int         // sorted; used with retriable-status-codes
	AvoidPreviousHosts       bool          // retry_host_predicate previous_hosts
	HostSelectionMaxAttempts int64         // host_selection_retry_max_attempts
}

// RetriableStatus reports whether an upstream response status allows a retry.
func (p *RetryPolicy) RetriableStatus(code int) bool {
	if p == nil {
		return false
	}
	switch {
	case p.On&Retry5xx != 0 && code >= 500 && code <= 599:
		return true
	case p.On&RetryGatewayError != 0 && (code == 502 || code == 503 || code == 504):
		return true
	case p.On&RetryRetriable4xx != 0 && code == 409:
		return true
	case p.On&RetryRetriableStatusCodes != 0:
		_, found := slices.BinarySearch(p.RetriableStatusCodes, code)
		return found
	}
	return false
}

// RetriableReset reports whether a failure without a response allows a
// retry: connectFailure for a failed connect, refusedStream for an HTTP/2
// REFUSED_STREAM, sent=false when the request had not been sent.
func (p *RetryPolicy) RetriableReset(connectFailure, refusedStream, sent bool) bool {
	if p == nil {
		return false
	}
	if p.On&(Retry5xx|RetryGatewayError|RetryReset) != 0 {
		return true
	}
	switch {
	case connectFailure && p.On&RetryConnectFailure != 0:
		return true
	case refusedStream && p.On&RetryRefusedStream != 0:
		return true
	case !sent && p.On&RetryResetBeforeRequest != 0:
		return true
	}
	return false
}

// RetriableGRPC reports whether a grpc-status allows a retry.
func (p *RetryPolicy) RetriableGRPC(status int) bool {
	if p == nil {
		return false
	}
	switch status {
	case 1:
		return p.On&RetryGRPCCancelled != 0
	case 4:
		return p.On&RetryGRPCDeadlineExceeded != 0
	case 8:
		return p.On&RetryGRPCResourceExhausted != 0
	case 13:
		return p.On&RetryGRPCInternal != 0
	case 14:
		return p.On&RetryGRPCUnavailable != 0
	}
	return false
}

// HashKind says what a hash policy hashes.
type HashKind uint8

// Hash policy kinds.
const (
	HashHeader         HashKind = iota // a request header (Name)
	HashCookie                         // a cookie (Name); ttl is not implemented
	HashSourceIP                       // connection_properties.source_ip
	HashQueryParameter                 // a query parameter (Name)
)

// HashPolicy is one hash_policy entry; a plain value, read-only once built.
type HashPolicy struct {
	Kind     HashKind
	Name     string // header (lower-case), cookie or query parameter name
	Terminal bool
	pseudo   pseudo
}

// RequestHash computes the hash for consistent-hash load balancing from the
// route's hash policies, as Envoy: each policy that yields a value is hashed
// with xxHash64 and combined as rotl(h,1) ^ new; a terminal policy that
// produced a hash stops the evaluation. ok is false when no policy applied.
func (r *Route) RequestHash(req *Request) (hash uint64, ok bool) {
	for i := range r.Hash {
		hp := &r.Hash[i]
		var v string
		var found bool
		switch hp.Kind {
		case HashHeader:
			v, found = getHeader(req, hp.Name, hp.pseudo)
		case HashCookie:
			if c, has := getHeader(req, "cookie", pseudoNone); has {
				v, found = cookieValue(c, hp.Name)
			}
		case HashSourceIP:
			v, found = req.SourceIP, req.SourceIP != ""
		case HashQueryParameter:
			v, found = queryParam(queryOf(req.Path), hp.Name)
		}
		if found {
			h := xxhash.Sum64String(v)
			if ok {
				hash = (hash<<1 | hash>>63) ^ h
			} else {
				hash, ok = h, true
			}
		}
		if hp.Terminal && ok {
			break
		}
	}
	return hash, ok
}

// cookieValue finds name in a Cookie header ("a=1; b=2", or several joined
// with ",").
func cookieValue(header, name string) (string, bool) {
	for header != "" {
		var part string
		i := strings.IndexAny(header, ";,")
		if i < 0 {
			part, header = header, ""
		} else {
			part, header = header[:i], header[i+1:]
		}
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if ok && k == name {
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// Redirect is a compiled RedirectAction. It is immutable and safe for
// concurrent use.
type Redirect struct {
	Scheme        string // "https" for https_redirect, scheme_redirect, or "" (keep)
	Host          string // host_redirect, or "" (keep)
	Port          uint32 // port_redirect, or 0 (keep)
	Path          string // path_redirect, or "" (keep)
	PrefixRewrite string // prefix_rewrite (meaningful when HasPrefixRewrite)
	HasPrefix     bool
	StripQuery    bool
	Code          int // 301 (default), 302, 303, 307 or 308
	re            *regexp.Regexp
	reSub         string
}

// RedirectLocation returns the Location for a redirect route, built as Envoy:
// scheme, host, port and path replaced as configured, the others taken from
// the request. When the scheme changes, a default port (80 for http, 443 for
// https) in the request's host is dropped; with port_redirect the request's
// port is replaced.
func (r *Route) RedirectLocation(req *Request) string {
	rd := r.Redirect
	if rd == nil {
		return ""
	}
	reqScheme := req.Scheme
	if reqScheme == "" {
		reqScheme = "http"
	}
	scheme := reqScheme
	if rd.Scheme != "" {
		scheme = rd.Scheme
	}
	host := rd.Host
	if host == "" {
		host = req.Authority
		stripped := stripPort(host)
		if len(stripped) != len(host) {
			port := host[len(stripped):]
			if rd.Port != 0 || (rd.Scheme != "" && (reqScheme == "http" && port == ":80" || reqScheme == "https" && port == ":443")) {
				host = stripped
			}
		}
	}
	if rd.Port != 0 {
		host = stripPort(host) + ":" + strconv.FormatUint(uint64(rd.Port), 10)
	}
	p := req.Path
	if p == "" {
		p = "/"
	}
	po := pathOnly(p)
	query := p[len(po):]
	switch {
	case rd.Path != "":
		po = rd.Path
		if strings.IndexByte(rd.Path, '?') >= 0 {
			query = "" // path_redirect's own query replaces the request's
		}
	case rd.HasPrefix:
		n := r.match.matchedLen(p)
		if n > len(po) { // prefix matched into the query string
			query = p[n:]
			po = rd.PrefixRewrite
		} else {
			po = rd.PrefixRewrite + po[n:]
		}
	case rd.re != nil:
		po = regexReplace(rd.re, rd.reSub, po)
	}
	if rd.StripQuery {
		query = ""
	}
	return scheme + "://" + host + po + query
}

// DirectResponse is a compiled DirectResponseAction. It is immutable and
// safe for concurrent use.
type DirectResponse struct {
	Status int
	Body   string
}
