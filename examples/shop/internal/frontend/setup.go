package frontend

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
	"github.com/weft-mesh/weft/examples/shop/internal/checkout"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
	"github.com/weft-mesh/weft/examples/shop/internal/tracectx"
)

// Setup builds the frontend from its environment (an instance.Setup):
// CART_ADDR (host:port of the cart's gRPC service, required), CATALOG_URL
// (default http://catalog.shop) and CHECKOUT_URL (default
// http://checkout.shop), the defaults reached through $HTTP_PROXY. Every
// outgoing call carries the trace context of the request being handled.
func Setup(getenv func(string) string, logger *slog.Logger) (http.Handler, func(), error) {
	cat, err := catalog.NewClient(instance.Getenv(getenv, "CATALOG_URL", "http://catalog.shop"), &http.Client{Timeout: 3 * time.Second, Transport: &tracectx.Transport{}})
	if err != nil {
		return nil, nil, err
	}
	co, err := checkout.NewClient(instance.Getenv(getenv, "CHECKOUT_URL", "http://checkout.shop"), &http.Client{Timeout: 6 * time.Second, Transport: &tracectx.Transport{}})
	if err != nil {
		return nil, nil, err
	}
	conn, err := cartpb.Dial(getenv("CART_ADDR"))
	if err != nil {
		return nil, nil, err
	}
	h := NewHandler(Config{
		Catalog:  cat,
		Cart:     cartpb.NewClient(conn),
		Checkout: co,
		Timeout:  8 * time.Second,
		Logger:   logger,
	})
	return h, func() { _ = conn.Close() }, nil
}
