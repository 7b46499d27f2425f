package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const meshDoc = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: catalog}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: catalog}
spec:
  command: ["catalog"]
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: frontend}
spec:
  ports: [{name: http, port: 80, targetPort: 8080, protocol: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: frontend}
spec:
  command: ["frontend"]
  upstreams: [{service: catalog, port: %d}]
`

// TestMeshThroughControlPlane runs weft control and two sidecars as
// processes: the frontend's sidecar reaches the catalog through the
// catalog's sidecar, by upstream port and by HTTP proxy, and both proxies
// show as ACKed in `weft get proxies`.
func TestMeshThroughControlPlane(t *testing.T) {
	catalog := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "catalog %s %s", r.URL.Path, r.Host)
	}))
	defer catalog.Close()
	catalogPort := catalog.Listener.Addr().(interface{ String() string }).String()
	_, appPort, _ := strings.Cut(catalogPort, ":")

	dir := t.TempDir()
	api, xdsPort := freePort(t), freePort(t)
	server := fmt.Sprintf("127.0.0.1:%d", api)
	ctl := start(t, "control", "--state-dir", filepath.Join(dir, "state"), "--api-addr", server, "--xds-addr", fmt.Sprintf("127.0.0.1:%d", xdsPort))
	waitHTTP(t, ctl, "http://"+server+"/healthz")

	upPort := freePort(t)
	mesh := filepath.Join(dir, "mesh.yaml")
	os.WriteFile(mesh, []byte(fmt.Sprintf(meshDoc, upPort)), 0o644)
	if out, err := runWeft(t, "apply", "--server", server, "-f", mesh); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	token, err := os.ReadFile(filepath.Join(dir, "state", "join-token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(token))
	xdsAddr := fmt.Sprintf("127.0.0.1:%d", xdsPort)

	catIn, catAdmin := freePort(t), freePort(t)
	cat := start(t, "proxy", "--xds-addr", xdsAddr, "--token", tok, "--workload", "catalog", "--service", "catalog",
		"--node-id", "catalog-0.default", "--app-port", appPort, "--inbound-port", strconv.Itoa(catIn),
		"--admin-addr", fmt.Sprintf("127.0.0.1:%d", catAdmin))
	feIn, feAdmin, feProxy := freePort(t), freePort(t), freePort(t)
	fe := start(t, "proxy", "--xds-addr", xdsAddr, "--token", tok, "--workload", "frontend", "--service", "frontend",
		"--node-id", "frontend-0.default", "--app-port", "1", "--inbound-port", strconv.Itoa(feIn),
		"--http-proxy-port", strconv.Itoa(feProxy), "--admin-addr", fmt.Sprintf("127.0.0.1:%d", feAdmin))
	waitReady(t, cat, catAdmin)
	waitReady(t, fe, feAdmin)

	// Upstream port: 127.0.0.1:upPort reaches the catalog service.
	waitBody(t, fmt.Sprintf("http://127.0.0.1:%d/items", upPort), nil, fmt.Sprintf("catalog /items 127.0.0.1:%d", upPort))
	// HTTP proxy mode: http://catalog.default/ through the frontend's sidecar.
	pu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", feProxy))
	viaProxy := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}
	waitBody(t, "http://catalog.default/p", viaProxy, "catalog /p catalog.default")

	// Both proxies connected and ACKed.
	out, err := runWeft(t, "get", "proxies", "-A", "--server", server, "-o", "json")
	if err != nil {
		t.Fatalf("get proxies: %v\n%s", err, out)
	}
	var list struct {
		Items []struct {
			ID       string `json:"id"`
			Synced   bool   `json:"synced"`
			LastNack string `json:"lastNack"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("get proxies -o json: %v\n%s", err, out)
	}
	if len(list.Items) != 2 {
		t.Fatalf("want 2 proxies, got:\n%s", out)
	}
	for _, p := range list.Items {
		if !p.Synced || p.LastNack != "" {
			t.Errorf("proxy %s: synced=%v nack=%q", p.ID, p.Synced, p.LastNack)
		}
	}
	table, err := runWeft(t, "get", "proxies", "--server", server)
	if err != nil || !strings.Contains(table, "catalog-0.default") || !strings.Contains(table, "frontend-0.default") {
		t.Fatalf("get proxies table: %v\n%s", err, table)
	}
}

// runWeft runs a CLI verb to completion.
func runWeft(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := execCommand(ctx, weftBin, args...).CombinedOutput()
	return string(out), err
}

// waitHTTP polls url until it answers 200 (bounded).
func waitHTTP(t *testing.T, p *process, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("process exited: %v", p.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not up after 30s", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitBody polls url until the body equals want: config reaches proxies
// asynchronously, and polling is all a separate process offers (bounded).
func waitBody(t *testing.T, url string, c *http.Client, want string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
			if resp.StatusCode == 200 && string(b) == want {
				return
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: want %q, last answer %s", url, want, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
