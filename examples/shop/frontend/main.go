// Command frontend serves the shop's HTML page and JSON API on
// 127.0.0.1:$PORT.
//
// Environment: CART_ADDR (host:port of the cart's gRPC service, required;
// under weft up an upstream port of the sidecar), CATALOG_URL (default
// http://catalog.shop) and CHECKOUT_URL (default http://checkout.shop),
// the defaults reached through $HTTP_PROXY.
package main

import (
	"github.com/weft-mesh/weft/examples/shop/internal/frontend"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

func main() { instance.Main("frontend", frontend.Setup) }
