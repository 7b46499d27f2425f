package proxy

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/cluster/outlier"
	"github.com/weft-mesh/weft/proxy/route"
)

// CONNECT (HTTP proxy mode: an app with HTTP_PROXY set reaching a TCP or
// TLS service). The authority is matched against the route table like any
// request (path "/"), and the tunnel goes to an endpoint of the routed
// cluster. Both HTTP/1.1 paths (net/http and the fast path) use these.

// connectTunnelOK is the answer that opens the tunnel.
const connectTunnelOK = "HTTP/1.1 200 Connection established\r\n\r\n"

// dialConnect routes a CONNECT request and dials an endpoint of its
// cluster. On failure it returns the local reply's status and reason.
func dialConnect(ctx context.Context, spec *hcmSpec, table *route.Table, g *graph, req *route.Request) (net.Conn, *cluster.Endpoint, *cluster.Cluster, int, string) {
	if !spec.connect {
		return nil, nil, nil, http.StatusMethodNotAllowed, reasonUpgradeDenied
	}
	if table == nil {
		return nil, nil, nil, http.StatusNotFound, reasonNoRoute
	}
	req.Path = "/"
	rt := table.Match(req)
	if rt == nil || rt.Action != route.ActionForward {
		return nil, nil, nil, http.StatusNotFound, reasonNoRoute
	}
	clu := g.clusters[rt.PickCluster(rand.Uint64())]
	if clu == nil {
		return nil, nil, nil, http.StatusServiceUnavailable, reasonNoCluster
	}
	up, ep, _, err := dialCluster(ctx, clu, lb.PickInfo{})
	switch {
	case err != nil && ep == nil:
		return nil, nil, nil, http.StatusServiceUnavailable, reasonNoHealthy
	case err != nil:
		return nil, nil, nil, http.StatusServiceUnavailable, reasonConnectFail
	}
	return up, ep, clu, 0, ""
}

// tunnel joins the downstream connection with the dialled upstream one and
// accounts for it.
func (ll *liveListener) tunnel(down, up net.Conn, ep *cluster.Endpoint, clu *cluster.Cluster, spec *hcmSpec) {
	t := ep.Load.Start()
	in, out := splice(down, up, spec.idleTimeout)
	ep.Finish(t, outlier.Result{})
	ll.p.metrics.tcpBytes(clu.Name, in, out)
}

// serveConnect is the net/http path's CONNECT (HTTP/1.1 only for now).
func (h *httpHandler) serveConnect(w http.ResponseWriter, r *http.Request, spec *hcmSpec, table *route.Table, g *graph) {
	if r.ProtoMajor != 1 {
		h.localReply(w, http.StatusNotImplemented, reasonUpgradeDenied)
		return
	}
	up, ep, clu, status, reason := dialConnect(r.Context(), spec, table, g,
		&route.Request{Authority: r.Host, Method: r.Method, Header: route.HTTPHeader(r.Header)})
	if up == nil {
		h.localReply(w, status, reason)
		return
	}
	defer up.Close()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		h.localReply(w, http.StatusInternalServerError, reasonUpgradeDenied)
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(connectTunnelOK)); err != nil {
		return
	}
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	h.ll.tunnel(conn, up, ep, clu, spec)
}
