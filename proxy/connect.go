package proxy

import (
	"math/rand/v2"
	"net"
	"net/http"

	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/cluster/outlier"
	"github.com/weft-mesh/weft/proxy/route"
)

// serveConnect tunnels a CONNECT request (HTTP proxy mode: an app with
// HTTP_PROXY set reaching a TCP or TLS service). The authority is matched
// against the route table like any request (path "/"), and the tunnel goes
// to an endpoint of the routed cluster. HTTP/1.1 only for now.
func (h *httpHandler) serveConnect(w http.ResponseWriter, r *http.Request, spec *hcmSpec, g *graph) {
	if !spec.connect {
		h.localReply(w, http.StatusMethodNotAllowed, reasonUpgradeDenied)
		return
	}
	if r.ProtoMajor != 1 {
		h.localReply(w, http.StatusNotImplemented, reasonUpgradeDenied)
		return
	}
	table := spec.inline
	if table == nil {
		table = g.routes[spec.rdsName]
	}
	if table == nil {
		h.localReply(w, http.StatusNotFound, reasonNoRoute)
		return
	}
	rt := table.Match(&route.Request{Authority: r.Host, Method: r.Method, Path: "/", Header: route.HTTPHeader(r.Header)})
	if rt == nil || rt.Action != route.ActionForward {
		h.localReply(w, http.StatusNotFound, reasonNoRoute)
		return
	}
	cl := g.clusters[rt.PickCluster(rand.Uint64())]
	if cl == nil {
		h.localReply(w, http.StatusServiceUnavailable, reasonNoCluster)
		return
	}
	up, ep, err := dialCluster(r.Context(), cl, lb.PickInfo{})
	if err != nil {
		if ep == nil {
			h.localReply(w, http.StatusServiceUnavailable, reasonNoHealthy)
		} else {
			h.localReply(w, http.StatusServiceUnavailable, reasonConnectFail)
		}
		return
	}
	defer up.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.localReply(w, http.StatusInternalServerError, reasonUpgradeDenied)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	t := ep.Load.Start()
	in, out := splice(conn, up, spec.idleTimeout)
	ep.Finish(t, outlier.Result{})
	h.ll.p.metrics.tcpBytes(cl.Name, in, out)
	_ = net.ErrClosed
}
