package telemetry

import (
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
)

func FuzzParseMetrics(f *testing.F) {
	f.Add(catalogPage(140, 15, []float64{70, 120, 140}, []float64{0, 0, 15}))
	f.Add(frontendPage(35))
	f.Add(header + requests("gateway", "edge", "frontend", "frontend.shop", map[string]float64{"200": 7}))
	f.Add("weft_requests_total{reporter=\"source\",source_workload=\"a\"} NaN\n")
	f.Add(histHeader + "weft_request_duration_seconds_bucket{reporter=\"destination\",destination_workload=\"a\",le=\"0.1\"} 5\n" +
		"weft_request_duration_seconds_bucket{reporter=\"destination\",destination_workload=\"a\",le=\"0.05\"} 9\n" +
		"weft_request_duration_seconds_count{reporter=\"destination\",destination_workload=\"a\"} 1\n")
	f.Fuzz(func(t *testing.T, page string) {
		keys, err := parseMetrics(strings.NewReader(page), reporterID{"shop", "frontend"})
		if err != nil {
			return
		}
		for k, c := range keys {
			if k.kind < kindWorkload || k.kind > kindLink {
				t.Fatalf("key kind %d", k.kind)
			}
			if !(c.requests >= 0) || !(c.errors >= 0) || c.errors > c.requests || math.IsInf(c.requests, 0) {
				t.Fatalf("counts %+v", c)
			}
			if len(c.bounds) != len(c.buckets) {
				t.Fatalf("%d bounds, %d buckets", len(c.bounds), len(c.buckets))
			}
			for i := range c.buckets {
				if i > 0 && (c.bounds[i] <= c.bounds[i-1] || c.buckets[i] < c.buckets[i-1]) || c.buckets[i] > c.total {
					t.Fatalf("histogram not cumulative: %+v", c)
				}
			}
			if v, ok := quantile(0.99, c.bounds, c.buckets, c.total); ok && (math.IsNaN(v) || v > c.bounds[len(c.bounds)-1]) {
				t.Fatalf("p99 %v of %+v", v, c)
			}
		}
	})
}

var traceIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func FuzzExtractTraceID(f *testing.F) {
	for _, s := range []string{
		"level=info trace_id=4bf92f3577b34da6a3ce929d0e0e4736 msg=hi",
		`{"trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736"}`,
		"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"trace_id=", "00-", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		id := ExtractTraceID(line)
		if id == "" {
			return
		}
		if !traceIDPattern.MatchString(id) || id == strings.Repeat("0", 32) || !strings.Contains(strings.ToLower(line), id) {
			t.Fatalf("ExtractTraceID(%q) = %q", line, id)
		}
	})
}

// FuzzConvertOTLP decodes arbitrary export requests and checks that what
// is stored is well formed.
func FuzzConvertOTLP(f *testing.F) {
	tr, _ := proto.Marshal(traceRequest("shop"))
	f.Add(tr, true)
	lg, _ := proto.Marshal(&collogspb.ExportLogsServiceRequest{})
	f.Add(lg, false)
	id := xds.Identity{Subject: "t", Namespace: "shop"}
	f.Fuzz(func(t *testing.T, b []byte, traces bool) {
		if traces {
			var req coltracepb.ExportTraceServiceRequest
			if proto.Unmarshal(b, &req) != nil {
				return
			}
			spans, _, rejected, _ := convertSpans(id, req.GetResourceSpans())
			if rejected < 0 {
				t.Fatal("negative rejected count")
			}
			for _, s := range spans {
				if !traceIDPattern.MatchString(s.TraceID) || len(s.SpanID) != 16 || s.End.Before(s.Start) || s.Namespace != "shop" {
					t.Fatalf("span %+v", s)
				}
			}
			s := newSpanStore(8, time.Hour)
			s.add(time.Unix(0, 0), spans)
			return
		}
		var req collogspb.ExportLogsServiceRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		recs, _, _ := convertLogs(id, req.GetResourceLogs(), time.Unix(0, 0))
		for _, r := range recs {
			if r.Namespace != "shop" || (r.TraceID != "" && !traceIDPattern.MatchString(r.TraceID)) {
				t.Fatalf("record %+v", r)
			}
		}
		s := newLogStore(8, time.Hour)
		s.add(time.Unix(0, 0), recs)
	})
}
