package telemetry

import (
	"strings"
	"time"
)

// WindowQuery selects what Window aggregates: Workload (a destination
// workload), Service (every edge into a destination service), or
// SourceWorkload with Service (one edge); all in Namespace. Backends
// ("<name>.<namespace>") are services whose edges count as Service's: a
// Service that is only the parent of routes has no edges of its own, the
// callers' sidecars report the route's backends.
type WindowQuery struct {
	Namespace      string
	Workload       string
	Service        string
	SourceWorkload string
	Backends       []string
}

// Window aggregates the history of the series q selects over the window
// ending at now: requests and rate summed, success rate weighted by
// requests, and each latency percentile as the request-weighted mean of the
// intervals' percentiles (an approximation: intervals keep percentiles, not
// histograms). ok is false when no series matches.
func (h *Hub) Window(q WindowQuery, window time.Duration, now time.Time) (Golden, bool) {
	s := h.metrics
	s.mu.Lock()
	defer s.mu.Unlock()
	since := now.Add(-window)
	var g Golden
	var okSeries bool
	var succ, succN, lat [3]float64
	var latN float64
	for k, hist := range s.history {
		if !q.matches(k) {
			continue
		}
		okSeries = true
		for i := range hist.len() {
			p := hist.at(i)
			if !p.Time.After(since) || p.Time.After(now) {
				continue
			}
			g.Requests += p.Requests
			if p.SuccessRate != nil {
				succ[0] += *p.SuccessRate * p.Requests
				succN[0] += p.Requests
			}
			if p.P50MS != nil && p.P90MS != nil && p.P99MS != nil && p.Requests > 0 {
				lat[0] += *p.P50MS * p.Requests
				lat[1] += *p.P90MS * p.Requests
				lat[2] += *p.P99MS * p.Requests
				latN += p.Requests
			}
		}
	}
	if !okSeries {
		return Golden{}, false
	}
	g.RPS = g.Requests / window.Seconds()
	if succN[0] > 0 {
		v := succ[0] / succN[0]
		g.SuccessRate = &v
	}
	if latN > 0 {
		p50, p90, p99 := lat[0]/latN, lat[1]/latN, lat[2]/latN
		g.P50MS, g.P90MS, g.P99MS = &p50, &p90, &p99
	}
	return g, true
}

func (q WindowQuery) matches(k seriesKey) bool {
	switch {
	case q.Workload != "":
		return k.kind == kindWorkload && k.dstWL == q.Workload && k.dstNS == q.Namespace
	case q.SourceWorkload != "":
		return k.kind == kindEdge && k.srcWL == q.SourceWorkload && k.srcNS == q.Namespace && sameService(k, q)
	case q.Service != "":
		return k.kind == kindEdge && sameService(k, q)
	}
	return false
}

// sameService matches the edge's destination_service ("name.namespace" or
// a bare name) against q's service in q's namespace, and its backends.
func sameService(k seriesKey, q WindowQuery) bool {
	name, ns, found := strings.Cut(k.dstSvc, ".")
	if !found {
		ns = k.dstNS
	}
	if name == q.Service && ns == q.Namespace {
		return true
	}
	for _, b := range q.Backends {
		if bn, bns, _ := strings.Cut(b, "."); bn == name && bns == ns {
			return true
		}
	}
	return false
}
