package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weft-mesh/weft/control/xds"
)

// maxScrapeBytes bounds one proxy's metrics page.
const maxScrapeBytes = 32 << 20

// scrapeConcurrency bounds the scrapes in flight.
const scrapeConcurrency = 16

// scraper pulls the proxies' metrics and keeps the golden metrics history.
// It is safe for concurrent use; scrape rounds are serialized.
type scraper struct {
	opts Options
	log  *slog.Logger

	round sync.Mutex // one scrape round at a time

	mu      sync.Mutex
	prev    map[string]proxySample // by node id: the last successful scrape
	history map[seriesKey]*queue[Point]
	current map[seriesKey]Golden // the last interval, links included
	last    time.Time            // time of the last interval
	roles   map[string]nodeInfo  // by "<namespace>/<workload>", from the last round's proxies
}

// nodeInfo is what the proxies list says about a workload.
type nodeInfo struct {
	gateway bool
	proxies int
}

// proxySample is one proxy's cumulative counts at a time.
type proxySample struct {
	at   time.Time
	keys map[seriesKey]*counts
}

func newScraper(opts Options, log *slog.Logger) *scraper {
	return &scraper{
		opts: opts, log: log,
		prev: map[string]proxySample{}, history: map[seriesKey]*queue[Point]{},
		current: map[seriesKey]Golden{}, roles: map[string]nodeInfo{},
	}
}

// scrapeResult is one proxy's answer.
type scrapeResult struct {
	node string
	keys map[seriesKey]*counts
	err  error
}

// scrape runs one round over proxies; now is the round's time (its
// interval ends then).
func (s *scraper) scrape(ctx context.Context, proxies []xds.ProxyStatus, now time.Time) {
	s.round.Lock()
	defer s.round.Unlock()
	results := make(chan scrapeResult, len(proxies))
	sem := make(chan struct{}, scrapeConcurrency)
	var wg sync.WaitGroup
	roles := map[string]nodeInfo{}
	live := map[string]bool{}
	for _, p := range proxies {
		live[p.ID] = true
		if p.Workload != "" {
			k := workloadKey(p.Namespace, p.Workload)
			ni := roles[k]
			ni.proxies++
			ni.gateway = ni.gateway || p.Role == xds.RoleGateway
			roles[k] = ni
		}
		addr := scrapeAddr(p)
		if addr == "" {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			keys, err := s.fetch(ctx, addr, reporterID{namespace: p.Namespace, workload: p.Workload})
			results <- scrapeResult{node: p.ID, keys: keys, err: err}
		})
	}
	wg.Wait()
	close(results)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles = roles
	for node := range s.prev {
		if !live[node] {
			delete(s.prev, node)
		}
	}
	round := map[seriesKey]*interval{}
	for r := range results {
		if r.err != nil {
			s.log.Debug("scrape failed", "node", r.node, "err", r.err)
			continue
		}
		prev, seen := s.prev[r.node]
		s.prev[r.node] = proxySample{at: now, keys: r.keys}
		if !seen {
			continue // the first scrape of a proxy is the baseline
		}
		dt := now.Sub(prev.at).Seconds()
		if dt <= 0 {
			continue
		}
		for k, cur := range r.keys {
			iv := round[k]
			if iv == nil {
				iv = &interval{}
				round[k] = iv
			}
			iv.add(delta(cur, prev.keys[k]), dt)
		}
	}
	if len(round) == 0 && len(s.current) == 0 {
		return
	}
	s.current = make(map[seriesKey]Golden, len(round))
	s.last = now
	capacity := int(s.opts.History/s.opts.ScrapeInterval) + 1
	for k, iv := range round {
		g := iv.golden()
		s.current[k] = g
		if k.kind == kindLink {
			continue
		}
		h := s.history[k]
		if h == nil {
			h = newQueue[Point](capacity)
			s.history[k] = h
		}
		h.push(Point{Time: now, Golden: g})
	}
	s.expire(now)
}

