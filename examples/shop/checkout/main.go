// Command checkout places the shop's orders over HTTP on 127.0.0.1:$PORT.
//
// Environment: CART_ADDR (host:port of the cart's gRPC service, required;
// under weft up an upstream port of the sidecar) and CATALOG_URL (default
// http://catalog.shop, reached through $HTTP_PROXY).
package main

import (
	"github.com/weft-mesh/weft/examples/shop/internal/checkout"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

func main() { instance.Main("checkout", checkout.Setup) }
