package telemetry

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestQueue(t *testing.T) {
	q := newQueue[int](3)
	var evicted []int
	for i := range 7 {
		if v, ok := q.push(i); ok {
			evicted = append(evicted, v)
		}
	}
	if !slices.Equal(evicted, []int{0, 1, 2, 3}) || q.len() != 3 || q.at(0) != 4 || q.at(2) != 6 {
		t.Fatalf("evicted %v, len %d, front %d", evicted, q.len(), q.at(0))
	}
	for want := 4; want < 7; want++ {
		if v, ok := q.pop(); !ok || v != want {
			t.Fatalf("pop = %d, %v; want %d", v, ok, want)
		}
	}
	if _, ok := q.pop(); ok {
		t.Fatal("pop of an empty queue succeeded")
	}
	big := newQueue[int](1000)
	for i := range 1500 {
		big.push(i)
	}
	if big.len() != 1000 || big.at(0) != 500 || big.at(999) != 1499 {
		t.Fatalf("grown queue: len %d, first %d, last %d", big.len(), big.at(0), big.at(999))
	}
}

func span(trace, id, parent, svc string, start time.Time, d time.Duration) Span {
	return Span{TraceID: trace, SpanID: id, ParentSpanID: parent, Name: "GET " + svc, Service: svc, Namespace: "shop",
		Start: start, End: start.Add(d), DurationMS: float64(d) / float64(time.Millisecond), Status: "UNSET"}
}

func traceID(n int) string { return fmt.Sprintf("%032x", n+1) }

func TestSpanStoreBounds(t *testing.T) {
	clk := newFakeClock()
	h := New(Options{MaxSpans: 4, Retention: time.Minute, Clock: clk})
	t0 := clk.Now()
	// Three traces of two spans each: the count bound keeps the last four
	// spans, so the first trace is gone.
	for i := range 3 {
		h.AddSpans([]Span{
			span(traceID(i), "00000000000000a1", "", "frontend", t0, 30*time.Millisecond),
			span(traceID(i), "00000000000000a2", "00000000000000a1", "catalog", t0.Add(time.Millisecond), 10*time.Millisecond),
		})
	}
	if n := h.spans.len(); n != 4 {
		t.Fatalf("stored %d spans, want 4", n)
	}
	if _, ok := h.Trace(traceID(0)); ok {
		t.Fatal("the oldest trace survived the count bound")
	}
	tr, ok := h.Trace(strings.ToUpper(traceID(1)))
	if !ok || len(tr.Spans) != 2 || tr.Spans[0].Service != "frontend" {
		t.Fatalf("trace 1 = %+v, %v", tr, ok)
	}
	// Age: a span added 40s later survives the minute; the older ones do
	// not once it has passed.
	clk.Advance(40 * time.Second)
	h.AddSpans([]Span{span(traceID(9), "00000000000000b1", "", "cart", clk.Now(), time.Millisecond)})
	clk.Advance(30 * time.Second)
	if _, ok := h.Trace(traceID(2)); ok {
		t.Fatal("a trace older than the retention survived")
	}
	list := h.Traces(TraceQuery{})
	if len(list) != 1 || list[0].TraceID != traceID(9) || h.spans.len() != 1 {
		t.Fatalf("traces after expiry: %+v (%d spans)", list, h.spans.len())
	}
	clk.Advance(31 * time.Second)
	if list := h.Traces(TraceQuery{}); len(list) != 0 || h.spans.len() != 0 {
		t.Fatalf("traces after full expiry: %+v, %d spans", list, h.spans.len())
	}
}

func TestTraceQuery(t *testing.T) {
	clk := newFakeClock()
	h := New(Options{Clock: clk})
	t0 := clk.Now()
	slow := span(traceID(1), "00000000000000a1", "", "frontend", t0, 300*time.Millisecond)
	slowChild := span(traceID(1), "00000000000000a2", "00000000000000a1", "catalog", t0.Add(5*time.Millisecond), 250*time.Millisecond)
	slowChild.Status = "ERROR"
	// The child arrives first: the root is still the span without parent.
	h.AddSpans([]Span{slowChild, slow})
	h.AddSpans([]Span{span(traceID(2), "00000000000000c1", "", "cart", t0.Add(time.Second), 20*time.Millisecond)})
	tests := []struct {
		name string
		q    TraceQuery
		want []string
	}{
		{"all, most recent first", TraceQuery{}, []string{traceID(2), traceID(1)}},
		{"by service", TraceQuery{Service: "catalog"}, []string{traceID(1)}},
		{"by service and namespace", TraceQuery{Service: "cart.shop"}, []string{traceID(2)}},
		{"other namespace", TraceQuery{Service: "cart.billing"}, nil},
		{"min duration", TraceQuery{MinDuration: 100 * time.Millisecond}, []string{traceID(1)}},
		{"limit", TraceQuery{Limit: 1}, []string{traceID(2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range h.Traces(tt.q) {
				got = append(got, s.TraceID)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("traces %v, want %v", got, tt.want)
			}
		})
	}
	sum := h.Traces(TraceQuery{Service: "catalog"})[0]
	want := TraceSummary{TraceID: traceID(1), Root: "GET frontend", RootService: "frontend", Start: t0, DurationMS: 300, Spans: 2, Errors: 1, Services: []string{"catalog", "frontend"}}
	if fmt.Sprint(sum) != fmt.Sprint(want) {
		t.Fatalf("summary %+v\nwant    %+v", sum, want)
	}
}

func logRec(ns, wl, trace, body string, at time.Time) LogRecord {
	return LogRecord{Kind: LogApp, Namespace: ns, Workload: wl, TraceID: trace, Body: body, Time: at, Stream: "stdout"}
}

func bodies(recs []LogRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Body
	}
	return out
}