// expire drops history points older than the history window, and series
// left empty. Caller holds s.mu.
func (s *scraper) expire(now time.Time) {
	cutoff := now.Add(-s.opts.History)
	for k, h := range s.history {
		for {
			p, ok := h.front()
			if !ok || !p.Time.Before(cutoff) {
				break
			}
			h.pop()
		}
		if h.len() == 0 {
			delete(s.history, k)
		}
	}
}

// fetch scrapes one proxy's admin listener.
func (s *scraper) fetch(ctx context.Context, addr string, self reporterID) (map[seriesKey]*counts, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ScrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats/prometheus", nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	keys, err := parseMetrics(io.LimitReader(resp.Body, maxScrapeBytes), self)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	return keys, nil
}

// scrapeAddr is where to reach a proxy's admin listener: its admin_addr,
// with an unspecified host (0.0.0.0, ::) replaced by the instance's IP (or
// loopback); "" when it declared none.
func scrapeAddr(p xds.ProxyStatus) string {
	if p.AdminAddr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(p.AdminAddr)
	if err != nil {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ap, err := netip.ParseAddrPort(p.Address); err == nil {
			host = ap.Addr().String()
		}
	}
	return net.JoinHostPort(host, port)
}

// delta is cur minus prev, as counter increments: a counter that went down
// was reset, and its increment is its current value. A series that was
// absent counts from zero.
func delta(cur, prev *counts) counts {
	d := counts{requests: cur.requests, errors: cur.errors, bounds: cur.bounds, total: cur.total}
	if prev == nil || cur.requests < prev.requests || cur.total < prev.total {
		d.buckets = cur.buckets
		return d
	}
	d.requests -= prev.requests
	d.errors = max(cur.errors-prev.errors, 0)
	if !slices.Equal(cur.bounds, prev.bounds) {
		d.bounds, d.total = nil, 0 // bounds changed: no latency this interval
		return d
	}
	d.total -= prev.total
	d.buckets = make([]float64, len(cur.buckets))
	for i := range cur.buckets {
		d.buckets[i] = max(cur.buckets[i]-prev.buckets[i], 0)
	}
	return d
}

// interval sums the increments of one key over the proxies of a round.
type interval struct {
	requests, errors, rps float64
	hist                  counts
}

func (iv *interval) add(d counts, dt float64) {
	iv.requests += d.requests
	iv.errors += d.errors
	iv.rps += d.requests / dt
	if d.total > 0 {
		iv.hist.addHistogram(d.bounds, d.buckets, d.total)
	}
}

func (iv *interval) golden() Golden {
	g := Golden{Requests: iv.requests, RPS: iv.rps}
	if iv.requests > 0 {
		sr := (iv.requests - iv.errors) / iv.requests
		g.SuccessRate = &sr
	}
	ms := func(q float64) *float64 {
		v, ok := quantile(q, iv.hist.bounds, iv.hist.buckets, iv.hist.total)
		if !ok {
			return nil
		}
		v *= 1000
		return &v
	}
	g.P50MS, g.P90MS, g.P99MS = ms(0.5), ms(0.9), ms(0.99)
	return g
}

// top returns the last interval's workloads and edges, of namespace ns
// ("" for all; an edge is kept when either end is in ns).
func (s *scraper) top(ns string) Top {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := Top{Time: s.last, Workloads: []WorkloadStats{}, Edges: []EdgeStats{}}
	for k, g := range s.current {
		switch k.kind {
		case kindWorkload:
			if ns == "" || k.dstNS == ns {
				t.Workloads = append(t.Workloads, WorkloadStats{Namespace: k.dstNS, Workload: k.dstWL, Golden: g})
			}
		case kindEdge:
			if ns == "" || k.srcNS == ns || k.dstNS == ns {
				t.Edges = append(t.Edges, EdgeStats{SourceNamespace: k.srcNS, SourceWorkload: k.srcWL, DestinationService: k.dstSvc, DestinationNamespace: k.dstNS, Golden: g})
			}
		}
	}
	slices.SortFunc(t.Workloads, func(a, b WorkloadStats) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Workload, b.Workload))
	})
	slices.SortFunc(t.Edges, compareEdges)
	return t
}

