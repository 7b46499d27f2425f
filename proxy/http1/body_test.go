package http1

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

const chunkedBody = "5\r\nhello\r\n" +
	"7;ext=\"a b\";x\r\n, world\r\n" +
	"1A\r\nabcdefghijklmnopqrstuvwxyz\r\n" +
	"0\r\nX-Checksum: abc\r\nX-Other:v\r\n\r\n"

// afterBody is the next request on the same connection; it must stay
// buffered.
const afterBody = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"

func chunkedRequest(body string) string {
	return "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body
}

func TestCopyBodyChunked(t *testing.T) {
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte reads", iotest.OneByteReader},
		{"half reads", iotest.HalfReader},
		{"data then eof", iotest.DataErrReader},
	}
	for _, rd := range readers {
		t.Run(rd.name, func(t *testing.T) {
			r := NewReader(rd.wrap(strings.NewReader(chunkedRequest(chunkedBody)+afterBody)), 0)
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			n, err := r.CopyBody(&out, h.ContentLength, h.Chunked, false)
			if err != nil {
				t.Fatalf("CopyBody: %v", err)
			}
			if out.String() != chunkedBody || n != int64(len(chunkedBody)) {
				t.Fatalf("copied %d bytes %q, want raw pass-through %q", n, out.String(), chunkedBody)
			}
			if string(h.Target) != "/up" {
				t.Errorf("head invalidated by CopyBody: %q", h.Target)
			}
			// The forwarded bytes decode to the original payload.
			dec, err := io.ReadAll(httputil.NewChunkedReader(&out))
			if err != nil || string(dec) != "hello, worldabcdefghijklmnopqrstuvwxyz" {
				t.Errorf("decoded %q, %v", dec, err)
			}
			if err := r.ReadRequestHead(&h); err != nil || string(h.Target) != "/next" {
				t.Fatalf("next request after body: %v %q", err, h.Target)
			}
		})
	}
}

// TestCopyBodyChunkedLarge sends chunks larger than the buffer so the copy
// buffer path runs, and checks that the head stays valid and the following
// request stays buffered.
func TestCopyBodyChunkedLarge(t *testing.T) {
	data := strings.Repeat("0123456789abcdef", 8<<10) // 128 KiB
	body := "20000\r\n" + data + "\r\n10\r\n" + data[:16] + "\r\n0\r\n\r\n"
	for _, oneByte := range []bool{false, true} {
		var src io.Reader = strings.NewReader(chunkedRequest(body) + afterBody)
		if oneByte {
			src = iotest.HalfReader(src)
		}
		r := NewReader(src, 0)
		var h RequestHead
		if err := r.ReadRequestHead(&h); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if _, err := r.CopyBody(&out, -1, true, false); err != nil {
			t.Fatal(err)
		}
		if out.String() != body {
			t.Fatalf("body mismatch: %d bytes, want %d", out.Len(), len(body))
		}
		if v, _ := h.Get("host"); string(v) != "h" {
			t.Errorf("head invalidated: host %q", v)
		}
		if err := r.ReadRequestHead(&h); err != nil || string(h.Target) != "/next" {
			t.Fatalf("next request: %v %q", err, h.Target)
		}
	}
}

