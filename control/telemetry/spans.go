package telemetry

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"time"
)

// storedSpan is a span with the time the hub received it (which orders
// eviction).
type storedSpan struct {
	Span
	received time.Time
}

// spanStore keeps the most recent spans, at most max of them and none
// older than retention, indexed by trace id. It is safe for concurrent
// use.
type spanStore struct {
	retention time.Duration

	mu     sync.Mutex
	q      *queue[*storedSpan]
	traces map[string][]*storedSpan // in arrival order
}

func newSpanStore(max int, retention time.Duration) *spanStore {
	return &spanStore{retention: retention, q: newQueue[*storedSpan](max), traces: map[string][]*storedSpan{}}
}

// add stores spans received at now, evicting the oldest beyond the bounds.
func (s *spanStore) add(now time.Time, spans []Span) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	for i := range spans {
		st := &storedSpan{Span: spans[i], received: now}
		if old, ok := s.q.push(st); ok {
			s.unindex(old)
		}
		s.traces[st.TraceID] = append(s.traces[st.TraceID], st)
	}
}

// expire drops spans received before now-retention. Caller holds s.mu.
func (s *spanStore) expire(now time.Time) {
	cutoff := now.Add(-s.retention)
	for {
		st, ok := s.q.front()
		if !ok || !st.received.Before(cutoff) {
			return
		}
		s.q.pop()
		s.unindex(st)
	}
}

// unindex removes an evicted span from its trace; evictions go oldest
// first, so it is the first of its trace. Caller holds s.mu.
func (s *spanStore) unindex(st *storedSpan) {
	list := s.traces[st.TraceID]
	if i := slices.Index(list, st); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(s.traces, st.TraceID)
		return
	}
	s.traces[st.TraceID] = list
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
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	list := s.traces[strings.ToLower(id)]
	if len(list) == 0 {
		return Trace{}, false
	}
	t := Trace{TraceID: list[0].TraceID, Spans: make([]Span, len(list))}
	for i, st := range list {
		t.Spans[i] = st.Span
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

// list returns the summaries of the traces q selects, most recent first.
func (s *spanStore) list(now time.Time, q TraceQuery) []TraceSummary {
	if q.Limit <= 0 {
		q.Limit = 20
	}
	s.mu.Lock()
	s.expire(now)
	out := make([]TraceSummary, 0, min(len(s.traces), q.Limit))
	for _, spans := range s.traces {
		if q.Service != "" && !slices.ContainsFunc(spans, func(st *storedSpan) bool { return serviceMatches(q.Service, st.Service, st.Namespace) }) {
			continue
		}
		sum := summarize(spans)
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

// serviceMatches reports whether want ("name" or "name.namespace") names
// the service name of namespace ns.
func serviceMatches(want, name, ns string) bool {
	if want == name {
		return true
	}
	n, wantNS, ok := strings.Cut(want, ".")
	return ok && n == name && wantNS == ns
}

// summarize describes one trace's spans (not empty).
func summarize(spans []*storedSpan) TraceSummary {
	sum := TraceSummary{TraceID: spans[0].TraceID, Spans: len(spans)}
	var start, end time.Time
	var root *storedSpan
	services := map[string]bool{}
	for _, st := range spans {
		if start.IsZero() || st.Start.Before(start) {
			start = st.Start
		}
		if st.End.After(end) {
			end = st.End
		}
		if st.Status == "ERROR" {
			sum.Errors++
		}
		services[st.Service] = true
		if root == nil || betterRoot(st, root) {
			root = st
		}
	}
	sum.Start = start
	sum.DurationMS = float64(end.Sub(start)) / float64(time.Millisecond)
	sum.Root, sum.RootService = root.Name, root.Service
	for svc := range services {
		sum.Services = append(sum.Services, svc)
	}
	slices.Sort(sum.Services)
	return sum
}

// betterRoot reports whether a is a better root than b: a span without a
// parent beats one with a parent, then the earlier start wins.
func betterRoot(a, b *storedSpan) bool {
	if (a.ParentSpanID == "") != (b.ParentSpanID == "") {
		return a.ParentSpanID == ""
	}
	return a.Start.Before(b.Start)
}
