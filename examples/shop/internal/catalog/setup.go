package catalog

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/weft-mesh/weft/examples/shop/internal/instance"
)

// Setup builds the catalog service from its environment (an
// instance.Setup): VERSION (v1 or v2, default v1) and WEFT_INSTANCE.
func Setup(getenv func(string) string, logger *slog.Logger) (http.Handler, func(), error) {
	version := instance.Getenv(getenv, "VERSION", "v1")
	if version != "v1" && version != "v2" {
		return nil, nil, fmt.Errorf("VERSION %q: want v1 or v2", version)
	}
	inst := instance.Getenv(getenv, "WEFT_INSTANCE", "catalog-local")
	logger.Info("catalog", "version", version)
	return NewHandler(version, inst, logger), nil, nil
}
