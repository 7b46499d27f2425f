package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/xds"
)

// TestOTLPHTTP posts exports to the OTLP/HTTP receivers of a hub whose
// authenticator takes "shop-token" for namespace shop.
func TestOTLPHTTP(t *testing.T) {
	h := New(Options{Clock: newFakeClock(), Auth: AuthFunc(func(ctx context.Context) (xds.Identity, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer shop-token" {
			return xds.Identity{}, status.Error(codes.Unauthenticated, "unknown token")
		}
		return xds.Identity{Subject: "shop-token", Namespace: "shop"}, nil
	})})
	mux := http.NewServeMux()
	h.RegisterOTLPHTTP(mux.Handle)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	spans, _ := proto.Marshal(benchSpanRequest(3))
	logs := benchLogRequest(2)
	logs.ResourceLogs[0].Resource = resource("billing", "ledger", "n1") // not shop's
	logBody, _ := proto.Marshal(logs)
	post := func(path, ctype, token, encoding string, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if encoding != "" {
			req.Header.Set("Content-Encoding", encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	const pb = "application/x-protobuf"
	for _, tc := range []struct {
		name, path, ctype, token, encoding string
		body                               []byte
		want                               int
		wantBody                           string // in the error text
	}{
		{"no token", "/v1/traces", pb, "", "", spans, 401, "unknown token"},
		{"unknown token", "/v1/traces", pb, "nope", "", spans, 401, "unknown token"},
		{"JSON", "/v1/traces", "application/json", "shop-token", "", spans, 415, "binary protobuf"},
		{"compressed", "/v1/traces", pb, "shop-token", "gzip", spans, 415, "gzip"},
		{"not a request", "/v1/logs", pb, "shop-token", "", []byte{0x0a, 0x05, 0x12}, 400, "unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(tc.path, tc.ctype, tc.token, tc.encoding, tc.body)
			if code != tc.want || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("%d %q, want %d with %q", code, body, tc.want, tc.wantBody)
			}
		})
	}
	if n := h.spans.len(); n != 0 {
		t.Fatalf("refused exports stored %d spans", n)
	}

	code, body := post("/v1/traces", pb, "shop-token", "", spans)
	var tr coltracepb.ExportTraceServiceResponse
	if code != 200 || proto.Unmarshal(body, &tr) != nil || tr.GetPartialSuccess() != nil || h.spans.len() != 3 {
		t.Fatalf("traces: %d %v, %d spans stored", code, &tr, h.spans.len())
	}
	// Another namespace's records: accepted as a request, rejected in the
	// partial success.
	code, body = post("/v1/logs", pb+"; charset=binary", "shop-token", "", logBody)
	var lr collogspb.ExportLogsServiceResponse
	if code != 200 || proto.Unmarshal(body, &lr) != nil || lr.GetPartialSuccess().GetRejectedLogRecords() != 2 || h.logs.len() != 0 {
		t.Fatalf("logs: %d %v, %d records stored", code, &lr, h.logs.len())
	}
	resp, err := http.Get(srv.URL + "/v1/traces")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d, want 405", resp.StatusCode)
	}
}
