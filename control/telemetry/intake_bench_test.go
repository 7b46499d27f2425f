package telemetry

import (
	"context"
	"encoding/binary"
	"fmt"
	"google.golang.org/grpc/mem"
	"runtime"
	"slices"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/accessrec"
)

// intakeBatch is how many spans or records a proxy sends per export.
const intakeBatch = 512

func intAttr(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func benchIDs(i int) (trace, span, parent []byte) {
	trace, span, parent = make([]byte, 16), make([]byte, 8), make([]byte, 8)
	binary.BigEndian.PutUint64(trace, 0x4bf92f3577b34da6)
	binary.BigEndian.PutUint64(trace[8:], uint64(i+1))
	binary.BigEndian.PutUint64(span, uint64(i+1)<<8|1)
	binary.BigEndian.PutUint64(parent, uint64(i+1)<<8|2)
	return trace, span, parent
}

// benchSpanRequest is a source sidecar's export: spans with the
// attributes proxy/telemetry_record.go sets.
func benchSpanRequest(n int) *coltracepb.ExportTraceServiceRequest {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()
	spans := make([]*tracepb.Span, n)
	for i := range spans {
		tid, sid, pid := benchIDs(i)
		route := fmt.Sprintf("catalog-%d", i%4)
		spans[i] = &tracepb.Span{
			TraceId: tid, SpanId: sid, ParentSpanId: pid, Name: "GET " + route,
			Kind:              tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: uint64(start + int64(i)*1000), EndTimeUnixNano: uint64(start + int64(i)*1000 + 1_250_000),
			Flags: 0x300,
			Attributes: []*commonpb.KeyValue{
				str("http.request.method", "GET"), str("url.path", fmt.Sprintf("/products/%d", i%100)),
				str("http.route", route), str("server.address", "catalog.shop:8080"),
				intAttr("http.response.status_code", 200),
				str("network.peer.address", fmt.Sprintf("10.0.0.%d:8080", i%8)),
				str("weft.reporter", "source"), str("weft.cluster", "catalog.shop|8080"),
				str("weft.upstream", fmt.Sprintf("10.0.0.%d:8080", i%8)), str("weft.response_flags", "-"),
				str("weft.source_workload", "frontend"), str("weft.source_namespace", "shop"),
				str("weft.source_principal", "spiffe://cluster.local/ns/shop/sa/frontend"),
				str("weft.destination_workload", "catalog"), str("weft.destination_namespace", "shop"),
				str("weft.destination_service", "catalog.shop"),
				str("weft.destination_principal", "spiffe://cluster.local/ns/shop/sa/catalog"),
			},
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   resource("shop", "frontend", "frontend-7d9f-abcde.shop"),
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}},
	}}}
}

// benchAccessBody is an access record as proxy/telemetry_record.go
// renders it.
func benchAccessBody(i int, tid, sid []byte) string {
	return fmt.Sprintf(`{"time":"2026-11-25T12:00:00.%06dZ","kind":"http","reporter":"source","trace_id":"%x","span_id":"%x",`+
		`"request_id":"5f1c2a3b-%08d","listener":"outbound","route":"catalog-%d","method":"GET","authority":"catalog.shop:8080",`+
		`"path":"/products/%d","protocol":"HTTP/1.1","status":200,"flags":"-","attempts":1,"cluster":"catalog.shop|8080",`+
		`"upstream":"10.0.0.%d:8080","duration_ms":1.250,"upstream_ms":1.100,"bytes_in":0,"bytes_out":512,`+
		`"source_workload":"frontend","source_namespace":"shop","source_principal":"spiffe://cluster.local/ns/shop/sa/frontend",`+
		`"destination_workload":"catalog","destination_namespace":"shop","destination_service":"catalog.shop",`+
		`"destination_principal":"spiffe://cluster.local/ns/shop/sa/catalog","user_agent":"Go-http-client/1.1"}`,
		i%1_000_000, tid, sid, i, i%4, i%100, i%8)
}

