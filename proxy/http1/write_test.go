package http1

import (
	"strings"
	"testing"
)

func mustReadReq(t testing.TB, raw string) *RequestHead {
	t.Helper()
	r := NewReader(strings.NewReader(raw), 0)
	var h RequestHead
	if err := r.ReadRequestHead(&h); err != nil {
		t.Fatal(err)
	}
	return &h
}

func TestAppendRequestHeadEdits(t *testing.T) {
	const in = "POST http://catalog.shop/items?q=1 HTTP/1.0\r\n" +
		"Host: catalog.shop\r\n" +
		"Connection: keep-alive, X-Hop\r\n" +
		"X-Hop: secret\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"Proxy-Authorization: Basic Zm9v\r\n" +
		"TE: trailers, deflate\r\n" +
		"Content-Length: 5\r\n" +
		"X-Forwarded-For: 10.0.0.1\r\n" +
		"User-Agent: test\r\n" +
		"X-Remove: 1\r\n" +
		"x-remove: 2\r\n" +
		"\r\n"
	tests := []struct {
		name string
		edit func(h *RequestHead)
		want string
	}{
		{
			name: "unchanged",
			edit: func(h *RequestHead) {},
			want: strings.Replace(in, "Content-Length: 5\r\n", "", 1)[:len(in)-len("Content-Length: 5\r\n")-2] + "Content-Length: 5\r\n\r\n",
		},
		{
			name: "proxy edits",
			edit: func(h *RequestHead) {
				h.RemoveHopByHop(false)
				h.Target = h.OriginForm()
				h.Minor = 1
				h.AppendList("x-forwarded-for", []byte("10.0.0.2"))
				h.Set("X-Forwarded-Proto", "http")
				h.Set("x-request-id", "abc-123")
				h.Set("User-Agent", "edited")
				h.Del("X-REMOVE")
				h.Add("X-Injected", "a\r\nEvil: 1")
			},
			want: "POST /items?q=1 HTTP/1.1\r\n" +
				"Host: catalog.shop\r\n" +
				"X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\n" +
				"User-Agent: edited\r\n" +
				"TE: trailers\r\n" +
				"X-Forwarded-Proto: http\r\n" +
				"x-request-id: abc-123\r\n" +
				"X-Injected: a  Evil: 1\r\n" +
				"Content-Length: 5\r\n" +
				"\r\n",
		},
		{
			name: "reframe as chunked",
			edit: func(h *RequestHead) {
				h.Headers = h.Headers[:1]
				h.Minor = 1
				h.ContentLength = -1
				h.Chunked = true
			},
			want: "POST http://catalog.shop/items?q=1 HTTP/1.1\r\nHost: catalog.shop\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustReadReq(t, in)
			tt.edit(h)
			if got := string(AppendRequestHead(nil, h)); got != tt.want {
				t.Errorf("wire bytes:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestRemoveHopByHopUpgrade(t *testing.T) {
	const in = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n"
	tests := []struct {
		name        string
		keepUpgrade bool
		want        string
	}{
		{"upgrade kept", true, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: Upgrade\r\n\r\n"},
		{"upgrade stripped", false, "GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustReadReq(t, in)
			if !h.Upgrade {
				t.Fatal("Upgrade not detected")
			}
			h.RemoveHopByHop(tt.keepUpgrade)
			if got := string(AppendRequestHead(nil, h)); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAppendResponseHead(t *testing.T) {
	tests := []struct {
		name, in, method string
		edit             func(h *ResponseHead)
		want             string
	}{
		{
			name:   "strip hop-by-hop and add",
			in:     "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
			method: "GET",
			edit: func(h *ResponseHead) {
				h.RemoveHopByHop(false)
				h.Set("Server", "weft")
			},
			want: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: weft\r\nTransfer-Encoding: chunked\r\n\r\n",
		},
		{
			name:   "head keeps content-length",
			in:     "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n",
			method: "HEAD",
			edit:   func(h *ResponseHead) {},
			want:   "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n",
		},
		{
			name:   "204 drops framing",
			in:     "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
			method: "GET",
			edit:   func(h *ResponseHead) {},
			want:   "HTTP/1.1 204 No Content\r\n\r\n",
		},
		{
			name:   "101 keeps upgrade",
			in:     "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
			method: "GET",
			edit:   func(h *ResponseHead) { h.RemoveHopByHop(true) },
			want:   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		},
		{
			name:   "close on downgrade",
			in:     "HTTP/1.0 200 OK\r\n\r\n",
			method: "GET",
			edit:   func(h *ResponseHead) { h.Minor = 1; h.Set("Connection", "close") },
			want:   "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in), 0)
			var h ResponseHead
			if err := r.ReadResponseHead(&h, []byte(tt.method)); err != nil {
				t.Fatal(err)
			}
			tt.edit(&h)
			if got := string(AppendResponseHead(nil, &h)); got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestIsHopByHop(t *testing.T) {
	tests := []struct {
		name   string
		tokens []string
		want   bool
	}{
		{"Connection", nil, true},
		{"TE", nil, true},
		{"proxy-authorization", nil, true},
		{"Transfer-Encoding", nil, true},
		{"Content-Type", nil, false},
		{"Trailer", nil, false},
		{"X-Custom", []string{"x-custom"}, true},
		{"X-Custom", []string{"other"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var toks [][]byte
			for _, s := range tt.tokens {
				toks = append(toks, []byte(s))
			}
			if got := IsHopByHop([]byte(tt.name), toks...); got != tt.want {
				t.Errorf("IsHopByHop(%q, %q) = %v", tt.name, tt.tokens, got)
			}
		})
	}
}

func TestSetSanitizesName(t *testing.T) {
	var h RequestHead
	h.reset()
	h.Set("Bad Name:", "v\x00")
	if got := string(AppendRequestHead(nil, &h)); !strings.Contains(got, "Bad_Name_: v \r\n") {
		t.Errorf("got %q", got)
	}
}

func TestOriginForm(t *testing.T) {
	tests := []struct{ target, want string }{
		{"/a?b", "/a?b"},
		{"http://h/a?b", "/a?b"},
		{"http://h", "/"},
		{"http://h?x=1", "/?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			h := mustReadReq(t, "GET "+tt.target+" HTTP/1.1\r\nHost: h\r\n\r\n")
			if got := string(h.OriginForm()); got != tt.want {
				t.Errorf("OriginForm = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSteadyStateAllocs checks the proxy loop (read head, edit, write head)
// allocates nothing once buffers are warm.
func TestSteadyStateAllocs(t *testing.T) {
	raw := typicalRequest
	src := strings.NewReader(raw)
	r := NewReader(src, 0)
	var h RequestHead
	dst := make([]byte, 0, 1024)
	ip := []byte("10.1.2.3")
	allocs := testing.AllocsPerRun(200, func() {
		src.Reset(raw)
		r.Reset(src)
		if err := r.ReadRequestHead(&h); err != nil {
			t.Fatal(err)
		}
		h.RemoveHopByHop(false)
		h.AppendList("X-Forwarded-For", ip)
		h.Set("X-Forwarded-Proto", "http")
		h.Set("X-Request-Id", "0123456789abcdef")
		dst = AppendRequestHead(dst[:0], &h)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
}

func TestHeaderAccessors(t *testing.T) {
	h := mustReadReq(t, "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-a, close\r\nX-A: 1\r\n\r\n")
	if toks := h.ConnectionTokens(); len(toks) != 2 || string(toks[0]) != "x-a" || string(toks[1]) != "close" {
		t.Errorf("ConnectionTokens = %q", toks)
	}
	h.SetBytes("x-a", []byte("2"))
	h.AddBytes("X-B", []byte("3"))
	h.AppendList("X-New", []byte("4"))
	if got := string(AppendRequestHead(nil, h)); got != "GET / HTTP/1.1\r\nHost: h\r\nConnection: x-a, close\r\nX-A: 2\r\nX-B: 3\r\nX-New: 4\r\n\r\n" {
		t.Errorf("request edits: %q", got)
	}

	r := NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nConnection: x-hop\r\nX-Hop: 1\r\nA: 1\r\nA: 2\r\nContent-Length: 0\r\n\r\n"), 0)
	var resp ResponseHead
	if err := r.ReadResponseHead(&resp, []byte("GET")); err != nil {
		t.Fatal(err)
	}
	if toks := resp.ConnectionTokens(); len(toks) != 1 {
		t.Errorf("ConnectionTokens = %q", toks)
	}
	if v, ok := resp.Get("a"); !ok || string(v) != "1" {
		t.Errorf("Get(a) = %q %v", v, ok)
	}
	resp.RemoveHopByHop(false)
	resp.Del("A")
	resp.Add("B", "x")
	resp.AddBytes("C", []byte("y"))
	resp.SetBytes("B", []byte("z"))
	if got := string(AppendResponseHead(nil, &resp)); got != "HTTP/1.1 200 OK\r\nB: z\r\nC: y\r\nContent-Length: 0\r\n\r\n" {
		t.Errorf("response edits: %q", got)
	}
}
