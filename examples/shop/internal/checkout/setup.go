package checkout

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/weft-mesh/weft/examples/shop/internal/cartpb"
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
	"github.com/weft-mesh/weft/examples/shop/internal/tracectx"
)

// Setup builds the checkout service from its environment (an
// instance.Setup): CART_ADDR (host:port of the cart's gRPC service,
// required) and CATALOG_URL (default http://catalog.shop, reached through
// $HTTP_PROXY). Every outgoing call carries the trace context of the
// request being handled.
func Setup(getenv func(string) string, logger *slog.Logger) (http.Handler, func(), error) {
	// The default transport under tracectx.Transport honours HTTP_PROXY.
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &tracectx.Transport{}}
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
