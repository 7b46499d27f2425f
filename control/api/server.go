// Package api serves the control plane's HTTP JSON resource API, used by the
// CLI and the dashboard, and holds a Client for it.
//
//	POST   /api/v1/apply[?dryRun=true&source=NAME]   multi-document YAML or JSON
//	POST   /api/v1/delete                             multi-document YAML or JSON
//	GET    /api/v1/{kind}[?namespace=NS]              all namespaces by default
//	GET    /api/v1/{kind}/{namespace}/{name}
//	DELETE /api/v1/{kind}/{namespace}/{name}
//	GET    /api/v1/version
//	GET    /healthz
//
// {kind} is a plural lower-case kind (services, workloads, backendpolicies,
// gateways, httproutes, grpcroutes, tcproutes) or any alias `weft get`
// accepts. Errors are JSON ErrorResponse bodies with 400, 404, 405, 409,
// 413, 415 or 422.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/store"
)

// DefaultAddr is the API's default listen address.
const DefaultAddr = "127.0.0.1:7070"

// Options configure a Server. The zero value is usable.
type Options struct {
	// Version is reported by /api/v1/version.
	Version string
	// MaxBodyBytes bounds request bodies. Default 8 MiB.
	MaxBodyBytes int64
	// Logger for request failures. Default slog.Default().
	Logger *slog.Logger
}

// Server is the HTTP handler of the resource API. Other packages add
// endpoints with Handle (proxies, metrics, dashboard). It is safe for
// concurrent use; Handle must be called before serving starts.
type Server struct {
	mux     *http.ServeMux
	store   store.Store
	opts    Options
	applyMu sync.Mutex // validate-then-write is atomic per control plane
	// writeToken, when set, is required for writes (auth.go).
	writeToken atomic.Pointer[string]
	// ownAuth holds the paths whose handlers authenticate callers
	// themselves (HandleOwnAuth): the write token does not apply.
	ownAuth sync.Map // path -> struct{}
}

// New returns a Server over st.
func New(st store.Store, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.Logger = opts.Logger.With("component", "api")
	s := &Server{mux: http.NewServeMux(), store: st, opts: opts}
	s.mux.HandleFunc("/healthz", s.methods(map[string]http.HandlerFunc{http.MethodGet: s.healthz}))
	s.mux.HandleFunc("/api/v1/version", s.methods(map[string]http.HandlerFunc{http.MethodGet: s.version}))
	s.mux.HandleFunc("/api/v1/apply", s.methods(map[string]http.HandlerFunc{http.MethodPost: s.apply}))
	s.mux.HandleFunc("/api/v1/delete", s.methods(map[string]http.HandlerFunc{http.MethodPost: s.deleteDocs}))
	s.mux.HandleFunc("/api/v1/{kind}", s.methods(map[string]http.HandlerFunc{http.MethodGet: s.list}))
	s.mux.HandleFunc("/api/v1/{kind}/{namespace}/{name}", s.methods(map[string]http.HandlerFunc{
		http.MethodGet: s.get, http.MethodDelete: s.deleteOne,
	}))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s", r.URL.Path), nil)
	})
	return s
}

// Handle registers an extra endpoint (http.ServeMux pattern syntax).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// HandleOwnAuth is Handle for a handler that authenticates its callers
// itself (the OTLP/HTTP receivers take proxies' join tokens): requests to
// its path skip RequireWriteToken's operator-token check.
func (s *Server) HandleOwnAuth(pattern string, h http.Handler) {
	path := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		path = p
	}
	s.ownAuth.Store(path, struct{}{})
	s.mux.Handle(pattern, h)
}

// ServeHTTP serves the API; a panic in a handler becomes a 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.opts.Logger.Error("handler panic", "path", r.URL.Path, "panic", p)
			writeError(w, http.StatusInternalServerError, "internal error", nil)
		}
	}()
	if !s.checkWrite(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Serve serves on ln until ctx is done, then shuts down gracefully (5s).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}

func (s *Server) methods(m map[string]http.HandlerFunc) http.HandlerFunc {
	allowed := make([]string, 0, len(m))
	for k := range m {
		allowed = append(allowed, k)
	}
	slices.Sort(allowed)
	allow := strings.Join(allowed, ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		h, ok := m[r.Method]
		if !ok && r.Method == http.MethodHead {
			h, ok = m[http.MethodGet]
		}
		if !ok {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow), nil)
			return
		}
		h(w, r)
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, VersionResponse{Version: s.opts.Version, Revision: s.store.Revision()})
}

// readBody reads a YAML or JSON request body.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("bad Content-Type %q: %v", ct, err), nil)
			return nil, false
		case mt != "application/yaml" && mt != "application/x-yaml" && mt != "text/yaml" && mt != "text/x-yaml" &&
			mt != "application/json" && mt != "text/plain" && mt != "application/octet-stream" && mt != SourcesContentType:
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Type %q: send application/yaml or application/json", mt), nil)
			return nil, false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit), nil)
		} else {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("read request body: %v", err), nil)
		}
		return nil, false
	}
	return body, true
}

