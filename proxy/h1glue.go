package proxy

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"

	"github.com/weft-mesh/weft/proxy/http1"
)

var contextBackground = context.Background()

// h1Headers adapts a request head to route.Headers and route.MutableHeaders.
// Lookups and edits do not allocate in steady state.
type h1Headers struct{ h *http1.RequestHead }

func (a h1Headers) Get(name string) (string, bool) {
	v, ok := a.h.Get(name)
	return bstr(v), ok
}
func (a h1Headers) Set(name, value string) { a.h.Set(name, value) }
func (a h1Headers) Add(name, value string) { a.h.Add(name, value) }
func (a h1Headers) Del(name string)        { a.h.Del(name) }

// h1RespHeaders adapts a response head to route.MutableHeaders.
type h1RespHeaders struct{ h *http1.ResponseHead }

func (a h1RespHeaders) Get(name string) (string, bool) {
	v, ok := a.h.Get(name)
	return bstr(v), ok
}
func (a h1RespHeaders) Set(name, value string) { a.h.Set(name, value) }
func (a h1RespHeaders) Add(name, value string) { a.h.Add(name, value) }
func (a h1RespHeaders) Del(name string)        { a.h.Del(name) }

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// prefixConn replays bytes read while sniffing the protocol.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// connQueue is a net.Listener fed with connections accepted elsewhere: the
// fast path hands HTTP/2 connections to net/http's server through it.
type connQueue struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// deliver passes c to the server; false when the queue is closed.
func (q *connQueue) deliver(c net.Conn) bool {
	select {
	case q.ch <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.ch:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
