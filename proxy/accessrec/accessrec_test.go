package accessrec

import (
	"encoding/json"
	"math"
	"testing"
	"time"
	"unicode/utf8"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestAppendTimeMicros(t *testing.T) {
	for _, ns := range []int64{0, 1, 999, 1_764_121_032_123_456_789, -1, math.MinInt64, math.MaxInt64} {
		tm := time.Unix(0, ns).UTC()
		want := tm.AppendFormat(nil, "2006-01-02T15:04:05.000000Z07:00")
		if got := AppendTimeMicros([]byte("x"), ns); string(got) != "x"+string(want) {
			t.Errorf("AppendTimeMicros(%d) = %s, want %s", ns, got[1:], want)
		}
	}
}

// AppendJSONString writes valid JSON for any string, the string itself
// when it is valid UTF-8, and the same bytes for s and ValidUTF8(s): a
// record rendered from a span (whose strings went through ValidUTF8) is
// the record the proxy rendered.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t", "\x00\x7f", "héllo", "\xff\xfe", "\ufffd", "\xe2\x82", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, b, err)
		}
		v := ValidUTF8(s)
		if !utf8.ValidString(v) || (utf8.ValidString(s) && v != s) {
			t.Fatalf("ValidUTF8(%q) = %q", s, v)
		}
		if got != v {
			t.Fatalf("%q round-trips to %q, want %q", s, got, v)
		}
		if bv := AppendJSONString(nil, v); string(bv) != string(b) {
			t.Fatalf("%q encodes to %s, its ValidUTF8 form to %s", s, b, bv)
		}
	})
}

func strAttr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func boolAttr(k string, v bool) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: v}}}
}

// fromMessage is FromSpan computed from the decoded message: the
// reference FromSpan's wire reading is checked against.
func fromMessage(s *tracepb.Span) (r Record, ok bool) {
	r.TCP = true
	if len(s.TraceId) == 16 {
		copy(r.TraceID[:], s.TraceId)
		r.TraceValid = r.TraceID != [16]byte{}
	}
	if len(s.SpanId) == 8 {
		copy(r.SpanID[:], s.SpanId)
	}
	r.Start = int64(s.StartTimeUnixNano)
	r.Duration = time.Duration(max(int64(s.EndTimeUnixNano)-r.Start, 0))
	attrs := map[string]*commonpb.AnyValue{}
	var order []string
	for _, kv := range s.Attributes {
		if _, seen := attrs[kv.Key]; !seen {
			order = append(order, kv.Key)
		}
		attrs[kv.Key] = kv.Value
	}
	if !attrs[AttrCarries].GetBoolValue() {
		return r, false
	}
	for _, k := range order {
		v := attrs[k]
		i := v.GetIntValue()
		if _, isBool := v.GetValue().(*commonpb.AnyValue_BoolValue); isBool && v.GetBoolValue() {
			i = 1
		}
		switch k {
		case AttrRoute:
			r.Route = v.GetStringValue()
		case AttrRawRoute:
		default:
			r.set(k, v.GetStringValue(), i)
		}
	}
	if v, ok := attrs[AttrRawRoute]; ok {
		r.Route = v.GetStringValue()
	}
	return r, true
}

