package proxy

import (
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The golden request metrics of docs/observability.md. Series are found
// through copy-on-write maps keyed by label values: the hot path does one
// atomic load and one map lookup per level and allocates nothing once a
// series exists; a new series copies the map under a lock (label values
// are bounded, so this happens a bounded number of times).

// cowMap is a copy-on-write map from K to *V. Safe for concurrent use.
type cowMap[K comparable, V any] struct {
	m  atomic.Pointer[map[K]*V]
	mu sync.Mutex
}

func (c *cowMap[K, V]) load(k K) *V {
	if m := c.m.Load(); m != nil {
		return (*m)[k]
	}
	return nil
}

// insert returns the value of k, adding a new one when absent. k must own
// its strings (no views of request buffers).
func (c *cowMap[K, V]) insert(k K) *V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v := (*old)[k]; v != nil {
			return v
		}
	}
	n := make(map[K]*V, c.lenLocked()+1)
	if old != nil {
		for k, v := range *old {
			n[k] = v
		}
	}
	v := new(V)
	n[k] = v
	c.m.Store(&n)
	return v
}

func (c *cowMap[K, V]) lenLocked() int {
	if m := c.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// snapshot returns the current map; read only.
func (c *cowMap[K, V]) snapshot() map[K]*V {
	if m := c.m.Load(); m != nil {
		return *m
	}
	return nil
}

// maxEdges bounds the series keyed by caller-supplied values
// (x-weft-source): beyond it, those values become "unknown".
const maxEdges = 4096

// edgeKey is the label set of weft_requests_total without the outcome.
type edgeKey struct {
	rep                                       reporter
	grpc                                      bool
	srcWL, srcNS, srcPrincipal                string
	dstWL, dstNS, dstSvc, dstPrincipal, route string
}

func (k edgeKey) clone() edgeKey {
	for _, s := range []*string{&k.srcWL, &k.srcNS, &k.srcPrincipal, &k.dstWL, &k.dstNS, &k.dstSvc, &k.dstPrincipal, &k.route} {
		*s = strings.Clone(*s)
	}
	return k
}

// outcomeKey completes an edgeKey to the labels of one counter.
type outcomeKey struct {
	code  int32
	grpc  string // a constant or a cloned value
	flags respFlags
}

// edge holds the series of one edgeKey.
type edge struct {
	outcomes cowMap[outcomeKey, atomic.Uint64]
	classes  [6]classStats // by status class; [0] no status
}

type classStats struct {
	dur, up             histogram
	reqBytes, respBytes atomic.Uint64
}

// durationBounds are the histogram buckets in seconds.
var durationBounds = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

var durationBoundsNs = func() (b [len(durationBounds)]int64) {
	for i, s := range durationBounds {
		b[i] = int64(s * float64(time.Second))
	}
	return b
}()

// histogram counts observations per bucket (not cumulative); the count
// beyond the last bound is count minus their sum. Safe for concurrent use.
type histogram struct {
	buckets [len(durationBounds)]atomic.Uint64
	count   atomic.Uint64
	sumNs   atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	ns := int64(d)
	for i, b := range durationBoundsNs {
		if ns <= b {
			h.buckets[i].Add(1)
			break
		}
	}
	h.count.Add(1)
	h.sumNs.Add(ns)
}

// histSnap is a histogram read for rendering (cumulative buckets).
type histSnap struct {
	buckets [len(durationBounds)]uint64
	count   uint64
	sumNs   int64
}

func (s *histSnap) add(h *histogram) {
	var cum uint64
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		s.buckets[i] += cum
	}
	s.count += h.count.Load()
	s.sumNs += h.sumNs.Load()
}

