package proxy

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/proxy/http1"
)

// rawUpstream is a minimal keep-alive HTTP/1.1 server answering every
// request with a fixed 1 KB response, so that benchmarks measure the proxy.
func rawUpstream(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("x", 1024))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				rd := http1.NewReader(c, 0)
				defer rd.Release()
				var h http1.RequestHead
				for {
					if err := rd.ReadRequestHead(&h); err != nil {
						return
					}
					cl, ch := h.BodyFraming()
					if _, err := rd.CopyBody(io.Discard, cl, ch, false); err != nil {
						return
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// tcpEcho is a TCP server that sends every connection's bytes back; it
// returns its address.
func tcpEcho(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkProxyHTTP1 is one full proxied request on the fast path: a
// keep-alive client connection, route match, endpoint pick, pooled upstream
// connection, 1 KB response. allocs/op counts the proxy, the raw client and
// the raw upstream (the last two allocate nothing per request).
func BenchmarkProxyHTTP1(b *testing.B) {
	benchProxyHTTP1(b, Options{})
}

// BenchmarkProxyHTTP1Telemetry is BenchmarkProxyHTTP1 with every record
// consumer on: an access log (discarded), an exporter (discarding) and
// 100 % trace sampling, so each request renders its JSON record and builds
// its span.
func BenchmarkProxyHTTP1Telemetry(b *testing.B) {
	benchProxyHTTP1(b, Options{Workload: "frontend", Namespace: "shop", AccessLog: io.Discard, Telemetry: discardSink{}, TraceSampling: 1})
}

// discardSink drops what it is given.
type discardSink struct{}

func (discardSink) ExportSpans([]byte, int, bool) error { return nil }
func (discardSink) ExportLogs([]byte, int) error        { return nil }
func (discardSink) SpansCarryRecords() bool             { return false }
func (discardSink) DropRecords(int, int)                {}

func benchProxyHTTP1(b *testing.B, opts Options) {
	up := rawUpstream(b)
	_, addrs := startProxyOpts(b, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: backend}`, staticCluster("backend", "", up)), opts)
	c, err := net.Dial("tcp", addrs["in"])
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /items?page=1 HTTP/1.1\r\nHost: catalog.shop\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	rd := http1.NewReader(c, 0)
	defer rd.Release()
	var h http1.ResponseHead
	get := []byte("GET")
	b.ReportAllocs()
	b.SetBytes(1024)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if err := rd.ReadResponseHead(&h, get); err != nil {
			b.Fatal(err)
		}
		cl, ch, eof := h.BodyFraming()
		if _, err := rd.CopyBody(io.Discard, cl, ch, eof); err != nil {
			b.Fatal(err)
		}
		if h.Status != 200 {
			b.Fatalf("status %d", h.Status)
		}
	}
}