func TestCopyBodyChunkedInvalid(t *testing.T) {
	tests := []struct {
		name, body string
		kind       error
		wantErr    string
	}{
		{"size overflow", "10000000000000000\r\n", ErrMalformed, "chunked body: chunk size overflows"},
		{"no size", "\r\n", ErrMalformed, "chunked body: invalid chunk size"},
		{"bad hex", "0x5\r\nhello\r\n0\r\n\r\n", ErrMalformed, "chunked body: invalid chunk size"},
		{"negative", "-5\r\n", ErrMalformed, "chunked body: invalid chunk size"},
		{"space then cr", "5 \r\nhello\r\n0\r\n\r\n", ErrMalformed, "chunked body: invalid chunk extension"},
		{"bare LF after size", "5\nhello\r\n0\r\n\r\n", ErrMalformed, "chunked body: invalid chunk size"},
		{"bare CR after size", "5\rhello\r\n0\r\n\r\n", ErrMalformed, "chunked body: bare CR in chunk size line"},
		{"missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", ErrMalformed, "chunked body: missing CRLF after chunk data"},
		{"LF only after data", "5\r\nhello\n0\r\n\r\n", ErrMalformed, "chunked body: missing CRLF after chunk data"},
		{"data too long", "3\r\nhello\r\n0\r\n\r\n", ErrMalformed, "chunked body: missing CRLF after chunk data"},
		{"control in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", ErrMalformed, "chunked body: invalid chunk extension"},
		{"oversize extension", "5;" + strings.Repeat("e", 5000) + "\r\nhello\r\n0\r\n\r\n", ErrMalformed, "chunked body: chunk size line too long"},
		{"trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", ErrMalformed, "chunked body: obs-fold or leading whitespace in trailer"},
		{"trailer space before colon", "0\r\nA : b\r\n\r\n", ErrMalformed, "chunked body: invalid trailer field name"},
		{"trailer bare LF", "0\r\nA: b\n\r\n", ErrMalformed, "chunked body: invalid character in trailer value"},
		{"trailer bare CR", "0\r\nA: b\rc\r\n\r\n", ErrMalformed, "chunked body: bare CR in trailer"},
		{"final bare CR", "0\r\n\rX", ErrMalformed, "chunked body: bare CR after trailers"},
		{"too many trailers", "0\r\n" + strings.Repeat("A: b\r\n", 101) + "\r\n", ErrHeaderTooLarge, "chunked body: too many trailer fields"},
		{"trailers too large", "0\r\nA: " + strings.Repeat("b", 70<<10) + "\r\n\r\n", ErrHeaderTooLarge, "chunked body: trailer section too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(iotest.OneByteReader(strings.NewReader(chunkedRequest(tt.body))), 0)
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatal(err)
			}
			_, err := r.CopyBody(io.Discard, -1, true, false)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if !strings.HasSuffix(err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want suffix %q", err, tt.wantErr)
			}
		})
	}
}

func TestCopyBodyTruncated(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		cl      int64
		chunked bool
	}{
		{"content-length short", "abc", 10, false},
		{"content-length large short", strings.Repeat("x", 40000), 50000, false},
		{"chunked cut in data", "a\r\nabc", -1, true},
		{"chunked cut before last chunk", "3\r\nabc\r\n", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader("POST / HTTP/1.1\r\nHost: h\r\n\r\n"+tt.body), 0)
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatal(err)
			}
			_, err := r.CopyBody(io.Discard, tt.cl, tt.chunked, false)
			if !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != "http1: read body: unexpected EOF" {
				t.Fatalf("err = %v, want wrapped io.ErrUnexpectedEOF", err)
			}
		})
	}
}

