// Package carttest runs a real cart service on loopback for the tests of
// the services that call it.
package carttest

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/cart"
	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

// Start serves a cart with an empty store on a loopback port until the test
// ends, and returns a gRPC client of it.
func Start(t testing.TB) *cartpb.Client {
	t.Helper()
	discard := slog.New(slog.DiscardHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := cart.NewService(cart.NewStore(), discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- instance.Serve(ctx, ln, svc.Handler(), 5*time.Second, discard) }()
	conn, err := cartpb.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		svc.Shutdown()
	})
	return cartpb.NewClient(conn)
}
