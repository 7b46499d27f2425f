// Package checkout is the shop's checkout service: POST /checkout/{user}
// reads the user's cart (gRPC), prices every line from the catalog (HTTP),
// empties the cart and answers the order. It also holds the client the
// frontend uses to call it.
package checkout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
)

// Order is the answer of a successful checkout; plain data, not
// synchronised.
type Order struct {
	ID         string      `json:"id"`
	User       string      `json:"user"`
	Lines      []OrderLine `json:"lines"`
	TotalCents int64       `json:"totalCents"`
	CreatedAt  time.Time   `json:"createdAt"`
}

// OrderLine is one priced line of an Order.
type OrderLine struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	Qty        int    `json:"qty"`
	PriceCents int64  `json:"priceCents"`
	LineCents  int64  `json:"lineCents"`
}

// Cart is what checkout needs of the cart service (*cartpb.Client).
type Cart interface {
	GetCart(ctx context.Context, user string) (cartpb.Cart, error)
	Clear(ctx context.Context, user string) error
}

// Catalog is what checkout needs of the catalog (*catalog.Client).
type Catalog interface {
	Get(ctx context.Context, sku string) (catalog.Product, error)
}

// Config configures a Handler; NewHandler copies it. Cart and Catalog must
// be safe for concurrent use.
type Config struct {
	Cart    Cart    // required
	Catalog Catalog // required
	// Timeout bounds one checkout, all outgoing calls included. Default 5s.
	Timeout time.Duration
	// NewID returns a fresh order id. Default: "ord-" and 12 random hex
	// digits.
	NewID func() string
	// Now is the clock stamping orders. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger // default slog.Default()
}

// Handler serves
//
//	POST /checkout/{user} -> 200 Order; 409 if the cart is empty; 422 if an
//	                         item is not in the catalog; 502/504 if the cart
//	                         or the catalog fails or is too slow
//	GET  /healthz         -> 200 "ok"
//
// It is safe for concurrent use.
type Handler struct {
	cfg Config
	mux *http.ServeMux
}

// NewHandler returns the checkout handler.
func NewHandler(cfg Config) *Handler {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.NewID == nil {
		cfg.NewID = randomID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /checkout/{user}", h.checkout)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// errEmptyCart is answered with 409.
var errEmptyCart = errors.New("cart is empty")

func (h *Handler) checkout(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if !cartpb.ValidName(user) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("user %q: want 1-64 letters, digits, '.', '_' or '-'", user))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	order, err := h.Checkout(ctx, user)
	if err != nil {
		code := statusOf(err)
		if code >= 500 {
			h.cfg.Logger.Warn("checkout failed", "user", user, "err", err)
		}
		writeError(w, code, err)
		return
	}
	h.cfg.Logger.Info("order placed", "order", order.ID, "user", user, "totalCents", order.TotalCents)
	writeJSON(w, http.StatusOK, order)
}

// Checkout places user's order: it prices the cart, then clears it. The
// cart is left untouched when pricing fails.
func (h *Handler) Checkout(ctx context.Context, user string) (Order, error) {
	c, err := h.cfg.Cart.GetCart(ctx, user)
	if err != nil {
		return Order{}, fmt.Errorf("read cart: %w", err)
	}
	if len(c.Items) == 0 {
		return Order{}, fmt.Errorf("user %q: %w", user, errEmptyCart)
	}
	o := Order{ID: h.cfg.NewID(), User: user, CreatedAt: h.cfg.Now().UTC()}
	for _, it := range c.Items {
		p, err := h.cfg.Catalog.Get(ctx, it.SKU)
		if err != nil {
			return Order{}, fmt.Errorf("price %q: %w", it.SKU, err)
		}
		line := OrderLine{SKU: it.SKU, Name: p.Name, Qty: it.Qty, PriceCents: p.PriceCents, LineCents: p.PriceCents * int64(it.Qty)}
		o.Lines = append(o.Lines, line)
		o.TotalCents += line.LineCents
	}
	if err := h.cfg.Cart.Clear(ctx, user); err != nil {
		return Order{}, fmt.Errorf("clear cart: %w", err)
	}
	return o, nil
}

// statusOf maps a checkout error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errEmptyCart):
		return http.StatusConflict
	case errors.Is(err, catalog.ErrUnknownSKU):
		return http.StatusUnprocessableEntity
	case errors.Is(err, context.DeadlineExceeded), status.Code(err) == codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func randomID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "ord-" + hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
