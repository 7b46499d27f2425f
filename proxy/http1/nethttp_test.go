package http1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRoundTripRequestWithNetHTTP parses what net/http's client writes and
// checks that net/http's server parser accepts what we write back.
func TestRoundTripRequestWithNetHTTP(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		url     string
		body    string
		chunked bool
		trailer http.Header
	}{
		{name: "get", method: "GET", url: "http://catalog.shop/items?x=1&y=%20"},
		{name: "post content-length", method: "POST", url: "http://h:8080/upload", body: "payload-bytes"},
		{name: "post chunked", method: "POST", url: "http://h/stream", body: strings.Repeat("chunk", 1000), chunked: true},
		{name: "chunked with trailers", method: "PUT", url: "http://h/t", body: "abc", chunked: true,
			trailer: http.Header{"X-Sum": {"123"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
				if tt.chunked {
					body = io.MultiReader(body) // hides the length
				}
			}
			req, err := http.NewRequest(tt.method, tt.url, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("X-Custom", "v1")
			req.Header.Add("X-Multi", "a")
			req.Header.Add("X-Multi", "b")
			req.Trailer = tt.trailer
			var wire bytes.Buffer
			if err := req.Write(&wire); err != nil {
				t.Fatal(err)
			}

			r := NewReader(&wire, 0)
			defer r.Release()
			var h RequestHead
			if err := r.ReadRequestHead(&h); err != nil {
				t.Fatalf("our parser rejected net/http output: %v\n%q", err, wire.String())
			}
			if string(h.Method) != tt.method || string(h.Host) != req.URL.Host || h.Chunked != tt.chunked {
				t.Fatalf("parsed %q host %q chunked %v", h.Method, h.Host, h.Chunked)
			}
			h.RemoveHopByHop(false)
			h.Set("X-Forwarded-Proto", "http")
			out := AppendRequestHead(nil, &h)
			cl, chunked := h.BodyFraming()
			var bodyOut bytes.Buffer
			if _, err := r.CopyBody(&bodyOut, cl, chunked, false); err != nil {
				t.Fatal(err)
			}
			out = append(out, bodyOut.Bytes()...)

			got, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out)))
			if err != nil {
				t.Fatalf("net/http rejected our output: %v\n%q", err, out)
			}
			gotBody, err := io.ReadAll(got.Body)
			if err != nil {
				t.Fatal(err)
			}
			if got.Method != tt.method || got.RequestURI != req.URL.RequestURI() || got.Host != req.URL.Host {
				t.Errorf("request line: %s %s host %s", got.Method, got.RequestURI, got.Host)
			}
			if string(gotBody) != tt.body {
				t.Errorf("body = %q, want %q", gotBody, tt.body)
			}
			if got.Header.Get("X-Custom") != "v1" || strings.Join(got.Header.Values("X-Multi"), ",") != "a,b" ||
				got.Header.Get("X-Forwarded-Proto") != "http" {
				t.Errorf("headers = %v", got.Header)
			}
			if tt.trailer != nil && got.Trailer.Get("X-Sum") != "123" {
				t.Errorf("trailer = %v", got.Trailer)
			}
		})
	}
}

// TestRoundTripResponseWithNetHTTP does the same for responses.
func TestRoundTripResponseWithNetHTTP(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		method  string
		body    string
		length  int64
		trailer http.Header
	}{
		{name: "ok with length", status: 200, method: "GET", body: "hello", length: 5},
		{name: "chunked", status: 200, method: "GET", body: strings.Repeat("x", 5000), length: -1},
		{name: "chunked trailers", status: 201, method: "POST", body: "abc", length: -1, trailer: http.Header{"Grpc-Status": {"0"}}},
		{name: "not found empty", status: 404, method: "GET", length: 0},
		{name: "no content", status: 204, method: "DELETE", length: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{
				StatusCode: tt.status, ProtoMajor: 1, ProtoMinor: 1,
				Header:        http.Header{"Content-Type": {"text/plain"}, "Connection": {"keep-alive"}},
				Body:          io.NopCloser(strings.NewReader(tt.body)),
				ContentLength: tt.length,
				Trailer:       tt.trailer,
			}
			if tt.length < 0 {
				resp.TransferEncoding = []string{"chunked"}
			}
			var wire bytes.Buffer
			if err := resp.Write(&wire); err != nil {
				t.Fatal(err)
			}
			r := NewReader(&wire, 0)
			var h ResponseHead
			if err := r.ReadResponseHead(&h, []byte(tt.method)); err != nil {
				t.Fatalf("our parser rejected net/http output: %v\n%q", err, wire.String())
			}
			h.RemoveHopByHop(false)
			out := AppendResponseHead(nil, &h)
			cl, chunked, untilEOF := h.BodyFraming()
			var bodyOut bytes.Buffer
			if _, err := r.CopyBody(&bodyOut, cl, chunked, untilEOF); err != nil {
				t.Fatal(err)
			}
			out = append(out, bodyOut.Bytes()...)
			req, _ := http.NewRequest(tt.method, "http://h/", nil)
			got, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), req)
			if err != nil {
				t.Fatalf("net/http rejected our output: %v\n%q", err, out)
			}
			gotBody, err := io.ReadAll(got.Body)
			if err != nil {
				t.Fatal(err)
			}
			if got.StatusCode != tt.status || string(gotBody) != tt.body || got.Header.Get("Content-Type") != "text/plain" {
				t.Errorf("got %d %q %v", got.StatusCode, gotBody, got.Header)
			}
			if got.Header.Get("Connection") != "" {
				t.Errorf("hop-by-hop Connection forwarded")
			}
			if tt.trailer != nil && got.Trailer.Get("Grpc-Status") != "0" {
				t.Errorf("trailer = %v", got.Trailer)
			}
		})
	}
}

