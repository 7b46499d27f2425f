package up

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control/telemetry"
)

func TestStreamLines(t *testing.T) {
	long := strings.Repeat("x", maxLineBytes)
	tests := []struct {
		name   string
		writes []string
		flush  bool
		want   []string
	}{
		{name: "lines", writes: []string{"a\nb\n"}, want: []string{"a", "b"}},
		{name: "joined across writes", writes: []string{"he", "llo\nwor", "ld\n"}, want: []string{"hello", "world"}},
		{name: "partial kept until flush", writes: []string{"a\nb"}, want: []string{"a"}},
		{name: "partial flushed", writes: []string{"a\nb"}, flush: true, want: []string{"a", "b"}},
		{name: "crlf", writes: []string{"a\r\n"}, want: []string{"a"}},
		{name: "long line split", writes: []string{long + "yz\n"}, want: []string{long, "yz"}},
		{name: "long partial split", writes: []string{long, "yz"}, want: []string{long}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink, _ := NewLogSink("", 10, 0, nil)
			var got []string
			w := &streamLines{sink: sink, emit: func(l string) { got = append(got, l) }}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if tc.flush {
				w.Flush()
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("emitted %q, want %q", got, tc.want)
			}
			lines, _, _ := sink.Tail(-1)
			if !slices.Equal(texts(lines), tc.want) {
				t.Fatalf("sink %q, want %q", texts(lines), tc.want)
			}
		})
	}
}

type shipped struct {
	id           Instance
	stream, line string
}

// TestAppLinesAreShipped runs a program that writes to stdout and stderr
// and checks each line reaches the hook with its stream, and the sink
// whole.
func TestAppLinesAreShipped(t *testing.T) {
	var mu sync.Mutex
	var got []shipped
	done := make(chan struct{})
	s := newTestSupervisor(t, SupervisorOptions{OnAppLine: func(id Instance, stream, line string, _ time.Time) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, shipped{id, stream, line})
		if len(got) == 3 {
			close(done)
		}
	}})
	u := Unit{Kind: KindWorkload, Namespace: "shop", Name: "talker", Replicas: 1, App: fakeCommand(t, "talk"), Revision: "1"}
	if err := s.Set(u); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("three lines did not arrive")
	}
	mu.Lock()
	first := slices.Clone(got[:3])
	mu.Unlock()
	var stdout, stderr []string
	for _, g := range first {
		if g.id.Namespace != "shop" || g.id.Unit != "talker" || g.id.Name != "talker-0" {
			t.Fatalf("instance %+v", g.id)
		}
		switch g.stream {
		case "stdout":
			stdout = append(stdout, g.line)
		case "stderr":
			stderr = append(stderr, g.line)
		}
	}
	if !slices.Equal(stdout, []string{"hello trace_id=4bf92f3577b34da6a3ce929d0e0e4736", "no newline"}) || !slices.Equal(stderr, []string{"oops"}) {
		t.Fatalf("stdout %q, stderr %q", stdout, stderr)
	}
	logs := s.Logs("shop", "talker", false)
	if len(logs) != 1 {
		t.Fatalf("logs %+v", logs)
	}
	lines, _, _ := logs[0].Sink.Tail(3)
	sorted := slices.Sorted(slices.Values(texts(lines)))
	if !slices.Equal(sorted, []string{"hello trace_id=4bf92f3577b34da6a3ce929d0e0e4736", "no newline", "oops"}) {
		t.Fatalf("sink lines %q", texts(lines))
	}
}

func TestAppLogShipper(t *testing.T) {
	hub := telemetry.New(telemetry.Options{})
	ship := appLogShipper(hub)
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	id := Instance{Namespace: "shop", Unit: "catalog", Name: "catalog-1"}
	ship(id, "stderr", "listing products traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", at)
	ship(id, "stdout", "no trace here", at)
	recs, _, _ := hub.Logs(telemetry.LogQuery{Workload: "catalog", Namespace: "shop"})
	if len(recs) != 2 {
		t.Fatalf("records %+v", recs)
	}
	r := recs[0]
	if r.Kind != telemetry.LogApp || r.Stream != "stderr" || r.Instance != "catalog-1" || r.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || !r.Time.Equal(at) {
		t.Fatalf("record %+v", r)
	}
	if recs[1].TraceID != "" || recs[1].Stream != "stdout" {
		t.Fatalf("record %+v", recs[1])
	}
}
