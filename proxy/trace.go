package proxy

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
)

// Trace context (docs/observability.md): W3C traceparent/tracestate, B3
// accepted on requests without them. With an exporter the proxy opens one
// span per hop and forwards traceparent with that span as the parent;
// without one it forwards the caller's headers untouched.

// traceState is one request's trace context. The zero value is "none".
type traceState struct {
	traceID [16]byte
	spanID  [8]byte // this hop's span (own), or the caller's (not own)
	parent  [8]byte // the caller's span; zero for a root span
	sampled bool
	// decided: the caller sent a sampling decision.
	decided bool
	// valid: traceID holds an id.
	valid bool
	// own: the proxy opened a span (an exporter is configured) and
	// forwards traceparent with it.
	own        bool
	tracestate string
}

// headerGetter reads one request header (lower-case name).
type headerGetter interface {
	Get(name string) (string, bool)
}

// traceContext is a parsed incoming context.
type traceContext struct {
	traceID          [16]byte
	spanID           [8]byte
	sampled, decided bool
}

// parseTraceparent parses a W3C traceparent value: version 00 exactly as
// specified, later versions by their first four fields.
func parseTraceparent(v string) (traceContext, bool) {
	var tc traceContext
	v = strings.TrimSpace(v)
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return tc, false
	}
	ver, ok := hexByte(v[0:2])
	if !ok || ver == 0xff || ver == 0 && len(v) != 55 || ver > 0 && len(v) > 55 && v[55] != '-' {
		return tc, false
	}
	if !decodeHex(tc.traceID[:], v[3:35]) || !decodeHex(tc.spanID[:], v[36:52]) {
		return tc, false
	}
	flags, ok := hexByte(v[53:55])
	if !ok || isZero(tc.traceID[:]) || isZero(tc.spanID[:]) {
		return tc, false
	}
	tc.sampled, tc.decided = flags&1 == 1, true
	return tc, true
}

// parseB3Single parses the b3 header: {trace}-{span}[-{sampled}[-{parent}]]
// or a lone sampling decision (0, 1, d).
func parseB3Single(v string) (traceContext, bool) {
	var tc traceContext
	v = strings.TrimSpace(v)
	parts := strings.SplitN(v, "-", 4)
	if len(parts) == 1 {
		return tc, false // a decision alone carries no ids to join
	}
	if !parseB3IDs(&tc, parts[0], parts[1]) {
		return tc, false
	}
	if len(parts) >= 3 {
		s, ok := parseB3Sampled(parts[2])
		if !ok {
			return tc, false
		}
		tc.sampled, tc.decided = s, true
	}
	return tc, true
}

// parseB3Multi parses x-b3-traceid, x-b3-spanid and x-b3-sampled.
func parseB3Multi(traceID, spanID, sampled string) (traceContext, bool) {
	var tc traceContext
	if !parseB3IDs(&tc, strings.TrimSpace(traceID), strings.TrimSpace(spanID)) {
		return tc, false
	}
	if sampled != "" {
		s, ok := parseB3Sampled(strings.TrimSpace(sampled))
		if !ok {
			return tc, false
		}
		tc.sampled, tc.decided = s, true
	}
	return tc, true
}

// parseB3IDs decodes a 64- or 128-bit trace id and a 64-bit span id.
func parseB3IDs(tc *traceContext, trace, span string) bool {
	switch len(trace) {
	case 32:
		if !decodeHex(tc.traceID[:], trace) {
			return false
		}
	case 16:
		if !decodeHex(tc.traceID[8:], trace) {
			return false
		}
	default:
		return false
	}
	if len(span) != 16 || !decodeHex(tc.spanID[:], span) {
		return false
	}
	return !isZero(tc.traceID[:]) && !isZero(tc.spanID[:])
}

func parseB3Sampled(s string) (bool, bool) {
	switch s {
	case "1", "d", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// decodeHex decodes lower-case (or upper-case) hex of exactly 2*len(dst).
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		b, ok := hexByte(s[2*i : 2*i+2])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

func hexByte(s string) (byte, bool) {
	hi, ok1 := hexNibble(s[0])
	lo, ok2 := hexNibble(s[1])
	return hi<<4 | lo, ok1 && ok2
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// incoming reads the caller's trace context: traceparent, else b3, else
// x-b3-*.
func incoming(h headerGetter) (traceContext, string, bool) {
	if v, ok := h.Get("traceparent"); ok {
		if tc, ok := parseTraceparent(v); ok {
			ts, _ := h.Get("tracestate")
			return tc, ts, true
		}
	}
	if v, ok := h.Get("b3"); ok {
		if tc, ok := parseB3Single(v); ok {
			return tc, "", true
		}
	}
	if tid, ok := h.Get("x-b3-traceid"); ok {
		sid, _ := h.Get("x-b3-spanid")
		smp, _ := h.Get("x-b3-sampled")
		if tc, ok := parseB3Multi(tid, sid, smp); ok {
			return tc, "", true
		}
	}
	return traceContext{}, "", false
}

// startTrace fills r.trace from the request headers. Without any record
// consumer it does nothing (the caller's headers pass through as they
// are). sampling is the listener's ratio, <0 for the proxy's default.
func (t *telemetry) startTrace(r *reqRecord, h headerGetter) {
	if !t.wantRecord() {
		return
	}
	ts := &r.trace
	tc, state, ok := incoming(h)
	if ok {
		ts.traceID, ts.valid = tc.traceID, true
		ts.sampled, ts.decided = tc.sampled, tc.decided
		ts.tracestate = state
	}
	if t.sink == nil {
		ts.spanID = tc.spanID
		return
	}
	ts.own = true
	if ok {
		ts.parent = tc.spanID
	} else {
		putUint64(ts.traceID[:8], rand.Uint64())
		putUint64(ts.traceID[8:], rand.Uint64())
		ts.valid = true
	}
	putUint64(ts.spanID[:], rand.Uint64()|1)
	if !ts.decided {
		ratio := t.sampling
		if r.sampling >= 0 {
			ratio = r.sampling
		}
		ts.sampled = ratio > 0 && rand.Float64() < ratio
	}
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// appendTraceparent appends the traceparent to forward: this hop's span as
// the parent.
func (ts *traceState) appendTraceparent(b []byte) []byte {
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, ts.traceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, ts.spanID[:])
	if ts.sampled {
		return append(b, "-01"...)
	}
	return append(b, "-00"...)
}

// recordSpan reports whether the request's span is exported: sampled, or
// ended in a 5xx or a local reply.
func (r *reqRecord) recordSpan() bool {
	return r.trace.own && (r.trace.sampled || r.failed())
}

// failed reports whether the request ended in a 5xx, a local reply or
// with an error flag (a fault delay alone is not one).
func (r *reqRecord) failed() bool {
	return r.status >= 500 || r.local || r.flags&^flagDI != 0
}
