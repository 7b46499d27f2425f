package proxy

import (
	"net/http"
	"strings"

	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/route"
)

// This file adapts proxy/route's Route to net/http requests.

func routeRequest(r *http.Request) route.Request {
	return route.Request{Authority: r.Host, Method: r.Method, Path: r.URL.RequestURI(), Header: route.HTTPHeader(r.Header)}
}

// rewriteURL applies the route's prefix/regex rewrite to out's URL.
func rewriteURL(rt *route.Route, out *http.Request, requestURI string) {
	p := rt.Rewrite(requestURI)
	if p == requestURI {
		return
	}
	path, query, _ := strings.Cut(p, "?")
	out.URL.Path, out.URL.RawPath, out.URL.RawQuery = path, "", query
}

// routeHash computes the route's hash policy for consistent-hash balancers.
func routeHash(rt *route.Route, req *route.Request) lb.PickInfo {
	if len(rt.Hash) == 0 {
		return lb.PickInfo{}
	}
	h, ok := rt.RequestHash(req)
	return lb.PickInfo{Hash: h, HasHash: ok}
}
