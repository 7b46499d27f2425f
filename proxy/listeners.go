package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// liveListener is a bound socket serving one Listener resource. Its spec can
// be swapped without rebinding when only the filter chain changes.
type liveListener struct {
	p    *Proxy
	name string
	ln   net.Listener
	spec atomic.Pointer[listenerSpec]

	srv     *http.Server   // HTTP listeners; set before serving starts
	h2conns *connQueue     // fast-path listeners: HTTP/2 connections handed to srv
	active  sync.WaitGroup // TCP connections
	mu      sync.Mutex     // guards conns (TCP listeners)
	conns   map[net.Conn]struct{}
	idle    map[net.Conn]*atomic.Int32 // fast-path connections: 0 idle, 1 busy, 2 closing
	closed  atomic.Bool
	// open counts downstream connections (weft_downstream_connections_active).
	open atomic.Int64
}

// reconcileListeners binds, rebinds, updates and closes listeners to match
// want. Called with p.mu held. On a bind failure, sockets opened by this call
// are closed again and nothing else changes.
func (p *Proxy) reconcileListeners(want map[string]*listenerSpec) error {
	type plan struct {
		spec *listenerSpec
		ln   net.Listener
	}
	var opened []plan
	for name, spec := range want {
		cur := p.live[name]
		if cur != nil && spec.sameSocket(cur.spec.Load()) && sameKind(spec, cur.spec.Load()) {
			continue
		}
		ln, err := p.opts.Listen(name, spec.addr)
		if err != nil {
			for _, o := range opened {
				o.ln.Close()
			}
			return fmt.Errorf("listener %q: bind %s: %w", name, spec.addr, err)
		}
		opened = append(opened, plan{spec, ln})
	}
	// Commit: close replaced/removed listeners, start new ones, swap specs.
	for name, cur := range p.live {
		spec, keep := want[name]
		if keep && spec.sameSocket(cur.spec.Load()) && sameKind(spec, cur.spec.Load()) {
			cur.spec.Store(spec)
			continue
		}
		delete(p.live, name)
		go cur.close(context.Background())
	}
	for _, o := range opened {
		ll := &liveListener{p: p, name: o.spec.name, ln: o.ln, conns: map[net.Conn]struct{}{}, idle: map[net.Conn]*atomic.Int32{}}
		ll.spec.Store(o.spec)
		if o.spec.http != nil {
			ll.srv = ll.newHTTPServer(o.spec.http)
		}
		if o.spec.http == nil || o.spec.http.codec != hcmv3.HttpConnectionManager_HTTP2 {
			ll.active.Add(1) // the accept loop; released when it returns
		}
		if o.spec.http != nil && o.spec.http.codec != hcmv3.HttpConnectionManager_HTTP2 {
			ll.h2conns = newConnQueue(o.ln.Addr())
		}
		if ll.srv != nil && ll.h2conns == nil {
			// net/http accepts itself: count its connections.
			ll.srv.ConnState = func(_ net.Conn, s http.ConnState) {
				switch s {
				case http.StateNew:
					ll.open.Add(1)
				case http.StateClosed, http.StateHijacked:
					ll.open.Add(-1)
				}
			}
		}
		p.live[o.spec.name] = ll
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ll.serve()
		}()
		p.log.Info("listener started", "listener", o.spec.name, "addr", o.ln.Addr().String())
	}
	return nil
}

func sameKind(a, b *listenerSpec) bool {
	return (a.http != nil) == (b.http != nil) && (a.http == nil || a.http.codec == b.http.codec) && (a.tls != nil) == (b.tls != nil)
}

func (ll *liveListener) serve() {
	switch {
	case ll.h2conns != nil:
		go ll.srv.Serve(ll.h2conns)
		ll.acceptLoop(ll.serveConn)
	case ll.srv != nil:
		// HTTP/2 only (codec_type HTTP2): net/http accepts itself; on a
		// TLS listener the handshake uses the current spec's config (SDS
		// certificates resolve per handshake).
		ln := ll.ln
		if ll.spec.Load().tls != nil {
			ln = tls.NewListener(ln, &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				if s := ll.spec.Load(); s.tls != nil {
					return s.tls.Config, nil
				}
				return nil, errors.New("listener lost its TLS configuration")
			}})
		}
		if err := ll.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ll.p.log.Error("listener stopped", "listener", ll.name, "err", err)
		}
	default:
		ll.acceptLoop(ll.handleTCP)
	}
}

// acceptLoop accepts connections and runs handle for each on its own
// goroutine, tracked in ll.active.
func (ll *liveListener) acceptLoop(handle func(net.Conn)) {
	defer ll.active.Done()
	var delay time.Duration
	for {
		c, err := ll.ln.Accept()
		if err != nil {
			if ll.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary accept errors (EMFILE): back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			ll.p.log.Warn("accept failed", "listener", ll.name, "err", err, "retry_in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		ll.mu.Lock()
		ll.conns[c] = struct{}{}
		ll.mu.Unlock()
		ll.active.Add(1)
		ll.open.Add(1)
		go func() {
			defer ll.active.Done()
			defer ll.open.Add(-1)
			defer func() {
				ll.mu.Lock()
				delete(ll.conns, c)
				ll.mu.Unlock()
			}()
			handle(c)
		}()
	}
}

// close stops accepting and lets in-flight work finish until ctx or the
// proxy's drain timeout ends.
func (ll *liveListener) close(ctx context.Context) {
	if ll.closed.Swap(true) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, ll.p.opts.DrainTimeout)
	defer cancel()
	if ll.srv != nil && ll.h2conns == nil {
		if err := ll.srv.Shutdown(ctx); err != nil {
			ll.srv.Close()
		}
		return
	}
	ll.ln.Close()
	ll.mu.Lock()
	for c, st := range ll.idle {
		if st.CompareAndSwap(0, 2) {
			c.Close()
		}
	}
	ll.mu.Unlock()
	if ll.srv != nil {
		ll.h2conns.Close()
		go func() {
			if err := ll.srv.Shutdown(ctx); err != nil {
				ll.srv.Close()
			}
		}()
	}
	drained := make(chan struct{})
	go func() { ll.active.Wait(); close(drained) }()
	select {
	case <-drained:
		return
	case <-ctx.Done():
	}
	ll.mu.Lock()
	for c := range ll.conns {
		c.Close()
	}
	ll.mu.Unlock()
	<-drained
}
