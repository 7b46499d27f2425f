package proxy

import (
	"context"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
)

// The access record of docs/observability.md: one JSON object per HTTP
// request or TCP connection, rendered once and written to the access log,
// to the taps whose prefix matches, and to the exporter as an OTLP log
// record.

// emit renders and hands out the record of a finished request.
func (t *telemetry) emit(r *reqRecord, end time.Time, dur time.Duration) {
	srcP, dstP := t.principals(r)
	tapping := t.taps.n.Load() > 0 && t.taps.matches(r.path)
	if t.log != nil || t.sink != nil || tapping {
		bp := t.bufs.Get().(*[]byte)
		b := appendRecord((*bp)[:0], r, dur, srcP, dstP)
		if t.log != nil {
			t.log.write(append(b, '\n'))
		}
		if tapping {
			t.taps.publish(r.path, b)
		}
		if t.sink != nil {
			lr := &logspb.LogRecord{
				TimeUnixNano:         uint64(r.start.UnixNano()),
				ObservedTimeUnixNano: uint64(end.UnixNano()),
				SeverityNumber:       logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
				SeverityText:         "INFO",
				Body:                 &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: string(b)}},
			}
			if r.trace.valid {
				lr.TraceId = append([]byte(nil), r.trace.traceID[:]...)
				if !isZero(r.trace.spanID[:]) {
					lr.SpanId = append([]byte(nil), r.trace.spanID[:]...)
				}
			}
			t.sink.ExportLog(lr)
		}
		*bp = b
		t.bufs.Put(bp)
	}
	if t.sink != nil && r.recordSpan() {
		t.sink.ExportSpan(t.span(r, end, srcP, dstP))
	}
}

// appendRecord appends the access record of r as one JSON object.
func appendRecord(b []byte, r *reqRecord, dur time.Duration, srcP, dstP string) []byte {
	b = append(b, `{"time":"`...)
	b = r.start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	kind := "http"
	if r.tcp {
		kind = "tcp"
	}
	b = append(b, `","kind":"`...)
	b = append(b, kind...)
	b = append(b, '"')
	b = jsonField(b, "reporter", r.rep.String())
	var tid, sid string
	var hb [48]byte
	if r.trace.valid {
		h := hex.AppendEncode(hb[:0], r.trace.traceID[:])
		tid = bstr(h)
		if !isZero(r.trace.spanID[:]) {
			h2 := hex.AppendEncode(h, r.trace.spanID[:])
			sid = bstr(h2[len(h):])
		}
	}
	b = jsonField(b, "trace_id", tid)
	b = jsonField(b, "span_id", sid)
	b = jsonField(b, "request_id", r.requestID)
	b = jsonField(b, "listener", r.listener)
	b = jsonField(b, "route", r.route)
	if !r.tcp {
		b = jsonField(b, "method", r.method)
		b = jsonField(b, "authority", r.authority)
		b = jsonField(b, "path", r.path)
		b = jsonField(b, "protocol", r.protocol)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(r.status), 10)
		b = jsonField(b, "grpc_status", r.grpcStatus)
	}
	b = append(b, `,"flags":"`...)
	b = r.flags.appendTo(b)
	b = append(b, '"')
	b = jsonField(b, "reason", r.reason)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(r.attempts), 10)
	b = jsonField(b, "cluster", r.cluster)
	b = jsonField(b, "upstream", r.upstream)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(dur)/1e6, 'f', 3, 64)
	b = append(b, `,"upstream_ms":`...)
	b = strconv.AppendFloat(b, float64(r.upDur)/1e6, 'f', 3, 64)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, r.bytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, r.bytesOut, 10)
	b = jsonField(b, "source_workload", orUnknown(r.srcWL))
	b = jsonField(b, "source_namespace", orUnknown(r.srcNS))
	b = jsonField(b, "source_principal", srcP)
	b = jsonField(b, "destination_workload", orUnknown(r.dstWL))
	b = jsonField(b, "destination_namespace", orUnknown(r.dstNS))
	b = jsonField(b, "destination_service", orUnknown(r.dstSvc))
	b = jsonField(b, "destination_principal", dstP)
	if !r.tcp {
		b = jsonField(b, "user_agent", r.userAgent)
	}
	return append(b, '}')
}

