package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

var requestSeeds = []string{
	typicalRequest,
	"GET / HTTP/1.0\r\n\r\n",
	"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"GET http://a.b:80/x?y HTTP/1.1\r\nHost: c\r\n\r\n",
	"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"\r\nGET / HTTP/1.1\r\nHost: [::1]:80\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	"GET / HTTP/1.1\nHost: h\n\n",
	"GET / HTTP/1.1\r\nHost: h\r\nA: b\r\n c\r\n\r\n",
}

// FuzzReadRequestHead checks that the parser never panics, that the way the
// input is split into reads does not change the outcome, that net/http
// accepts every request we accept (with the same method, target and
// framing), and that what AppendRequestHead writes parses back the same.
func FuzzReadRequestHead(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), 4096)
		defer r.Release()
		var h RequestHead
		err := r.ReadRequestHead(&h)

		r1 := NewReader(iotest.OneByteReader(bytes.NewReader(in)), 4096)
		defer r1.Release()
		var h1 RequestHead
		err1 := r1.ReadRequestHead(&h1)
		if (err == nil) != (err1 == nil) || err != nil && err.Error() != err1.Error() {
			t.Fatalf("split reads changed the result: %v vs %v", err, err1)
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if h.Chunked && h.ContentLength >= 0 {
			t.Fatal("both chunked and content-length accepted")
		}

		// net/http must accept what we accept. It does not skip empty
		// lines before the request line (a documented difference).
		head := bytes.TrimLeft(in[:len(in)-r.Buffered()], "\r\n")
		req, herr := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if herr != nil {
			t.Fatalf("we accepted, net/http rejected: %v\n%q", herr, head)
		}
		if req.Method != string(h.Method) || req.RequestURI != string(h.Target) {
			t.Fatalf("request line: net/http %q %q, ours %q %q", req.Method, req.RequestURI, h.Method, h.Target)
		}
		if h.Chunked != (len(req.TransferEncoding) > 0) {
			t.Fatalf("chunked: net/http %v, ours %v", req.TransferEncoding, h.Chunked)
		}
		if !h.Chunked && h.ContentLength != req.ContentLength && !(h.ContentLength == -1 && req.ContentLength == 0) {
			t.Fatalf("content-length: net/http %d, ours %d", req.ContentLength, h.ContentLength)
		}

		// Our output parses back to the same head.
		out := AppendRequestHead(nil, &h)
		r2 := NewReader(bytes.NewReader(out), 8192)
		defer r2.Release()
		var h2 RequestHead
		if err := r2.ReadRequestHead(&h2); err != nil {
			t.Fatalf("our output does not parse: %v\n%q", err, out)
		}
		if !bytes.Equal(h2.Method, h.Method) || !bytes.Equal(h2.Target, h.Target) || !bytes.Equal(h2.Host, h.Host) ||
			h2.ContentLength != h.ContentLength || h2.Chunked != h.Chunked || h2.Close != h.Close ||
			h2.Upgrade != h.Upgrade || h2.Expect100 != h.Expect100 {
			t.Fatalf("round trip changed the head:\n%q\n%q", in, out)
		}
	})
}

var responseSeeds = []string{
	typicalResponse,
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.0 204\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 404 \r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 100 \r\nTrAnsfer-EnCoding:Chunked\r\n\r\n", // found by fuzzing: 1xx framing fields
}

// FuzzReadResponseHead checks the response parser the same way.
func FuzzReadResponseHead(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		method := []byte("GET")
		if head {
			method = []byte("HEAD")
		}
		r := NewReader(bytes.NewReader(in), 4096)
		defer r.Release()
		var h ResponseHead
		err := r.ReadResponseHead(&h, method)

		r1 := NewReader(iotest.OneByteReader(bytes.NewReader(in)), 4096)
		defer r1.Release()
		var h1 ResponseHead
		err1 := r1.ReadResponseHead(&h1, method)
		if (err == nil) != (err1 == nil) || err != nil && err.Error() != err1.Error() {
			t.Fatalf("split reads changed the result: %v vs %v", err, err1)
		}
		if err != nil {
			return
		}
		raw := in[:len(in)-r.Buffered()]
		req := &http.Request{Method: string(method)}
		resp, herr := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), req)
		if herr != nil {
			t.Fatalf("we accepted, net/http rejected: %v\n%q", herr, raw)
		}
		if resp.StatusCode != h.Status {
			t.Fatalf("status: net/http %d, ours %d", resp.StatusCode, h.Status)
		}
		out := AppendResponseHead(nil, &h)
		r2 := NewReader(bytes.NewReader(out), 8192)
		defer r2.Release()
		var h2 ResponseHead
		if err := r2.ReadResponseHead(&h2, method); err != nil {
			t.Fatalf("our output does not parse: %v\n%q", err, out)
		}
		if h2.Status != h.Status || h2.Chunked != h.Chunked || h2.NoBody != h.NoBody ||
			!h.NoBody && h2.ContentLength != h.ContentLength {
			t.Fatalf("round trip changed the head:\n%q\n%q", raw, out)
		}
	})
}

// FuzzChunked checks that chunked framing never panics, that read
// boundaries do not change the outcome, and that net/http's chunked reader
// decodes every body we accept.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{
		chunkedBody,
		"0\r\n\r\n",
		"3;a=b\r\nabc\r\n0\r\nT: v\r\n\r\n",
		"ffffffffffffffffff\r\n",
		"3\r\nabcX",
		"1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	const prefix = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	f.Fuzz(func(t *testing.T, body []byte) {
		in := append([]byte(prefix), body...)
		copyAll := func(src io.Reader) (string, int, error) {
			r := NewReader(src, 4096)
			defer r.Release()
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			_, err := r.CopyBody(&out, -1, true, false)
			return out.String(), r.Buffered(), err
		}
		out, rest, err := copyAll(bytes.NewReader(in))
		out1, _, err1 := copyAll(iotest.OneByteReader(bytes.NewReader(in)))
		if (err == nil) != (err1 == nil) || err != nil && err.Error() != err1.Error() {
			t.Fatalf("split reads changed the result: %v vs %v", err, err1)
		}
		if err != nil {
			return
		}
		if out != out1 || out != string(body[:len(body)-rest]) {
			t.Fatalf("copied bytes differ from the body prefix: %q vs %q", out, out1)
		}
		req, herr := http.ReadRequest(bufio.NewReader(strings.NewReader(prefix + out)))
		if herr != nil {
			t.Fatal(herr)
		}
		if _, herr := io.ReadAll(req.Body); herr != nil && !strings.Contains(herr.Error(), "too much non-data") {
			t.Fatalf("we accepted, net/http's chunked reader failed: %v\n%q", herr, out)
		}
	})
}
