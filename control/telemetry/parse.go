package telemetry

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The proxy metrics the hub reads (docs/observability.md).
const (
	metricRequests = "weft_requests_total"
	metricDuration = "weft_request_duration_seconds"
)

// Reporters.
const (
	reporterSource      = "source"
	reporterDestination = "destination"
	reporterGateway     = "gateway"
)

// keyKind tells the aggregations apart.
type keyKind uint8

const (
	kindWorkload keyKind = iota + 1 // a destination workload (destination reporter)
	kindEdge                        // source workload → destination service (source and gateway reporters)
	kindLink                        // source workload → destination workload of a service (topology)
)

// seriesKey names one aggregation; the fields a kind does not use are
// empty.
type seriesKey struct {
	kind                 keyKind
	srcNS, srcWL         string
	dstSvc, dstNS, dstWL string
}

// counts are cumulative request counters and a latency histogram.
type counts struct {
	requests float64
	errors   float64 // 5xx responses
	// bounds are the finite upper bounds of the histogram, ascending;
	// buckets their cumulative counts; total the count of observations
	// (the +Inf bucket).
	bounds  []float64
	buckets []float64
	total   float64
}

// addHistogram adds a histogram with the given bounds; one whose bounds
// differ from those already added is ignored (false).
func (c *counts) addHistogram(bounds, buckets []float64, total float64) bool {
	if c.bounds == nil && c.total == 0 {
		c.bounds, c.buckets = slices.Clone(bounds), slices.Clone(buckets)
		c.total = total
		return true
	}
	if !slices.Equal(c.bounds, bounds) {
		return false
	}
	for i := range buckets {
		c.buckets[i] += buckets[i]
	}
	c.total += total
	return true
}

// reporterID is the workload of the proxy whose page is parsed: it stands
// for the reporting side (the destination of a destination reporter, the
// source of the others) where the labels say "unknown" or nothing.
type reporterID struct {
	namespace, workload string
}

// parseMetrics reads a proxy's Prometheus text exposition and sums its
// request counters and duration histograms per aggregation key.
func parseMetrics(r io.Reader, self reporterID) (map[seriesKey]*counts, error) {
	page, err := relevantLines(r)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := map[seriesKey]*counts{}
	get := func(k seriesKey) *counts {
		c := out[k]
		if c == nil {
			c = &counts{}
			out[k] = c
		}
		return c
	}
	if mf := families[metricRequests]; mf != nil {
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			if m.GetCounter() == nil {
				v = m.GetUntyped().GetValue()
			}
			if !(v >= 0) || math.IsInf(v, 0) {
				continue
			}
			l := labelsOf(m)
			isErr := strings.HasPrefix(l["response_code"], "5")
			for _, k := range keysOf(l, self) {
				c := get(k)
				c.requests += v
				if isErr {
					c.errors += v
				}
			}
		}
	}
	if mf := families[metricDuration]; mf != nil && mf.GetType() == dto.MetricType_HISTOGRAM {
		for _, m := range mf.GetMetric() {
			bounds, buckets, total, ok := histogramOf(m.GetHistogram())
			if !ok {
				continue
			}
			for _, k := range keysOf(labelsOf(m), self) {
				get(k).addHistogram(bounds, buckets, total)
			}
		}
	}
	return out, nil
}

// relevantLines keeps the lines of the two families the hub reads (their
// samples and TYPE comments; the histogram's _sum is not needed): a
// proxy's page holds several families as large, and the text parser's
// cost is per line.
func relevantLines(r io.Reader) ([]byte, error) {
	var out bytes.Buffer
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: keep it whole if relevant.
			rest, rerr := br.ReadBytes('\n')
			line, err = append(slices.Clone(line), rest...), rerr
		}
		if relevant(line) {
			out.Write(line)
			if len(line) > 0 && line[len(line)-1] != '\n' {
				out.WriteByte('\n')
			}
		}
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func relevant(line []byte) bool {
	if rest, ok := bytes.CutPrefix(line, []byte("# TYPE ")); ok {
		line = rest
	}
	if rest, ok := bytes.CutPrefix(line, []byte(metricDuration)); ok {
		return bytes.HasPrefix(rest, []byte("_bucket")) || bytes.HasPrefix(rest, []byte("_count")) || bytes.HasPrefix(rest, []byte(" "))
	}
	rest, ok := bytes.CutPrefix(line, []byte(metricRequests))
	return ok && len(rest) > 0 && (rest[0] == '{' || rest[0] == ' ' || rest[0] == '\t')
}

