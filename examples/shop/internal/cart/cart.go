// Package cart is the shop's cart service: carts kept in memory per user,
// served over gRPC (the API is package cartpb) together with the standard
// gRPC health service and an HTTP GET /healthz on the same port.
package cart

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
)

// MaxItems is the number of different SKUs one cart holds.
const MaxItems = 20

// Store keeps every user's cart in memory. It implements cartpb.Server and
// is safe for concurrent use. The zero value is not usable; use NewStore.
type Store struct {
	mu    sync.Mutex
	carts map[string]map[string]int // user -> sku -> qty
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{carts: map[string]map[string]int{}} }

var _ cartpb.Server = (*Store)(nil)

// AddItem adds qty of sku to user's cart. A line may hold at most
// cartpb.MaxQty (OutOfRange beyond) and a cart MaxItems lines
// (ResourceExhausted beyond).
func (s *Store) AddItem(_ context.Context, user, sku string, qty int) (cartpb.Cart, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.carts[user]
	if c == nil {
		c = map[string]int{}
		s.carts[user] = c
	}
	if _, ok := c[sku]; !ok && len(c) >= MaxItems {
		return cartpb.Cart{}, status.Errorf(codes.ResourceExhausted, "cart of %q is full (%d items)", user, MaxItems)
	}
	if c[sku]+qty > cartpb.MaxQty {
		return cartpb.Cart{}, status.Errorf(codes.OutOfRange, "%d x %q would exceed %d", c[sku]+qty, sku, cartpb.MaxQty)
	}
	c[sku] += qty
	return snapshot(user, c), nil
}

// GetCart returns user's cart, empty if there is none.
func (s *Store) GetCart(_ context.Context, user string) (cartpb.Cart, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return snapshot(user, s.carts[user]), nil
}

// Clear empties user's cart.
func (s *Store) Clear(_ context.Context, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.carts, user)
	return nil
}

func snapshot(user string, c map[string]int) cartpb.Cart {
	out := cartpb.Cart{User: user, Items: make([]cartpb.Item, 0, len(c))}
	for sku, qty := range c {
		out.Items = append(out.Items, cartpb.Item{SKU: sku, Qty: qty})
	}
	slices.SortFunc(out.Items, func(a, b cartpb.Item) int { return strings.Compare(a.SKU, b.SKU) })
	return out
}

// Service is a gRPC server carrying the cart and the health service. It is
// safe for concurrent use.
type Service struct {
	GRPC   *grpc.Server
	Health *health.Server
}

// NewService registers store and a health service (SERVING for "" and
// cartpb.ServiceName) on a new gRPC server that logs failed calls.
func NewService(store cartpb.Server, logger *slog.Logger) *Service {
	log := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			logger.Info("call failed", "method", info.FullMethod, "code", status.Code(err).String(), "err", status.Convert(err).Message())
		}
		return resp, err
	}
	s := &Service{GRPC: grpc.NewServer(grpc.UnaryInterceptor(log)), Health: health.NewServer()}
	cartpb.Register(s.GRPC, store)
	healthpb.RegisterHealthServer(s.GRPC, s.Health)
	s.Health.SetServingStatus(cartpb.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// Handler serves gRPC requests (HTTP/2 with content-type application/grpc)
// with the gRPC server and GET /healthz over HTTP/1.1 or HTTP/2, so that
// one port answers both the mesh's readiness probe and gRPC clients. The
// http.Server must accept unencrypted HTTP/2 (instance.NewServer does).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.Health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: cartpb.ServiceName})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, fmt.Sprintf("not serving: %v", resp.GetStatus()), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.GRPC.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Shutdown marks the services NOT_SERVING (health checks fail from now on)
// and stops the gRPC server, failing calls still in flight.
func (s *Service) Shutdown() {
	s.Health.Shutdown()
	s.GRPC.Stop()
}
