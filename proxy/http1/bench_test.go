package http1

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
)

// typicalRequest is a ~400-byte browser-like request head with 8 fields.
const typicalRequest = "GET /api/v1/catalog/items?page=2&sort=price HTTP/1.1\r\n" +
	"Host: catalog.shop.svc.cluster.local:8080\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Accept-Language: en-US,en;q=0.9\r\n" +
	"Cookie: session=5f2b8c1e9a7d4e3f8b6a1c0d2e4f6a8b\r\n" +
	"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 1024\r\n" +
	"Date: Mon, 02 Mar 2026 10:00:00 GMT\r\n" +
	"Cache-Control: no-cache\r\n" +
	"Server: catalog/1.4\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"\r\n"

func BenchmarkReadRequestHead(b *testing.B) {
	src := strings.NewReader(typicalRequest)
	r := NewReader(src, 0)
	var h RequestHead
	b.SetBytes(int64(len(typicalRequest)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(typicalRequest)
		r.Reset(src)
		if err := r.ReadRequestHead(&h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadResponseHead(b *testing.B) {
	src := strings.NewReader(typicalResponse)
	r := NewReader(src, 0)
	var h ResponseHead
	method := []byte("GET")
	b.SetBytes(int64(len(typicalResponse)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(typicalResponse)
		r.Reset(src)
		if err := r.ReadResponseHead(&h, method); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequestHeadAfterEdits(b *testing.B) {
	r := NewReader(strings.NewReader(typicalRequest), 0)
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		b.Fatal(err)
	}
	orig := append([]Header(nil), h.Headers...)
	dst := make([]byte, 0, 1024)
	ip := []byte("10.1.2.3")
	b.ReportAllocs()
	for b.Loop() {
		h.Headers = append(h.Headers[:0], orig...)
		h.arena = h.arena[:0]
		h.RemoveHopByHop(false)
		h.AppendList("X-Forwarded-For", ip)
		h.Set("X-Forwarded-Proto", "http")
		h.Set("X-Request-Id", "0123456789abcdef")
		dst = AppendRequestHead(dst[:0], &h)
	}
}

func benchCopyBody(b *testing.B, raw string, chunked bool, cl int64) {
	src := strings.NewReader(raw)
	r := NewReader(src, 0)
	var h RequestHead
	b.SetBytes(1024)
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(raw)
		r.Reset(src)
		if err := r.ReadRequestHead(&h); err != nil {
			b.Fatal(err)
		}
		if _, err := r.CopyBody(io.Discard, cl, chunked, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCopyBodyContentLength1K(b *testing.B) {
	body := strings.Repeat("x", 1024)
	benchCopyBody(b, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1024\r\n\r\n"+body, false, 1024)
}

func BenchmarkCopyBodyChunked1K(b *testing.B) {
	chunk := strings.Repeat("x", 256)
	body := strings.Repeat("100\r\n"+chunk+"\r\n", 4) + "0\r\n\r\n"
	benchCopyBody(b, chunkedRequest(body), true, -1)
}

// BenchmarkNetHTTPReadRequest is the baseline: net/http's parser on the
// same head.
func BenchmarkNetHTTPReadRequest(b *testing.B) {
	src := strings.NewReader(typicalRequest)
	br := bufio.NewReader(src)
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(typicalRequest)
		br.Reset(src)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}
