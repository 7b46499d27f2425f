package proxy

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/accessrec"
)

// refCases are finished requests covering every branch of the encoders.
func refCases() []struct {
	name string
	r    reqRecord
} {
	start := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.FixedZone("x", 3600))
	tr := traceState{traceID: [16]byte{0x4b, 0xf9, 15: 0x36}, spanID: [8]byte{0, 0xf0, 7: 0xb7}, parent: [8]byte{1, 2, 3}, sampled: true, valid: true, own: true, tracestate: "k=v"}
	base := reqRecord{start: start, listener: "inbound_15006", rep: repDestination, route: "default",
		method: "GET", authority: "catalog.shop", path: "/api/products", protocol: "HTTP/1.1",
		userAgent: "Go-http-client/1.1", requestID: "rid-1", status: 200, attempts: 1,
		cluster: "inbound|8080||", upstream: "127.0.0.1:8080", upDur: 1610 * time.Microsecond, hasUp: true,
		bytesIn: 10, bytesOut: 912, srcWL: "frontend", srcNS: "shop", srcPrincipal: "spiffe://cluster.local/ns/shop/sa/frontend",
		dstWL: "catalog-v1", dstNS: "shop", dstSvc: "catalog.shop", downstreamTLS: true, trace: tr}
	with := func(f func(r *reqRecord)) reqRecord { r := base; f(&r); return r }
	return []struct {
		name string
		r    reqRecord
	}{
		{"inbound sampled with parent", base},
		{"outbound root span", with(func(r *reqRecord) {
			r.rep, r.trace.parent, r.trace.tracestate, r.upstreamTLS, r.upstreamPeer = repSource, [8]byte{}, "", true, "spiffe://cluster.local/ns/shop/sa/catalog"
		})},
		{"gateway grpc", with(func(r *reqRecord) { r.rep, r.grpc, r.grpcStatus = repGateway, true, "14" })},
		{"grpc status not a number", with(func(r *reqRecord) { r.grpc, r.grpcStatus = true, "x" })},
		{"local reply", with(func(r *reqRecord) { r.localReply(503, reasonNoHealthy); r.upstream, r.route = "", "" })},
		{"5xx unsampled", with(func(r *reqRecord) { r.status, r.trace.sampled, r.flags = 502, false, flagUF|flagURX })},
		{"unsampled 200: no span", with(func(r *reqRecord) { r.trace.sampled = false })},
		{"no trace", with(func(r *reqRecord) { r.trace = traceState{} })},
		{"trace without span id", with(func(r *reqRecord) { r.trace = traceState{traceID: tr.traceID, valid: true} })},
		{"unknown labels", with(func(r *reqRecord) {
			r.srcWL, r.srcNS, r.dstWL, r.dstNS, r.dstSvc, r.srcPrincipal, r.status = "", "", "", "", "", "", 0
		})},
		{"escapes", with(func(r *reqRecord) {
			r.path, r.userAgent, r.authority = "/a\"b\\c\x01\x7f\xff/é", "ua\n\t", strings.Repeat("h", 300)
		})},
		{"tcp", with(func(r *reqRecord) {
			r.tcp, r.method, r.path, r.authority, r.protocol, r.userAgent, r.status = true, "", "", "", "", "", 0
		})},
		{"delay flag is no failure", with(func(r *reqRecord) { r.flags = flagDI })},
	}
}

