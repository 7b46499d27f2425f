package up

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-mesh/weft/control"
	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/store"
)

// testRuntime is a Runtime without the xDS side: its store watch, its
// supervisor and its API endpoints, with the test binary as the program
// and as a fake `weft proxy`.
type testRuntime struct {
	rt     *Runtime
	st     store.Store
	client *Client
	out    *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestRuntime(t *testing.T) *testRuntime {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	// Proxies inherit this; programs set their own mode in their env.
	t.Setenv(modeEnv, "proxy")
	out := &lockedBuffer{}
	rt := &Runtime{
		out: &syncWriter{w: out}, log: slog.Default(),
		built: map[string]string{}, units: map[string]Unit{}, gateways: map[string][]string{},
		plane:    &control.Plane{Store: st},
		stopping: make(chan struct{}),
		env:      unitEnv{stateDir: t.TempDir(), cwd: t.TempDir(), weft: self, xdsAddr: "127.0.0.1:1", joinToken: "tok"},
	}
	rt.sup = newTestSupervisor(t, SupervisorOptions{StopTimeout: 2 * time.Second})
	a := api.New(st, api.Options{})
	rt.registerAPI(a)
	srv := httptest.NewServer(a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rt.watch(ctx) }()
	t.Cleanup(func() {
		close(rt.stopping)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watch: %v", err)
		}
		srv.Close()
		st.Close()
	})
	return &testRuntime{rt: rt, st: st, client: NewClient(srv.URL, nil), out: out}
}

func (tr *testRuntime) apply(t *testing.T, doc string) {
	t.Helper()
	objs, err := resource.Decode("test.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.st.Apply(context.Background(), objs, store.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
}

func webDoc(replicas int, extraEnv string) string {
	self, _ := os.Executable()
	return `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  command: ["` + self + `"]
  replicas: ` + string(rune('0'+replicas)) + `
  env: {UP_TEST_MODE: serve` + extraEnv + `}
  readiness: {httpPath: /ready, period: 50ms}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: remote}
spec: {service: web}
`
}

func apiError(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != status || !strings.Contains(ae.Message, msg) {
		t.Errorf("error %v, want %d %q", err, status, msg)
	}
}

func TestRuntimeFollowsTheStore(t *testing.T) {
	tr := newTestRuntime(t)
	ctx := context.Background()
	tr.apply(t, webDoc(2, ""))
	wait(t, tr.rt.sup, "2 ready", allReady(2))

	list, err := tr.client.Instances(ctx, "")
	if err != nil || len(list) != 2 || list[0].Instance != "web-0" || list[0].SidecarPID == 0 || list[1].AppPort == 0 {
		t.Fatalf("instances: %v %+v", err, list)
	}
	if l, err := tr.client.Instances(ctx, "other"); err != nil || len(l) != 0 {
		t.Errorf("instances of another namespace: %v %+v", err, l)
	}

	// Scale through the API: stored, then run.
	res, err := tr.client.Scale(ctx, "", "web", 3)
	if err != nil || res != (ScaleResponse{Namespace: "default", Workload: "web", Replicas: 3, Previous: 2}) {
		t.Fatalf("scale: %v %+v", err, res)
	}
	o, _ := tr.st.Get(ctx, resource.Key{Kind: resource.KindWorkload, Namespace: "default", Name: "web"})
	if *o.Workload().Replicas != 3 {
		t.Errorf("stored replicas %d", *o.Workload().Replicas)
	}
	l3 := wait(t, tr.rt.sup, "3 ready", allReady(3))
	if l3[0].PID != list[0].PID {
		t.Error("scaling restarted web-0")
	}
	_, err = tr.client.Scale(ctx, "", "nope", 1)
	apiError(t, err, 404, `weft up runs no workload or gateway "nope"`)
	_, err = tr.client.Scale(ctx, "default", "remote", 1)
	apiError(t, err, 422, "workload default/remote has neither command nor build: weft up does not run it")
	_, err = tr.client.Scale(ctx, "default", "web", -1)
	apiError(t, err, 422, "spec.replicas: must be in 0-10000, got -1")

	// Logs: the programs' and the proxies'.
	var b bytes.Buffer
	if err := tr.client.Logs(ctx, LogsQuery{Workload: "web", Tail: -1}, &b); err != nil {
		t.Fatal(err)
	}
	for _, st := range l3 {
		if want := "[" + st.Instance + "] serving on "; !strings.Contains(b.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	tr.client.Logs(ctx, LogsQuery{Workload: "web", Instance: "web-1", Sidecar: true, Tail: -1}, &b)
	if !strings.Contains(b.String(), "[web-1 proxy] proxy token tok\n") || strings.Contains(b.String(), "web-0") {
		t.Errorf("sidecar logs:\n%s", b.String())
	}
	err = tr.client.Logs(ctx, LogsQuery{Workload: "web", Instance: "web-9"}, io.Discard)
	apiError(t, err, 404, `no instance "web-9" of default/web`)

	// Follow: a new instance's lines arrive.
	fctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	followed := make(chan error, 1)
	go func() {
		followed <- tr.client.Logs(fctx, LogsQuery{Workload: "web", Follow: true, Tail: 0}, pw)
		pw.Close()
	}()
	if _, err := tr.client.Scale(ctx, "default", "web", 4); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pr)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "[web-3] serving on ") {
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-followed; err != nil {
		t.Errorf("follow: %v", err)
	}
	wait(t, tr.rt.sup, "4 ready", allReady(4))

	// A changed spec replaces the instances; a delete stops them.
	before := tr.rt.sup.Instances()
	tr.apply(t, webDoc(1, ", X: changed"))
	after := wait(t, tr.rt.sup, "replaced", func(l []InstanceStatus) bool { return allReady(1)(l) && l[0].PID != before[0].PID })
	if after[0].AppPort != before[0].AppPort {
		t.Errorf("web-0 changed port")
	}
	if _, err := tr.st.Delete(ctx, []resource.Key{{Kind: resource.KindWorkload, Namespace: "default", Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	wait(t, tr.rt.sup, "deleted", func(l []InstanceStatus) bool { return len(l) == 0 })
	out := tr.out.String()
	for _, want := range []string{
		"weft: starting workload default/web (2 instances)",
		"weft: scaling default/web from 2 to 3",
		"weft: workload default/web changed: replacing its instances",
		"weft: workload default/web removed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestClientAgainstPlainControlPlane(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := httptest.NewServer(api.New(st, api.Options{}))
	defer srv.Close()
	_, err = NewClient(srv.URL, nil).Instances(context.Background(), "")
	apiError(t, err, 404, "is not run by weft up (no API endpoint /api/v1/runtime/instances)")
	_, err = NewClient("127.0.0.1:1", nil).Instances(context.Background(), "")
	if err == nil || !strings.Contains(err.Error(), "cannot reach weft up at http://127.0.0.1:1") {
		t.Errorf("unreachable: %v", err)
	}
}
