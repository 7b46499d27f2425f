//go:build !proxyonly

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/up"
)

func TestUpCommandErrors(t *testing.T) {
	t.Setenv(serverEnv, "127.0.0.1:1")
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {replicas: x}\n"), 0o644)
	state := filepath.Join(dir, "state")
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"up"}, `weft: required flag(s) "filename" not set`},
		{[]string{"up", "-f", bad, "--state-dir", state}, "weft: invalid mesh (nothing was started):\n" + bad + ": document 1 (Workload default/a): spec.replicas: expected an integer"},
		{[]string{"up", "-f", bad, "--log-level", "loud"}, "weft: --log-level"},
		{[]string{"scale", "web"}, `weft: argument "web": want WORKLOAD=N with N >= 0`},
		{[]string{"scale", "web=-1"}, `weft: argument "web=-1": want WORKLOAD=N with N >= 0`},
		{[]string{"scale", "web=2"}, "error: cannot reach weft up at http://127.0.0.1:1"},
		{[]string{"ps", "-o", "yaml"}, `weft: -o: want json or wide, got "yaml"`},
		{[]string{"ps"}, "error: cannot reach weft up at http://127.0.0.1:1"},
		{[]string{"logs"}, "weft: give a WORKLOAD, or --trace ID"},
		{[]string{"logs", "web"}, "error: cannot reach weft up at http://127.0.0.1:1"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := run(t, "", tc.args...)
			if r.code != 1 || !strings.Contains(r.err, tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", r.code, r.err, tc.wantErr)
			}
		})
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("an invalid mesh created the state directory: %v", err)
	}
}

func TestPrintInstances(t *testing.T) {
	now := time.Unix(1000, 0)
	list := []up.InstanceStatus{
		{Kind: up.KindWorkload, Namespace: "shop", Workload: "catalog", Instance: "catalog-0", State: up.StateReady, PID: 10, AppPort: 1001,
			SidecarPID: 11, InboundPort: 1002, AdminPort: 1003, HTTPProxyPort: 1004, Restarts: 2, SidecarRestarts: 1, StartedAt: now.Add(-90 * time.Second)},
		{Kind: up.KindWorkload, Namespace: "shop", Workload: "catalog", Instance: "catalog-1", State: up.StateBackoff, Backoff: "400ms",
			SidecarPID: 12, AppPort: 1011, InboundPort: 1012, AdminPort: 1013, Restarts: 3, LastExit: "exit status 2"},
		{Kind: up.KindGateway, Namespace: "shop", Workload: "edge", Instance: "edge-0", State: up.StateReady, PID: 20, SidecarPID: 20, AdminPort: 2001, StartedAt: now},
	}
	var out strings.Builder
	printInstances(streams{out: &out}, list, true, now)
	want := `NAMESPACE   INSTANCE    KIND       STATE             PID   PORT   SIDECAR   INBOUND   ADMIN   RESTARTS         AGE   HTTP PROXY   LAST EXIT
shop        catalog-0   workload   ready             10    1001   11        1002      1003    2 (+1 sidecar)   90s   1004         <none>
shop        catalog-1   workload   backoff (400ms)   -     1011   12        1012      1013    3                -     -            exit status 2
shop        edge-0      gateway    ready             20    -      -         -         2001    0                0s    -            <none>
`
	if out.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", out.String(), want)
	}
}
