package dashboard

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/store"
)

func do(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandler(t *testing.T) {
	etag := embedded().assets["app.js"].etag
	tests := []struct {
		name     string
		method   string
		path     string
		hdr      map[string]string
		status   int
		ctype    string
		contains string
	}{
		{name: "page", method: "GET", path: "/", status: 200, ctype: "text/html; charset=utf-8", contains: `<script src="/ui/app.js"></script>`},
		{name: "page by name", method: "GET", path: "/index.html", status: 200, ctype: "text/html; charset=utf-8", contains: `id="view"`},
		{name: "script", method: "GET", path: "/ui/app.js", status: 200, ctype: "text/javascript; charset=utf-8", contains: "function drawTopology"},
		{name: "style sheet", method: "GET", path: "/ui/app.css", status: 200, ctype: "text/css; charset=utf-8", contains: ".span-bar"},
		{name: "head", method: "HEAD", path: "/ui/app.css", status: 200, ctype: "text/css; charset=utf-8"},
		{name: "revalidated", method: "GET", path: "/ui/app.js", hdr: map[string]string{"If-None-Match": etag}, status: 304},
		{name: "stale etag", method: "GET", path: "/ui/app.js", hdr: map[string]string{"If-None-Match": `"0000"`}, status: 200, contains: "function drawTopology"},
		{name: "unknown asset", method: "GET", path: "/ui/nope.js", status: 404, contains: "404 page not found"},
		{name: "asset folder", method: "GET", path: "/ui/", status: 404, contains: "404 page not found"},
		{name: "page not under ui", method: "GET", path: "/ui/index.html", status: 404, contains: "404 page not found"},
		{name: "other path", method: "GET", path: "/app.js", status: 404, contains: "404 page not found"},
		{name: "post", method: "POST", path: "/", status: 405, contains: "method not allowed"},
	}
	h := Handler()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, h, tt.method, tt.path, tt.hdr)
			b := body(t, resp)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tt.ctype)
			}
			if !strings.Contains(b, tt.contains) {
				t.Errorf("body does not contain %q:\n%.300s", tt.contains, b)
			}
			if tt.method == "HEAD" && b != "" {
				t.Errorf("HEAD answered a body of %d bytes", len(b))
			}
			if tt.status == 200 {
				for _, k := range []string{"ETag", "Content-Security-Policy", "X-Content-Type-Options", "Cache-Control"} {
					if resp.Header.Get(k) == "" {
						t.Errorf("no %s header", k)
					}
				}
			}
			if tt.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", resp.Header.Get("Allow"))
			}
		})
	}
}

// TestOnAPIServer registers the dashboard on the control API as the mesh
// does: the page and its files are served, and every API endpoint (the
// /api/ catch-all, /healthz, kinds) still answers as before.
func TestOnAPIServer(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := api.New(st, api.Options{Version: "test"})
	Register(srv.Handle) // panics on a pattern conflict
	srv.Handle("GET /api/v1/alerts", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"alerts":[]}`) }))
	tests := []struct {
		name     string
		method   string
		path     string
		status   int
		contains string
	}{
		{name: "page", method: "GET", path: "/", status: 200, contains: "<title>weft</title>"},
		{name: "script", method: "GET", path: "/ui/app.js", status: 200, contains: "'use strict'"},
		{name: "health", method: "GET", path: "/healthz", status: 200, contains: "ok"},
		{name: "version", method: "GET", path: "/api/v1/version", status: 200, contains: `"version":"test"`},
		{name: "kind list", method: "GET", path: "/api/v1/services", status: 200, contains: `"items"`},
		{name: "extra endpoint", method: "GET", path: "/api/v1/alerts", status: 200, contains: `"alerts"`},
		{name: "api catch-all", method: "GET", path: "/api/nothing/here", status: 404, contains: `"error":"no API endpoint /api/nothing/here"`},
		{name: "api root", method: "GET", path: "/api/", status: 404, contains: `"error":"no API endpoint /api/"`},
		{name: "unknown page", method: "GET", path: "/nothing", status: 404, contains: "404 page not found"},
		{name: "post page", method: "POST", path: "/", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, srv, tt.method, tt.path, nil)
			b := body(t, resp)
			if resp.StatusCode != tt.status || !strings.Contains(b, tt.contains) {
				t.Fatalf("%s %s: %d %q, want %d containing %q", tt.method, tt.path, resp.StatusCode, b, tt.status, tt.contains)
			}
		})
	}
}

// TestSelfContained checks that the page loads nothing from another
// origin (no CDN, no web font) and that every file it names exists.
func TestSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range external.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" { // the SVG namespace name, never fetched
				t.Errorf("%s names another origin: %s", p, m)
			}
		}
		if strings.Contains(string(b), "@import") || strings.Contains(string(b), "@font-face") {
			t.Errorf("%s imports a style sheet or font", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="(/[^"]*)"`).FindAllStringSubmatch(string(embedded().index.data), -1)
	if len(refs) < 2 {
		t.Fatalf("index.html names %d files, want the script and the style sheet", len(refs))
	}
	for _, m := range refs {
		if resp := do(t, Handler(), "GET", m[1], nil); resp.StatusCode != 200 {
			t.Errorf("index.html names %s: %d", m[1], resp.StatusCode)
		}
	}
}

// TestScriptParses runs node's syntax check on app.js when node is
// installed (the browser test runs it for real).
func TestScriptParses(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the syntax check runs in e2e/dashboard_test.go's browser instead")
	}
	f := filepath.Join(t.TempDir(), "app.js")
	if err := os.WriteFile(f, embedded().assets["app.js"].data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(node, "--check", f).CombinedOutput(); err != nil {
		t.Fatalf("node --check app.js: %v\n%s", err, out)
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		wantErr string
	}{
		{name: "no index", fsys: fstest.MapFS{"app.js": {Data: []byte("1")}}, wantErr: "dashboard assets: no index.html"},
		{name: "index only", fsys: fstest.MapFS{"index.html": {Data: []byte("<p>")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := load(tt.fsys)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.index == nil || len(s.assets) != 0 {
				t.Fatalf("site %+v", s)
			}
		})
	}
}

// FuzzPath serves arbitrary paths: nothing panics, and only the page and
// the embedded files answer 200.
func FuzzPath(f *testing.F) {
	for _, seed := range []string{"/", "/ui/app.js", "/ui/../index.html", "/ui/%2e%2e/x", "//ui/app.css", "/ui/app.js/", "/ui//app.js", "/\x00"} {
		f.Add(seed)
	}
	ok := map[string]bool{"/": true, "/index.html": true}
	for name := range embedded().assets {
		ok[assetPrefix+name] = true
	}
	h := Handler()
	f.Fuzz(func(t *testing.T, p string) {
		req, err := http.NewRequest("GET", "http://weft"+p, nil)
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == 200 && !ok[req.URL.Path] {
			t.Fatalf("GET %q (path %q) answered 200", p, req.URL.Path)
		}
		if rec.Code != 200 && rec.Code != 404 {
			t.Fatalf("GET %q: %d", p, rec.Code)
		}
	})
}

func BenchmarkServeScript(b *testing.B) {
	h := Handler()
	req := httptest.NewRequest("GET", "/ui/app.js", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}