func TestCopyBodyContentLength(t *testing.T) {
	big := strings.Repeat("z", 100<<10)
	tests := []struct {
		name string
		body string
		wrap func(io.Reader) io.Reader
	}{
		{"empty", "", nil},
		{"small in first read", "hello", nil},
		{"small one byte reads", "hello", iotest.OneByteReader},
		{"large", big, nil},
		{"large half reads", big, iotest.HalfReader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src io.Reader = strings.NewReader("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " +
				itoa(len(tt.body)) + "\r\n\r\n" + tt.body + afterBody)
			if tt.wrap != nil {
				src = tt.wrap(src)
			}
			r := NewReader(src, 0)
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatal(err)
			}
			cl, chunked := h.BodyFraming()
			var out bytes.Buffer
			n, err := r.CopyBody(&out, cl, chunked, false)
			if err != nil || n != int64(len(tt.body)) || out.String() != tt.body {
				t.Fatalf("CopyBody = %d, %v; body ok=%v", n, err, out.String() == tt.body)
			}
			if err := r.ReadRequestHead(&h); err != nil || string(h.Target) != "/next" {
				t.Fatalf("next request: %v %q", err, h.Target)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCopyBodyUntilEOF(t *testing.T) {
	body := strings.Repeat("eof-delimited ", 5000)
	r := NewReader(iotest.HalfReader(strings.NewReader("HTTP/1.1 200 OK\r\n\r\n"+body)), 0)
	var h ResponseHead
	if err := r.ReadResponseHead(&h, []byte("GET")); err != nil {
		t.Fatal(err)
	}
	cl, chunked, untilEOF := h.BodyFraming()
	if !untilEOF || !h.Close {
		t.Fatalf("framing = %d %v %v close=%v, want until EOF and close", cl, chunked, untilEOF, h.Close)
	}
	var out bytes.Buffer
	n, err := r.CopyBody(&out, cl, chunked, untilEOF)
	if err != nil || n != int64(len(body)) || out.String() != body {
		t.Fatalf("CopyBody = %d, %v", n, err)
	}
}

func TestCopyBodyNoBody(t *testing.T) {
	r := NewReader(strings.NewReader("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), 0)
	var h ResponseHead
	if err := r.ReadResponseHead(&h, []byte("GET")); err != nil {
		t.Fatal(err)
	}
	cl, chunked, untilEOF := h.BodyFraming()
	if n, err := r.CopyBody(io.Discard, cl, chunked, untilEOF); n != 0 || err != nil {
		t.Fatalf("CopyBody on 204 = %d, %v", n, err)
	}
	if err := r.ReadResponseHead(&h, []byte("GET")); err != nil || h.Status != 200 {
		t.Fatalf("next response: %v %d", err, h.Status)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("peer gone") }

func TestCopyBodyWriteError(t *testing.T) {
	r := NewReader(strings.NewReader(chunkedRequest(chunkedBody)), 0)
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	_, err := r.CopyBody(failWriter{}, -1, true, false)
	if !errors.Is(err, ErrBodyWrite) || err.Error() != "http1: write body: peer gone" {
		t.Fatalf("err = %v, want ErrBodyWrite", err)
	}
}

func TestTakeBufferedBody(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		cl       int64
		chunked  bool
		untilEOF bool
		want     string
		ok       bool
	}{
		{"complete content-length", "hello" + afterBody, 5, false, false, "hello", true},
		{"partial content-length", "hel", 5, false, false, "", false},
		{"complete chunked", chunkedBody + afterBody, -1, true, false, chunkedBody, true},
		{"partial chunked", chunkedBody[:20], -1, true, false, "", false},
		{"invalid chunked", "zz\r\n", -1, true, false, "", false},
		{"no body", afterBody, -1, false, false, "", true},
		{"until eof", "abc", -1, false, true, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader("POST / HTTP/1.1\r\nHost: h\r\n\r\n"+tt.raw), 0)
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatal(err)
			}
			before := r.Buffered()
			body, ok := r.TakeBufferedBody(tt.cl, tt.chunked, tt.untilEOF)
			if ok != tt.ok || string(body) != tt.want {
				t.Fatalf("TakeBufferedBody = %q, %v; want %q, %v", body, ok, tt.want, tt.ok)
			}
			if consumed := before - r.Buffered(); consumed != len(body) {
				t.Errorf("consumed %d bytes, returned %d", consumed, len(body))
			}
		})
	}
}

// TestCopyBodySplice copies a large body between two loopback TCP
// connections, which takes the splice path.
func TestCopyBodySplice(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	body := strings.Repeat("s", 300<<10)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body+afterBody)
		io.Copy(io.Discard, c)
	}()
	src, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sinkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sinkLn.Close()
	got := make(chan string, 1)
	go func() {
		c, err := sinkLn.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(c)
		c.Close()
		got <- string(b)
	}()
	dst, err := net.Dial("tcp", sinkLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(src, 0)
	defer r.Release()
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	n, err := r.CopyBody(dst, h.ContentLength, false, false)
	dst.Close()
	if err != nil || n != int64(len(body)) {
		t.Fatalf("CopyBody = %d, %v", n, err)
	}
	if s := <-got; s != body {
		t.Fatalf("sink received %d bytes, want %d", len(s), len(body))
	}
	if err := r.ReadRequestHead(&h); err != nil || string(h.Target) != "/next" {
		t.Fatalf("next request after splice: %v %q", err, h.Target)
	}
}

// TestCopyBodyHeadNearBufferEnd uses a head that nearly fills the initial
// 4 KiB buffer, so CopyBody must move to a larger buffer while keeping the
// head's slices valid, for both framings.
func TestCopyBodyHeadNearBufferEnd(t *testing.T) {
	pad := strings.Repeat("p", 4000)
	payload := strings.Repeat("b", 10000)
	tests := []struct {
		name, framing, body string
		cl                  int64
		chunked             bool
	}{
		{"content-length", "Content-Length: 10000", payload, 10000, false},
		{"chunked", "Transfer-Encoding: chunked", "2710\r\n" + payload + "\r\n0\r\n\r\n", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "POST /near HTTP/1.1\r\nHost: h\r\nX-Pad: " + pad + "\r\n" + tt.framing + "\r\n\r\n" + tt.body + afterBody
			r := NewReader(iotest.HalfReader(strings.NewReader(raw)), 0)
			defer r.Release()
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if _, err := r.CopyBody(&out, tt.cl, tt.chunked, false); err != nil || out.String() != tt.body {
				t.Fatalf("CopyBody: %v, body ok %v", err, out.String() == tt.body)
			}
			if v, _ := h.Get("x-pad"); string(v) != pad || string(h.Target) != "/near" {
				t.Fatal("head invalidated by the buffer exchange")
			}
			if err := r.ReadRequestHead(&h); err != nil || string(h.Target) != "/next" {
				t.Fatalf("next request: %v %q", err, h.Target)
			}
		})
	}
}
