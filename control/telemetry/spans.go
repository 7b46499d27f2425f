package telemetry

import (
	"cmp"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// spanRec is one stored span, kept small: what the trace list needs
// (ids, times, name, status, resource) and the span's wire bytes, which
// are decoded into a Span only when somebody asks for the trace
// (spanRec.span). Spans stored through Hub.AddSpans keep their Span
// instead (full). A spanRec holds no map and few pointers, so storing one
// allocates nothing and the garbage collector scans little.
type spanRec struct {
	traceID    [16]byte
	spanID     [8]byte
	parent     [8]byte // all zero: no parent
	start, end uint64  // Unix ns as sent (0: unset); end >= start
	received   int64   // Unix ns; orders eviction
	name       string
	res        *resourceInfo
	status     tracepb.Status_StatusCode
	carries    bool   // the span carries its request's access record (accessrec.AttrCarries)
	raw        []byte // the Span message, which the record never changes
	full       *Span
}

func (r *spanRec) hasParent() bool { return r.parent != [8]byte{} }

// span returns the stored span as the API shows it.
func (r *spanRec) span() Span {
	if r.full != nil {
		return *r.full
	}
	// The bytes were checked when they arrived (scanSpan), so decoding
	// them again succeeds.
	s, _, _ := (&spanDecoder{}).span(r.raw, *r.res)
	return s
}

// recFromSpan is the record of a Span given whole (Hub.AddSpans); ok is
// false when its ids are not valid hex of the right length.
func recFromSpan(s Span, received int64) (spanRec, bool) {
	r := spanRec{received: received, name: s.Name, full: &s,
		res: &resourceInfo{service: s.Service, namespace: s.Namespace, instance: s.Instance}}
	if !decodeID(r.traceID[:], s.TraceID) || !decodeID(r.spanID[:], s.SpanID) {
		return r, false
	}
	if s.ParentSpanID != "" && !decodeID(r.parent[:], s.ParentSpanID) {
		return r, false
	}
	if !s.Start.IsZero() {
		r.start = uint64(s.Start.UnixNano())
	}
	if !s.End.IsZero() {
		r.end = uint64(s.End.UnixNano())
	}
	r.end = max(r.end, r.start)
	if s.Status == "ERROR" {
		r.status = tracepb.Status_STATUS_CODE_ERROR
	}
	return r, true
}

// decodeID decodes the hex id s (either case) into dst, which it must fill
// exactly.
func decodeID(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}

// spanStore keeps the most recent spans, at most max of them and none
// older than retention. Lookups scan the store (it is bounded, and reads
// are rare next to writes), so adding a span touches no index. It is safe
// for concurrent use.
type spanStore struct {
	retention time.Duration

	mu sync.Mutex
	q  *queue[spanRec]
}

func newSpanStore(max int, retention time.Duration) *spanStore {
	return &spanStore{retention: retention, q: newQueue[spanRec](max)}
}

// add stores spans received at now (AddSpans), skipping those whose ids
// are not valid.
func (s *spanStore) add(now time.Time, spans []Span) {
	recs := make([]spanRec, 0, len(spans))
	for _, sp := range spans {
		if r, ok := recFromSpan(sp, now.UnixNano()); ok {
			recs = append(recs, r)
		}
	}
	s.addRecs(now, recs)
}

// addRecs stores records received at now, evicting the oldest beyond the
// bounds.
func (s *spanStore) addRecs(now time.Time, recs []spanRec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	at := now.UnixNano()
	for i := range recs {
		recs[i].received = at
		s.q.push(recs[i])
	}
}

// expire drops spans received before now-retention. Caller holds s.mu.
func (s *spanStore) expire(now time.Time) {
	cutoff := now.Add(-s.retention).UnixNano()
	s.q.popWhile(func(r *spanRec) bool { return r.received < cutoff })
}

// len returns the number of stored spans.
func (s *spanStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.q.len()
}

// trace returns the spans of one trace sorted by start; ok is false when
// none is stored.
func (s *spanStore) trace(now time.Time, id string) (Trace, bool) {
	var want [16]byte
	if !decodeID(want[:], id) {
		return Trace{}, false
	}
	s.mu.Lock()
	s.expire(now)
	var recs []spanRec
	for i := range s.q.len() {
		if r := s.q.ptr(i); r.traceID == want {
			recs = append(recs, *r)
		}
	}
	s.mu.Unlock()
	if len(recs) == 0 {
		return Trace{}, false
	}
	t := Trace{TraceID: hex.EncodeToString(want[:]), Spans: make([]Span, len(recs))}
	for i := range recs {
		t.Spans[i] = recs[i].span()
	}
	slices.SortStableFunc(t.Spans, func(a, b Span) int { return a.Start.Compare(b.Start) })
	return t, true
}

// TraceQuery selects traces.
type TraceQuery struct {
	// Service keeps traces with a span of this service (workload name, or
	// "<workload>.<namespace>").
	Service string
	// MinDuration keeps traces at least this long.
	MinDuration time.Duration
	// Limit caps the answer (most recent first); default 20.
	Limit int
}

// traceAcc gathers one trace's spans for its summary.
type traceAcc struct {
	sum      TraceSummary
	start    uint64
	end      uint64
	root     *spanRec
	matched  bool // a span of the queried service
	services []string
}

// list returns the summaries of the traces q selects, most recent first.
func (s *spanStore) list(now time.Time, q TraceQuery) []TraceSummary {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	s.mu.Lock()
	s.expire(now)
	traces := map[[16]byte]*traceAcc{}
	for i := range s.q.len() {
		r := s.q.ptr(i)
		a := traces[r.traceID]
		if a == nil {
			a = &traceAcc{}
			traces[r.traceID] = a
		}
		a.add(r, q.Service)
	}
	// The summaries read the records (roots): still under s.mu.
	out := make([]TraceSummary, 0, min(len(traces), q.Limit))
	for id, a := range traces {
		if q.Service != "" && !a.matched {
			continue
		}
		sum := a.summary(id)
		if time.Duration(sum.DurationMS*float64(time.Millisecond)) < q.MinDuration {
			continue
		}
		out = append(out, sum)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b TraceSummary) int {
		return cmp.Or(b.Start.Compare(a.Start), strings.Compare(a.TraceID, b.TraceID))
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out
}

// add counts one span of the trace; service is the queried service.
func (a *traceAcc) add(r *spanRec, service string) {
	a.sum.Spans++
	if a.start == 0 || (r.start != 0 && r.start < a.start) {
		a.start = r.start
	}
	a.end = max(a.end, r.end)
	if r.status == tracepb.Status_STATUS_CODE_ERROR {
		a.sum.Errors++
	}
	if !slices.Contains(a.services, r.res.service) {
		a.services = append(a.services, r.res.service)
	}
	if service != "" && serviceMatches(service, r.res.service, r.res.namespace) {
		a.matched = true
	}
	if a.root == nil || betterRoot(r, a.root) {
		a.root = r
	}
}

func (a *traceAcc) summary(id [16]byte) TraceSummary {
	sum := a.sum
	sum.TraceID = hex.EncodeToString(id[:])
	start, end := unixNano(a.start), unixNano(a.end)
	sum.Start = start
	sum.DurationMS = float64(end.Sub(start)) / float64(time.Millisecond)
	sum.Root, sum.RootService = a.root.name, a.root.res.service
	sum.Services = a.services
	slices.Sort(sum.Services)
	return sum
}

// serviceMatches reports whether want ("name" or "name.namespace") names
// the service name of namespace ns.
func serviceMatches(want, name, ns string) bool {
	if want == name {
		return true
	}
	n, wantNS, ok := strings.Cut(want, ".")
	return ok && n == name && wantNS == ns
}

// betterRoot reports whether a is a better root than b: a span without a
// parent beats one with a parent, then the earlier start wins.
func betterRoot(a, b *spanRec) bool {
	if a.hasParent() != b.hasParent() {
		return !a.hasParent()
	}
	return a.start < b.start
}
