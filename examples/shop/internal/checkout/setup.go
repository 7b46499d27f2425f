package checkout

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

// Setup builds the checkout service from its environment (an
// instance.Setup): CART_ADDR (host:port of the cart's gRPC service,
// required) and CATALOG_URL (default http://catalog.shop, reached through
// $HTTP_PROXY).
func Setup(getenv func(string) string, logger *slog.Logger) (http.Handler, func(), error) {
	hc := &http.Client{Timeout: 3 * time.Second} // default transport: honours HTTP_PROXY
	cat, err := catalog.NewClient(instance.Getenv(getenv, "CATALOG_URL", "http://catalog.shop"), hc)
	if err != nil {
		return nil, nil, err
	}
	conn, err := cartpb.Dial(getenv("CART_ADDR"))
	if err != nil {
		return nil, nil, err
	}
	h := NewHandler(Config{Cart: cartpb.NewClient(conn), Catalog: cat, Logger: logger})
	return h, func() { _ = conn.Close() }, nil
}
