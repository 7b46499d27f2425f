package otlpexport

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	logscol "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	tracecol "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func strKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// The collector decodes the pre-encoded batches into exactly the request
// the exporter used to build with the generated types.
func TestWireMatchesGeneratedRequest(t *testing.T) {
	tests := []struct {
		name string
		res  Resource
		want *resourcepb.Resource
	}{
		{"full resource", Resource{ServiceName: "frontend", Namespace: "shop", InstanceID: "frontend-1.shop", Role: "sidecar"},
			&resourcepb.Resource{Attributes: []*commonpb.KeyValue{strKV("service.name", "frontend"), strKV("service.namespace", "shop"), strKV("service.instance.id", "frontend-1.shop"), strKV("weft.role", "sidecar")}}},
		{"empty resource", Resource{}, &resourcepb.Resource{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cc := startCollector(t, 0)
			e, tick := newExporter(t, cc, Config{Resource: tt.res})
			run(t, e)
			spans := []*tracepb.Span{
				{TraceId: []byte{1, 15: 2}, SpanId: []byte{3, 7: 4}, Name: "GET /", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: 1, EndTimeUnixNano: 2,
					Attributes: []*commonpb.KeyValue{strKV("url.path", "/"), {Key: "n", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -5}}}}, Flags: 0x100},
				{Name: strings.Repeat("x", 300)},
			}
			logs := []*logspb.LogRecord{{TimeUnixNano: 7, SeverityText: "INFO", Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "{}"}}}}
			exportSpans(t, e, spans...)
			exportLogs(t, e, logs...)
			tick <- time.Now()
			scope := &commonpb.InstrumentationScope{Name: "weft-proxy"}
			wantSpans := &tracecol.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
				Resource: tt.want, ScopeSpans: []*tracepb.ScopeSpans{{Scope: scope, Spans: spans}}}}}
			if got := <-c.spans; !proto.Equal(got, wantSpans) {
				t.Errorf("traces request\n got %v\nwant %v", got, wantSpans)
			}
			wantLogs := &logscol.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
				Resource: tt.want, ScopeLogs: []*logspb.ScopeLogs{{Scope: scope, LogRecords: logs}}}}}
			if got := <-c.logs; !proto.Equal(got, wantLogs) {
				t.Errorf("logs request\n got %v\nwant %v", got, wantLogs)
			}
		})
	}
}

// One hand-off larger than a batch is split at record boundaries.
func TestSplitsHandOffIntoBatches(t *testing.T) {
	c, cc := startCollector(t, 0)
	e, tick := newExporter(t, cc, Config{BatchSize: 2})
	run(t, e)
	exportSpans(t, e, span("a"), span("b"), span("c"))
	if got := names(<-c.spans); got != "ab" {
		t.Fatalf("first batch %q, want ab", got)
	}
	tick <- time.Now()
	if got := names(<-c.spans); got != "c" {
		t.Fatalf("second batch %q, want c", got)
	}
}

func TestExportRejectsMalformed(t *testing.T) {
	_, cc := startCollector(t, 0)
	e, _ := newExporter(t, cc, Config{})
	one, _ := proto.Marshal(&tracepb.ScopeSpans{Spans: []*tracepb.Span{span("a")}})
	tests := []struct {
		name string
		enc  []byte
		n    int
		want string
	}{
		{"count too high", one, 2, "otlpexport: record 1 of 2: not a length-delimited field 2"},
		{"count too low", append(append([]byte{}, one...), one...), 1, "otlpexport: 5 bytes after 1 records"},
		{"scope field", protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{}), 1, "otlpexport: record 0 of 1: not a length-delimited field 2"},
		{"truncated", one[:len(one)-1], 1, "otlpexport: record 0 of 1: not a length-delimited field 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.ExportSpans(tt.enc, tt.n, false)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if e.q[Traces].queued != 0 {
		t.Errorf("queued %d records from malformed input", e.q[Traces].queued)
	}
}

// FuzzSplitRecords: whatever splitRecords accepts, export queues whole
// records that decode as a ScopeSpans of n spans' fields.
func FuzzSplitRecords(f *testing.F) {
	one, _ := proto.Marshal(&tracepb.ScopeSpans{Spans: []*tracepb.Span{span("a"), {Name: "b", TraceId: []byte{1}}}})
	f.Add(one, 2)
	f.Add(one, 1)
	f.Add([]byte{0x12, 0x80}, 1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, enc []byte, n int) {
		if n < 0 || n > 1<<10 {
			return
		}
		if splitRecords(enc, n) != nil {
			return
		}
		rest := enc
		for range n {
			m := recordLen(rest)
			if m <= 0 {
				t.Fatalf("accepted input has no record at %d", len(enc)-len(rest))
			}
			rest = rest[m:]
		}
		var ss tracepb.ScopeSpans
		if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(enc, &ss); err == nil && len(ss.Spans) != n {
			t.Fatalf("%d spans decoded, want %d", len(ss.Spans), n)
		}
	})
}

// FuzzAppendAttr decodes the hand-written KeyValue encodings with the
// protobuf decoder, on both the one-byte-length path and the general one.
func FuzzAppendAttr(f *testing.F) {
	f.Add("http.route", "catalog", int64(200), uint8(9))
	f.Add("", "", int64(-1), uint8(2))
	f.Add(strings.Repeat("k", 70), strings.Repeat("v", 60), int64(1)<<40, uint8(20))
	f.Fuzz(func(t *testing.T, key, v string, i int64, num uint8) {
		if !utf8.ValidString(key) || !utf8.ValidString(v) || num == 0 {
			return
		}
		n := protowire.Number(num)
		for _, tc := range []struct {
			got []byte
			kv  *commonpb.KeyValue
		}{
			{AppendStringAttr([]byte{7}, n, key, v), &commonpb.KeyValue{Key: key, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}},
			{AppendIntAttr([]byte{7}, n, key, i), &commonpb.KeyValue{Key: key, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: i}}}},
		} {
			gotNum, typ, m := protowire.ConsumeTag(tc.got[1:])
			body, k := protowire.ConsumeBytes(tc.got[1+max(m, 0):])
			var kv commonpb.KeyValue
			if tc.got[0] != 7 || m < 0 || gotNum != n || typ != protowire.BytesType || k != len(tc.got)-1-m ||
				proto.Unmarshal(body, &kv) != nil || !proto.Equal(&kv, tc.kv) {
				t.Fatalf("%v: encoded as %x", tc.kv, tc.got)
			}
		}
	})
}
