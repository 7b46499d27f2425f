package otlpexport

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/emptypb"
)

// The transport benchmarks compare what one export of exportSize bytes
// (about 512 access records) costs the whole machine over loopback: the
// exporter's OTLP/gRPC call against an OTLP/HTTP-style POST of the same
// bytes over TCP and over a Unix socket, each to a server that only reads
// them. cpu-ns/KB is this
// process's user+system time (client, server and their share of the
// kernel) per KB sent: it is what shipping telemetry costs per byte,
// whatever the records hold.

const exportSize = 450 << 10

// serverCodec hands a request to the handler as bytes, as the control
// plane's telemetry.ServerCodec does.
type serverCodec struct{}

func (serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (serverCodec) Unmarshal(d mem.BufferSlice, v any) error {
	if b, ok := v.(*[]byte); ok {
		*b = d.Materialize()
		return nil
	}
	return encoding.GetCodecV2("proto").Unmarshal(d, v)
}

func (serverCodec) Name() string { return "proto" }

// cpuPerKB reports cpu-ns/KB when the benchmark ends.
func cpuPerKB(b *testing.B) func() {
	var r0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	return func() {
		var r1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/(exportSize/1024.0), "cpu-ns/KB")
	}
}

func BenchmarkTransportGRPC(b *testing.B) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer(grpc.ForceServerCodecV2(serverCodec{}))
	var got atomic.Int64
	s.RegisterService(&grpc.ServiceDesc{ServiceName: "bench.Sink", HandlerType: (*any)(nil), Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			got.Add(int64(len(in)))
			return &emptypb.Empty{}, nil
		},
	}}}, struct{}{})
	go s.Serve(lis)
	defer s.Stop()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	msg := rawMessage(bytes.Repeat([]byte{'x'}, exportSize))
	b.SetBytes(exportSize)
	defer cpuPerKB(b)()
	for b.Loop() {
		if err := cc.Invoke(context.Background(), "/bench.Sink/Export", msg, &emptypb.Empty{}, grpc.ForceCodecV2(rawCodec{})); err != nil {
			b.Fatal(err)
		}
	}
	if got.Load() != int64(b.N*exportSize) {
		b.Fatalf("server read %d bytes, want %d", got.Load(), b.N*exportSize)
	}
}

func BenchmarkTransportHTTP(b *testing.B) { benchHTTP(b, "tcp") }

func BenchmarkTransportUnix(b *testing.B) { benchHTTP(b, "unix") }

// benchHTTP POSTs exports over network (tcp or unix).
func benchHTTP(b *testing.B, network string) {
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(b.TempDir(), "otlp.sock")
	}
	lis, err := net.Listen(network, addr)
	if err != nil {
		b.Fatal(err)
	}
	var got atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got.Add(int64(len(in)))
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	go srv.Serve(lis)
	defer srv.Close()
	url := "http://" + lis.Addr().String() + "/v1/logs"
	client := &http.Client{}
	if network == "unix" {
		url, client = "http://localhost/v1/logs", unixClient(addr)
	}
	msg := bytes.Repeat([]byte{'x'}, exportSize)
	b.SetBytes(exportSize)
	defer cpuPerKB(b)()
	for b.Loop() {
		resp, err := client.Post(url, "application/x-protobuf", bytes.NewReader(msg))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	if got.Load() != int64(b.N*exportSize) {
		b.Fatalf("server read %d bytes, want %d", got.Load(), b.N*exportSize)
	}
}
