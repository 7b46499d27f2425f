package xds

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/control/ca/spiffeid"
)

// The certificate service signs the proxies' certificate requests, as
// Istio's IstioCertificateService does for its agents: xDS has no message
// for a CSR, and the key must stay in the proxy, so the proxy sends the CSR
// here (on the xDS port, with the same bearer token) and serves the signed
// certificate to its own listeners and clusters as the SDS secret
// "default". The trust bundle goes over ADS as the Secret "ROOTCA".
//
// The messages are protobuf well-known types, so that no generated code is
// needed: the request is a BytesValue holding the DER CSR, the answer a
// BytesValue holding the PEM chain (leaf first, then intermediates).
const (
	CertificateServiceName = "weft.ca.v1.CertificateService"
	CreateCertificateRPC   = "/" + CertificateServiceName + "/CreateCertificate"
	// MaxCSRSize bounds the request.
	MaxCSRSize = 8 << 10
)

// Signer issues leaf certificates; control/ca.CA implements it.
type Signer interface {
	Sign(csrDER []byte, id spiffeid.ID, ttl time.Duration) (chain [][]byte, notAfter time.Time, err error)
}

// certService is the gRPC service.
type certService struct{ s *Server }

func (c certService) create(ctx context.Context, req *wrapperspb.BytesValue) (*wrapperspb.BytesValue, error) {
	s := c.s
	token, err := bearerToken(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	who, err := s.auth.Authenticate(ctx, token, nil)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "certificate: %v", err)
	}
	csrDER := req.GetValue()
	if len(csrDER) == 0 || len(csrDER) > MaxCSRSize {
		return nil, status.Errorf(codes.InvalidArgument, "certificate: the request must hold a DER CSR of at most %d bytes", MaxCSRSize)
	}
	id, err := c.identity(who, csrDER)
	if err != nil {
		s.metrics.certsRefused.Inc()
		return nil, err
	}
	chain, notAfter, err := s.ca.Sign(csrDER, id, 0)
	if err != nil {
		s.metrics.certsRefused.Inc()
		return nil, status.Errorf(codes.InvalidArgument, "certificate: %v", err)
	}
	var out []byte
	for _, der := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	s.metrics.certsIssued.Inc()
	s.log.Info("issued certificate", "identity", id.String(), "holder", who.Subject, "not_after", notAfter.UTC().Format(time.RFC3339))
	return wrapperspb.Bytes(out), nil
}

// identity is the SPIFFE ID to certify: the token's namespace and service
// account. A token bound to no identity (the operator's token) certifies
// what the CSR asks for, within the trust domain.
func (c certService) identity(who Identity, csrDER []byte) (spiffeid.ID, error) {
	td := c.s.trustDomain
	if who.Namespace != "" && who.ServiceAccount != "" {
		id, err := spiffeid.New(td, who.Namespace, who.ServiceAccount)
		if err != nil {
			return spiffeid.ID{}, status.Errorf(codes.InvalidArgument, "certificate: %v", err)
		}
		return id, nil
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return spiffeid.ID{}, status.Errorf(codes.InvalidArgument, "certificate: parse CSR: %v", err)
	}
	if len(csr.URIs) != 1 {
		return spiffeid.ID{}, status.Error(codes.InvalidArgument, "certificate: the token names no identity, so the CSR must carry exactly one SPIFFE URI")
	}
	id, err := spiffeid.ParseID(csr.URIs[0].String())
	if err != nil {
		return spiffeid.ID{}, status.Errorf(codes.InvalidArgument, "certificate: CSR URI: %v", err)
	}
	if id.TrustDomain() != td {
		return spiffeid.ID{}, status.Errorf(codes.PermissionDenied, "certificate: trust domain %q, this mesh is %q", id.TrustDomain(), td)
	}
	if (who.Namespace != "" && who.Namespace != id.Namespace()) || (who.ServiceAccount != "" && who.ServiceAccount != id.ServiceAccount()) {
		return spiffeid.ID{}, status.Errorf(codes.PermissionDenied, "certificate: token cannot claim %s", id)
	}
	return id, nil
}

// registerCertService adds the service to g.
func (s *Server) registerCertService(g *grpc.Server) {
	svc := certService{s}
	g.RegisterService(&grpc.ServiceDesc{
		ServiceName: CertificateServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "CreateCertificate",
			Handler: func(_ any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
				req := new(wrapperspb.BytesValue)
				if err := dec(req); err != nil {
					return nil, err
				}
				if icpt == nil {
					return svc.create(ctx, req)
				}
				info := &grpc.UnaryServerInfo{Server: svc, FullMethod: CreateCertificateRPC}
				return icpt(ctx, req, info, func(ctx context.Context, r any) (any, error) {
					return svc.create(ctx, r.(*wrapperspb.BytesValue))
				})
			},
		}},
	}, svc)
}
