package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// upApp is one small program, built by weft up from source, that serves
// two roles: "echo" answers with its instance name; "front" calls echo
// through its sidecar's upstream port and through HTTP_PROXY.
const upApp = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func main() {
	role := os.Args[1]
	fmt.Println(role, "listening on", os.Getenv("PORT"))
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if role == "echo" {
			fmt.Fprintf(w, "echo %s %s", os.Getenv("WEFT_INSTANCE"), r.URL.Path)
			return
		}
		fmt.Fprintf(w, "front[%s] | %s | %s", get("http://"+os.Getenv("UPSTREAM")+"/up"), get("http://echo."+os.Getenv("WEFT_NAMESPACE")+"/proxy"), os.Getenv("WEFT_INSTANCE"))
	})
	fmt.Fprintln(os.Stderr, http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
	os.Exit(1)
}
`

const upMesh = `apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: echo, namespace: demo}
spec:
  ports: [{name: http, port: 80}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: echo, namespace: demo}
spec:
  build: {go: ./app}
  args: [echo]
  replicas: 2
  readiness: {httpPath: /healthz, period: 200ms}
---
apiVersion: weft.dev/v1alpha1
kind: Service
metadata: {name: front, namespace: demo}
spec:
  ports: [{name: http, port: 80}]
  visibility: internet # the edge gateway may reach it
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: front, namespace: demo}
spec:
  build: {go: ./app}
  args: [front]
  env: {UPSTREAM: "127.0.0.1:%[1]d"}
  upstreams: [{service: echo, port: %[1]d}]
  readiness: {httpPath: /healthz, period: 200ms}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: demo}
