package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShopDemo runs the demo as a user does (`weft up -f examples/shop`):
// buy something through the gateway, see both catalog versions share the
// traffic about 90/10, kill a catalog instance and see it restarted and
// back in rotation without failed requests, every proxy ACKed, and Ctrl-C
// leaving no process behind. The demo's gateway port (8080) must be free.
func TestShopDemo(t *testing.T) {
	demo := startShopDemo(t)
	p, server, gw := demo.proc, demo.server, demo.gateway

	// Buy something.
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(gw+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/api/cart/e2e/items", `{"sku":"mug","qty":2}`); code != 200 {
		t.Fatalf("add to cart: %d %s", code, body)
	}
	code, body := post("/api/checkout/e2e", "")
	var order struct {
		ID         string `json:"id"`
		TotalCents int    `json:"totalCents"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &order) != nil || order.ID == "" || order.TotalCents != 2400 {
		t.Fatalf("checkout: %d %s", code, body)
	}

	// Only the frontend may call checkout: the order above went through
	// (frontend's identity), a call from the catalog's sidecar is refused
	// by the policy, and a plaintext call that guessed checkout's inbound
	// port never gets an answer (STRICT mTLS).
	var checkoutIn, catalogProxy int
	for _, e := range weftPs(t, server) {
		switch {
		case e.Workload == "checkout":
			checkoutIn = e.InboundPort
		case e.Workload == "catalog-v1":
			catalogProxy = e.HTTPProxy
		}
	}
	if checkoutIn == 0 || catalogProxy == 0 {
		t.Fatal("weft ps shows no checkout inbound port or catalog HTTP proxy port")
	}
	viaCatalog, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/checkout/e2e", catalogProxy), nil)
	if err != nil {
		t.Fatal(err)
	}
	viaCatalog.Host = "checkout.shop"
	resp, err := http.DefaultClient.Do(viaCatalog)
	if err != nil {
		t.Fatal(err)
	}
	denied, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Weft-Reason") != "rbac_access_denied" {
		t.Fatalf("catalog -> checkout: %d %q %s, want 403 rbac_access_denied", resp.StatusCode, resp.Header.Get("X-Weft-Reason"), denied)
	}
	if resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/checkout/e2e", checkoutIn), "application/json", nil); err == nil {
		resp.Body.Close()
		t.Fatalf("a plaintext client reached checkout's STRICT inbound listener: %d", resp.StatusCode)
	}

	// Both catalog versions get traffic, about 90/10 (binomial, n=400:
	// 10% ± 5 standard deviations is 3%..17%).
	versions := map[string]int{}
	const n = 400
	for i := 0; i < n; i++ {
		resp, err := http.Get(gw + "/api/products")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("products: %d", resp.StatusCode)
		}
		versions[resp.Header.Get("X-Catalog-Version")]++
	}
	t.Logf("catalog versions over %d requests: %v", n, versions)
	if v2 := versions["v2"]; versions["v1"]+v2 != n || v2 < n*3/100 || v2 > n*17/100 {
		t.Fatalf("catalog split %v, want about 90/10", versions)
	}

	// Kill one catalog-v1 instance: restarted and back in rotation, and
	// the shop keeps answering meanwhile (retries go to the other replica).
	var victim psEntry
	for _, e := range weftPs(t, server) {
		if e.Instance == "catalog-v1-0" {
			victim = e
		}
	}
	if victim.PID == 0 {
		t.Fatal("no catalog-v1-0 in weft ps")
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failures := 0
	waitPs(t, server, "catalog-v1-0 restarted", func(ps []psEntry) bool {
		if resp, err := http.Get(gw + "/api/products"); err != nil || resp.StatusCode != 200 {
			failures++
		} else {
			resp.Body.Close()
		}
		for _, e := range ps {
			if e.Instance == "catalog-v1-0" {
				return e.Restarts >= 1 && e.State == "ready" && e.PID != victim.PID
			}
		}
		return false
	})
	t.Logf("requests failed while catalog-v1-0 restarted: %d", failures)
	instances := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for !instances["catalog-v1-0"] {
		resp, err := http.Get(gw + "/api/products")
		if err == nil {
			instances[resp.Header.Get("X-Catalog-Instance")] = true
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted catalog-v1-0 never served again (saw %v)", instances)
		}
	}

	// Every proxy is connected and ACKed.
	out, err := runWeft(t, "get", "proxies", "-A", "--server", server, "-o", "json")
	var list struct {
		Items []struct {
			ID       string `json:"id"`
			Synced   bool   `json:"synced"`
			LastNack string `json:"lastNack"`
		} `json:"items"`
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("get proxies: %v\n%s", err, out)
	}
	if len(list.Items) != 7 { // 6 sidecars and the gateway
		t.Errorf("want 7 proxies, got %d:\n%s", len(list.Items), out)
	}
	for _, px := range list.Items {
		if !px.Synced || px.LastNack != "" {
			t.Errorf("proxy %s: synced=%v nack=%q", px.ID, px.Synced, px.LastNack)
		}
	}

	// Ctrl-C: everything stops within 10 s and no process is left.
	var pids []int
	for _, e := range weftPs(t, server) {
		pids = append(pids, e.PID, e.SidecarPID)
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("weft up did not stop within 10s of SIGINT")
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("process %d survived weft up", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