func TestLogStoreBoundsAndQueries(t *testing.T) {
	clk := newFakeClock()
	h := New(Options{MaxLogs: 5, Retention: time.Minute, Clock: clk})
	t0 := clk.Now()
	h.AddLogs([]LogRecord{
		logRec("shop", "frontend", "", "dropped by the count bound", t0),
		logRec("shop", "frontend", traceID(1), "GET /", t0),
		logRec("shop", "catalog", traceID(1), "list products", t0.Add(time.Second)),
		logRec("billing", "catalog", "", "other namespace, ÉTÉ", t0.Add(2*time.Second)),
	})
	clk.Advance(30 * time.Second)
	h.AddLogs([]LogRecord{
		logRec("shop", "catalog", "", "Cache MISS", clk.Now()),
		logRec("shop", "cart", traceID(2), "add item", clk.Now()),
	})
	tests := []struct {
		name string
		q    LogQuery
		want []string
	}{
		{"all", LogQuery{}, []string{"GET /", "list products", "other namespace, ÉTÉ", "Cache MISS", "add item"}},
		{"trace", LogQuery{TraceID: strings.ToUpper(traceID(1))}, []string{"GET /", "list products"}},
		{"workload of every namespace", LogQuery{Workload: "catalog"}, []string{"list products", "other namespace, ÉTÉ", "Cache MISS"}},
		{"workload in a namespace", LogQuery{Workload: "catalog", Namespace: "shop"}, []string{"list products", "Cache MISS"}},
		{"namespace", LogQuery{Namespace: "billing"}, []string{"other namespace, ÉTÉ"}},
		{"contains, any case", LogQuery{Contains: "cache miss"}, []string{"Cache MISS"}},
		{"contains, any case beyond ASCII", LogQuery{Contains: "été"}, []string{"other namespace, ÉTÉ"}},
		{"since", LogQuery{Since: t0.Add(2 * time.Second)}, []string{"other namespace, ÉTÉ", "Cache MISS", "add item"}},
		{"limit keeps the last", LogQuery{Limit: 2}, []string{"Cache MISS", "add item"}},
		{"after a seq", LogQuery{After: 4}, []string{"Cache MISS", "add item"}},
		{"after a seq, by workload", LogQuery{Workload: "catalog", After: 4}, []string{"Cache MISS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, last, _ := h.Logs(tt.q)
			if !slices.Equal(bodies(got), tt.want) || last != 6 {
				t.Fatalf("logs %q (last %d), want %q (last 6)", bodies(got), last, tt.want)
			}
		})
	}
	// Age: after 61s the first batch has expired.
	clk.Advance(31 * time.Second)
	got, _, _ := h.Logs(LogQuery{})
	if !slices.Equal(bodies(got), []string{"Cache MISS", "add item"}) {
		t.Fatalf("after expiry: %q", bodies(got))
	}
	if got, _, _ := h.Logs(LogQuery{TraceID: traceID(1)}); len(got) != 0 || h.logs.len() != 2 {
		t.Fatalf("expired records still found: %q, %d stored", bodies(got), h.logs.len())
	}
}

func TestLogFollowSignal(t *testing.T) {
	clk := newFakeClock()
	h := New(Options{Clock: clk})
	_, last, changed := h.Logs(LogQuery{Workload: "web"})
	select {
	case <-changed:
		t.Fatal("changed before any record")
	default:
	}
	h.AddLogs([]LogRecord{logRec("shop", "web", "", "hello", clk.Now())})
	<-changed
	got, _, _ := h.Logs(LogQuery{Workload: "web", After: last})
	if !slices.Equal(bodies(got), []string{"hello"}) || got[0].Seq != 1 {
		t.Fatalf("followed %+v", got)
	}
}

func TestExtractTraceID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	tests := []struct {
		name, line, want string
	}{
		{"logfmt", "level=info trace_id=" + id + " msg=hi", id},
		{"upper case", "trace_id=" + strings.ToUpper(id), id},
		{"json", `{"msg":"hi","trace_id":"` + id + `"}`, id},
		{"traceparent", "calling catalog traceparent=00-" + id + "-00f067aa0ba902b7-01", id},
		{"traceparent header", "Traceparent: 00-" + id + "-00f067aa0ba902b7-00 ok", id},
		{"too short", "trace_id=" + id[:31], ""},
		{"too long", "trace_id=" + id + "0", ""},
		{"all zero", "trace_id=" + strings.Repeat("0", 32), ""},
		{"no value", "trace_id is missing", ""},
		{"broken traceparent", "00-" + id + "-00f067aa0ba902b7", ""},
		{"traceparent inside hex", "a00-" + id + "-00f067aa0ba902b7-01", ""},
		{"second key wins when the first is bad", "trace_id=x trace_id=" + id, id},
		{"nothing", "GET / 200", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExtractTraceID(tt.line); got != tt.want {
				t.Fatalf("ExtractTraceID(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}
