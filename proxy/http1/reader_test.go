package http1

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func readReq(t *testing.T, raw string) (*RequestHead, error) {
	t.Helper()
	r := NewReader(strings.NewReader(raw), 0)
	var h RequestHead
	err := r.ReadRequestHead(&h)
	return &h, err
}

func TestReadRequestHeadValid(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		method string
		target string
		minor  int
		host   string
		cl     int64
		chunk  bool
		close  bool
		expect bool
		upg    bool
		fields int
	}{
		{name: "simple get", raw: "GET /a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n",
			method: "GET", target: "/a?b=c", minor: 1, host: "example.com", cl: -1, fields: 1},
		{name: "post content-length", raw: "POST /p HTTP/1.1\r\nHost: h:8080\r\nContent-Length: 12\r\n\r\n",
			method: "POST", target: "/p", minor: 1, host: "h:8080", cl: 12, fields: 2},
		{name: "duplicate equal content-length", raw: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
			method: "POST", target: "/", minor: 1, host: "h", cl: 3, fields: 3},
		{name: "chunked any case", raw: "POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: Chunked\r\n\r\n",
			method: "POST", target: "/", minor: 1, host: "h", cl: -1, chunk: true, fields: 2},
		{name: "connection close", raw: "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n",
			method: "GET", target: "/", minor: 1, host: "h", cl: -1, close: true, fields: 2},
		{name: "http/1.0 closes", raw: "GET / HTTP/1.0\r\n\r\n",
			method: "GET", target: "/", minor: 0, cl: -1, close: true},
		{name: "http/1.0 keep-alive", raw: "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
			method: "GET", target: "/", minor: 0, cl: -1, fields: 1},
		{name: "expect 100-continue", raw: "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n",
			method: "PUT", target: "/x", minor: 1, host: "h", cl: 5, expect: true, fields: 3},
		{name: "expect ignored in http/1.0", raw: "PUT /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
			method: "PUT", target: "/x", minor: 0, cl: 5, close: true, fields: 2},
		{name: "websocket upgrade", raw: "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
			method: "GET", target: "/ws", minor: 1, host: "h", cl: -1, upg: true, fields: 3},
		{name: "upgrade field without token", raw: "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n",
			method: "GET", target: "/", minor: 1, host: "h", cl: -1, fields: 2},
		{name: "absolute form sets host", raw: "GET http://catalog.shop:80/items?x=1 HTTP/1.1\r\nHost: other\r\n\r\n",
			method: "GET", target: "http://catalog.shop:80/items?x=1", minor: 1, host: "catalog.shop:80", cl: -1, fields: 1},
		{name: "connect authority form", raw: "CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n",
			method: "CONNECT", target: "db.internal:5432", minor: 1, host: "db.internal:5432", cl: -1, fields: 1},
		{name: "options asterisk", raw: "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
			method: "OPTIONS", target: "*", minor: 1, host: "h", cl: -1, fields: 1},
		{name: "leading empty lines skipped", raw: "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
			method: "GET", target: "/", minor: 1, host: "h", cl: -1, fields: 1},
		{name: "ows trimmed and obs-text kept", raw: "GET / HTTP/1.1\r\nHost:h\r\nX-A: \t v\xe9 \t\r\n\r\n",
			method: "GET", target: "/", minor: 1, host: "h", cl: -1, fields: 2},
		{name: "ipv6 host", raw: "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
			method: "GET", target: "/", minor: 1, host: "[::1]:8080", cl: -1, fields: 1},
		{name: "empty host", raw: "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			method: "GET", target: "/", minor: 1, host: "", cl: -1, fields: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readReq(t, tt.raw)
			if err != nil {
				t.Fatalf("ReadRequestHead: %v", err)
			}
			if string(h.Method) != tt.method || string(h.Target) != tt.target || h.Minor != tt.minor {
				t.Errorf("request line = %q %q 1.%d, want %q %q 1.%d", h.Method, h.Target, h.Minor, tt.method, tt.target, tt.minor)
			}
			if string(h.Host) != tt.host {
				t.Errorf("Host = %q, want %q", h.Host, tt.host)
			}
			if h.ContentLength != tt.cl || h.Chunked != tt.chunk || h.Close != tt.close || h.Expect100 != tt.expect || h.Upgrade != tt.upg {
				t.Errorf("cl=%d chunked=%v close=%v expect=%v upgrade=%v, want %d %v %v %v %v",
					h.ContentLength, h.Chunked, h.Close, h.Expect100, h.Upgrade, tt.cl, tt.chunk, tt.close, tt.expect, tt.upg)
			}
			if len(h.Headers) != tt.fields {
				t.Errorf("%d headers, want %d: %q", len(h.Headers), tt.fields, h.Headers)
			}
		})
	}
}