// forward runs the proxy loop the package is designed for on one client
// connection, against one upstream connection: read request head, edit,
// write head (with a buffered body in the same write), copy body, read
// response head, write it, copy body, repeat.
func forward(client, upstream net.Conn) error {
	cr := NewReader(client, 0)
	defer cr.Release()
	ur := NewReader(upstream, 0)
	defer ur.Release()
	var req RequestHead
	var resp ResponseHead
	buf := make([]byte, 0, 4096)
	for {
		if err := cr.ReadRequestHead(&req); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		req.RemoveHopByHop(req.Upgrade)
		req.Target = req.OriginForm()
		req.Minor = 1
		req.AppendList("X-Forwarded-For", []byte("127.0.0.1"))
		buf = AppendRequestHead(buf[:0], &req)
		cl, chunked := req.BodyFraming()
		if body, ok := cr.TakeBufferedBody(cl, chunked, false); ok {
			buf = append(buf, body...)
			if _, err := upstream.Write(buf); err != nil {
				return err
			}
		} else {
			if _, err := upstream.Write(buf); err != nil {
				return err
			}
			if _, err := cr.CopyBody(upstream, cl, chunked, false); err != nil {
				return err
			}
		}
		for {
			if err := ur.ReadResponseHead(&resp, req.Method); err != nil {
				return err
			}
			resp.RemoveHopByHop(false)
			if resp.Status >= 200 {
				break
			}
			if _, err := client.Write(AppendResponseHead(buf[:0], &resp)); err != nil {
				return err
			}
		}
		buf = AppendResponseHead(buf[:0], &resp)
		if _, err := client.Write(buf); err != nil {
			return err
		}
		rcl, rchunked, untilEOF := resp.BodyFraming()
		if _, err := ur.CopyBody(client, rcl, rchunked, untilEOF); err != nil {
			return err
		}
		if req.Close || resp.Close {
			return nil
		}
	}
}

// TestForwardLoopback runs net/http client → forward → net/http server over
// real loopback connections, on one keep-alive connection.
func TestForwardLoopback(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen-XFF", r.Header.Get("X-Forwarded-For"))
		w.Header().Set("X-Seen-TE", strings.Join(r.TransferEncoding, ","))
		if r.URL.Path == "/stream" {
			w.Header().Set("Trailer", "X-Done")
			w.Write([]byte("part1-"))
			w.(http.Flusher).Flush()
			w.Write(b)
			w.Header().Set("X-Done", "yes")
			return
		}
		w.Write(b)
	}))
	defer backend.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		u, err := net.Dial("tcp", backend.Listener.Addr().String())
		if err != nil {
			done <- err
			return
		}
		defer u.Close()
		done <- forward(c, u)
	}()

	tr := &http.Transport{MaxConnsPerHost: 1}
	client := &http.Client{Transport: tr}
	base := "http://" + ln.Addr().String()
	steps := []struct {
		name, method, path, body string
		chunked                  bool
		want                     string
	}{
		{"get", "GET", "/a", "", false, ""},
		{"post", "POST", "/b", "hello", false, "hello"},
		{"chunked post", "POST", "/c", strings.Repeat("z", 20000), true, strings.Repeat("z", 20000)},
		{"streamed response with trailer", "PUT", "/stream", "tail", false, "part1-tail"},
		{"head", "HEAD", "/h", "", false, ""},
	}
	for _, s := range steps {
		var body io.Reader
		if s.body != "" {
			body = strings.NewReader(s.body)
			if s.chunked {
				body = io.MultiReader(body)
			}
		}
		req, err := http.NewRequest(s.method, base+s.path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(got) != s.want || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %q %v", s.name, resp.StatusCode, got, err)
		}
		if xff := resp.Header.Get("X-Seen-XFF"); xff != "127.0.0.1" {
			t.Errorf("%s: backend saw X-Forwarded-For %q", s.name, xff)
		}
		if s.chunked && resp.Header.Get("X-Seen-TE") != "chunked" {
			t.Errorf("%s: backend saw transfer-encoding %q", s.name, resp.Header.Get("X-Seen-TE"))
		}
		if s.path == "/stream" && resp.Trailer.Get("X-Done") != "yes" {
			t.Errorf("%s: trailer %v", s.name, resp.Trailer)
		}
	}
	tr.CloseIdleConnections()
	if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatalf("forward: %v", err)
	}
}
