package telemetry

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// benchPage is the part of a busy sidecar's page the hub reads: 20
// destinations × 3 codes, with their histograms.
func benchPage() string {
	var b strings.Builder

	b.WriteString(header)
	for i := range 20 {
		b.WriteString(requests("source", "frontend", fmt.Sprintf("svc%d", i), fmt.Sprintf("svc%d.shop", i), map[string]float64{"200": 1000, "404": 10, "503": 3}))
	}
	b.WriteString(histHeader)
	for i := range 20 {
		b.WriteString(histogram("source", "frontend", fmt.Sprintf("svc%d", i), fmt.Sprintf("svc%d.shop", i), "2xx", docBounds, cumulative(map[int]float64{4: 500, 5: 400, 7: 100})))
	}
	return b.String()
}

func BenchmarkParseMetrics(b *testing.B) {
	page := benchPageFull()
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseMetrics(strings.NewReader(page), reporterID{"shop", "frontend"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLogStoreAdd(b *testing.B) {
	s := newLogStore(DefaultMaxLogs, time.Hour)
	now := time.Unix(1000, 0)
	batch := make([]LogRecord, 64)
	for i := range batch {
		batch[i] = logRec("shop", fmt.Sprintf("w%d", i%8), traceID(i), `{"kind":"http","status":200}`, now)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.add(now, batch)
	}
}

func BenchmarkSpanStoreAdd(b *testing.B) {
	s := newSpanStore(DefaultMaxSpans, time.Hour)
	now := time.Unix(1000, 0)
	batch := make([]Span, 64)
	for i := range batch {
		batch[i] = span(traceID(i/2), fmt.Sprintf("%016x", i+1), "", "frontend", now, time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.add(now, batch)
	}
}

func BenchmarkExtractTraceID(b *testing.B) {
	line := `2026-11-25T12:00:00Z level=info msg="listing products" count=12 trace_id=4bf92f3577b34da6a3ce929d0e0e4736`
	b.ReportAllocs()
	for b.Loop() {
		if ExtractTraceID(line) == "" {
			b.Fatal("no id")
		}
	}
}

// benchPageFull adds as many series of families the hub skips (upstream
// durations, bytes).
func benchPageFull() string {
	p := benchPage()
	skipped := strings.ReplaceAll(p, "weft_request_duration_seconds", "weft_upstream_duration_seconds")
	return p + strings.ReplaceAll(skipped, "weft_requests_total", "weft_request_bytes_total")
}