// benchLogRequest is a source sidecar's export of access records.
func benchLogRequest(n int) *collogspb.ExportLogsServiceRequest {
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixNano()
	recs := make([]*logspb.LogRecord, n)
	for i := range recs {
		tid, sid, _ := benchIDs(i)
		recs[i] = &logspb.LogRecord{
			TimeUnixNano: uint64(start + int64(i)*1000), ObservedTimeUnixNano: uint64(start + int64(i)*1000 + 1_250_000),
			SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO, SeverityText: "INFO",
			Body:    &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: benchAccessBody(i, tid, sid)}},
			TraceId: tid, SpanId: sid,
		}
	}
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  resource("shop", "frontend", "frontend-7d9f-abcde.shop"),
		ScopeLogs: []*logspb.ScopeLogs{{LogRecords: recs}},
	}}}
}

func benchHub() *Hub {
	return New(Options{
		Clock: newFakeClock(),
		Auth: AuthFunc(func(context.Context) (xds.Identity, error) {
			return xds.Identity{Subject: "proxy", Namespace: "shop"}, nil
		}),
	})
}

// mallocs returns the number of heap allocations so far.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// reportPerItem reports ns/item and allocs/item for b.N batches of n
// items; before is mallocs() before the loop.
func reportPerItem(b *testing.B, n int, before uint64) {
	items := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/items, "ns/item")
	b.ReportMetric(float64(mallocs()-before)/items, "allocs/item")
}

// BenchmarkIntakeSpans measures the hub's cost of one span: reading the
// request's bytes as the receiver does ("wire"), and the receiver's
// fallback for forms the wire reader leaves to protobuf: decoding the
// request as gRPC's codec does and storing it ("decode+export"), and
// storing an already decoded one ("export").
func BenchmarkIntakeSpans(b *testing.B) {
	r := func() traceReceiver { return traceReceiver{h: benchHub()} }
	benchIntake(b, benchSpanRequest(intakeBatch), func() *coltracepb.ExportTraceServiceRequest { return &coltracepb.ExportTraceServiceRequest{} },
		func() func(context.Context, []byte) (bool, error) {
			rr := r()
			return func(ctx context.Context, in []byte) (bool, error) {
				resp, err := rr.exportWire(ctx, in)
				return resp.GetPartialSuccess() != nil, err
			}
		},
		func() func(context.Context, *coltracepb.ExportTraceServiceRequest) (bool, error) {
			rr := r()
			return func(ctx context.Context, in *coltracepb.ExportTraceServiceRequest) (bool, error) {
				resp, err := rr.Export(ctx, in)
				return resp.GetPartialSuccess() != nil, err
			}
		})
}

// BenchmarkIntakeCarried measures the hub's cost of one span that carries
// its access record (what a weft proxy sends for a traced request): the
// span read from the request's bytes, stored, and its record stored in the
// log store. Compare with one span plus one log record
// (BenchmarkIntakeSpans/wire + BenchmarkIntakeLogs/wire).
func BenchmarkIntakeCarried(b *testing.B) {
	req := carryingRequest(intakeBatch)
	enc, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	rr := traceReceiver{h: benchHub()}
	benchWire(b, enc, func(ctx context.Context, in []byte) (bool, error) {
		resp, err := rr.exportWire(ctx, in)
		return resp.GetPartialSuccess() != nil, err
	})
	if n := rr.h.logs.len(); n == 0 {
		b.Fatal("no access record stored")
	}
}