// jsonField appends ,"name":"value" with value escaped as a JSON string.
func jsonField(b []byte, name, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return appendJSONString(b, value)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		rn, size := utf8.DecodeRuneInString(s[i:])
		if rn == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// pathOnly strips the query of a request target.
func pathOnly(target string) string {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i]
	}
	return target
}

// tapHub fans access records out to /tap subscribers. With none, the hot
// path pays one atomic load. Safe for concurrent use.
type tapHub struct {
	n    atomic.Int32
	mu   sync.Mutex
	subs atomic.Pointer[[]*tapSub]
}

type tapSub struct {
	prefix  string
	ch      chan []byte
	dropped atomic.Uint64
}

// tapQueue bounds the records waiting for one slow tap client; beyond it
// records are dropped for that client.
const tapQueue = 256

func (h *tapHub) matches(path string) bool {
	subs := h.subs.Load()
	if subs == nil {
		return false
	}
	for _, s := range *subs {
		if strings.HasPrefix(path, s.prefix) {
			return true
		}
	}
	return false
}

// publish copies rec to every matching subscriber that has room.
func (h *tapHub) publish(path string, rec []byte) {
	subs := h.subs.Load()
	if subs == nil {
		return
	}
	for _, s := range *subs {
		if !strings.HasPrefix(path, s.prefix) {
			continue
		}
		select {
		case s.ch <- append([]byte(nil), rec...):
		default:
			s.dropped.Add(1)
		}
	}
}

func (h *tapHub) add(s *tapSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var next []*tapSub
	if cur := h.subs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, s)
	h.subs.Store(&next)
	h.n.Store(int32(len(next)))
}

func (h *tapHub) remove(s *tapSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := h.subs.Load()
	if cur == nil {
		return
	}
	next := make([]*tapSub, 0, len(*cur))
	for _, o := range *cur {
		if o != s {
			next = append(next, o)
		}
	}
	h.subs.Store(&next)
	h.n.Store(int32(len(next)))
}

// Tap streams the access records (JSON objects without a trailing
// newline) of requests whose path starts with pathPrefix until ctx is
// done. The channel is never closed: stop reading when ctx is done.
// Records beyond a backlog of 256 are dropped for this subscriber. Safe
// for concurrent use; it implements admin.Tapper.
func (p *Proxy) Tap(ctx context.Context, pathPrefix string) <-chan []byte {
	s := &tapSub{prefix: pathPrefix, ch: make(chan []byte, tapQueue)}
	p.tel.taps.add(s)
	context.AfterFunc(ctx, func() { p.tel.taps.remove(s) })
	return s.ch
}

// recWriter records the status and body size of a net/http response for
// the request's record. http.ResponseController reaches the wrapped
// writer through Unwrap.
type recWriter struct {
	http.ResponseWriter
	rec   *reqRecord
	wrote bool
}

func (w *recWriter) WriteHeader(code int) {
	if !w.wrote && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.wrote = true
		w.rec.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.rec.bytesOut += int64(n)
	return n, err
}

func (w *recWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streaming responses streaming when the wrapped writer can.
func (w *recWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.wrote {
			w.WriteHeader(http.StatusOK)
		}
		f.Flush()
	}
}

// recordOf returns the record behind a ResponseWriter of the net/http
// path, nil for another writer.
func recordOf(w http.ResponseWriter) *reqRecord {
	if rw, ok := w.(*recWriter); ok {
		return rw.rec
	}
	return nil
}

// grpcStatusOf reads the grpc-status of a finished net/http response
// (trailer or trailers-only header).
func grpcStatusOf(h http.Header) string {
	if v := h.Get("Grpc-Status"); v != "" {
		return v
	}
	return h.Get(http.TrailerPrefix + "Grpc-Status")
}
