// Command catalog serves the shop's products over HTTP on 127.0.0.1:$PORT.
//
// Environment: VERSION (v1 or v2, default v1) is reported in every answer,
// as is WEFT_INSTANCE (set by weft up).
package main

import (
	"github.com/weft-mesh/weft/examples/shop/internal/catalog"
	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

func main() { instance.Main("catalog", catalog.Setup) }
