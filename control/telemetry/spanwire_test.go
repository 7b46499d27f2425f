package telemetry

import (
	"reflect"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/accessrec"
)

// checkDecodeSpans asserts that decodeSpans, when it accepts b, answers
// as proto.Unmarshal and convertSpans do.
func checkDecodeSpans(t *testing.T, id xds.Identity, b []byte) (accepted bool) {
	t.Helper()
	got, gotCarried, gotRej, gotMsg, ok := decodeSpans(id, b)
	req := &coltracepb.ExportTraceServiceRequest{}
	err := proto.Unmarshal(b, req)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("decodeSpans accepted what proto.Unmarshal rejects: %v", err)
	}
	want, carried, wantRej, wantMsg := convertSpans(id, req.GetResourceSpans())
	if gotRej != wantRej || gotMsg != wantMsg {
		t.Fatalf("rejected %d %q, want %d %q", gotRej, gotMsg, wantRej, wantMsg)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("spans\n got %+v\nwant %+v", got, want)
	}
	var wantCarried []LogRecord
	for i := range carried {
		wantCarried = append(wantCarried, carried[i].record())
	}
	if !reflect.DeepEqual(gotCarried, wantCarried) {
		t.Fatalf("access records the spans carry\n got %+v\nwant %+v", gotCarried, wantCarried)
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
	boolAttr := func(k string, v bool) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}}
	}
	carrying := benchSpanRequest(5)
	cs := carrying.ResourceSpans[0].ScopeSpans[0].Spans
	cs[0].Attributes = append(cs[0].Attributes, boolAttr(accessrec.AttrCarries, true), str(accessrec.AttrListener, "outbound"),
		intAttr(accessrec.AttrAttempts, 2), str(accessrec.AttrRequestID, "rid-1"))
	cs[1].Attributes = append(cs[1].Attributes, boolAttr(accessrec.AttrCarries, false))
	cs[2].Attributes = append(cs[2].Attributes, str(accessrec.AttrCarries, "true"))                                            // not a bool: carries nothing
	cs[3].Attributes = append(cs[3].Attributes, boolAttr(accessrec.AttrCarries, false), boolAttr(accessrec.AttrCarries, true)) // the last wins
	cs[4].Attributes = append(cs[4].Attributes, boolAttr(accessrec.AttrCarries, true))
	cs[4].SpanId = nil // rejected, and its record with it
	for _, tc := range []struct {
		name     string
		req      *coltracepb.ExportTraceServiceRequest
		id       xds.Identity
		rejected int64
	}{
		{"proxy batch", big, xds.Identity{Subject: "p", Namespace: "shop"}, 0},
		{"odd values and a span without id", odd, xds.Identity{}, 1},
		{"other namespace", other, xds.Identity{Subject: "p", Namespace: "shop"}, 2},
		{"spans carrying access records", carrying, xds.Identity{Subject: "p", Namespace: "shop"}, 1},
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
			if _, _, rej, _, _ := decodeSpans(tc.id, b); rej != tc.rejected {
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
			if _, _, _, _, ok := decodeSpans(xds.Identity{}, tc.b); ok {
				t.Fatal("decodeSpans accepted it")
			}
		})
	}
}

func FuzzDecodeSpans(f *testing.F) {
	carrying := benchSpanRequest(2)
	for _, sp := range carrying.ResourceSpans[0].ScopeSpans[0].Spans {
		sp.Attributes = append(sp.Attributes, &commonpb.KeyValue{Key: accessrec.AttrCarries,
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}}, str(accessrec.AttrListener, "out"))
	}
	for _, req := range []*coltracepb.ExportTraceServiceRequest{benchSpanRequest(2), carrying, {}} {
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
// decoded, and the access records the spans carry. ok is false when b
// needs proto.Unmarshal.
func decodeSpans(id xds.Identity, b []byte) (out []Span, carried []LogRecord, rejected int64, msg string, ok bool) {
	recs, rejected, msg, ok := scanSpans(id, b)
	if !ok {
		return nil, nil, 0, "", false
	}
	for i := range recs {
		out = append(out, recs[i].span())
	}
	for i := range recs {
		if e, ok := carriedRecord(&recs[i]); ok {
			carried = append(carried, e.record())
		}
	}
	return out, carried, rejected, msg, true
}

// The carrying marker is read from any encoding of a bool the protobuf
// decoder reads as true, and only from those.
func TestCarriesMarkerEncodings(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte // the AnyValue's bytes
		want  bool
	}{
		{"true", []byte{0x10, 0x01}, true},
		{"false", []byte{0x10, 0x00}, false},
		{"true, non-canonical varint", []byte{0x10, 0x81, 0x00}, true},
		{"false, non-canonical varint", []byte{0x10, 0x80, 0x00}, false},
		{"int 1", []byte{0x18, 0x01}, false},
		{"string", []byte{0x0a, 0x04, 't', 'r', 'u', 'e'}, false},
		{"true then false", []byte{0x10, 0x01, 0x10, 0x00}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := proto.Marshal(benchSpanRequest(1).ResourceSpans[0].ScopeSpans[0].Spans[0])
			if err != nil {
				t.Fatal(err)
			}
			kv := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), accessrec.AttrCarries)
			kv = protowire.AppendBytes(protowire.AppendTag(kv, 2, protowire.BytesType), tc.value)
			sp = protowire.AppendBytes(protowire.AppendTag(sp, 9, protowire.BytesType), kv)
			scope := protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), sp)
			res, _ := proto.Marshal(resource("shop", "frontend", "f-1"))
			entry := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), res)
			entry = protowire.AppendBytes(protowire.AppendTag(entry, 2, protowire.BytesType), scope)
			wire := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), entry)
			if !checkDecodeSpans(t, xds.Identity{}, wire) {
				t.Fatal("the wire reader fell back")
			}
			_, carried, _, _, _ := decodeSpans(xds.Identity{}, wire)
			if got := len(carried) == 1; got != tc.want {
				t.Fatalf("carries a record: %v, want %v", got, tc.want)
			}
		})
	}
}
