package xds

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/control/jointoken"
)

// Identity is who a token belongs to. Empty fields are not checked against
// the node's metadata; set fields must match it.
type Identity struct {
	// Subject names the token holder in logs.
	Subject string
	// Namespace the holder may claim; empty for any.
	Namespace string
	// ServiceAccount the holder may claim; empty for any.
	ServiceAccount string
}

// Authenticator checks the bearer token of an xDS stream. Authenticate is
// called once per stream, on the stream's goroutine, when the first request
// (carrying the node) arrives; it may block briefly. Implementations must be
// safe for concurrent use.
type Authenticator interface {
	Authenticate(ctx context.Context, token string, node *corev3.Node) (Identity, error)
}

// StaticTokens accepts a fixed set of tokens, each mapped to the identity it
// grants. It is safe for concurrent use (read-only after construction).
type StaticTokens map[string]Identity

// Authenticate compares token with every known token in constant time.
func (st StaticTokens) Authenticate(_ context.Context, token string, _ *corev3.Node) (Identity, error) {
	var (
		found Identity
		ok    bool
	)
	for known, id := range st {
		if subtle.ConstantTimeCompare([]byte(known), []byte(token)) == 1 {
			found, ok = id, true
		}
	}
	if !ok {
		return Identity{}, errors.New("unknown token")
	}
	return found, nil
}

// Authenticate checks the bearer token of a gRPC call on the xDS port
// ("authorization: Bearer <token>" metadata) with the server's
// Authenticator, for services added with Options.Register. The error is a
// gRPC status with code Unauthenticated. It is safe for concurrent use.
func (s *Server) Authenticate(ctx context.Context) (Identity, error) {
	token, err := bearerToken(ctx)
	if err != nil {
		return Identity{}, status.Error(codes.Unauthenticated, err.Error())
	}
	id, err := s.auth.Authenticate(ctx, token, nil)
	if err != nil {
		return Identity{}, status.Errorf(codes.Unauthenticated, "authenticate: %v", err)
	}
	return id, nil
}

// bearerToken returns the token of the "authorization: Bearer <token>" gRPC
// metadata.
func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", errors.New("missing authorization metadata")
	}
	if len(vals) > 1 {
		return "", errors.New("more than one authorization metadata value")
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", errors.New(`authorization metadata: want "Bearer <token>"`)
	}
	return strings.TrimSpace(token), nil
}

// checkClaims verifies that the node claims nothing the identity does not
// grant.
func checkClaims(id Identity, p ProxyInfo) error {
	if id.Namespace != "" && id.Namespace != p.Namespace {
		return fmt.Errorf("token for namespace %q cannot claim namespace %q", id.Namespace, p.Namespace)
	}
	if id.ServiceAccount != "" && id.ServiceAccount != p.ServiceAccount {
		return fmt.Errorf("token for service account %q cannot claim service account %q", id.ServiceAccount, p.ServiceAccount)
	}
	return nil
}

// Tokens accepts the join tokens of Join, each bound to the namespace and
// service account it was issued for, and the Static tokens (the operator's
// token, bound to nothing). It is safe for concurrent use.
type Tokens struct {
	Join   *jointoken.Issuer
	Static StaticTokens
}

// Authenticate checks token as a join token when it has that shape, else
// against the static tokens.
func (t Tokens) Authenticate(ctx context.Context, token string, node *corev3.Node) (Identity, error) {
	if t.Join != nil && jointoken.IsToken(token) {
		c, err := t.Join.Verify(token)
		if err != nil {
			return Identity{}, err
		}
		return Identity{
			Subject:        "join-token " + c.Namespace + "/" + c.ServiceAccount,
			Namespace:      c.Namespace,
			ServiceAccount: c.ServiceAccount,
		}, nil
	}
	if len(t.Static) == 0 {
		return Identity{}, errors.New("unknown token")
	}
	return t.Static.Authenticate(ctx, token, node)
}