func TestReadRequestHeadFieldValues(t *testing.T) {
	h, err := readReq(t, "GET / HTTP/1.1\r\nHost: h\r\nX-A: \t v\xe9 \t\r\nx-b:\r\nX-A: 2\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Host", "h", "X-A", "v\xe9", "x-b", "", "X-A", "2"}
	for i, f := range h.Headers {
		if string(f.Name) != want[2*i] || string(f.Value) != want[2*i+1] {
			t.Errorf("field %d = %q: %q, want %q: %q", i, f.Name, f.Value, want[2*i], want[2*i+1])
		}
	}
	if v, ok := h.Get("x-a"); !ok || string(v) != "v\xe9" {
		t.Errorf("Get(x-a) = %q, %v", v, ok)
	}
	if _, ok := h.Get("missing"); ok {
		t.Error("Get(missing) found a field")
	}
}

func TestReadRequestHeadInvalid(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		kind    error
		wantErr string
	}{
		{"bare LF", "GET / HTTP/1.1\nHost: h\n\n", ErrMalformed, "http1: malformed message: bare LF line ending (line 1)"},
		{"bare LF in field", "GET / HTTP/1.1\r\nHost: h\n\r\n", ErrMalformed, "bare LF line ending (line 2)"},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", ErrMalformed, "bare CR in header value (line 3)"},
		{"control char in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", ErrMalformed, "invalid character in header value (line 3)"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", ErrMalformed, "whitespace before colon (line 2)"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n  b\r\n\r\n", ErrMalformed, "obs-fold or leading whitespace in header (line 4)"},
		{"missing colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", ErrMalformed, "whitespace before colon (line 2)"},
		{"no colon", "GET / HTTP/1.1\r\nHost\r\n\r\n", ErrMalformed, "missing colon in header (line 2)"},
		{"empty name", "GET / HTTP/1.1\r\n: h\r\n\r\n", ErrMalformed, "empty header name (line 2)"},
		{"bad name char", "GET / HTTP/1.1\r\nX(y): h\r\n\r\n", ErrMalformed, "invalid header name (line 2)"},
		{"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid method (line 1)"},
		{"double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid request target (line 1)"},
		{"http/2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", ErrMalformed, "unsupported http version (line 1)"},
		{"http/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", ErrMalformed, "unsupported http version (line 1)"},
		{"trailing space in line", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", ErrMalformed, "unsupported http version (line 1)"},
		{"fragment in target", "GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid request target (line 1)"},
		{"non-ascii target", "GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid request target (line 1)"},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid percent-encoding in target (line 1)"},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid request target (line 1)"},
		{"asterisk with GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "asterisk-form target with a method other than OPTIONS (line 1)"},
		{"userinfo in absolute", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid authority in target (line 1)"},
		{"connect bad port", "CONNECT h:x HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid authority-form target (line 1)"},
		{"ipv6 literal too short", "GET http://[1:2]/ HTTP/1.1\r\nHost: h\r\n\r\n", ErrMalformed, "invalid authority in target (line 1)"},
		{"ipv4 in brackets", "GET / HTTP/1.1\r\nHost: [1.2.3.4]\r\n\r\n", ErrMalformed, "invalid host header (line 2)"},
		{"missing host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", ErrMalformed, "missing host header"},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", ErrMalformed, "multiple host headers"},
		{"invalid host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ErrMalformed, "invalid host header (line 2)"},
		{"te and cl", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", ErrMalformed, "both transfer-encoding and content-length"},
		{"te not chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", ErrMalformed, "unsupported transfer-encoding (line 3)"},
		{"te chunked not alone", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ErrMalformed, "unsupported transfer-encoding (line 3)"},
		{"te chunked twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ErrMalformed, "multiple transfer-encoding headers (line 4)"},
		{"te in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ErrMalformed, "transfer-encoding in http/1.0 message"},
		{"cl conflict", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", ErrMalformed, "conflicting content-length headers (line 4)"},
		{"cl negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", ErrMalformed, "invalid content-length (line 3)"},
		{"cl list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", ErrMalformed, "invalid content-length (line 3)"},
		{"cl overflow", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9999999999999999999\r\n\r\n", ErrMalformed, "invalid content-length (line 3)"},
		{"cl plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n", ErrMalformed, "invalid content-length (line 3)"},
		{"too many fields", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n", ErrHeaderTooLarge, "http1: header too large: more than 100 header fields"},
		{"head too large", "GET / HTTP/1.1\r\nHost: h\r\nX: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", ErrHeaderTooLarge, "http1: header too large: head larger than 61440 bytes"},
		{"head too large no newline", "GET /" + strings.Repeat("a", 70<<10), ErrHeaderTooLarge, "head larger than 61440 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readReq(t, tt.raw)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
			if !strings.HasSuffix(err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want suffix %q", err, tt.wantErr)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Errorf("err %T is not a *ParseError", err)
			}
		})
	}
}

func TestReadRequestHeadEOF(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"clean eof", "", io.EOF},
		{"eof after empty lines", "\r\n", io.EOF},
		{"eof in request line", "GET / HT", io.ErrUnexpectedEOF},
		{"eof in fields", "GET / HTTP/1.1\r\nHost: h\r\n", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readReq(t, tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.want == io.EOF && err != io.EOF {
				t.Errorf("clean EOF must be returned unwrapped, got %v", err)
			}
		})
	}
	r := NewReader(iotest.ErrReader(errors.New("boom")), 0)
	var h RequestHead
	if err := r.ReadRequestHead(&h); err == nil || err.Error() != "http1: read head: boom" {
		t.Errorf("read error = %v, want %q", err, "http1: read head: boom")
	}
}

// TestReadRequestHeadOneByte feeds heads one byte per Read and checks the
// buffer growth path for heads larger than the initial buffer.
func TestReadRequestHeadOneByte(t *testing.T) {
	big := strings.Repeat("v", 9000)
	raw := "GET /one HTTP/1.1\r\nHost: h\r\nX-Big: " + big + "\r\n\r\n" +
		"GET /two HTTP/1.1\r\nHost: h\r\n\r\n"
	r := NewReader(iotest.OneByteReader(strings.NewReader(raw)), 0)
	defer r.Release()
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.Get("x-big"); string(v) != big || string(h.Target) != "/one" {
		t.Fatalf("first head wrong: target %q, %d value bytes", h.Target, len(v))
	}
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	if string(h.Target) != "/two" || len(h.Headers) != 1 {
		t.Fatalf("second head: %q %q", h.Target, h.Headers)
	}
	if err := r.ReadRequestHead(&h); err != io.EOF {
		t.Fatalf("third read: %v, want io.EOF", err)
	}
}

func TestReadRequestHeadPipelined(t *testing.T) {
	raw := "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
	r := NewReader(strings.NewReader(raw), 0)
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	if got := r.Buffered(); got != len(raw)/2 {
		t.Errorf("Buffered = %d, want %d", got, len(raw)/2)
	}
	if err := r.ReadRequestHead(&h); err != nil || string(h.Target) != "/2" {
		t.Fatalf("second: %v %q", err, h.Target)
	}
}

func TestMaxHeadersConfigurable(t *testing.T) {
	r := NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"), 0)
	r.SetMaxHeaders(2)
	var h RequestHead
	err := r.ReadRequestHead(&h)
	if !errors.Is(err, ErrHeaderTooLarge) || err.Error() != "http1: header too large: more than 2 header fields" {
		t.Fatalf("err = %v", err)
	}
	r = NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n"), 64)
	r.SetMaxHeaders(2)
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatalf("within limits: %v", err)
	}
	r = NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n"), 20)
	if err := r.ReadRequestHead(&h); err == nil || err.Error() != "http1: header too large: head larger than 20 bytes" {
		t.Fatalf("byte limit: %v", err)
	}
}

func TestReadResponseHead(t *testing.T) {
	tests := []struct {
		name   string
		raw    string
		method string
		status int
		reason string
		cl     int64
		chunk  bool
		close  bool
		noBody bool
	}{
		{"ok with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "GET", 200, "OK", 5, false, false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 200, "OK", -1, true, false, false},
		{"until eof", "HTTP/1.1 200 OK\r\n\r\n", "GET", 200, "OK", -1, false, true, false},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", "GET", 200, "OK", 0, false, false, false},
		{"http/1.0 default close", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", "GET", 200, "OK", 0, false, true, false},
		{"head response", "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n", "HEAD", 200, "OK", 500, false, false, true},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", "GET", 204, "No Content", -1, false, false, true},
		{"not modified", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", "GET", 304, "Not Modified", 9, false, false, true},
		{"continue", "HTTP/1.1 100 Continue\r\n\r\n", "POST", 100, "Continue", -1, false, false, true},
		{"switching", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "GET", 101, "Switching Protocols", -1, false, false, true},
		{"connect established", "HTTP/1.1 200 Connection established\r\n\r\n", "CONNECT", 200, "Connection established", -1, false, false, true},
		{"empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", "GET", 404, "", 0, false, false, false},
		{"no reason no space", "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", "GET", 503, "", 0, false, false, false},
		{"te wins over cl and closes", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", 200, "OK", -1, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.raw), 0)
			var h ResponseHead
			if err := r.ReadResponseHead(&h, []byte(tt.method)); err != nil {
				t.Fatal(err)
			}
			if h.Status != tt.status || string(h.Reason) != tt.reason || h.ContentLength != tt.cl ||
				h.Chunked != tt.chunk || h.Close != tt.close || h.NoBody != tt.noBody {
				t.Errorf("got status=%d reason=%q cl=%d chunked=%v close=%v nobody=%v", h.Status, h.Reason, h.ContentLength, h.Chunked, h.Close, h.NoBody)
			}
		})
	}
}

func TestReadResponseHeadInvalid(t *testing.T) {
	tests := []struct {
		name, raw, wantErr string
	}{
		{"bad version", "HTTP/2 200 OK\r\n\r\n", "invalid status line (line 1)"},
		{"bad version 1.x", "HTTP/1.9 200 OK\r\n\r\n", "unsupported http version (line 1)"},
		{"short status", "HTTP/1.1 20 OK\r\n\r\n", "invalid status code (line 1)"},
		{"status letters", "HTTP/1.1 2x0 OK\r\n\r\n", "invalid status code (line 1)"},
		{"status four digits", "HTTP/1.1 2000 OK\r\n\r\n", "invalid status code (line 1)"},
		{"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", "invalid character in reason phrase (line 1)"},
		{"empty first line", "\r\nHTTP/1.1 200 OK\r\n\r\n", "empty status line (line 1)"},
		{"te in 1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "transfer-encoding in http/1.0 message"},
		{"cl conflict", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting content-length headers (line 3)"},
		{"te gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "unsupported transfer-encoding (line 2)"},
		{"space before colon", "HTTP/1.1 200 OK\r\nA : b\r\n\r\n", "whitespace before colon (line 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.raw), 0)
			var h ResponseHead
			err := r.ReadResponseHead(&h, []byte("GET"))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if want := "http1: malformed message: " + tt.wantErr; err.Error() != want {
				t.Errorf("err = %q, want %q", err, want)
			}
		})
	}
}

func TestReleaseAndReuse(t *testing.T) {
	r := NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 0)
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	r.Release()
	r.Reset(strings.NewReader("GET /again HTTP/1.1\r\nHost: h\r\n\r\n"))
	if err := r.ReadRequestHead(&h); err != nil || string(h.Target) != "/again" {
		t.Fatalf("after Release: %v %q", err, h.Target)
	}
	r.Release()
}

func TestReadPassesBufferedBytesFirst(t *testing.T) {
	r := NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nhello-tunnel"), 0)
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "hello-tunnel" {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if !bytes.Equal(h.Target, []byte("/")) {
		t.Errorf("head invalidated by Read: target %q", h.Target)
	}
}
