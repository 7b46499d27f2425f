package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/http1"
	"github.com/weft-mesh/weft/proxy/tlsctx"
)

// upConn is a pooled HTTP/1.1 connection to one endpoint with its reader.
// It is owned by one request at a time.
type upConn struct {
	conn   net.Conn
	owner  *cluster.Cluster // the cluster whose connection limit it counts against
	rd     *http1.Reader
	pool   *h1Pool
	reused bool
	idleAt time.Time
	peer   string // SPIFFE ID of the endpoint's certificate; "" plaintext
}

// h1Pool keeps idle keep-alive connections to one endpoint address. Safe for
// concurrent use. Pools are keyed by address in Proxy.h1pools, so they
// survive config updates like every other endpoint state.
type h1Pool struct {
	addr    string
	tls     *tlsctx.Client // nil: plaintext
	mu      sync.Mutex
	idle    []*upConn // LIFO: the most recently used connection is warmest
	maxIdle int
}

const (
	h1MaxIdlePerEndpoint = 256
	h1IdleTimeout        = 60 * time.Second
)

func (p *Proxy) h1PoolFor(addr string, tc *tlsctx.Client) *h1Pool {
	key := addr
	if tc != nil {
		key = addr + "|" + tc.Key
	}
	if v, ok := p.h1pools.Load(key); ok {
		return v.(*h1Pool)
	}
	v, _ := p.h1pools.LoadOrStore(key, &h1Pool{addr: addr, tls: tc, maxIdle: h1MaxIdlePerEndpoint})
	return v.(*h1Pool)
}

// errConnLimit: the cluster has max_connections open.
var errConnLimit = errors.New("circuit breaker: max_connections")

// get returns an idle connection, or dials a new one within the cluster's
// connect timeout and connection limit.
func (hp *h1Pool) get(ctx context.Context, clu *cluster.Cluster, now time.Time) (*upConn, error) {
	hp.mu.Lock()
	for n := len(hp.idle); n > 0; n = len(hp.idle) {
		uc := hp.idle[n-1]
		hp.idle[n-1] = nil
		hp.idle = hp.idle[:n-1]
		if now.Sub(uc.idleAt) < h1IdleTimeout {
			hp.mu.Unlock()
			uc.reused = true
			return uc, nil
		}
		uc.close()
	}
	hp.mu.Unlock()
	if clu.AdmitConnection() != cluster.OverflowNone {
		return nil, errConnLimit
	}
	c, err := dialTLS(ctx, hp.addr, clu.ConnectTimeout, hp.tls)
	if err != nil {
		clu.ReleaseConnection()
		return nil, err
	}
	uc := &upConn{conn: c, rd: http1.NewReader(c, 0), pool: hp, owner: clu}
	if tc, ok := c.(*tls.Conn); ok {
		cs := tc.ConnectionState()
		uc.peer = spiffeSAN(cs.PeerCertificates)
	}
	return uc, nil
}

// dialTLS connects to addr within timeout and, with tc, completes a TLS
// handshake in the same budget. Failures are connectErrors.
func dialTLS(ctx context.Context, addr string, timeout time.Duration, tc *tlsctx.Client) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, &connectError{err}
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		tcp.SetNoDelay(true)
	}
	if tc == nil {
		return c, nil
	}
	cfg := tc.Config
	if cfg.ServerName == "" {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	t := tls.Client(c, cfg)
	if err := t.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, &connectError{fmt.Errorf("tls handshake: %w", err)}
	}
	return t, nil
}

// put returns a healthy connection to its pool, or closes it when the pool
// is full.
func (uc *upConn) put(now time.Time) {
	hp := uc.pool
	if uc.rd.Buffered() > 0 { // unexpected bytes after the response
		uc.close()
		return
	}
	uc.idleAt = now
	hp.mu.Lock()
	if len(hp.idle) < hp.maxIdle {
		hp.idle = append(hp.idle, uc)
		hp.mu.Unlock()
		return
	}
	hp.mu.Unlock()
	uc.close()
}

func (uc *upConn) close() {
	uc.conn.Close()
	uc.rd.Release()
	if uc.owner != nil {
		uc.owner.ReleaseConnection()
		uc.owner = nil
	}
}

// closeIdle closes every idle connection of every pool (shutdown).
func (p *Proxy) closeIdleH1() {
	p.h1pools.Range(func(_, v any) bool {
		hp := v.(*h1Pool)
		hp.mu.Lock()
		for _, uc := range hp.idle {
			uc.close()
		}
		hp.idle = nil
		hp.mu.Unlock()
		return true
	})
}
