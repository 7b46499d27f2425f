package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/xds"
)

// API paths.
const (
	TopPath         = "/api/v1/top"
	MetricsPath     = "/api/v1/metrics"
	TopologyPath    = "/api/v1/topology"
	TracesPath      = "/api/v1/traces"
	LogsPath        = "/api/v1/logs"
	TapPath         = "/api/v1/tap"
	TargetsPath     = "/api/v1/prometheus/targets"
	ndjsonType      = "application/x-ndjson"
	maxTapLineBytes = 1 << 20
)

// LogList answers GET /api/v1/logs without follow.
type LogList struct {
	Records []LogRecord `json:"records"`
	// Last is the Seq of the last record the hub holds: ask with
	// after=<Last> for what came since.
	Last uint64 `json:"last"`
}

// RegisterAPI adds the hub's endpoints; pass the control API's Handle.
func (h *Hub) RegisterAPI(handle func(pattern string, handler http.Handler)) {
	handle("GET "+TopPath, http.HandlerFunc(h.serveTop))
	handle("GET "+MetricsPath, http.HandlerFunc(h.serveMetrics))
	handle("GET "+TopologyPath, http.HandlerFunc(h.serveTopology))
	handle("GET "+TracesPath, http.HandlerFunc(h.serveTraces))
	handle("GET "+TracesPath+"/{id}", http.HandlerFunc(h.serveTrace))
	handle("GET "+LogsPath, http.HandlerFunc(h.serveLogs))
	handle("GET "+TapPath, http.HandlerFunc(h.serveTap))
	handle("GET "+TargetsPath, http.HandlerFunc(h.serveTargets))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		api.WriteError(w, http.StatusInternalServerError, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	api.WriteError(w, http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// parseSince reads a since parameter: a duration back from now ("15m") or
// an RFC 3339 time; "" is the zero time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("since: %q is neither a duration (15m) nor an RFC 3339 time", v)
	}
	return t, nil
}

func positiveInt(name, v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: %q is not a positive integer", name, v)
	}
	return n, nil
}

func (h *Hub) serveTop(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, h.metrics.top(r.URL.Query().Get("namespace")))
}

func (h *Hub) serveMetrics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := parseSince(q.Get("since"), h.opts.Clock.Now())
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	mq := MetricsQuery{Workload: q.Get("workload"), Edge: q.Get("edge"), Since: since}
	if mq.Workload != "" && mq.Edge != "" {
		badRequest(w, "give workload or edge, not both")
		return
	}
	if mq.Edge != "" && !strings.Contains(mq.Edge, "->") {
		badRequest(w, "edge: %q: want <source workload>[.<namespace>]-><destination service>", mq.Edge)
		return
	}
	writeJSON(w, MetricsResponse{Interval: h.opts.ScrapeInterval.String(), Series: h.metrics.series(mq)})
}

func (h *Hub) serveTopology(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, h.metrics.topology())
}

func (h *Hub) serveTraces(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tq := TraceQuery{Service: q.Get("service")}
	if v := q.Get("minDuration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			badRequest(w, "minDuration: %q is not a duration (250ms)", v)
			return
		}
		tq.MinDuration = d
	}
	var err error
	if tq.Limit, err = positiveInt("limit", q.Get("limit")); err != nil {
		badRequest(w, "%v", err)
		return
	}
	writeJSON(w, TraceList{Traces: h.Traces(tq)})
}

func (h *Hub) serveTrace(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := hexID(id, 32); !ok || len(id) != 32 {
		badRequest(w, "trace id %q: want 32 hex digits", id)
		return
	}
	t, ok := h.Trace(id)
	if !ok {
		api.WriteError(w, http.StatusNotFound, fmt.Sprintf("trace %s: not found (never received, or dropped)", id))
		return
	}
	writeJSON(w, t)
}

