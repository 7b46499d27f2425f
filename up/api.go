package up

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/store"
)

// The runtime's API endpoints, served next to the resource API:
//
//	GET  /api/v1/runtime/instances[?namespace=NS&workload=W]   JSON []InstanceStatus
//	GET  /api/v1/runtime/logs?workload=W[&namespace=NS&instance=I&sidecar=true&follow=true&tail=N]
//	                                                           text, one "[instance] line" per line
//	POST /api/v1/runtime/scale                                 ScaleRequest -> ScaleResponse
//
// An empty namespace means the one namespace that has a workload of that
// name (an error when several have).
const (
	InstancesPath = "/api/v1/runtime/instances"
	LogsPath      = "/api/v1/runtime/logs"
	ScalePath     = "/api/v1/runtime/scale"
)

// ScaleRequest is the body of POST /api/v1/runtime/scale.
type ScaleRequest struct {
	Namespace string `json:"namespace,omitempty"`
	Workload  string `json:"workload"`
	Replicas  int32  `json:"replicas"`
}

// ScaleResponse answers a scale request.
type ScaleResponse struct {
	Namespace string `json:"namespace"`
	Workload  string `json:"workload"`
	Replicas  int32  `json:"replicas"`
	Previous  int32  `json:"previous"`
}

func (rt *Runtime) registerAPI(a *api.Server) {
	a.Handle("GET "+InstancesPath, http.HandlerFunc(rt.handleInstances))
	a.Handle("GET "+LogsPath, http.HandlerFunc(rt.handleLogs))
	a.Handle("POST "+ScalePath, http.HandlerFunc(rt.handleScale))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, api.ErrorResponse{Code: code, Error: fmt.Sprintf(format, args...)})
}

