package telemetry

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
	"github.com/weft-mesh/weft/proxy/accessrec"
)

// MaxOTLPHTTPBody bounds an OTLP/HTTP export's body.
const MaxOTLPHTTPBody = 64 << 20

// RegisterOTLPHTTP adds the OTLP/HTTP receivers, binary protobuf only:
// POST /v1/traces and /v1/logs. They read the body as the gRPC receivers
// read a request (scanSpans, scanLogs) and authenticate the caller the
// same way, from its "Authorization: Bearer <token>" header. They check
// that token themselves: register them where the server's own write check
// does not apply (api.Server.HandleOwnAuth).
func (h *Hub) RegisterOTLPHTTP(handle func(pattern string, handler http.Handler)) {
	handle("POST /v1/traces", h.otlpHTTP(func(id xds.Identity, b []byte) (proto.Message, error) {
		return traceReceiver{h: h}.storeWire(id, b)
	}))
	handle("POST /v1/logs", h.otlpHTTP(func(id xds.Identity, b []byte) (proto.Message, error) {
		return logsReceiver{h: h}.storeWire(id, b)
	}))
}

// otlpHTTP serves one OTLP/HTTP export with store. The caller is
// authenticated before its body is read, so that nobody without a token
// makes the hub read (and hold) up to MaxOTLPHTTPBody bytes.
func (h *Hub) otlpHTTP(store func(xds.Identity, []byte) (proto.Message, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-protobuf" {
			http.Error(w, "Content-Type must be application/x-protobuf (binary protobuf; JSON is not accepted)", http.StatusUnsupportedMediaType)
			return
		}
		if enc := r.Header.Get("Content-Encoding"); enc != "" && enc != "identity" {
			http.Error(w, "Content-Encoding "+enc+" is not accepted", http.StatusUnsupportedMediaType)
			return
		}
		ctx := r.Context()
		if a := r.Header.Get("Authorization"); a != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", a))
		}
		id, err := h.authenticate(ctx)
		if err != nil {
			writeStatus(w, err)
			return
		}
		body, err := readBody(w, r)
		if err != nil {
			code := http.StatusBadRequest
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				code = http.StatusRequestEntityTooLarge
			}
			http.Error(w, "reading the body: "+err.Error(), code)
			return
		}
		resp, err := store(id, body)
		if err != nil {
			writeStatus(w, err)
			return
		}
		out, err := proto.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Header().Set(accessrec.Header, accessrec.HeaderSpans)
		w.Write(out)
	})
}

// writeStatus answers a receiver's gRPC status error with its HTTP
// counterpart.
func writeStatus(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch status.Code(err) {
	case codes.Unauthenticated:
		code = http.StatusUnauthorized
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.Internal, codes.InvalidArgument: // a body that is not the request
		code = http.StatusBadRequest
	}
	http.Error(w, status.Convert(err).Message(), code)
}

// readBody reads a body of at most MaxOTLPHTTPBody bytes, in one piece
// when its length is known. The receivers keep views of it.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, MaxOTLPHTTPBody)
	if n := r.ContentLength; n >= 0 && n <= MaxOTLPHTTPBody {
		b := make([]byte, n)
		if _, err := io.ReadFull(body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(body)
}
