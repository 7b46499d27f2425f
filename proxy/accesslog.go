package proxy

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The access record of docs/observability.md: one JSON object per HTTP
// request or TCP connection, rendered once and written to the access log,
// to the taps whose prefix matches, and to the exporter as an OTLP log
// record.

// emit hands out the record of a finished request: rendered at once for
// a matching tap, queued for the telemetry goroutine otherwise.
func (t *telemetry) emit(r *reqRecord, dur time.Duration) {
	tapping := t.taps.n.Load() > 0 && t.taps.matches(r.path)
	if t.q == nil && !tapping {
		return
	}
	var d doneRec
	t.pack(&d, r, dur)
	if tapping {
		bp := t.bufs.Get().(*[]byte)
		b := appendRecord((*bp)[:0], &d)
		t.taps.publish(r.path, b)
		*bp = b
		t.bufs.Put(bp)
	}
	if t.q != nil && !t.q.put(&d) && t.sink != nil {
		spans := 0
		if d.bits&bitSpan != 0 {
			spans = 1
		}
		t.sink.DropRecords(spans, 1)
	}
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
	n       atomic.Int32
	mu      sync.Mutex
	subs    atomic.Pointer[[]*tapSub]
	changed chan struct{} // closed and replaced when subs changes; nil until watched
}

// watch returns a channel closed the next time a subscriber comes or
// goes (tests wait on it).
func (h *tapHub) watch() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.changed
}

// store installs the subscriber list. Caller holds h.mu.
func (h *tapHub) store(next []*tapSub) {
	h.subs.Store(&next)
	h.n.Store(int32(len(next)))
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
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
	h.store(append(next, s))
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
	h.store(next)
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
