package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

func TestProxyNodeAdminAddr(t *testing.T) {
	n, err := proxyNode(proxyFlags{workload: "frontend", namespace: "shop", serviceAccount: "frontend", role: "sidecar", adminBound: "127.0.0.1:15000"})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.GetMetadata().GetFields()["admin_addr"].GetStringValue(); got != "127.0.0.1:15000" {
		t.Fatalf("admin_addr = %q, want 127.0.0.1:15000", got)
	}
	boot := &corev3.Node{Id: "from-bootstrap"}
	got := withAdminAddr(boot, "127.0.0.1:15001")
	if got.GetMetadata().GetFields()["admin_addr"].GetStringValue() != "127.0.0.1:15001" || boot.GetMetadata() != nil {
		t.Fatalf("withAdminAddr: %v (original %v)", got, boot)
	}
}

func TestOpenAccessLog(t *testing.T) {
	var out bytes.Buffer
	tests := []struct {
		name, dest string
		wantNil    bool
		wantErr    string
	}{
		{"off", "off", true, ""},
		{"empty", "", true, ""},
		{"stdout", "stdout", false, ""},
		{"file", filepath.Join(t.TempDir(), "access.log"), false, ""},
		{"unwritable", filepath.Join(t.TempDir(), "missing", "access.log"), true, "--access-log: open "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, closeFn, err := openAccessLog(tt.dest, &out)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if (w == nil) != tt.wantNil {
				t.Fatalf("writer %v, want nil %v", w, tt.wantNil)
			}
			if w != nil {
				w.Write([]byte("{}\n"))
			}
			if tt.name == "file" {
				closeFn()
				if b, _ := os.ReadFile(tt.dest); string(b) != "{}\n" {
					t.Fatalf("file holds %q", b)
				}
			}
		})
	}
	if out.String() != "{}\n" {
		t.Fatalf("stdout got %q", out.String())
	}
}

func TestProxyTraceSamplingFlag(t *testing.T) {
	err := runProxy(context.Background(), streams{out: &bytes.Buffer{}, err: &bytes.Buffer{}}, proxyFlags{config: "x.yaml", logLevel: "info", traceSampling: 2})
	if err == nil || err.Error() != "--trace-sampling: must be 0-1, got 2" {
		t.Fatalf("err = %v", err)
	}
}
