// Package tracectx carries the W3C trace context (traceparent and
// tracestate) of the request a shop service handles into the calls it
// makes, so that one request through the gateway is one trace across every
// hop: each sidecar forwards traceparent with its own span as the parent,
// and the application only has to copy it from its incoming request to its
// outgoing ones (docs/observability.md).
//
// Handler stores the incoming context in the request's context; Transport
// (HTTP clients) and UnaryClientInterceptor (gRPC clients) copy it onto
// the calls made with that context.
package tracectx

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Header (and gRPC metadata) names of the W3C trace context.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Context is the trace context of one request: the header values as
// received. The zero value is no trace context. Plain data.
type Context struct {
	Traceparent string
	Tracestate  string
}

// FromHeader returns the trace context of an incoming request. A missing
// or invalid traceparent is no trace context: its tracestate is dropped
// with it, as the W3C recommendation says.
func FromHeader(h http.Header) Context {
	tp := h.Get(HeaderTraceparent)
	if _, ok := ParseTraceparent(tp); !ok {
		return Context{}
	}
	return Context{Traceparent: tp, Tracestate: h.Get(HeaderTracestate)}
}

// TraceID returns the trace id of c, 32 lower-case hex digits, or "" when
// c holds none.
func (c Context) TraceID() string {
	id, _ := ParseTraceparent(c.Traceparent)
	return id
}

// IsZero reports whether c holds no trace context.
func (c Context) IsZero() bool { return c.Traceparent == "" }

// ParseTraceparent checks a traceparent value, version 00 exactly
// ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", lower-case,
// ids not all zero) or a later version (at least those fields, then
// "-..."), and returns its trace id.
func ParseTraceparent(v string) (traceID string, ok bool) {
	const n = 55 // 2+1+32+1+16+1+2
	if len(v) < n || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return "", false
	}
	version := v[:2]
	if !isHex(version) || version == "ff" || (version == "00" && len(v) != n) || (len(v) > n && v[n] != '-') {
		return "", false
	}
	trace, parent, flags := v[3:35], v[36:52], v[53:55]
	if !isHex(trace) || !isHex(parent) || !isHex(flags) || allZero(trace) || allZero(parent) {
		return "", false
	}
	return trace, true
}

// isHex reports whether s is lower-case hex digits only.
func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

type ctxKey struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the trace context ctx carries (zero if none).
func FromContext(ctx context.Context) Context {
	c, _ := ctx.Value(ctxKey{}).(Context)
	return c
}

// Inject sets c's headers on h; a zero c sets nothing.
func (c Context) Inject(h http.Header) {
	if c.IsZero() {
		return
	}
	h.Set(HeaderTraceparent, c.Traceparent)
	if c.Tracestate != "" {
		h.Set(HeaderTracestate, c.Tracestate)
	} else {
		h.Del(HeaderTracestate)
	}
}

// Handler stores the trace context of every request in its context
// (FromContext) before calling next.
func Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := FromHeader(r.Header); !c.IsZero() {
			r = r.WithContext(NewContext(r.Context(), c))
		}
		next.ServeHTTP(w, r)
	})
}

// Transport is an http.RoundTripper that copies the trace context of each
// request's context onto the request it sends (the caller's request is
// not modified). Base makes the calls; nil means http.DefaultTransport,
// which honours $HTTP_PROXY. A Transport is safe for concurrent use.
type Transport struct {
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	c := FromContext(r.Context())
	if c.IsZero() {
		return base.RoundTrip(r)
	}
	out := r.Clone(r.Context())
	c.Inject(out.Header)
	return base.RoundTrip(out)
}

// UnaryClientInterceptor copies the trace context of the call's context
// into its outgoing gRPC metadata (grpc.WithUnaryInterceptor).
func UnaryClientInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if c := FromContext(ctx); !c.IsZero() {
		md, _ := metadata.FromOutgoingContext(ctx)
		md = md.Copy()
		md.Set(HeaderTraceparent, c.Traceparent)
		if c.Tracestate != "" {
			md.Set(HeaderTracestate, c.Tracestate)
		} else {
			md.Delete(HeaderTracestate)
		}
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