func (h *Hub) serveLogs(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	lq := LogQuery{Namespace: v.Get("namespace"), Workload: v.Get("workload"), TraceID: v.Get("trace"), Contains: v.Get("q")}
	if name, ns, ok := strings.Cut(lq.Workload, "."); ok && lq.Namespace == "" {
		lq.Workload, lq.Namespace = name, ns // "<workload>.<namespace>"
	}
	var err error
	if lq.Since, err = parseSince(v.Get("since"), h.opts.Clock.Now()); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if lq.Limit, err = positiveInt("limit", v.Get("limit")); err != nil {
		badRequest(w, "%v", err)
		return
	}
	if a := v.Get("after"); a != "" {
		if lq.After, err = strconv.ParseUint(a, 10, 64); err != nil {
			badRequest(w, "after: %q is not a sequence number", a)
			return
		}
	}
	follow := false
	if f := v.Get("follow"); f != "" {
		if follow, err = strconv.ParseBool(f); err != nil {
			badRequest(w, "follow: %q is not true or false", f)
			return
		}
	}
	recs, last, changed := h.Logs(lq)
	if !follow {
		if recs == nil {
			recs = []LogRecord{}
		}
		writeJSON(w, LogList{Records: recs, Last: last})
		return
	}
	w.Header().Set("Content-Type", ndjsonType)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for {
		for _, rec := range recs {
			if enc.Encode(rec) != nil {
				return
			}
		}
		if rc.Flush() != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-h.stopped:
			return
		case <-changed:
		}
		lq.After = last
		recs, last, changed = h.Logs(lq)
	}
}

func (h *Hub) serveTargets(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, h.Targets())
}

// Targets returns one Prometheus target group per connected proxy that
// declared an admin address.
func (h *Hub) Targets() []TargetGroup {
	out := []TargetGroup{}
	for _, p := range h.opts.Proxies.Proxies() {
		addr := scrapeAddr(p)
		if addr == "" {
			continue
		}
		out = append(out, TargetGroup{Targets: []string{addr}, Labels: map[string]string{
			"__metrics_path__": "/stats/prometheus",
			"namespace":        p.Namespace,
			"workload":         p.Workload,
			"node":             p.ID,
		}})
	}
	return out
}

// serveTap opens the admin /tap stream of every connected proxy of the
// workload and merges their NDJSON lines until the client leaves, the hub
// stops or every proxy's stream has ended.
func (h *Hub) serveTap(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	wl, ns := v.Get("workload"), v.Get("namespace")
	if wl == "" {
		badRequest(w, "workload is required")
		return
	}
	var targets []xds.ProxyStatus
	for _, p := range h.opts.Proxies.Proxies() {
		if scrapeAddr(p) == "" || (ns != "" && p.Namespace != ns) || !serviceMatches(wl, p.Workload, p.Namespace) {
			continue
		}
		targets = append(targets, p)
	}
	if len(targets) == 0 {
		api.WriteError(w, http.StatusNotFound, fmt.Sprintf("workload %q: no connected proxy with an admin address", wl))
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-h.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	type opened struct {
		resp *http.Response
		err  error
	}
	streams := make([]opened, len(targets))
	var wg sync.WaitGroup
	for i, p := range targets {
		wg.Go(func() {
			u := "http://" + scrapeAddr(p) + "/tap?path=" + url.QueryEscape(v.Get("path"))
			resp, err := openTap(ctx, h.opts.Client, u)
			if err != nil {
				err = fmt.Errorf("proxy %s: %w", p.ID, err)
			}
			streams[i] = opened{resp, err}
		})
	}
	wg.Wait()
	lines := make(chan []byte, 256)
	var errs []error
	var readers sync.WaitGroup
	for _, s := range streams {
		if s.err != nil {
			errs = append(errs, s.err)
			continue
		}
		readers.Go(func() {
			defer s.resp.Body.Close()
			sc := bufio.NewScanner(s.resp.Body)
			sc.Buffer(make([]byte, 0, 64<<10), maxTapLineBytes)
			for sc.Scan() {
				line := append([]byte(nil), sc.Bytes()...)
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	if len(errs) == len(streams) {
		api.WriteError(w, http.StatusBadGateway, "tap: "+errors.Join(errs...).Error())
		return
	}
	for _, err := range errs {
		h.log.Info("tap: a proxy did not answer", "err", err)
	}
	go func() {
		readers.Wait()
		close(lines)
	}()
	defer func() {
		cancel()
		for range lines { // let the readers finish
		}
	}()
	w.Header().Set("Content-Type", ndjsonType)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		return
	}
	for line := range lines {
		if _, err := w.Write(append(line, '\n')); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

func openTap(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("tap: %s", resp.Status)
	}
	return resp, nil
}