// The encoders write exactly what the old message-building path built:
// the same JSON bytes, and protobuf that decodes to equal messages.
func TestEncodersMatchReference(t *testing.T) {
	tel := newTelemetry(Options{Clock: time.Now, TraceSampling: 1})
	for _, tt := range refCases() {
		t.Run(tt.name, func(t *testing.T) {
			r := &tt.r
			dur := 1920 * time.Microsecond
			end := r.start.Add(dur)
			srcP, dstP := tel.principals(r)
			var d doneRec
			tel.pack(&d, r, dur)
			// Queued records own copies of the request's strings.
			arena := d.ownStrings(nil)
			if len(arena) == 0 {
				t.Fatal("no string copied into the arena")
			}
			want := refAppendRecord(nil, r, dur, srcP, dstP)
			got := appendRecord(nil, &d)
			if !bytes.Equal(got, want) {
				t.Fatalf("access record\n got %s\nwant %s", got, want)
			}
			logs, err := decodeLogs(appendLogRecord([]byte{}, &d, got), 1)
			if err != nil {
				t.Fatal(err)
			}
			if wl := refLogRecord(r, end, want); !proto.Equal(logs[0], wl) {
				t.Errorf("log record\n got %v\nwant %v", logs[0], wl)
			}
			if got, want := d.bits&bitSpan != 0, r.recordSpan(); got != want {
				t.Fatalf("span recorded %v, want %v", got, want)
			}
			var scratch []byte
			spans, err := decodeSpans(appendSpan(nil, &d, &scratch, false), 1)
			if err != nil {
				t.Fatal(err)
			}
			// Invalid UTF-8 in the request's strings becomes U+FFFD in
			// the span (the old path failed to marshal the batch).
			rv := *r
			for _, s := range []*string{&rv.method, &rv.path, &rv.authority, &rv.srcWL, &rv.srcNS, &rv.trace.tracestate} {
				*s = accessrec.ValidUTF8(*s)
			}
			if ws := refSpan(&rv, end, srcP, dstP); !proto.Equal(spans[0], ws) {
				t.Errorf("span\n got %v\nwant %v", spans[0], ws)
			}
			if accessrec.ValidUTF8(r.path) == r.path {
				if _, ok := accessrec.FromSpan(spanBytes(t, appendSpan(nil, &d, &scratch, false))); ok {
					t.Error("a span without weft.access_record read as carrying a record")
				}
			}

			// A span that carries the record: the same span plus the
			// record's other fields, from which the record's JSON comes
			// back byte for byte.
			carried, err := decodeSpans(appendSpan(nil, &d, &scratch, true), 1)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(withoutCarried(carried[0]), spans[0]) {
				t.Errorf("carrying span without the record's attributes\n got %v\nwant %v", withoutCarried(carried[0]), spans[0])
			}
			rec, ok := accessrec.FromSpan(spanBytes(t, appendSpan(nil, &d, &scratch, true)))
			if !ok {
				t.Fatal("FromSpan: the span carries no record")
			}
			if back := accessrec.AppendJSON(nil, &rec); !bytes.Equal(back, got) {
				t.Errorf("record from the span\n got %s\nwant %s", back, got)
			}
		})
	}
}

// BenchmarkEncodeBatch encodes a batch of 512 finished requests as the
// telemetry goroutine does, at 100 % sampling: with an access log, a JSON
// access record, an OTLP log record and a span each ("file+records"); the
// same without the access log ("records"); and without the access log to
// a collector that takes spans carrying their records ("carry": a span
// each, no JSON, no log record).
func BenchmarkEncodeBatch(b *testing.B) {
	for _, bc := range []struct {
		name string
		tel  *telemetry
	}{
		{"file+records", &telemetry{log: discardWriter{}, sink: discardSink{}}},
		{"records", &telemetry{sink: discardSink{}}},
		{"carry", &telemetry{sink: carrySink{}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tel := bc.tel
			batch := &recBatch{}
			cases := refCases()
			for i := range 512 {
				var d doneRec
				r := cases[0].r
				tel.pack(&d, &r, time.Millisecond)
				batch.recs = append(batch.recs, d)
				batch.arena = batch.recs[i].ownStrings(batch.arena)
				batch.spans++
			}
			tel.encode(batch) // grow the buffers
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				tel.encode(batch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*512), "ns/record")
		})
	}
}

// carrySink is a discardSink whose collector takes spans carrying records.
type carrySink struct{ discardSink }

func (carrySink) SpansCarryRecords() bool { return true }

type discardWriter struct{}

func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// spanBytes is the Span message of one ScopeSpans.spans field.
func spanBytes(t *testing.T, field []byte) []byte {
	t.Helper()
	_, _, n := protowire.ConsumeTag(field)
	v, m := protowire.ConsumeBytes(field[n:])
	if n < 0 || m != len(field)-n {
		t.Fatalf("not one length-delimited field: %x", field)
	}
	return v
}

// withoutCarried is s without the attributes a span carrying its access
// record adds.
func withoutCarried(s *tracepb.Span) *tracepb.Span {
	s = proto.Clone(s).(*tracepb.Span)
	s.Attributes = slices.DeleteFunc(s.Attributes, func(kv *commonpb.KeyValue) bool {
		switch kv.Key {
		case accessrec.AttrCarries, accessrec.AttrListener, accessrec.AttrRawRoute, accessrec.AttrRequestID,
			accessrec.AttrProtocol, accessrec.AttrRawGRPC, accessrec.AttrAttempts, accessrec.AttrUpstreamNS,
			accessrec.AttrBytesIn, accessrec.AttrBytesOut, accessrec.AttrUserAgent:
			return true
		}
		return false
	})
	return s
}
