package instance

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/tracectx"
)

// HeaderTraceID is the response header that names the trace of a request
// (32 hex digits) when the request carried a W3C trace context, as every
// request through the mesh does: `weft traces <id>` shows its spans and
// `weft logs --trace <id>` its log lines.
const HeaderTraceID = "X-Trace-Id"

// Observe wraps a service's handler with what every shop service does for
// observability:
//
//   - the request's trace context goes into its context
//     (tracectx.Handler), so that the calls the handler makes with it (a
//     client with tracectx.Transport, or cartpb.Dial's connections) join
//     the request's trace;
//   - the answer carries the trace id in X-Trace-Id;
//   - one line per request is logged at Info, "request" with method,
//     path, status, grpc_status (gRPC calls), duration_ms and trace_id: the
//     trace_id=<32 hex> attribute files the line under its trace in the
//     mesh's telemetry hub. Readiness probes (GET /healthz) are not logged.
//
// NewServer applies it to every service.
func Observe(h http.Handler, logger *slog.Logger) http.Handler {
	return tracectx.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		id := tracectx.FromContext(r.Context()).TraceID()
		if id != "" {
			w.Header().Set(HeaderTraceID, id)
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		attrs := make([]any, 0, 12)
		attrs = append(attrs, "method", r.Method, "path", r.URL.Path, "status", sw.code())
		if gs := grpcStatus(w.Header()); gs != "" {
			attrs = append(attrs, "grpc_status", gs)
		}
		attrs = append(attrs, "duration_ms", float64(time.Since(start).Microseconds())/1000)
		if id != "" {
			attrs = append(attrs, "trace_id", id)
		}
		logger.Info("request", attrs...)
	}))
}

// grpcStatus returns the grpc-status a gRPC handler set (as a header or a
// trailer), "" for other requests.
func grpcStatus(h http.Header) string {
	if v := h.Get("Grpc-Status"); v != "" {
		return v
	}
	return h.Get(http.TrailerPrefix + "Grpc-Status")
}

// statusWriter records the status of the answer. It keeps the wrapped
// writer's Flush (gRPC needs it) and exposes it through Unwrap for
// http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher (a no-op when the wrapped writer cannot
// flush).
func (w *statusWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer (http.ResponseController).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the status answered; a handler that wrote nothing answered 200.
func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