func labelsOf(m *dto.Metric) map[string]string {
	l := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

// keysOf returns the aggregations a series with labels l counts in.
func keysOf(l map[string]string, self reporterID) []seriesKey {
	known := func(v string) bool { return v != "" && v != "unknown" }
	switch l["reporter"] {
	case reporterDestination:
		ns, wl := l["destination_namespace"], l["destination_workload"]
		if !known(wl) {
			ns, wl = self.namespace, self.workload
		}
		if !known(wl) {
			return nil
		}
		return []seriesKey{{kind: kindWorkload, dstNS: ns, dstWL: wl}}
	case reporterSource, reporterGateway:
		ns, wl := l["source_namespace"], l["source_workload"]
		if !known(wl) {
			ns, wl = self.namespace, self.workload
		}
		if !known(wl) {
			return nil
		}
		edge := seriesKey{kind: kindEdge, srcNS: ns, srcWL: wl, dstSvc: l["destination_service"], dstNS: l["destination_namespace"]}
		link := edge
		link.kind, link.dstWL = kindLink, l["destination_workload"]
		return []seriesKey{edge, link}
	}
	return nil
}

// histogramOf returns a histogram's finite bounds, their cumulative counts
// and its total; ok is false for a malformed histogram (bounds not
// ascending, counts negative, decreasing or not finite).
func histogramOf(h *dto.Histogram) (bounds, buckets []float64, total float64, ok bool) {
	if h == nil {
		return nil, nil, 0, false
	}
	total = float64(h.GetSampleCount())
	if h.SampleCountFloat != nil {
		total = h.GetSampleCountFloat()
	}
	prevBound, prevCount := math.Inf(-1), 0.0
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			c = b.GetCumulativeCountFloat()
		}
		ub := b.GetUpperBound()
		if math.IsNaN(ub) || ub <= prevBound || !(c >= prevCount) || math.IsInf(c, 0) {
			return nil, nil, 0, false
		}
		prevBound, prevCount = ub, c
		if math.IsInf(ub, 1) {
			total = max(total, c)
			continue
		}
		bounds = append(bounds, ub)
		buckets = append(buckets, c)
	}
	if !(total >= prevCount) || math.IsInf(total, 0) {
		return nil, nil, 0, false
	}
	return bounds, buckets, total, true
}

// quantile estimates the q-quantile of a histogram of cumulative bucket
// counts as Prometheus's histogram_quantile does: linear interpolation
// within the bucket that holds the rank (from 0 for the first bucket);
// a rank in the +Inf bucket gives the highest finite bound. ok is false
// when the histogram is empty.
func quantile(q float64, bounds, buckets []float64, total float64) (float64, bool) {
	if total <= 0 || len(bounds) == 0 {
		return 0, false
	}
	rank := q * total
	i, _ := slices.BinarySearchFunc(buckets, rank, func(c, r float64) int {
		if c < r {
			return -1
		}
		return 1
	})
	if i == len(buckets) {
		return bounds[len(bounds)-1], true
	}
	if i == 0 && bounds[0] <= 0 {
		return bounds[0], true
	}
	start, below := 0.0, 0.0
	if i > 0 {
		start, below = bounds[i-1], buckets[i-1]
	}
	in := buckets[i] - below
	if in <= 0 {
		return bounds[i], true
	}
	return start + (bounds[i]-start)*((rank-below)/in), true
}
