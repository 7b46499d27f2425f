package cart

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

var discard = slog.New(slog.DiscardHandler)

func TestStore(t *testing.T) {
	ctx := context.Background()
	s := NewStore()
	if _, err := s.AddItem(ctx, "alice", "tee", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddItem(ctx, "alice", "mug", 2); err != nil {
		t.Fatal(err)
	}
	c, err := s.AddItem(ctx, "alice", "mug", 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c); got != "{alice [{mug 5} {tee 1}]}" {
		t.Errorf("cart %s, want mug 5 and tee 1 sorted by sku", got)
	}
	if c, _ := s.GetCart(ctx, "bob"); c.User != "bob" || len(c.Items) != 0 || c.Items == nil {
		t.Errorf("bob's cart %+v, want empty", c)
	}
	if err := s.Clear(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.GetCart(ctx, "alice"); len(c.Items) != 0 {
		t.Errorf("cart after Clear %+v", c)
	}
}

func TestStoreLimits(t *testing.T) {
	ctx := context.Background()
	s := NewStore()
	if _, err := s.AddItem(ctx, "u", "mug", cartpb.MaxQty); err != nil {
		t.Fatal(err)
	}
	_, err := s.AddItem(ctx, "u", "mug", 1)
	if status.Code(err) != codes.OutOfRange || status.Convert(err).Message() != `100 x "mug" would exceed 99` {
		t.Errorf("over MaxQty: %v", err)
	}
	for i := 1; i < MaxItems; i++ {
		if _, err := s.AddItem(ctx, "u", fmt.Sprint("sku", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.AddItem(ctx, "u", "one-more", 1)
	if status.Code(err) != codes.ResourceExhausted || status.Convert(err).Message() != `cart of "u" is full (20 items)` {
		t.Errorf("over MaxItems: %v", err)
	}
	if _, err := s.AddItem(ctx, "u", "sku1", 1); err != nil {
		t.Errorf("adding to an existing line of a full cart: %v", err)
	}
}

func TestStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s := NewStore()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				if _, err := s.AddItem(ctx, "u", "mug", 1); err != nil {
					t.Error(err)
				}
				_, _ = s.GetCart(ctx, "u")
			}
		})
	}
	wg.Wait()
	if c, _ := s.GetCart(ctx, "u"); len(c.Items) != 1 || c.Items[0].Qty != 80 {
		t.Errorf("cart %+v, want 80 mugs", c)
	}
}

// serve runs the cart service on a loopback port the way the cart command
// does, and returns its address.
func serve(t *testing.T) (*Service, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := NewService(NewStore(), discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- instance.Serve(ctx, ln, svc.Handler(), 5*time.Second, discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		svc.Shutdown()
	})
	return svc, ln.Addr().String()
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := cartpb.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestGRPC(t *testing.T) {
	_, addr := serve(t)
	conn := dial(t, addr)
	c := cartpb.NewClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := c.AddItem(ctx, "alice", "mug", 2); err != nil {
		t.Fatal(err)
	}
	got, err := c.AddItem(ctx, "alice", "hoodie", 1)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "{alice [{hoodie 1} {mug 2}]}" {
		t.Errorf("AddItem = %+v", got)
	}
	if got, err := c.GetCart(ctx, "alice"); err != nil || fmt.Sprint(got) != "{alice [{hoodie 1} {mug 2}]}" {
		t.Errorf("GetCart = %+v, %v", got, err)
	}
	if err := c.Clear(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetCart(ctx, "alice"); err != nil || len(got.Items) != 0 {
		t.Errorf("GetCart after Clear = %+v, %v", got, err)
	}

	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"invalid qty", func() error { _, err := c.AddItem(ctx, "alice", "mug", 0); return err }, codes.InvalidArgument, "qty 0: want a whole number 1-99"},
		{"invalid user", func() error { _, err := c.GetCart(ctx, "a b"); return err }, codes.InvalidArgument, `user "a b": want`},
		{"over max", func() error {
			if _, err := c.AddItem(ctx, "bob", "mug", 99); err != nil {
				return err
			}
			_, err := c.AddItem(ctx, "bob", "mug", 1)
			return err
		}, codes.OutOfRange, "would exceed 99"},
		{"unknown field", func() error {
			in := cartpb.UserRequest("bob")
			in.Fields["extra"] = structpb.NewBoolValue(true)
			return conn.Invoke(ctx, cartpb.ClearMethod, in, new(structpb.Struct))
		}, codes.InvalidArgument, `unknown field "extra"`},
		{"unknown method", func() error {
			return conn.Invoke(ctx, "/"+cartpb.ServiceName+"/Nope", cartpb.UserRequest("bob"), new(structpb.Struct))
		}, codes.Unimplemented, "unknown method Nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err %v, want %s %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	svc, addr := serve(t)
	hc := healthpb.NewHealthClient(dial(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{"", cartpb.ServiceName} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("grpc health %q = %v, %v", name, resp, err)
		}
	}
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q", code, body)
	}
	svc.Health.Shutdown()
	if code, body := get(); code != 503 || body != "not serving: NOT_SERVING\n" {
		t.Errorf("GET /healthz after shutdown = %d %q, want 503", code, body)
	}
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: cartpb.ServiceName})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("grpc health after shutdown = %v, %v", resp, err)
	}
}

func TestSetup(t *testing.T) {
	h, cleanup, err := Setup(nil, discard)
	if err != nil || h == nil || cleanup == nil {
		t.Fatalf("Setup = %v, %v", h, err)
	}
	cleanup()
}

func BenchmarkAddItemGRPC(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	svc := NewService(NewStore(), discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- instance.Serve(ctx, ln, svc.Handler(), time.Second, discard) }()
	defer func() { cancel(); <-done }()
	conn, err := cartpb.Dial(ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := cartpb.NewClient(conn)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := c.AddItem(context.Background(), fmt.Sprint("u", i%1000), "mug", 1); err != nil && status.Code(err) != codes.OutOfRange {
			b.Fatal(err)
		}
	}
}
