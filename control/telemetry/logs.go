package telemetry

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/weft-mesh/weft/proxy/accessrec"
)

// logEntry is one stored log record, kept small: ids as bytes (rendered in
// hex when asked for), strings that view the bytes the record arrived in.
// Storing one allocates nothing.
type logEntry struct {
	seq      uint64
	received int64 // Unix ns; orders eviction
	time     time.Time
	traceID  [16]byte // all zero: none
	spanID   [8]byte  // all zero: none
	app      bool     // an application line (else an access record)
	inSpan   bool     // body holds the bytes of a span that carries the record

	severity, body, namespace, workload, instance, stream string
}

// text is the record's body: for a record a span carries, its JSON
// rendered from the span.
func (r *logEntry) text() string {
	if !r.inSpan {
		return r.body
	}
	return string(r.appendSpanText(nil))
}

// appendSpanText appends the JSON of the record a span carries (inSpan).
func (r *logEntry) appendSpanText(b []byte) []byte {
	// The span was checked when it arrived and carries the record.
	rec, _ := accessrec.FromSpan(unsafe.Slice(unsafe.StringData(r.body), len(r.body)))
	return accessrec.AppendJSON(b, &rec)
}

// bodySearch matches bodies against a lower-case term, case-insensitively
// as strings.Contains(strings.ToLower(body), term), without allocating:
// each body is copied (or, for a record a span carries, rendered) into a
// reused buffer and lowered there. Not safe for concurrent use.
type bodySearch struct {
	term    string
	scratch []byte
}

func (q *bodySearch) match(r *logEntry) bool {
	var b []byte
	if r.inSpan {
		b = r.appendSpanText(q.scratch[:0])
	} else {
		b = append(q.scratch[:0], r.body...)
	}
	q.scratch = b
	for i, c := range b {
		switch {
		case c >= utf8.RuneSelf:
			// Not ASCII: lower it as strings.ToLower does.
			return strings.Contains(strings.ToLower(string(b)), q.term)
		case 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
	}
	return bytes.Contains(b, []byte(q.term))
}

// record is the record as the API shows it.
func (r *logEntry) record() LogRecord {
	rec := LogRecord{
		Seq: r.seq, Time: r.time, Kind: LogAccess, Severity: r.severity, Body: r.text(),
		Namespace: r.namespace, Workload: r.workload, Instance: r.instance, Stream: r.stream,
	}
	if r.app {
		rec.Kind = LogApp
	}
	if r.traceID != [16]byte{} {
		rec.TraceID = hex.EncodeToString(r.traceID[:])
	}
	if r.spanID != [8]byte{} {
		rec.SpanID = hex.EncodeToString(r.spanID[:])
	}
	return rec
}

// entryFromLog is the record of a LogRecord given whole (Hub.AddLogs); ids
// that are not valid hex of the right length are left out.
func entryFromLog(l LogRecord) logEntry {
	r := logEntry{time: l.Time, app: l.Kind == LogApp, severity: l.Severity, body: l.Body,
		namespace: l.Namespace, workload: l.Workload, instance: l.Instance, stream: l.Stream}
	if !decodeID(r.traceID[:], l.TraceID) {
		r.traceID = [16]byte{}
	}
	if !decodeID(r.spanID[:], l.SpanID) {
		r.spanID = [8]byte{}
	}
	return r
}

// logStore keeps the most recent log records, at most max of them and
// none older than retention. Queries scan the store (it is bounded, and
// reads are rare next to writes), so adding a record touches no index. It
// is safe for concurrent use.
type logStore struct {
	retention time.Duration

	mu     sync.Mutex
	q      *queue[logEntry]
	seq    uint64        // Seq of the last record
	notify chan struct{} // closed and replaced when records arrive
}

func newLogStore(max int, retention time.Duration) *logStore {
	return &logStore{retention: retention, q: newQueue[logEntry](max), notify: make(chan struct{})}
}

// add stores records given whole (Hub.AddLogs).
func (s *logStore) add(now time.Time, recs []LogRecord) {
	out := make([]logEntry, len(recs))
	for i := range recs {
		out[i] = entryFromLog(recs[i])
	}
	s.addRecs(now, out)
}

// addRecs stores records received at now (setting their Seq), evicting
// the oldest beyond the bounds, and wakes the followers.
func (s *logStore) addRecs(now time.Time, recs []logEntry) {
	s.addSome(now, len(recs), func(i int) (logEntry, bool) { return recs[i], true })
}

// addSome stores, as addRecs, the records get returns with ok for 0 to
// n-1, and wakes the followers when there was one.
func (s *logStore) addSome(now time.Time, n int, get func(i int) (e logEntry, ok bool)) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	at := now.UnixNano()
	added := false
	for i := range n {
		e, ok := get(i)
		if !ok {
			continue
		}
		s.seq++
		e.seq, e.received = s.seq, at
		s.q.push(e)
		added = true
	}
	if added {
		close(s.notify)
		s.notify = make(chan struct{})
	}
}

// expire drops records received before now-retention. Caller holds s.mu.
func (s *logStore) expire(now time.Time) {
	cutoff := now.Add(-s.retention).UnixNano()
	s.q.popWhile(func(r *logEntry) bool { return r.received < cutoff })
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
	var trace [16]byte
	badTrace := q.TraceID != "" && !decodeID(trace[:], q.TraceID)
	search := bodySearch{term: strings.ToLower(q.Contains)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if badTrace { // no record carries an id that is not 32 hex digits
		return nil, s.seq, s.notify
	}
	// The newest first, down to the first record after q.After.
	first := 0
	if f, ok := s.q.front(); ok && q.After >= f.seq {
		first = int(q.After - f.seq + 1)
	}
	for i := s.q.len() - 1; i >= first && len(recs) < q.Limit; i-- {
		st := s.q.ptr(i)
		switch {
		case q.TraceID != "" && st.traceID != trace,
			q.Workload != "" && st.workload != q.Workload,
			q.Namespace != "" && st.namespace != q.Namespace,
			!q.Since.IsZero() && st.time.Before(q.Since),
			search.term != "" && !search.match(st):
			continue
		}
		recs = append(recs, st.record())
	}
	slices.Reverse(recs)
	return recs, s.seq, s.notify
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