spec:
  gatewayClassName: weft
  listeners: [{name: http, port: %[2]d, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: front, namespace: demo}
spec:
  parentRefs: [{name: edge}]
  rules: [{backendRefs: [{name: front, port: 80}]}]
`

// psEntry is what the test reads of `weft ps -o json`.
type psEntry struct {
	Kind        string `json:"kind"`
	Workload    string `json:"workload"`
	Instance    string `json:"instance"`
	PID         int    `json:"pid"`
	AppPort     int    `json:"appPort"`
	SidecarPID  int    `json:"sidecarPid"`
	InboundPort int    `json:"inboundPort"`
	HTTPProxy   int    `json:"httpProxyPort"`
	AdminPort   int    `json:"adminPort"`
	State       string `json:"state"`
	Restarts    int    `json:"restarts"`
}

// TestUp runs `weft up` on a small mesh built from source: readiness,
// traffic through an upstream port, HTTP_PROXY and a gateway, ps, a killed
// instance restarted, scale, logs, a second weft up refused, and Ctrl-C
// that leaves no process behind.
func TestUp(t *testing.T) {
	dir := t.TempDir()
	upPort, gwPort, apiPort := freePort(t), freePort(t), freePort(t)
	mustWrite(t, filepath.Join(dir, "go.mod"), "module uptest\n\ngo 1.22\n")
	mustWrite(t, filepath.Join(dir, "app", "main.go"), upApp)
	mustWrite(t, filepath.Join(dir, "mesh.yaml"), fmt.Sprintf(upMesh, upPort, gwPort))
	state := filepath.Join(dir, "state")
	server := fmt.Sprintf("127.0.0.1:%d", apiPort)

	t0 := time.Now()
	p := start(t, "up", "-f", dir, "--state-dir", state, "--api-addr", server)
	waitOutput(t, p, "\nweft: ready\n", 90*time.Second)
	t.Logf("ready after %s", time.Since(t0).Round(time.Millisecond))
	if out := p.output(); !strings.Contains(out, fmt.Sprintf("gateway demo/edge: http://127.0.0.1:%d/", gwPort)) ||
		!strings.Contains(out, "dashboard/API: http://"+server+"/") {
		t.Errorf("ready block lacks the URLs:\n%s", out)
	}

	// Traffic: the gateway reaches front, which reaches echo both ways.
	resp := waitPrefix(t, fmt.Sprintf("http://127.0.0.1:%d/", gwPort), "front[echo echo-")
	if !strings.Contains(resp, "/up] | echo echo-") || !strings.Contains(resp, " /proxy | front-0") {
		t.Errorf("through the gateway: %q", resp)
	}
	seen := echoInstances(t, fmt.Sprintf("http://127.0.0.1:%d/x", upPort), 2)
	t.Logf("upstream port reached %v", seen)

	ps := weftPs(t, server)
	if len(ps) != 4 {
		t.Fatalf("ps: want 4 instances (2 echo, front, edge), got %+v", ps)
	}
	byName := map[string]psEntry{}
	for _, e := range ps {
		byName[e.Instance] = e
		if e.State != "ready" || e.PID == 0 || e.AdminPort == 0 || e.Restarts != 0 {
			t.Errorf("ps entry %+v", e)
		}
		if e.Kind == "Workload" && (e.SidecarPID == 0 || e.AppPort == 0 || e.InboundPort == 0) {
			t.Errorf("ps workload entry %+v", e)
		}
	}
	if byName["edge-0"].Kind != "Gateway" || byName["echo-1"].Workload != "echo" {
		t.Errorf("ps: %+v", ps)
	}

	// A second weft up on the same state directory is refused.
	out, err := runWeft(t, "up", "-f", dir, "--state-dir", state, "--api-addr", "127.0.0.1:0")
	if err == nil || !strings.Contains(out, "state directory "+state+" is in use by another weft up (pid ") {
		t.Errorf("second weft up: %v\n%s", err, out)
	}

	// Kill an instance: it is restarted on the same port and serves again.
	killed := byName["echo-0"]
	if err := syscall.Kill(killed.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitPs(t, server, "echo-0 restarted", func(ps []psEntry) bool {
		for _, e := range ps {
			if e.Instance == "echo-0" {
				return e.Restarts == 1 && e.State == "ready" && e.PID != killed.PID
			}
		}
		return false
	})
	echoInstances(t, fmt.Sprintf("http://127.0.0.1:%d/x", upPort), 2)

	// Scale: stored in the Workload, three instances serve.
	if out, err := runWeft(t, "scale", "echo=3", "--server", server); err != nil || !strings.Contains(out, "workload demo/echo scaled from 2 to 3") {
		t.Fatalf("scale: %v\n%s", err, out)
	}
	ps = waitPs(t, server, "3 echo instances ready", func(ps []psEntry) bool {
		n := 0
		for _, e := range ps {
			if e.Workload == "echo" && e.State == "ready" {
				n++
			}
		}
		return n == 3
	})
	echoInstances(t, fmt.Sprintf("http://127.0.0.1:%d/x", upPort), 3)
	out, err = runWeft(t, "get", "workload", "echo", "-n", "demo", "--server", server, "-o", "json")
	var wl struct {
		Spec struct {
			Replicas int `json:"replicas"`
		} `json:"spec"`
	}
	if err != nil || json.Unmarshal([]byte(out), &wl) != nil || wl.Spec.Replicas != 3 {
		t.Errorf("get workload after scale: %v\n%s", err, out)
	}
	if out, err := runWeft(t, "logs", "echo", "--server", server); err != nil || !strings.Contains(out, "[echo-2] echo listening on") {
		t.Errorf("logs: %v\n%s", err, out)
	}

	// Ctrl-C stops everything, quickly, and leaves nothing behind.
	var pids []int
	for _, e := range ps {
		pids = append(pids, e.PID, e.SidecarPID)
	}
	stopAt := time.Now()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("weft up did not stop within 10s of SIGINT")
	}
	t.Logf("stopped in %s", time.Since(stopAt).Round(time.Millisecond))
	if p.err != nil {
		t.Errorf("weft up exited with %v", p.err)
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("process %d survived weft up", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitOutput polls the process's output for want (bounded): output is all
// a separate process offers.
func waitOutput(t *testing.T, p *process, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(p.output(), want) {
		select {
		case <-p.done:
			t.Fatalf("weft exited (%v) before printing %q", p.err, want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after %s", want, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitPrefix polls url until the body starts with prefix (bounded).
func waitPrefix(t *testing.T, url, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for {
		body, err := httpGet(url)
		if err == nil && strings.HasPrefix(body, prefix) {
			return body
		}
		last = fmt.Sprint(body, err)
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: want a body starting with %q, last %s", url, prefix, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return string(b), err
}

// echoInstances sends requests through url until n distinct echo
// instances answered (bounded), and returns them.
func echoInstances(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < n {
		body, err := httpGet(url)
		if err == nil && strings.HasPrefix(body, "echo ") {
			seen[strings.Fields(body)[1]]++
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: want %d echo instances, saw %v (last %q %v)", url, n, seen, body, err)
		}
	}
	return seen
}

func weftPs(t *testing.T, server string) []psEntry {
	t.Helper()
	out, err := runWeft(t, "ps", "-o", "json", "--server", server)
	if err != nil {
		t.Fatalf("weft ps: %v\n%s", err, out)
	}
	var ps []psEntry
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("weft ps -o json: %v\n%s", err, out)
	}
	return ps
}

// waitPs polls `weft ps -o json` until cond holds (bounded).
func waitPs(t *testing.T, server, what string, cond func([]psEntry) bool) []psEntry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps := weftPs(t, server)
		if cond(ps) {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: ps %+v", what, ps)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processAlive reports whether pid runs (a zombie does not count).
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) < 3 || f[2] != "Z"
}
