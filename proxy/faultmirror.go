package proxy

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/filter/fault"
	"github.com/weft-mesh/weft/proxy/http1"
	"github.com/weft-mesh/weft/proxy/route"
)

// reasonFaultAbort marks a reply made by the fault filter (Envoy's FI).
const reasonFaultAbort = "fault_abort"

// faultAction decides the fault filter's action for a request: the route's
// (or its virtual host's) typed_per_filter_config, else the listener's
// filter config. Per-route configs apply even when the listener's chain
// does not name the filter (Envoy would ignore them).
func faultAction(spec *hcmSpec, rt *route.Route, h fault.Headers, clusterName string) fault.Action {
	f := rt.Fault
	if f == nil {
		f = spec.fault
	}
	if f == nil {
		return fault.Action{GRPCStatus: -1}
	}
	return f.Decide(h, clusterName, rand.Uint64(), rand.Uint64())
}

// mirrorSlots bounds the mirrored requests in flight per proxy; mirrors
// beyond it are dropped (and counted), never queued.
const mirrorSlots = 64

// mirrorTimeout bounds one mirrored exchange.
const mirrorTimeout = 5 * time.Second

// shadowHost appends "-shadow" to the host part of an authority, as Envoy.
func shadowHost(authority string) string {
	host, port := authority, ""
	if i := lastColonPort(authority); i >= 0 {
		host, port = authority[:i], authority[i:]
	}
	return host + "-shadow" + port
}

// lastColonPort returns the index of the ":port" suffix, or -1.
func lastColonPort(a string) int {
	for i := len(a) - 1; i >= 0; i-- {
		switch c := a[i]; {
		case c == ':':
			if i == len(a)-1 {
				return -1
			}
			return i
		case c < '0' || c > '9':
			return -1
		}
	}
	return -1
}

// mirrorRaw sends a copy of an HTTP/1.1 request (head and whole body, raw)
// to an endpoint of the named cluster and discards the answer. It runs on
// its own goroutine; the proxy never waits for it.
func (p *Proxy) mirrorRaw(clusterName string, method string, raw []byte) {
	p.mirrorAsync(clusterName, func(clu *cluster.Cluster, ep *cluster.Endpoint) {
		uc, err := p.h1PoolFor(ep.Addr, clu.TLS).get(contextBackground, clu, time.Now())
		if err != nil {
			return
		}
		uc.conn.SetDeadline(time.Now().Add(mirrorTimeout))
		var resp http1.ResponseHead
		ok := false
		if _, err := uc.conn.Write(raw); err == nil {
			if err := uc.rd.ReadResponseHead(&resp, []byte(method)); err == nil {
				rl, rch, reof := resp.BodyFraming()
				_, err = uc.rd.CopyBody(io.Discard, rl, rch, reof)
				ok = err == nil && !resp.Close && !reof
			}
		}
		if ok {
			uc.conn.SetDeadline(time.Time{})
			uc.put(time.Now())
		} else {
			uc.close()
		}
	})
}

// mirrorAsync runs send on its own goroutine with an endpoint of the named
// cluster, within the proxy's mirror slots (dropped and counted when none
// is free).
func (p *Proxy) mirrorAsync(clusterName string, send func(*cluster.Cluster, *cluster.Endpoint)) {
	select {
	case p.mirrors <- struct{}{}:
	default:
		p.metrics.localReply("mirror", "dropped")
		return
	}
	go func() {
		defer func() { <-p.mirrors }()
		clu := p.graph.Load().clusters[clusterName]
		if clu == nil {
			p.metrics.localReply("mirror", reasonNoCluster)
			return
		}
		ep, err := clu.Pick(lb.PickInfo{})
		if err != nil {
			p.metrics.localReply("mirror", reasonNoHealthy)
			return
		}
		send(clu, ep)
		p.metrics.localReply("mirror", "sent")
	}()
}

// mirrorHTTP sends a copy of a net/http request to the named cluster and
// discards the answer (general path: HTTP/2, gRPC, bridged requests). body
// is the whole request body (nil for none).
func (p *Proxy) mirrorHTTP(clusterName string, out *http.Request, body []byte) {
	m := out.Clone(context.Background())
	m.Host = shadowHost(out.Host)
	if body != nil {
		m.Body = io.NopCloser(bytes.NewReader(bytes.Clone(body)))
		m.ContentLength = int64(len(body))
	} else {
		m.Body = nil
	}
	p.mirrorAsync(clusterName, func(clu *cluster.Cluster, ep *cluster.Endpoint) {
		ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), connectTimeoutKey{}, clu.ConnectTimeout), mirrorTimeout)
		defer cancel()
		m.URL.Host = ep.Addr
		m.URL.Scheme = "http"
		if clu.TLS != nil {
			m.URL.Scheme = "https"
		}
		resp, err := p.transportFor(clu).RoundTrip(m.WithContext(ctx))
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// writeGRPCAbort answers a gRPC request trailers-only with the status.
func writeGRPCAbort(w http.ResponseWriter, code int) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", "fault filter abort")
	h.Set("X-Weft-Reason", reasonFaultAbort)
	w.WriteHeader(http.StatusOK)
}