func (rt *Runtime) handleInstances(w http.ResponseWriter, r *http.Request) {
	ns, name := r.URL.Query().Get("namespace"), r.URL.Query().Get("workload")
	out := []InstanceStatus{}
	for _, st := range rt.sup.Instances() {
		if (ns == "" || st.Namespace == ns) && (name == "" || st.Workload == name) {
			out = append(out, st)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// resolveUnit finds the unit of a name, in ns or (ns empty) in the one
// namespace that has it.
func (rt *Runtime) resolveUnit(ns, name string) (Unit, int, error) {
	var found []Unit
	for _, u := range rt.sup.Units() {
		if u.Name == name && (ns == "" || u.Namespace == ns) {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 1:
		return found[0], 0, nil
	case 0:
		if ns == "" {
			return Unit{}, http.StatusNotFound, fmt.Errorf("weft up runs no workload or gateway %q", name)
		}
		return Unit{}, http.StatusNotFound, fmt.Errorf("weft up runs no workload or gateway %q in namespace %q", name, ns)
	}
	var nss []string
	for _, u := range found {
		nss = append(nss, u.Namespace)
	}
	return Unit{}, http.StatusConflict, fmt.Errorf("%q exists in namespaces %s: pick one with -n", name, strings.Join(nss, ", "))
}

func (rt *Runtime) handleScale(w http.ResponseWriter, r *http.Request) {
	var req ScaleRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad scale request: %v", err)
		return
	}
	if req.Workload == "" {
		writeError(w, http.StatusBadRequest, "bad scale request: workload is required")
		return
	}
	res, code, err := rt.scale(r.Context(), req)
	if err != nil {
		writeError(w, code, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// scale stores the new replica count in the Workload; the store watch then
// scales the instances, as for any other change of the Workload.
func (rt *Runtime) scale(ctx context.Context, req ScaleRequest) (ScaleResponse, int, error) {
	ns := req.Namespace
	if ns == "" {
		u, code, err := rt.resolveUnit("", req.Workload)
		if err != nil {
			return ScaleResponse{}, code, err
		}
		ns = u.Namespace
	}
	key := resource.Key{Kind: resource.KindWorkload, Namespace: ns, Name: req.Workload}
	for attempt := 0; ; attempt++ {
		o, err := rt.plane.Store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return ScaleResponse{}, http.StatusNotFound, fmt.Errorf("workload %q not found in namespace %q", req.Workload, ns)
		}
		if err != nil {
			return ScaleResponse{}, http.StatusInternalServerError, err
		}
		if !Runnable(o.Workload()) {
			return ScaleResponse{}, http.StatusUnprocessableEntity, fmt.Errorf("workload %s/%s has neither command nor build: weft up does not run it", ns, req.Workload)
		}
		c := o.DeepCopy()
		spec := c.Workload()
		prev := spec.ReplicaCount()
		n := req.Replicas
		spec.Replicas = &n
		if _, err := resource.Validate(ctx, []resource.Object{c}, nil); err != nil {
			return ScaleResponse{}, http.StatusUnprocessableEntity, err
		}
		_, err = rt.plane.Store.Apply(ctx, []resource.Object{c}, store.ApplyOptions{})
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue // changed meanwhile: read it again
		}
		if err != nil {
			return ScaleResponse{}, http.StatusInternalServerError, err
		}
		return ScaleResponse{Namespace: ns, Workload: req.Workload, Replicas: n, Previous: prev}, 0, nil
	}
}

// logCursor follows one log.
type logCursor struct {
	src  LogSource
	next uint64
}

func (rt *Runtime) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("workload")
	if name == "" {
		writeError(w, http.StatusBadRequest, "query parameter workload is required")
		return
	}
	var flags [2]bool
	for i, p := range []string{"follow", "sidecar"} {
		if v := q.Get(p); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				writeError(w, http.StatusBadRequest, "query parameter %s: want true or false, got %q", p, v)
				return
			}
			flags[i] = b
		}
	}
	follow, sidecar := flags[0], flags[1]
	tail := -1
	if v := q.Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "query parameter tail: want a number, got %q", v)
			return
		}
		tail = n
	}
	u, code, err := rt.resolveUnit(q.Get("namespace"), name)
	if err != nil {
		writeError(w, code, "%v", err)
		return
	}
	instance := q.Get("instance")
	sources := func() []LogSource {
		var out []LogSource
		for _, s := range rt.sup.Logs(u.Namespace, u.Name, sidecar) {
			if instance == "" || s.Instance == instance {
				out = append(out, s)
			}
		}
		return out
	}
	first := sources()
	if instance != "" && len(first) == 0 {
		writeError(w, http.StatusNotFound, "no instance %q of %s/%s", instance, u.Namespace, u.Name)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	bw := bufio.NewWriter(w)
	flusher, _ := w.(http.Flusher)
	label := func(s LogSource) string {
		if s.Proxy {
			return s.Instance + " proxy"
		}
		return s.Instance
	}
	var cursors []*logCursor
	var waits []<-chan struct{}
	emit := func(batch []taggedLine) {
		slices.SortStableFunc(batch, func(a, b taggedLine) int { return a.Time.Compare(b.Time) })
		for _, l := range batch {
			fmt.Fprintf(bw, "[%s] %s\n", l.tag, l.Text)
		}
	}
	var batch []taggedLine
	for _, s := range first {
		lines, next, ch := s.Sink.Tail(tail)
		for _, l := range lines {
			batch = append(batch, taggedLine{l, label(s)})
		}
		cursors = append(cursors, &logCursor{src: s, next: next})
		waits = append(waits, ch)
	}
	emit(batch)
	bw.Flush()
	if flusher != nil {
		flusher.Flush()
	}
	if !follow {
		return
	}
	for {
		cases := []reflect.SelectCase{
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.Context().Done())},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(rt.stopping)},
			{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(rt.sup.Changed())},
		}
		for _, ch := range waits {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
		}
		if i, _, _ := reflect.Select(cases); i < 2 {
			return
		}
		// New instances (scale up) are followed from their current end.
		for _, s := range sources() {
			if !slices.ContainsFunc(cursors, func(c *logCursor) bool { return c.src.Sink == s.Sink }) {
				_, next, _ := s.Sink.Tail(0)
				cursors = append(cursors, &logCursor{src: s, next: next})
			}
		}
		batch, waits = batch[:0], waits[:0]
		for _, c := range cursors {
			lines, next, ch := c.src.Sink.Since(c.next)
			for _, l := range lines {
				batch = append(batch, taggedLine{l, label(c.src)})
			}
			c.next = next
			waits = append(waits, ch)
		}
		emit(batch)
		if err := bw.Flush(); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

type taggedLine struct {
	Line
	tag string
}