// carryingRequest is benchSpanRequest(n) with every span carrying its
// access record, as a weft proxy sends them to weft control.
func carryingRequest(n int) *coltracepb.ExportTraceServiceRequest {
	req := benchSpanRequest(n)
	for i, sp := range req.ResourceSpans[0].ScopeSpans[0].Spans {
		sp.Attributes = append(sp.Attributes,
			&commonpb.KeyValue{Key: accessrec.AttrCarries, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
			str(accessrec.AttrListener, "outbound"), str(accessrec.AttrRequestID, fmt.Sprintf("5f1c2a3b-%08d", i)),
			str(accessrec.AttrProtocol, "HTTP/1.1"), intAttr(accessrec.AttrAttempts, 1), intAttr(accessrec.AttrUpstreamNS, 1_100_000),
			intAttr(accessrec.AttrBytesOut, 512), str(accessrec.AttrUserAgent, "Go-http-client/1.1"))
	}
	return req
}

// BenchmarkIntakeLogs measures the hub's cost of one access record, as
// BenchmarkIntakeSpans does for spans.
func BenchmarkIntakeLogs(b *testing.B) {
	r := func() logsReceiver { return logsReceiver{h: benchHub()} }
	benchIntake(b, benchLogRequest(intakeBatch), func() *collogspb.ExportLogsServiceRequest { return &collogspb.ExportLogsServiceRequest{} },
		func() func(context.Context, []byte) (bool, error) {
			rr := r()
			return func(ctx context.Context, in []byte) (bool, error) {
				resp, err := rr.exportWire(ctx, in)
				return resp.GetPartialSuccess() != nil, err
			}
		},
		func() func(context.Context, *collogspb.ExportLogsServiceRequest) (bool, error) {
			rr := r()
			return func(ctx context.Context, in *collogspb.ExportLogsServiceRequest) (bool, error) {
				resp, err := rr.Export(ctx, in)
				return resp.GetPartialSuccess() != nil, err
			}
		})
}

// benchIntake runs the three sub-benchmarks of an export request req of
// intakeBatch items, each with a fresh hub: wire (with newWire's func,
// given the bytes), decode+export and export (with newExport's). Each
// func reports whether the answer was a partial success, which fails the
// benchmark.
func benchIntake[Req proto.Message](b *testing.B, req Req, newReq func() Req,
	newWire func() func(context.Context, []byte) (bool, error), newExport func() func(context.Context, Req) (bool, error)) {
	enc, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("wire", func(b *testing.B) { benchWire(b, enc, newWire()) })
	for _, decode := range []bool{true, false} {
		name := "export"
		if decode {
			name = "decode+export"
		}
		b.Run(name, func(b *testing.B) {
			export := newExport()
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			before := mallocs()
			for b.Loop() {
				in := req
				if decode {
					in = newReq()
					if err := proto.Unmarshal(enc, in); err != nil {
						b.Fatal(err)
					}
				}
				if partial, err := export(ctx, in); err != nil || partial {
					b.Fatal(err, partial)
				}
			}
			reportPerItem(b, intakeBatch, before)
		})
	}
}

// benchWire measures what a receiver does with an export's bytes on a
// server with ServerCodec: the codec copies them out of gRPC's buffers,
// export reads them; partial reports a partial success, which fails the
// benchmark.
func benchWire(b *testing.B, wire []byte, export func(ctx context.Context, in []byte) (partial bool, err error)) {
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	before := mallocs()
	for b.Loop() {
		in := &wireRequest{}
		if err := (ServerCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, in); err != nil {
			b.Fatal(err)
		}
		if partial, err := export(ctx, in.bytes()); err != nil || partial {
			b.Fatal(err, partial)
		}
	}
	reportPerItem(b, intakeBatch, before)
}

// BenchmarkLogSearch searches a full log store (DefaultMaxLogs access
// records that spans carry, whose bodies are rendered when read) for a
// term no record holds: the worst case of the dashboard's search box and
// `weft logs` with a search.
func BenchmarkLogSearch(b *testing.B) {
	req := carryingRequest(intakeBatch)
	enc, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	h := benchHub()
	rr := traceReceiver{h: h}
	for h.logs.len() < DefaultMaxLogs {
		if _, err := rr.storeWire(xds.Identity{Namespace: "shop"}, slices.Clone(enc)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if recs, _, _ := h.Logs(LogQuery{Contains: "no-such-term"}); len(recs) != 0 {
			b.Fatal("found the term")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*DefaultMaxLogs), "ns/record")
}
