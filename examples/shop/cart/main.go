// Command cart serves the shop's carts over gRPC (shop.cart.v1.Cart and
// grpc.health.v1.Health) and GET /healthz on 127.0.0.1:$PORT.
package main

import (
	"github.com/weft-mesh/weft/examples/shop/internal/cart"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

func main() { instance.Main("cart", cart.Setup) }
