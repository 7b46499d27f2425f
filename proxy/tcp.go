package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/cluster/outlier"
)

// handleTCP proxies one downstream connection to an endpoint of the
// listener's tcp_proxy cluster. It runs on the connection's goroutine.
func (ll *liveListener) handleTCP(c net.Conn) {
	defer c.Close()
	ls := ll.spec.Load()
	spec := ls.tcp
	var peer string
	c, secure := ll.sniffTLS(c, ls)
	if secure {
		tc := ll.handshake(c, ls.tls.Config)
		if tc == nil {
			return
		}
		cs := tc.ConnectionState()
		peer = downstreamPeer(ls.tls.Config, &cs)
		c = tc
	}
	tel := ll.p.tel
	rec := new(reqRecord)
	tel.begin(rec, ls, peer, secure)
	rec.tcp = true
	defer tel.finish(rec)
	if spec.rbac != nil && !ll.authorizeConn(spec.rbac, c, peer) {
		rec.localReply(0, reasonRBACDenied)
		return
	}
	g := ll.p.graph.Load()
	name := spec.pick(rand.Uint64())
	cl := g.clusters[name]
	if cl == nil {
		ll.p.metrics.localReply(ll.name, reasonNoCluster)
		rec.localReply(0, reasonNoCluster)
		return
	}
	rec.setCluster(cl)
	if ov := cl.AdmitConnection(); ov != cluster.OverflowNone {
		ll.p.metrics.localReply(ll.name, reasonOverflow)
		rec.localReply(0, reasonOverflow)
		return
	}
	defer cl.ReleaseConnection()
	rec.attempts = 1
	up, ep, idx, err := dialCluster(context.Background(), cl, lb.PickInfo{})
	if idx >= 0 {
		rec.setEndpoint(cl, idx)
	}
	if err != nil {
		ll.p.log.Debug("tcp upstream failed", "listener", ll.name, "cluster", name, "err", err)
		if ep == nil {
			rec.localReply(0, reasonNoHealthy)
		} else {
			rec.localReply(0, reasonConnectFail)
		}
		return
	}
	defer up.Close()
	if tc, ok := up.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		rec.upstreamPeer = spiffeSAN(cs.PeerCertificates)
	}
	edge := tel.tcpEdge(rec)
	edge.opened.Add(1)
	t := ep.Load.Start()
	in, out := splice(c, up, spec.idle)
	ep.Finish(t, outlier.Result{})
	ll.p.metrics.tcpBytes(name, in, out)
	rec.bytesIn, rec.bytesOut = in, out
	edge.closed.Add(1)
	edge.received.Add(uint64(in))
	edge.sent.Add(uint64(out))
}

// dialCluster picks an endpoint of cl and connects to it within the
// cluster's connect timeout. It returns the endpoint's index in cl (-1
// when none was picked).
func dialCluster(ctx context.Context, cl *cluster.Cluster, info lb.PickInfo) (net.Conn, *cluster.Endpoint, int, error) {
	cl.Stats.Requests.Add(1)
	idx, err := cl.PickIndex(info)
	if err != nil {
		cl.Stats.NoEndpoint.Add(1)
		return nil, nil, -1, err
	}
	ep := cl.Endpoints[idx]
	up, err := dialTLS(ctx, ep.Addr, cl.ConnectTimeout, cl.TLS)
	if err != nil {
		cl.Stats.ConnectFail.Add(1)
		return nil, ep, idx, err
	}
	return up, ep, idx, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// splice copies both directions until both are done, half-closing as each
// side finishes; idle > 0 closes both when neither direction moved data for
// that long. It returns the bytes sent downstream→upstream and back.
func splice(down, up net.Conn, idle time.Duration) (in, out int64) {
	var wg sync.WaitGroup
	var last atomic.Int64 // unix nanos of the last data in either direction
	last.Store(time.Now().UnixNano())
	wg.Add(1)
	go func() {
		defer wg.Done()
		out = pipe(down, up, idle, &last)
	}()
	in = pipe(up, down, idle, &last)
	wg.Wait()
	return in, out
}

// pipe copies src to dst; on EOF it half-closes dst for writing, on error
// it closes both.
func pipe(dst, src net.Conn, idle time.Duration, last *atomic.Int64) int64 {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		if idle > 0 {
			src.SetReadDeadline(time.Unix(0, last.Load()).Add(idle))
		}
		r, rerr := src.Read(buf)
		if r > 0 {
			if idle > 0 {
				last.Store(time.Now().UnixNano())
				dst.SetWriteDeadline(time.Now().Add(idle))
			}
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				src.Close()
				dst.Close()
				return n
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				} else {
					dst.Close()
				}
				return n
			}
			if errors.Is(rerr, os.ErrDeadlineExceeded) && time.Since(time.Unix(0, last.Load())) < idle {
				continue // the other direction is active
			}
			if !errors.Is(rerr, net.ErrClosed) {
				src.Close()
				dst.Close()
			}
			return n
		}
	}
}
