// Package dashboard serves weft's web dashboard: a single-page application
// (plain HTML, CSS and JavaScript, embedded in the binary, nothing loaded
// from the internet) that reads the control plane's JSON API (topology,
// metrics, traces, logs, proxies, alerts; docs/observability.md) from the
// same origin.
//
//	GET /                  the page (index.html); views are hash routes:
//	                       #/ (topology), #/workloads/<ns>/<name>,
//	                       #/traces, #/traces/<id>, #/logs?q=&workload=&trace=,
//	                       #/proxies, #/alerts
//	GET /ui/app.js         the application
//	GET /ui/app.css        its style sheet
//
// The routes are "GET /{$}" and "GET /ui/": they match no path under
// /api/ and not /healthz, so registering them on the control API shadows
// none of its endpoints.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var assetFS embed.FS

// patterns are the http.ServeMux patterns the dashboard answers.
var patterns = [...]string{"GET /{$}", "GET " + assetPrefix}

const assetPrefix = "/ui/"

// csp allows nothing but the dashboard's own files and same-origin API
// calls: no inline script, no third-party origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	name  string
	ctype string
	etag  string
	data  []byte
}

// site is the immutable set of embedded files, loaded once.
type site struct {
	index  *asset
	assets map[string]*asset // by name under /ui/
}

func load(fsys fs.FS) (*site, error) {
	s := &site{assets: map[string]*asset{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("read %s: %w", p, err)
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		a := &asset{name: p, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, data: b}
		if p == "index.html" {
			s.index = a
		} else {
			s.assets[p] = a
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.index == nil {
		return nil, fmt.Errorf("dashboard assets: no index.html")
	}
	return s, nil
}

// embedded is the site built into the binary, loaded on first use: the
// same binary runs every sidecar, which never serves it and should not
// hold a copy of the files (~0.7 MB).
var embedded = sync.OnceValue(func() *site {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err)
	}
	s, err := load(sub)
	if err != nil {
		panic(err) // the files are embedded at build time: cannot happen
	}
	return s
})

// Handler serves the dashboard page at "/" and its files under "/ui/";
// every other path is 404, and methods other than GET and HEAD are 405.
// It is safe for concurrent use.
func Handler() http.Handler { return embedded() }

// Register adds the dashboard's routes, "GET /{$}" and "GET /ui/", with
// handle, typically the control API server's Handle.
func Register(handle func(pattern string, h http.Handler)) {
	for _, p := range patterns {
		handle(p, embedded())
	}
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var a *asset
	switch p := r.URL.Path; {
	case p == "/" || p == "/index.html":
		a = s.index
	case strings.HasPrefix(p, assetPrefix):
		a = s.assets[strings.TrimPrefix(p, assetPrefix)]
	}
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	// Revalidate every time: the files change with the binary, and an
	// unchanged file costs one 304.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.data))
}
