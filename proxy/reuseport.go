package proxy

import (
	"context"
	"net"
	"syscall"
)

// listenReusePort opens a TCP listener with SO_REUSEPORT set (on systems
// that have it; elsewhere a plain listener).
func listenReusePort(_ string, addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setReusePort(fd) }); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

// listenExclusive binds addr without SO_REUSEPORT (Go sets SO_REUSEADDR, so
// a restarted process binds despite TIME_WAIT, but never beside a live one).
func listenExclusive(_ string, addr string) (net.Listener, error) {
	return net.Listen("tcp", addr)
}