func sampleSpan() *tracepb.Span {
	return &tracepb.Span{
		TraceId: []byte{0x4b, 0xf9, 15: 0x36}, SpanId: []byte{0, 0xf0, 7: 0xb7}, Name: "GET default",
		StartTimeUnixNano: 1_764_072_000_123_456_789, EndTimeUnixNano: 1_764_072_000_125_376_789,
		Attributes: []*commonpb.KeyValue{
			strAttr(AttrMethod, "GET"), strAttr(AttrPath, "/api/products"), strAttr(AttrRoute, "unknown"),
			strAttr(AttrAuthority, "catalog.shop"), intAttr(AttrStatus, 200), strAttr(AttrPeer, "127.0.0.1:8080"),
			strAttr(AttrReporter, "destination"), strAttr(AttrCluster, "inbound|8080||"), strAttr(AttrUpstream, "127.0.0.1:8080"),
			strAttr(AttrFlags, "-"), strAttr(AttrSrcWL, "frontend"), strAttr(AttrSrcNS, "shop"), strAttr(AttrSrcP, "unknown"),
			strAttr(AttrDstWL, "catalog-v1"), strAttr(AttrDstNS, "shop"), strAttr(AttrDstSvc, "catalog.shop"), strAttr(AttrDstP, "unknown"),
			boolAttr(AttrCarries, true), strAttr(AttrListener, "inbound_15006"), strAttr(AttrRawRoute, ""),
			strAttr(AttrRequestID, "rid-1"), strAttr(AttrProtocol, "HTTP/1.1"), strAttr(AttrRawGRPC, "14"),
			intAttr(AttrAttempts, 2), intAttr(AttrUpstreamNS, 1_610_000), intAttr(AttrBytesIn, 10), intAttr(AttrBytesOut, 912),
			strAttr(AttrUserAgent, "Go-http-client/1.1"),
		},
	}
}

func TestFromSpan(t *testing.T) {
	b, err := proto.Marshal(sampleSpan())
	if err != nil {
		t.Fatal(err)
	}
	r, ok := FromSpan(b)
	if !ok {
		t.Fatal("FromSpan: no record")
	}
	want := `{"time":"2025-11-25T12:00:00.123456Z","kind":"http","reporter":"destination",` +
		`"trace_id":"4bf90000000000000000000000000036","span_id":"00f00000000000b7","request_id":"rid-1",` +
		`"listener":"inbound_15006","route":"","method":"GET","authority":"catalog.shop","path":"/api/products",` +
		`"protocol":"HTTP/1.1","status":200,"grpc_status":"14","flags":"-","reason":"","attempts":2,` +
		`"cluster":"inbound|8080||","upstream":"127.0.0.1:8080","duration_ms":1.920,"upstream_ms":1.610,` +
		`"bytes_in":10,"bytes_out":912,"source_workload":"frontend","source_namespace":"shop","source_principal":"unknown",` +
		`"destination_workload":"catalog-v1","destination_namespace":"shop","destination_service":"catalog.shop",` +
		`"destination_principal":"unknown","user_agent":"Go-http-client/1.1"}`
	if got := string(AppendJSON(nil, &r)); got != want {
		t.Fatalf("record\n got %s\nwant %s", got, want)
	}

	for name, edit := range map[string]func(s *tracepb.Span){
		"no marker":       func(s *tracepb.Span) { s.Attributes = s.Attributes[:17] },
		"marker false":    func(s *tracepb.Span) { s.Attributes[17] = boolAttr(AttrCarries, false) },
		"marker a string": func(s *tracepb.Span) { s.Attributes[17] = strAttr(AttrCarries, "true") },
	} {
		s := sampleSpan()
		edit(s)
		b, _ := proto.Marshal(s)
		if _, ok := FromSpan(b); ok {
			t.Errorf("%s: FromSpan found a record", name)
		}
	}
	if _, ok := FromSpan([]byte{0x0a, 0x05, 1}); ok {
		t.Error("FromSpan accepted a truncated span")
	}
}

// FromSpan reads what the protobuf decoder reads, for any span the
// decoder accepts, and never fails on one.
func FuzzFromSpan(f *testing.F) {
	b, _ := proto.Marshal(sampleSpan())
	f.Add(b)
	tcp := sampleSpan()
	tcp.Attributes = append(tcp.Attributes[1:2], tcp.Attributes[5:20]...)
	b, _ = proto.Marshal(tcp)
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := FromSpan(b)
		var s tracepb.Span
		if err := proto.Unmarshal(b, &s); err != nil {
			return
		}
		want, wantOK := fromMessage(&s)
		if ok != wantOK {
			t.Fatalf("FromSpan ok %v, the decoded span says %v", ok, wantOK)
		}
		if ok && string(AppendJSON(nil, &got)) != string(AppendJSON(nil, &want)) {
			t.Fatalf("record\n got %s\nwant %s", AppendJSON(nil, &got), AppendJSON(nil, &want))
		}
	})
}
