package api

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// RequireWriteToken makes every request other than GET and HEAD present
// "Authorization: Bearer <token>" (the operator's token). The control plane
// sets it when the API listens on a non-loopback address; on loopback the
// machine's users are trusted, as with a local Docker socket. It may be
// called once, before or while serving.
func (s *Server) RequireWriteToken(token string) { s.writeToken.Store(&token) }

// OperatorOnly wraps h so that it always requires the operator's token,
// whatever the listen address: what it does (issuing identities, rotating
// the CA) is never open to every local user.
func OperatorOnly(token string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !bearerMatches(r, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="weft"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs the operator token (Authorization: Bearer <token from <state-dir>/join-token>)", nil)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// WriteError answers a JSON error document, as the API's own endpoints do.
func WriteError(w http.ResponseWriter, status int, msg string) { writeError(w, status, msg, nil) }

func bearerMatches(r *http.Request, token string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && token != "" && subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// checkWrite enforces RequireWriteToken; it reports whether to go on.
func (s *Server) checkWrite(w http.ResponseWriter, r *http.Request) bool {
	t := s.writeToken.Load()
	if t == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	if _, own := s.ownAuth.Load(r.URL.Path); own {
		return true
	}
	if bearerMatches(r, *t) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="weft"`)
	writeError(w, http.StatusUnauthorized, "the API is not on loopback: writes need the operator token (weft --token, or $WEFT_TOKEN)", nil)
	return false
}
