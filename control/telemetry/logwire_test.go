package telemetry

import (
	"reflect"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
)

// checkScanLogs asserts that scanLogs, when it accepts b, answers as
// proto.Unmarshal and convertLogs do.
func checkScanLogs(t *testing.T, id xds.Identity, b []byte) (accepted bool) {
	t.Helper()
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	entries, gotRej, gotMsg, ok := scanLogs(id, b, now)
	req := &collogspb.ExportLogsServiceRequest{}
	err := proto.Unmarshal(b, req)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("scanLogs accepted what proto.Unmarshal rejects: %v", err)
	}
	want, wantRej, wantMsg := convertLogs(id, req.GetResourceLogs(), now)
	if gotRej != wantRej || gotMsg != wantMsg {
		t.Fatalf("rejected %d %q, want %d %q", gotRej, gotMsg, wantRej, wantMsg)
	}
	var got []LogRecord
	for i := range entries {
		got = append(got, entries[i].record())
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records\n got %+v\nwant %+v", got, want)
	}
	return true
}

func anyStr(v string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}
}

// appLogRequest is what an application line looks like over OTLP: its
// workload, instance, stream and trace id in attributes.
func appLogRequest() *collogspb.ExportLogsServiceRequest {
	own, _, _ := benchIDs(7)
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource: resource("shop", "weft-up", "host-1"),
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
			{ObservedTimeUnixNano: 5, Body: anyStr("listing products trace_id=x"), Attributes: []*commonpb.KeyValue{
				str("workload", "catalog"), str("instance", "catalog-0"), str("stream", "stdout"),
				str("trace_id", "not an id"), str("trace_id", "4BF92F3577B34DA6A3CE929D0E0E4736"), str("trace_id", "00f067aa0ba902b700f067aa0ba902b7"),
			}},
			// Its own id wins over the attribute; no time: the receiver's.
			{TraceId: own, Body: anyStr("own id"), Attributes: []*commonpb.KeyValue{str("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
				{Key: "stream", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 3}}}, {Key: "namespace"}}},
			// An empty body, an all-zero trace id, a severity.
			{TimeUnixNano: 9, Body: &commonpb.AnyValue{}, TraceId: make([]byte, 16), SpanId: []byte{1, 2}, SeverityText: "WARN", EventName: "e"},
		}}},
	}}}
}

func TestScanLogs(t *testing.T) {
	other := benchLogRequest(2)
	other.ResourceLogs[0].Resource = resource("billing", "ledger", "n1")
	for _, tc := range []struct {
		name     string
		req      *collogspb.ExportLogsServiceRequest
		id       xds.Identity
		records  int
		rejected int64
	}{
		{"proxy batch", benchLogRequest(3), xds.Identity{Subject: "p", Namespace: "shop"}, 3, 0},
		{"application lines", appLogRequest(), xds.Identity{}, 3, 0},
		{"the namespace an attribute names", appLogRequest(), xds.Identity{Subject: "p", Namespace: "shop"}, 2, 1},
		{"other namespace", other, xds.Identity{Subject: "p", Namespace: "shop"}, 0, 2},
		{"empty", &collogspb.ExportLogsServiceRequest{}, xds.Identity{}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if !checkScanLogs(t, tc.id, b) {
				t.Fatal("scanLogs fell back")
			}
			if got, rej, _, _ := scanLogs(tc.id, b, time.Now()); len(got) != tc.records || rej != tc.rejected {
				t.Fatalf("%d records, %d rejected; want %d, %d", len(got), rej, tc.records, tc.rejected)
			}
		})
	}
}

func TestScanLogsFallsBack(t *testing.T) {
	kvBody := appLogRequest()
	kvBody.ResourceLogs[0].ScopeLogs[0].LogRecords[0].Body = &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{
		KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{str("msg", "hi")}}}}
	b, _ := proto.Marshal(kvBody)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"truncated", []byte{0x0a, 0x05, 0x12}},
		// ResourceLogs{ScopeLogs{LogRecord{severity_text: "\xff"}}}.
		{"invalid utf-8 severity", []byte{0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x1a, 0x01, 0xff}},
		{"a body that is not a string", b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, ok := scanLogs(xds.Identity{}, tc.b, time.Now()); ok {
				t.Fatal("scanLogs accepted it")
			}
		})
	}
	// The receiver still takes the last one, through the proto decoder (the
	// second record names no namespace, which a token for "shop" may not
	// send).
	r := logsReceiver{h: benchHub()}
	if _, err := r.exportWire(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := r.h.Logs(LogQuery{}); len(got) != 2 || got[0].Body != `{"msg":"hi"}` || got[0].Kind != LogApp {
		t.Fatalf("stored %+v", got)
	}
}

func FuzzScanLogs(f *testing.F) {
	for _, req := range []*collogspb.ExportLogsServiceRequest{benchLogRequest(2), appLogRequest(), {}} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x1a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScanLogs(t, xds.Identity{Subject: "p", Namespace: "shop"}, b)
		checkScanLogs(t, xds.Identity{}, b)
	})
}