// decodeRequest reads the objects of an apply or delete: a YAML or JSON
// body named by the "source" query parameter, or a SourcesRequest. It
// answers the request itself when it fails.
func (s *Server) decodeRequest(w http.ResponseWriter, r *http.Request) ([]resource.Object, bool) {
	body, ok := s.readBody(w, r)
	if !ok {
		return nil, false
	}
	sources := []Source{{Name: r.URL.Query().Get("source"), Data: string(body)}}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == SourcesContentType {
		var req SourcesRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("bad %s body: %v", SourcesContentType, err), nil)
			return nil, false
		}
		sources = req.Sources
	}
	var (
		objs []resource.Object
		errs []error
	)
	for _, src := range sources {
		o, err := resource.Decode(src.Name, []byte(src.Data))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, o...)
	}
	if len(errs) > 0 {
		writeError(w, http.StatusUnprocessableEntity, "", errors.Join(errs...))
		return nil, false
	}
	if len(objs) == 0 {
		writeError(w, http.StatusBadRequest, "no objects in the request", nil)
		return nil, false
	}
	return objs, true
}

func boolParam(w http.ResponseWriter, r *http.Request, name string) (bool, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, true
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("query parameter %s: want true or false, got %q", name, v), nil)
		return false, false
	}
	return b, true
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	dryRun, ok := boolParam(w, r, "dryRun")
	if !ok {
		return
	}
	objs, ok := s.decodeRequest(w, r)
	if !ok {
		return
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	warnings, err := resource.Validate(r.Context(), objs, s.store)
	if err != nil {
		if len(resource.Errors(err)) == 1 && !isValidation(err) {
			s.fail(w, r, err)
			return
		}
		writeError(w, http.StatusUnprocessableEntity, "", err, warnings...)
		return
	}
	res, err := s.store.Apply(r.Context(), objs, store.ApplyOptions{DryRun: dryRun})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			writeError(w, http.StatusConflict, "", err, warnings...)
			return
		}
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ApplyResponse{Results: results(res), Warnings: warnings, Revision: res.Revision, DryRun: dryRun})
}

func isValidation(err error) bool {
	var re *resource.Error
	return errors.As(err, &re)
}

func (s *Server) deleteDocs(w http.ResponseWriter, r *http.Request) {
	objs, ok := s.decodeRequest(w, r)
	if !ok {
		return
	}
	keys := make([]resource.Key, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, o.Key())
	}
	s.deleteKeys(w, r, keys, false)
}

func (s *Server) deleteOne(w http.ResponseWriter, r *http.Request) {
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	s.deleteKeys(w, r, []resource.Key{key}, true)
}

func (s *Server) deleteKeys(w http.ResponseWriter, r *http.Request, keys []resource.Key, single bool) {
	if len(keys) == 0 {
		writeError(w, http.StatusBadRequest, "no objects in the request", nil)
		return
	}
	s.applyMu.Lock()
	res, err := s.store.Delete(r.Context(), keys)
	s.applyMu.Unlock()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if single && res.Objects[0].Outcome == store.OutcomeNotFound {
		k := keys[0]
		ki, _ := resource.InfoFor(k.Kind)
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %q not found in namespace %q", ki.Plural, k.Name, k.Namespace), nil)
		return
	}
	writeJSON(w, http.StatusOK, ApplyResponse{Results: results(res), Revision: res.Revision})
}

func (s *Server) kind(w http.ResponseWriter, r *http.Request) (resource.KindInfo, bool) {
	name := r.PathValue("kind")
	ki, ok := resource.LookupKind(name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown resource type %q (known: %s)", name, strings.Join(resource.KindNames(), ", ")), nil)
	}
	return ki, ok
}

func (s *Server) key(w http.ResponseWriter, r *http.Request) (resource.Key, bool) {
	ki, ok := s.kind(w, r)
	if !ok {
		return resource.Key{}, false
	}
	return resource.Key{Kind: ki.Kind, Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	ki, ok := s.kind(w, r)
	if !ok {
		return
	}
	// Read the revision first: the list is at least as new as it.
	rev := s.store.Revision()
	objs, err := s.store.List(r.Context(), ki.Kind, r.URL.Query().Get("namespace"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if objs == nil {
		objs = []resource.Object{}
	}
	writeJSON(w, http.StatusOK, List{APIVersion: "v1", Kind: "List", Metadata: ListMeta{ResourceVersion: strconv.FormatInt(rev, 10)}, Items: objs})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	key, ok := s.key(w, r)
	if !ok {
		return
	}
	o, err := s.store.Get(r.Context(), key)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, err.Error(), nil)
			return
		}
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// fail answers 500 (or 503 for a closed store / cancelled request) and logs.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, store.ErrClosed):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	s.opts.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, code, err.Error(), nil)
}

func results(res store.Result) []ObjectResult {
	out := make([]ObjectResult, 0, len(res.Objects))
	for _, o := range res.Objects {
		out = append(out, ObjectResult{Kind: o.Key.Kind, Namespace: o.Key.Namespace, Name: o.Key.Name, Outcome: string(o.Outcome), ResourceVersion: o.ResourceVersion, Generation: o.Generation})
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b, _ = json.Marshal(ErrorResponse{Code: code, Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// writeError answers with an ErrorResponse. err (may be nil) is flattened
// into Errors, one entry per problem; msg defaults to a summary of them.
func writeError(w http.ResponseWriter, code int, msg string, err error, warnings ...string) {
	resp := ErrorResponse{Code: code, Error: msg, Warnings: warnings}
	for _, e := range resource.Errors(err) {
		resp.Errors = append(resp.Errors, e.Error())
	}
	if resp.Error == "" {
		switch n := len(resp.Errors); n {
		case 0:
			resp.Error = http.StatusText(code)
		case 1:
			resp.Error = resp.Errors[0]
		default:
			resp.Error = fmt.Sprintf("%d errors", n)
		}
	}
	writeJSON(w, code, resp)
}
