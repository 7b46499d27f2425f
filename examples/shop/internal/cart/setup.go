package cart

import (
	"log/slog"
	"net/http"
)

// Setup builds the cart service (an instance.Setup); it reads no
// environment. The cleanup marks it NOT_SERVING and stops the gRPC server.
func Setup(_ func(string) string, logger *slog.Logger) (http.Handler, func(), error) {
	svc := NewService(NewStore(), logger)
	return svc.Handler(), svc.Shutdown, nil
}
