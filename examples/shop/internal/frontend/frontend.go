// Package frontend is the shop's web front: a server-rendered HTML page
// (products, cart, checkout button) and a JSON API, both calling the
// catalog (HTTP), the cart (gRPC) and checkout (HTTP) through the mesh.
package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
	"github.com/weft-mesh/weft/examples/shop/internal/checkout"
)

// Headers the frontend copies from the catalog answer onto GET
// /api/products and GET /, to show which catalog served the page.
const (
	HeaderCatalogVersion  = "x-catalog-version"
	HeaderCatalogInstance = "x-catalog-instance"
)

// DefaultUser is the user of the HTML page when the URL names none.
const DefaultUser = "guest"

// Catalog is what the frontend needs of the catalog (*catalog.Client).
type Catalog interface {
	List(ctx context.Context) (catalog.Listing, error)
	Get(ctx context.Context, sku string) (catalog.Product, error)
}

// Cart is what the frontend needs of the cart (*cartpb.Client).
type Cart interface {
	AddItem(ctx context.Context, user, sku string, qty int) (cartpb.Cart, error)
	GetCart(ctx context.Context, user string) (cartpb.Cart, error)
}

// Checkout is what the frontend needs of checkout (*checkout.Client).
type Checkout interface {
	Checkout(ctx context.Context, user string) (checkout.Order, error)
}

// Config configures a Handler; NewHandler copies it. Catalog, Cart and
// Checkout must be safe for concurrent use.
type Config struct {
	Catalog  Catalog  // required
	Cart     Cart     // required
	Checkout Checkout // required
	// Timeout bounds the outgoing calls of one request. Default 5s.
	Timeout time.Duration
	Logger  *slog.Logger // default slog.Default()
}

// Handler serves the shop:
//
//	GET  /                          HTML page (?user=NAME, default guest)
//	POST /cart                      form user, sku, qty; 303 to /
//	POST /checkout                  form user; HTML order page
//	GET  /api/products              catalog.Listing
//	GET  /api/cart/{user}           cartpb.Cart
//	POST /api/cart/{user}/items     {"sku": "mug", "qty": 1} -> cartpb.Cart
//	POST /api/checkout/{user}       checkout.Order
//	GET  /healthz                   200 "ok"
//
// API errors are JSON {"error": "..."} with 400 (bad input), 404 (unknown
// SKU), 409 (empty or full cart), 502 (a service failed) or 504 (timeout).
// It is safe for concurrent use.
type Handler struct {
	cfg Config
	mux *http.ServeMux
}

// NewHandler returns the frontend handler.
func NewHandler(cfg Config) *Handler {
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("POST /cart", h.formAdd)
	h.mux.HandleFunc("POST /checkout", h.formCheckout)
	h.mux.HandleFunc("GET /api/products", h.apiProducts)
	h.mux.HandleFunc("GET /api/cart/{user}", h.apiCart)
	h.mux.HandleFunc("POST /api/cart/{user}/items", h.apiAdd)
	h.mux.HandleFunc("POST /api/checkout/{user}", h.apiCheckout)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// apiError is an error with the HTTP status to answer.
type apiError struct {
	code int
	err  error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &apiError{code: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

// statusOf maps an error of a backend call to an HTTP status.
func statusOf(err error) int {
	var ae *apiError
	var se *checkout.StatusError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.As(err, &se) && se.Code < 500:
		return se.Code
	case errors.Is(err, catalog.ErrUnknownSKU):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.ResourceExhausted:
		return http.StatusConflict
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if code >= 500 {
		h.cfg.Logger.Warn("request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (h *Handler) apiProducts(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	l, err := h.cfg.Catalog.List(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	setCatalogHeaders(w, l)
	writeJSON(w, http.StatusOK, l)
}

func (h *Handler) apiCart(w http.ResponseWriter, r *http.Request) {
	user, err := pathUser(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	c, err := h.cfg.Cart.GetCart(ctx, user)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (h *Handler) apiAdd(w http.ResponseWriter, r *http.Request) {
	user, err := pathUser(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sku, qty, err := DecodeAddItem(http.MaxBytesReader(w, r.Body, maxAddBody))
	if err != nil {
		h.fail(w, r, &apiError{code: http.StatusBadRequest, err: err})
		return
	}
	c, err := h.add(r.Context(), user, sku, qty)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// add checks that sku is in the catalog, then adds it to the cart.
func (h *Handler) add(ctx context.Context, user, sku string, qty int) (cartpb.Cart, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	if _, err := h.cfg.Catalog.Get(ctx, sku); err != nil {
		return cartpb.Cart{}, err
	}
	return h.cfg.Cart.AddItem(ctx, user, sku, qty)
}

func (h *Handler) apiCheckout(w http.ResponseWriter, r *http.Request) {
	user, err := pathUser(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	o, err := h.cfg.Checkout.Checkout(ctx, user)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func pathUser(r *http.Request) (string, error) {
	user := r.PathValue("user")
	if !cartpb.ValidName(user) {
		return "", badRequest("user %q: want 1-64 letters, digits, '.', '_' or '-'", user)
	}
	return user, nil
}

// maxAddBody bounds the body of POST /api/cart/{user}/items.
const maxAddBody = 4 << 10

// DecodeAddItem reads the body of POST /api/cart/{user}/items:
// {"sku": "mug", "qty": 2}; qty defaults to 1 and must be 1-cartpb.MaxQty.
// Unknown fields and trailing data are errors.
func DecodeAddItem(r io.Reader) (sku string, qty int, err error) {
	var body struct {
		SKU *string `json:"sku"`
		Qty *int    `json:"qty"`
	}
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return "", 0, fmt.Errorf("body: want {\"sku\": string, \"qty\": number}: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", 0, errors.New("body: trailing data after the object")
	}
	switch {
	case body.SKU == nil:
		return "", 0, errors.New("sku: required")
	case !cartpb.ValidName(*body.SKU):
		return "", 0, fmt.Errorf("sku %q: want 1-64 letters, digits, '.', '_' or '-'", *body.SKU)
	}
	qty = 1
	if body.Qty != nil {
		qty = *body.Qty
	}
	if qty < 1 || qty > cartpb.MaxQty {
		return "", 0, fmt.Errorf("qty %d: want 1-%d", qty, cartpb.MaxQty)
	}
	return *body.SKU, qty, nil
}

func setCatalogHeaders(w http.ResponseWriter, l catalog.Listing) {
	w.Header().Set(HeaderCatalogVersion, l.Version)
	w.Header().Set(HeaderCatalogInstance, l.Instance)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
