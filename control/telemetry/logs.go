package telemetry

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// storedLog is a record with the time the hub received it (which orders
// eviction).
type storedLog struct {
	LogRecord
	received time.Time
}

// logStore keeps the most recent log records, at most max of them and none
// older than retention, indexed by trace id and by workload. It is safe
// for concurrent use.
type logStore struct {
	retention time.Duration

	mu         sync.Mutex
	q          *queue[*storedLog]
	byTrace    map[string][]*storedLog // in Seq order
	byWorkload map[string][]*storedLog // by "<namespace>/<workload>", in Seq order
	seq        uint64                  // Seq of the last record
	notify     chan struct{}           // closed and replaced when records arrive
}

func newLogStore(max int, retention time.Duration) *logStore {
	return &logStore{
		retention: retention, q: newQueue[*storedLog](max),
		byTrace: map[string][]*storedLog{}, byWorkload: map[string][]*storedLog{},
		notify: make(chan struct{}),
	}
}

func workloadKey(ns, wl string) string { return ns + "/" + wl }

// add stores records received at now (setting their Seq), evicting the
// oldest beyond the bounds, and wakes the followers.
func (s *logStore) add(now time.Time, recs []LogRecord) {
	if len(recs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	for i := range recs {
		s.seq++
		st := &storedLog{LogRecord: recs[i], received: now}
		st.Seq = s.seq
		if old, ok := s.q.push(st); ok {
			s.unindex(old)
		}
		if st.TraceID != "" {
			s.byTrace[st.TraceID] = append(s.byTrace[st.TraceID], st)
		}
		if st.Workload != "" {
			k := workloadKey(st.Namespace, st.Workload)
			s.byWorkload[k] = append(s.byWorkload[k], st)
		}
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// expire drops records received before now-retention. Caller holds s.mu.
func (s *logStore) expire(now time.Time) {
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

// unindex removes an evicted record (the oldest) from the indexes. Caller
// holds s.mu.
func (s *logStore) unindex(st *storedLog) {
	drop := func(m map[string][]*storedLog, k string) {
		list := m[k]
		if len(list) > 0 && list[0] == st {
			list[0] = nil
			list = list[1:]
		}
		if len(list) == 0 {
			delete(m, k)
			return
		}
		m[k] = list
	}
	if st.TraceID != "" {
		drop(s.byTrace, st.TraceID)
	}
	if st.Workload != "" {
		drop(s.byWorkload, workloadKey(st.Namespace, st.Workload))
	}
}

// LogQuery selects log records. Empty fields select everything.
type LogQuery struct {
	// Namespace and Workload select one workload's records (Workload
	// alone: of every namespace).
	Namespace, Workload string
	// TraceID selects one trace's records.
	TraceID string
	// Contains keeps records whose body contains it (case-insensitive).
	Contains string
	// Since keeps records whose time is not before it.
	Since time.Time
	// After keeps records with a larger Seq (for followers).
	After uint64
	// Limit keeps the last Limit matching records; default 1000.
	Limit int
}

// DefaultLogLimit is LogQuery.Limit's default.
const DefaultLogLimit = 1000

// query returns the records q selects in Seq order, the Seq of the last
// record stored (to follow from) and a channel closed when records arrive.
func (s *logStore) query(now time.Time, q LogQuery) (recs []LogRecord, last uint64, changed <-chan struct{}) {
	if q.Limit <= 0 {
		q.Limit = DefaultLogLimit
	}
	q.TraceID = strings.ToLower(q.TraceID)
	contains := strings.ToLower(q.Contains)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	var candidates []*storedLog
	switch {
	case q.TraceID != "":
		candidates = after(s.byTrace[q.TraceID], q.After)
	case q.Workload != "" && q.Namespace != "":
		candidates = after(s.byWorkload[workloadKey(q.Namespace, q.Workload)], q.After)
	case q.Workload != "":
		for k, list := range s.byWorkload {
			if _, wl, _ := strings.Cut(k, "/"); wl == q.Workload {
				candidates = append(candidates, after(list, q.After)...)
			}
		}
		slices.SortFunc(candidates, func(a, b *storedLog) int { return cmpSeq(a.Seq, b.Seq) })
	default:
		if first, ok := s.q.front(); ok {
			for i := max(0, int(int64(q.After)-int64(first.Seq)+1)); i < s.q.len(); i++ {
				candidates = append(candidates, s.q.at(i))
			}
		}
	}
	for i := len(candidates) - 1; i >= 0 && len(recs) < q.Limit; i-- {
		st := candidates[i]
		switch {
		case q.Workload != "" && st.Workload != q.Workload,
			q.Namespace != "" && st.Namespace != q.Namespace,
			!q.Since.IsZero() && st.Time.Before(q.Since),
			contains != "" && !strings.Contains(strings.ToLower(st.Body), contains):
			continue
		}
		recs = append(recs, st.LogRecord)
	}
	slices.Reverse(recs)
	return recs, s.seq, s.notify
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// after returns the records of list (in Seq order) with a Seq above seq.
func after(list []*storedLog, seq uint64) []*storedLog {
	i := sort.Search(len(list), func(i int) bool { return list[i].Seq > seq })
	return list[i:]
}

// len returns the number of stored records.
func (s *logStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.q.len()
}

// ExtractTraceID returns the W3C trace id (32 lower-case hex digits) an
// application log line carries as "trace_id=<id>" (also "trace_id":"<id>"
// as in JSON logs) or in a traceparent value ("00-<id>-<span>-<flags>");
// "" when it carries none. An all-zero id is no id.
func ExtractTraceID(line string) string {
	for rest := line; ; {
		i := strings.Index(rest, "trace_id")
		if i < 0 {
			break
		}
		rest = rest[i+len("trace_id"):]
		v := strings.TrimLeft(rest, `"' `)
		if len(v) == 0 || (v[0] != '=' && v[0] != ':') {
			continue
		}
		v = strings.TrimLeft(v[1:], `"' `)
		if id, ok := hexID(v, 32); ok && (len(v) == 32 || !isHex(v[32])) {
			return id
		}
	}
	for rest := line; ; {
		i := strings.Index(rest, "00-")
		if i < 0 {
			return ""
		}
		if i > 0 && isHex(rest[i-1]) {
			rest = rest[i+1:]
			continue
		}
		v := rest[i+3:]
		rest = rest[i+1:]
		id, ok := hexID(v, 32)
		if !ok || len(v) < 52 || v[32] != '-' || v[49] != '-' {
			continue
		}
		if _, ok := hexID(v[33:], 16); !ok {
			continue
		}
		if !isHex(v[50]) || !isHex(v[51]) {
			continue
		}
		return id
	}
}

// hexID returns the first n characters of s lower-cased when they are hex
// digits and not all zero.
func hexID(s string, n int) (string, bool) {
	if len(s) < n {
		return "", false
	}
	zero := true
	for i := range n {
		if !isHex(s[i]) {
			return "", false
		}
		if s[i] != '0' {
			zero = false
		}
	}
	if zero {
		return "", false
	}
	return strings.ToLower(s[:n]), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
