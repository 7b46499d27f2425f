// Package catalog is the shop's product catalog: an HTTP service serving
// products and prices from an in-memory list, and the client the frontend
// and checkout use to call it.
//
// Two versions run side by side: v2 marks the newest products with a "new"
// badge. Every response says which version and which instance served it, in
// the JSON body and in the headers x-catalog-version and x-instance, so that
// traffic splitting and load balancing are visible from the outside.
package catalog

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Response headers naming the catalog version and instance that served a
// request.
const (
	HeaderVersion  = "x-catalog-version"
	HeaderInstance = "x-instance"
)

// Product is one item of the catalog; plain data, not synchronised.
type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"priceCents"`
	// Badge is "new" for the newest products in v2, empty otherwise.
	Badge string `json:"badge,omitempty"`
}

// Listing is the answer of GET /products; plain data, not synchronised.
type Listing struct {
	Version  string    `json:"version"`
	Instance string    `json:"instance"`
	Products []Product `json:"products"`
}

// products is the shop's inventory; prices are the same in every version.
var products = []Product{
	{SKU: "mug", Name: "Weft mug", PriceCents: 1200},
	{SKU: "tee", Name: "Mesh t-shirt", PriceCents: 2500},
	{SKU: "socks", Name: "Sidecar socks", PriceCents: 900},
	{SKU: "sticker", Name: "Envoy sticker pack", PriceCents: 400},
	{SKU: "hoodie", Name: "Control plane hoodie", PriceCents: 5500},
}

// newInV2 are the SKUs v2 badges as new.
var newInV2 = []string{"hoodie", "sticker"}

// Products returns the catalog as served by version ("v1", "v2"; anything
// else is served like v1). The result is a fresh slice.
func Products(version string) []Product {
	out := slices.Clone(products)
	if version == "v2" {
		for i := range out {
			if slices.Contains(newInV2, out[i].SKU) {
				out[i].Badge = "new"
			}
		}
	}
	return out
}

// Handler serves the catalog API:
//
//	GET /products        -> Listing
//	GET /products/{sku}  -> Product, 404 if unknown
//	GET /healthz         -> 200 "ok"
//
// and a failure knob, to watch alerts and the mesh's resilience at work:
//
//	POST /admin/fail?status=500 -> from now on the API answers that status
//	                               (500-599; default 500); /healthz still
//	                               passes, as a buggy but running instance's
//	                               would. 200 {"status": 500}
//	POST /admin/fail?status=0   -> back to normal
//	GET  /admin/fail            -> {"status": N}, 0 when healthy
//
// The knob is a demo's: anyone who can reach the instance can use it.
// It is safe for concurrent use.
type Handler struct {
	version  string
	instance string
	products []Product
	logger   *slog.Logger
	mux      *http.ServeMux
	fail     atomic.Int32 // status the API answers; 0: none
}

// NewHandler returns the catalog of version, served by instance (both are
// reported in every response).
func NewHandler(version, instance string, logger *slog.Logger) *Handler {
	h := &Handler{version: version, instance: instance, products: Products(version), logger: logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /products", h.list)
	h.mux.HandleFunc("GET /products/{sku}", h.get)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	h.mux.HandleFunc("GET /admin/fail", h.failStatus)
	h.mux.HandleFunc("POST /admin/fail", h.setFail)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(HeaderVersion, h.version)
	w.Header().Set(HeaderInstance, h.instance)
	if code := int(h.fail.Load()); code != 0 && (r.URL.Path == "/products" || strings.HasPrefix(r.URL.Path, "/products/")) {
		h.writeJSON(w, code, map[string]string{"error": "failure injected (POST /admin/fail?status=0 ends it)"})
		return
	}
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) failStatus(w http.ResponseWriter, _ *http.Request) {
	h.writeJSON(w, http.StatusOK, map[string]int{"status": int(h.fail.Load())})
}

func (h *Handler) setFail(w http.ResponseWriter, r *http.Request) {
	code := http.StatusInternalServerError
	if v := r.URL.Query().Get("status"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || (n != 0 && (n < 500 || n > 599)) {
			h.writeJSON(w, http.StatusBadRequest, map[string]string{"error": "status " + quote(v) + ": want 500-599, or 0 to stop failing"})
			return
		}
		code = n
	}
	h.fail.Store(int32(code))
	h.logger.Warn("failure knob", "status", code)
	h.failStatus(w, r)
}

func (h *Handler) list(w http.ResponseWriter, _ *http.Request) {
	h.writeJSON(w, http.StatusOK, Listing{Version: h.version, Instance: h.instance, Products: h.products})
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	sku := r.PathValue("sku")
	i := slices.IndexFunc(h.products, func(p Product) bool { return p.SKU == sku })
	if i < 0 {
		h.writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown sku " + quote(sku)})
		return
	}
	h.writeJSON(w, http.StatusOK, h.products[i])
}

func (h *Handler) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.logger.Warn("write response", "err", err)
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
