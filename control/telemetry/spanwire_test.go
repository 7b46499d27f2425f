package telemetry

import (
	"reflect"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
)

// checkDecodeSpans asserts that decodeSpans, when it accepts b, answers
// as proto.Unmarshal and convertSpans do.
func checkDecodeSpans(t *testing.T, id xds.Identity, b []byte) (accepted bool) {
	t.Helper()
	got, gotRej, gotMsg, ok := decodeSpans(id, b)
	req := &coltracepb.ExportTraceServiceRequest{}
	err := proto.Unmarshal(b, req)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("decodeSpans accepted what proto.Unmarshal rejects: %v", err)
	}
	want, wantRej, wantMsg := convertSpans(id, req.GetResourceSpans())
	if gotRej != wantRej || gotMsg != wantMsg {
		t.Fatalf("rejected %d %q, want %d %q", gotRej, gotMsg, wantRej, wantMsg)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spans\n got %+v\nwant %+v", got, want)
	}
	return true
}

func TestDecodeSpans(t *testing.T) {
	big := benchSpanRequest(3)
	odd := benchSpanRequest(2)
	sp := odd.ResourceSpans[0].ScopeSpans[0].Spans
	sp[0].Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "no upstream"}
	sp[0].Kind = 42
	sp[0].Attributes = append(sp[0].Attributes,
		&commonpb.KeyValue{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
		&commonpb.KeyValue{Key: "d", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}},
		&commonpb.KeyValue{Key: "x", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{1, 2}}}},
		&commonpb.KeyValue{Key: "big", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1 << 60}}},
		&commonpb.KeyValue{Key: "nil"},
		&commonpb.KeyValue{Key: "arr", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_StringValue{StringValue: "a"}}}}}}},
	)
	sp[1].SpanId = nil // rejected
	sp[1].EndTimeUnixNano = 1
	other := benchSpanRequest(2)
	other.ResourceSpans[0].Resource = resource("billing", "ledger", "n1")
	for _, tc := range []struct {
		name     string
		req      *coltracepb.ExportTraceServiceRequest
		id       xds.Identity
		rejected int64
	}{
		{"proxy batch", big, xds.Identity{Subject: "p", Namespace: "shop"}, 0},
		{"odd values and a span without id", odd, xds.Identity{}, 1},
		{"other namespace", other, xds.Identity{Subject: "p", Namespace: "shop"}, 2},
		{"empty", &coltracepb.ExportTraceServiceRequest{}, xds.Identity{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := proto.Marshal(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if !checkDecodeSpans(t, tc.id, b) {
				t.Fatal("decodeSpans fell back")
			}
			if _, rej, _, _ := decodeSpans(tc.id, b); rej != tc.rejected {
				t.Fatalf("rejected %d, want %d", rej, tc.rejected)
			}
		})
	}
}

func TestDecodeSpansFallsBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"truncated", []byte{0x0a, 0x05, 0x12}},
		// ResourceSpans{ScopeSpans{Span{name: "\xff"}}}.
		{"invalid utf-8 name", []byte{0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x2a, 0x01, 0xff}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, ok := decodeSpans(xds.Identity{}, tc.b); ok {
				t.Fatal("decodeSpans accepted it")
			}
		})
	}
}

func FuzzDecodeSpans(f *testing.F) {
	for _, req := range []*coltracepb.ExportTraceServiceRequest{benchSpanRequest(2), {}} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x2a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeSpans(t, xds.Identity{Subject: "p", Namespace: "shop"}, b)
		checkDecodeSpans(t, xds.Identity{}, b)
	})
}

// FuzzCheckAttribute checks the fast path of checkAttribute against the
// protobuf decoder.
func FuzzCheckAttribute(f *testing.F) {
	for _, kv := range []*commonpb.KeyValue{
		str("http.route", "catalog"), str("", ""), str("k", "\u00e9t\u00e9"),
		{Key: "http.response.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -1}}},
		{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
	} {
		b, err := proto.Marshal(kv)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0x01, 'k', 0x12, 0x03, 0x0a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		valid := proto.Unmarshal(b, &commonpb.KeyValue{}) == nil
		if ok, known := checkSimpleAttribute(b); known && ok != valid {
			t.Fatalf("checkSimpleAttribute(%x) = %v, proto says %v", b, ok, valid)
		}
		if checkAttribute(b) != valid {
			t.Fatalf("checkAttribute(%x) = %v, proto says %v", b, !valid, valid)
		}
	})
}

// decodeSpans decodes an ExportTraceServiceRequest's bytes as
// convertSpans converts the decoded request: scanSpans, then each record
// decoded. ok is false when b needs proto.Unmarshal.
func decodeSpans(id xds.Identity, b []byte) (out []Span, rejected int64, msg string, ok bool) {
	recs, rejected, msg, ok := scanSpans(id, b)
	if !ok {
		return nil, 0, "", false
	}
	for i := range recs {
		out = append(out, recs[i].span())
	}
	return out, rejected, msg, true
}