func statusClass(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

var grpcStatusNames = func() (s [17]string) {
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// grpcLabel returns a bounded grpc_status label value.
func grpcLabel(v string) string {
	if v == "" {
		return ""
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 && n < len(grpcStatusNames) {
		return grpcStatusNames[n]
	}
	return unknown
}

// observe updates the request metrics of a finished HTTP request.
func (t *telemetry) observe(r *reqRecord, dur time.Duration) {
	if r.tcp {
		return
	}
	srcP, dstP := t.principals(r)
	k := edgeKey{
		rep: r.rep, grpc: r.grpc,
		srcWL: orUnknown(r.srcWL), srcNS: orUnknown(r.srcNS), srcPrincipal: srcP,
		dstWL: orUnknown(r.dstWL), dstNS: orUnknown(r.dstNS), dstSvc: orUnknown(r.dstSvc), dstPrincipal: dstP,
		route: orUnknown(r.route),
	}
	e := t.edges.load(k)
	if e == nil {
		if r.rep == repDestination && len(t.edges.snapshot()) >= maxEdges {
			k.srcWL, k.srcNS = unknown, unknown
		}
		e = t.edges.insert(k.clone())
	}
	ok := outcomeKey{code: int32(r.status), grpc: grpcLabel(r.grpcStatus), flags: r.flags}
	c := e.outcomes.load(ok)
	if c == nil {
		c = e.outcomes.insert(ok)
	}
	c.Add(1)
	cs := &e.classes[statusClass(r.status)]
	cs.dur.observe(dur)
	if r.hasUp {
		cs.up.observe(r.upDur)
	}
	cs.reqBytes.Add(uint64(max(r.bytesIn, 0)))
	cs.respBytes.Add(uint64(max(r.bytesOut, 0)))
}

// tcpKey labels the TCP series.
type tcpKey struct {
	rep                                reporter
	srcWL, srcNS, dstWL, dstNS, dstSvc string
}

type tcpEdge struct{ opened, closed, sent, received atomic.Uint64 }

func (t *telemetry) tcpEdge(r *reqRecord) *tcpEdge {
	k := tcpKey{rep: r.rep, srcWL: orUnknown(r.srcWL), srcNS: orUnknown(r.srcNS), dstWL: orUnknown(r.dstWL), dstNS: orUnknown(r.dstNS), dstSvc: orUnknown(r.dstSvc)}
	if e := t.tcp.load(k); e != nil {
		return e
	}
	k.srcWL, k.srcNS, k.dstWL, k.dstNS, k.dstSvc = strings.Clone(k.srcWL), strings.Clone(k.srcNS), strings.Clone(k.dstWL), strings.Clone(k.dstNS), strings.Clone(k.dstSvc)
	return t.tcp.insert(k)
}

// label is one name="value" pair.
type label struct{ name, value string }

// appendSeries appends name{labels} (without the value).
func appendSeries(b []byte, name string, ls []label) []byte {
	b = append(b, name...)
	b = append(b, '{')
	for i, l := range ls {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.name...)
		b = append(b, `="`...)
		for j := 0; j < len(l.value); j++ {
			switch c := l.value[j]; c {
			case '\\':
				b = append(b, `\\`...)
			case '"':
				b = append(b, `\"`...)
			case '\n':
				b = append(b, `\n`...)
			default:
				b = append(b, c)
			}
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

func classLabel(c int) string {
	if c == 0 {
		return unknown
	}
	return strconv.Itoa(c) + "xx"
}

// histKey is the label set of the duration histograms and byte counters.
type histKey struct {
	rep                                       reporter
	srcWL, srcNS, dstWL, dstNS, dstSvc, route string
	class                                     int
}

func (k histKey) labels() []label {
	return []label{{"reporter", k.rep.String()}, {"source_workload", k.srcWL}, {"source_namespace", k.srcNS},
		{"destination_workload", k.dstWL}, {"destination_namespace", k.dstNS}, {"destination_service", k.dstSvc},
		{"route", k.route}, {"response_code_class", classLabel(k.class)}}
}

func (k histKey) sortKey() string {
	return strings.Join([]string{k.rep.String(), k.srcWL, k.srcNS, k.dstWL, k.dstNS, k.dstSvc, k.route, strconv.Itoa(k.class)}, "\x00")
}

// writeGolden renders the golden metrics (sorted by labels, so that the
// output is stable).
func (t *telemetry) writeGolden(w io.Writer) {
	var b []byte
	edges := t.edges.snapshot()
	type line struct {
		key string
		b   []byte
	}
	var lines []line
	type agg struct {
		dur, up             histSnap
		reqBytes, respBytes uint64
	}
	hists := map[histKey]*agg{}
	for k, e := range edges {
		for ok, c := range e.outcomes.snapshot() {
			ls := []label{{"reporter", k.rep.String()}, {"source_workload", k.srcWL}, {"source_namespace", k.srcNS},
				{"source_principal", k.srcPrincipal}, {"destination_workload", k.dstWL}, {"destination_namespace", k.dstNS},
				{"destination_service", k.dstSvc}, {"destination_principal", k.dstPrincipal}, {"route", k.route},
				{"request_protocol", protoLabel(k.grpc)}, {"response_code", strconv.Itoa(int(ok.code))},
				{"grpc_status", ok.grpc}, {"response_flags", ok.flags.String()}}
			series := appendSeries(nil, "weft_requests_total", ls)
			lb := append(append(slices.Clip(series), ' '), strconv.FormatUint(c.Load(), 10)...)
			lines = append(lines, line{string(series), append(lb, '\n')})
		}
		for class := range e.classes {
			cs := &e.classes[class]
			if cs.dur.count.Load() == 0 {
				continue
			}
			hk := histKey{k.rep, k.srcWL, k.srcNS, k.dstWL, k.dstNS, k.dstSvc, k.route, class}
			a := hists[hk]
			if a == nil {
				a = &agg{}
				hists[hk] = a
			}
			a.dur.add(&cs.dur)
			a.up.add(&cs.up)
			a.reqBytes += cs.reqBytes.Load()
			a.respBytes += cs.respBytes.Load()
		}
	}
	slices.SortFunc(lines, func(a, b line) int { return strings.Compare(a.key, b.key) })
	b = append(b, "# TYPE weft_requests_total counter\n"...)
	for _, l := range lines {
		b = append(b, l.b...)
	}
	hks := make([]histKey, 0, len(hists))
	for k := range hists {
		hks = append(hks, k)
	}
	slices.SortFunc(hks, func(a, b histKey) int { return strings.Compare(a.sortKey(), b.sortKey()) })
	writeHist := func(name string, get func(*agg) *histSnap, only func(histKey) bool) {
		b = append(b, "# TYPE "...)
		b = append(b, name...)
		b = append(b, " histogram\n"...)
		for _, k := range hks {
			h := get(hists[k])
			if !only(k) || h.count == 0 {
				continue
			}
			ls := k.labels()
			for i, bound := range durationBounds {
				b = appendSeries(b, name+"_bucket", append(ls, label{"le", strconv.FormatFloat(bound, 'g', -1, 64)}))
				b = append(b, ' ')
				b = strconv.AppendUint(b, h.buckets[i], 10)
				b = append(b, '\n')
			}
			b = appendSeries(b, name+"_bucket", append(ls, label{"le", "+Inf"}))
			b = append(b, ' ')
			b = strconv.AppendUint(b, h.count, 10)
			b = append(b, '\n')
			b = appendSeries(b, name+"_sum", ls)
			b = append(b, ' ')
			b = strconv.AppendFloat(b, time.Duration(h.sumNs).Seconds(), 'g', -1, 64)
			b = append(b, '\n')
			b = appendSeries(b, name+"_count", ls)
			b = append(b, ' ')
			b = strconv.AppendUint(b, h.count, 10)
			b = append(b, '\n')
		}
	}
	all := func(histKey) bool { return true }
	writeHist("weft_request_duration_seconds", func(a *agg) *histSnap { return &a.dur }, all)
	writeHist("weft_upstream_duration_seconds", func(a *agg) *histSnap { return &a.up }, func(k histKey) bool { return k.rep != repDestination })
	for _, c := range []struct {
		name string
		get  func(*agg) uint64
	}{
		{"weft_request_bytes_total", func(a *agg) uint64 { return a.reqBytes }},
		{"weft_response_bytes_total", func(a *agg) uint64 { return a.respBytes }},
	} {
		b = append(b, "# TYPE "...)
		b = append(b, c.name...)
		b = append(b, " counter\n"...)
		for _, k := range hks {
			b = appendSeries(b, c.name, k.labels())
			b = append(b, ' ')
			b = strconv.AppendUint(b, c.get(hists[k]), 10)
			b = append(b, '\n')
		}
	}
	tcp := t.tcp.snapshot()
	tks := make([]tcpKey, 0, len(tcp))
	for k := range tcp {
		tks = append(tks, k)
	}
	tcpLabels := func(k tcpKey) []label {
		return []label{{"reporter", k.rep.String()}, {"source_workload", k.srcWL}, {"source_namespace", k.srcNS},
			{"destination_workload", k.dstWL}, {"destination_namespace", k.dstNS}, {"destination_service", k.dstSvc}}
	}
	slices.SortFunc(tks, func(a, b tcpKey) int {
		return strings.Compare(string(appendSeries(nil, "", tcpLabels(a))), string(appendSeries(nil, "", tcpLabels(b))))
	})
	for _, c := range []struct {
		name string
		get  func(*tcpEdge) uint64
	}{
		{"weft_tcp_connections_opened_total", func(e *tcpEdge) uint64 { return e.opened.Load() }},
		{"weft_tcp_connections_closed_total", func(e *tcpEdge) uint64 { return e.closed.Load() }},
		{"weft_tcp_sent_bytes_total", func(e *tcpEdge) uint64 { return e.sent.Load() }},
		{"weft_tcp_received_bytes_total", func(e *tcpEdge) uint64 { return e.received.Load() }},
	} {
		b = append(b, "# TYPE "...)
		b = append(b, c.name...)
		b = append(b, " counter\n"...)
		for _, k := range tks {
			b = appendSeries(b, c.name, tcpLabels(k))
			b = append(b, ' ')
			b = strconv.AppendUint(b, c.get(tcp[k]), 10)
			b = append(b, '\n')
		}
	}
	w.Write(b)
}

func protoLabel(grpc bool) string {
	if grpc {
		return "grpc"
	}
	return "http"
}