func compareEdges(a, b EdgeStats) int {
	return cmp.Or(strings.Compare(a.SourceNamespace, b.SourceNamespace), strings.Compare(a.SourceWorkload, b.SourceWorkload),
		strings.Compare(a.DestinationService, b.DestinationService))
}

// MetricsQuery selects history series.
type MetricsQuery struct {
	// Workload selects one workload's series: "<name>" or
	// "<name>.<namespace>".
	Workload string
	// Edge selects one edge's series: "<source workload>[.<source
	// namespace>]-><destination service>".
	Edge string
	// Since keeps points at or after it.
	Since time.Time
}

// series returns the history series q selects (all without a selector),
// sorted.
func (s *scraper) series(q MetricsQuery) []Series {
	var edgeSrc, edgeDst string
	if q.Edge != "" {
		edgeSrc, edgeDst, _ = strings.Cut(q.Edge, "->")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(s.opts.Clock.Now())
	out := []Series{}
	for k, h := range s.history {
		var sr Series
		switch k.kind {
		case kindWorkload:
			if q.Edge != "" || (q.Workload != "" && !serviceMatches(q.Workload, k.dstWL, k.dstNS)) {
				continue
			}
			sr = Series{Kind: "workload", Namespace: k.dstNS, Workload: k.dstWL}
		case kindEdge:
			if q.Workload != "" || (q.Edge != "" && (!serviceMatches(edgeSrc, k.srcWL, k.srcNS) || edgeDst != k.dstSvc)) {
				continue
			}
			sr = Series{Kind: "edge", SourceNamespace: k.srcNS, SourceWorkload: k.srcWL, DestinationService: k.dstSvc, DestinationNamespace: k.dstNS}
		}
		sr.Points = []Point{}
		for i := range h.len() {
			if p := h.at(i); !p.Time.Before(q.Since) {
				sr.Points = append(sr.Points, p)
			}
		}
		out = append(out, sr)
	}
	slices.SortFunc(out, func(a, b Series) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Workload, b.Workload),
			strings.Compare(a.SourceNamespace, b.SourceNamespace), strings.Compare(a.SourceWorkload, b.SourceWorkload),
			strings.Compare(a.DestinationService, b.DestinationService))
	})
	return out
}

// topology returns the workloads (from the proxies and the metrics) and
// the links between them.
func (s *scraper) topology() Topology {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := Topology{Time: s.last, Nodes: []TopologyNode{}, Edges: []TopologyEdge{}}
	nodes := map[string]*TopologyNode{}
	node := func(ns, wl string) *TopologyNode {
		id := workloadKey(ns, wl)
		n := nodes[id]
		if n == nil {
			ni := s.roles[id]
			n = &TopologyNode{ID: id, Namespace: ns, Workload: wl, Kind: "workload", Proxies: ni.proxies}
			if ni.gateway {
				n.Kind = "gateway"
			}
			nodes[id] = n
		}
		return n
	}
	for id := range s.roles {
		ns, wl, _ := strings.Cut(id, "/")
		node(ns, wl)
	}
	for k, g := range s.current {
		switch k.kind {
		case kindWorkload:
			node(k.dstNS, k.dstWL).Golden = g
		case kindLink:
			src := node(k.srcNS, k.srcWL)
			dst := k.dstWL
			if dst == "" || dst == "unknown" {
				// No sidecar behind it: the service stands in, by its
				// name ("catalog.shop" → "catalog" in shop).
				dst, _, _ = strings.Cut(k.dstSvc, ".")
			}
			t.Edges = append(t.Edges, TopologyEdge{Source: src.ID, Target: node(k.dstNS, dst).ID, Service: k.dstSvc, Golden: g})
		}
	}
	for _, n := range nodes {
		t.Nodes = append(t.Nodes, *n)
	}
	slices.SortFunc(t.Nodes, func(a, b TopologyNode) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(t.Edges, func(a, b TopologyEdge) int {
		return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Target, b.Target), strings.Compare(a.Service, b.Service))
	})
	return t
}

// workloadKey is a workload's id in the topology: "<namespace>/<workload>".
func workloadKey(ns, wl string) string { return ns + "/" + wl }
