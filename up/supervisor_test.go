package up

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// newTestSupervisor returns a supervisor that is shut down at the end of
// the test, checking that no program it started is left.
func newTestSupervisor(t *testing.T, opts SupervisorOptions) *Supervisor {
	t.Helper()
	if opts.LogDir == "" {
		opts.LogDir = t.TempDir()
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 2 * time.Second
	}
	s := NewSupervisor(opts)
	var pids []int
	var mu sync.Mutex
	t.Cleanup(func() {
		for _, st := range s.Instances() {
			pids = append(pids, st.PID, st.SidecarPID)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("process %d still runs after Shutdown", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return s
}

func wait(t *testing.T, s *Supervisor, what string, cond func([]InstanceStatus) bool) []InstanceStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []InstanceStatus
	err := s.Wait(ctx, func(l []InstanceStatus) bool {
		got = l
		return cond(l)
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v; instances: %+v", what, err, got)
	}
	return got
}

func allReady(n int) func([]InstanceStatus) bool {
	return func(l []InstanceStatus) bool {
		if len(l) != n {
			return false
		}
		for _, st := range l {
			if st.State != StateReady {
				return false
			}
		}
		return true
	}
}

func get(t *testing.T, port int, path string) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestScaleUpAndDown(t *testing.T) {
	s := newTestSupervisor(t, SupervisorOptions{})
	u := Unit{Kind: KindWorkload, Namespace: "shop", Name: "catalog", Replicas: 2, App: fakeCommand(t, "serve"),
		Readiness: Readiness{HTTPPath: "/ready", Period: 50 * time.Millisecond}, Proxy: fakeProxy(t), Revision: "1"}
	if err := s.Set(u); err != nil {
		t.Fatal(err)
	}
	l := wait(t, s, "2 ready", allReady(2))
	for i, st := range l {
		name := "catalog-" + strconv.Itoa(i)
		if st.Instance != name || st.NodeID != name+".shop" || st.PID == 0 || st.SidecarPID == 0 || !st.SidecarReady {
			t.Errorf("instance %d: %+v", i, st)
		}
		want := fmt.Sprintf("%s http://127.0.0.1:%d", name, st.HTTPProxyPort)
		if got := get(t, st.AppPort, "/"); got != want {
			t.Errorf("GET %s: %q, want %q", name, got, want)
		}
	}

	if err := s.Scale("shop", "catalog", 3); err != nil {
		t.Fatal(err)
	}
	l3 := wait(t, s, "3 ready", allReady(3))
	if l3[0].PID != l[0].PID || l3[1].PID != l[1].PID {
		t.Errorf("scale up restarted running instances: %+v -> %+v", l, l3)
	}

	if err := s.Scale("shop", "catalog", 1); err != nil {
		t.Fatal(err)
	}
	l1 := wait(t, s, "1 instance", allReady(1))
	if l1[0].Instance != "catalog-0" || l1[0].PID != l[0].PID {
		t.Errorf("scale down kept %+v, want catalog-0 pid %d", l1[0], l[0].PID)
	}
	for _, st := range l3[1:] {
		if alive(st.PID) || alive(st.SidecarPID) {
			t.Errorf("%s: pid %d or sidecar %d still runs after scale down", st.Instance, st.PID, st.SidecarPID)
		}
	}
	if err := s.Scale("shop", "nope", 1); err == nil || !strings.Contains(err.Error(), "scale shop/nope: no such workload") {
		t.Errorf("scale unknown: %v", err)
	}
	if err := s.Scale("shop", "catalog", -1); err == nil || !strings.Contains(err.Error(), "replicas must be >= 0, got -1") {
		t.Errorf("scale -1: %v", err)
	}
}

func TestCrashRestartsWithBackoff(t *testing.T) {
	clk := newFakeClock()
	s := newTestSupervisor(t, SupervisorOptions{Clock: clk})
	serveIf := filepath.Join(t.TempDir(), "serve")
	u := Unit{Kind: KindWorkload, Namespace: "default", Name: "flaky", Replicas: 1,
		App: fakeCommand(t, "crash", "UP_TEST_SERVE_IF="+serveIf), Readiness: Readiness{TCP: true, Period: time.Hour}, Revision: "1"}
	if err := s.Set(u); err != nil {
		t.Fatal(err)
	}
	backoffs := []string{"100ms", "200ms", "400ms", "800ms", "1.6s", "3.2s", "6.4s", "10s", "10s"}
	for i, want := range backoffs {
		restarts := i + 1
		l := wait(t, s, fmt.Sprintf("restart %d", restarts), func(l []InstanceStatus) bool {
			return len(l) == 1 && l[0].State == StateBackoff && l[0].Restarts == restarts
		})
		st := l[0]
		if st.Backoff != want || st.LastExit != "exit status 2" || st.PID != 0 || !st.NextRestart.Equal(clk.Now().Add(mustDuration(t, want))) {
			t.Fatalf("after exit %d: backoff %s, lastExit %q, pid %d, next restart in %s; want backoff %s",
				restarts, st.Backoff, st.LastExit, st.PID, st.NextRestart.Sub(clk.Now()), want)
		}
		// Not restarted before the backoff has passed.
		clk.Advance(mustDuration(t, want) - time.Millisecond)
		if st := s.Instances()[0]; st.State != StateBackoff {
			t.Fatalf("restarted %s early: %+v", time.Millisecond, st)
		}
		clk.Advance(time.Millisecond)
	}
	// Now it serves: ready, and after BackoffReset of healthy running the
	// next crash starts over at 100ms.
	os.WriteFile(serveIf, nil, 0o600)
	clk.Advance(10 * time.Second)
	l := clk.advanceUntil(t, s, 100*time.Millisecond, func(l []InstanceStatus) bool { return l[0].State == StateReady })
	if l[0].Restarts != len(backoffs) {
		t.Errorf("restarts = %d, want %d", l[0].Restarts, len(backoffs))
	}
	clk.Advance(DefaultBackoffReset)
	syscall.Kill(l[0].PID, syscall.SIGKILL)
	l = wait(t, s, "killed", func(l []InstanceStatus) bool { return l[0].Restarts == len(backoffs)+1 })
	if l[0].Backoff != "100ms" || l[0].LastExit != "signal: killed" {
		t.Errorf("after a healthy run: backoff %s lastExit %q, want 100ms, signal: killed", l[0].Backoff, l[0].LastExit)
	}
	logs := s.Logs("default", "flaky", false)
	if len(logs) != 1 || logs[0].Instance != "flaky-0" {
		t.Fatalf("logs: %+v", logs)
	}
	lines, _, _ := logs[0].Sink.Tail(-1)
	if n := countLines(lines, "crashing"); n != len(backoffs) {
		t.Errorf("log has %d crash lines, want %d", n, len(backoffs))
	}
}

func countLines(lines []Line, text string) int {
	n := 0
	for _, l := range lines {
		if l.Text == text {
			n++
		}
	}
	return n
}

func mustDuration(t *testing.T, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReadinessTransitions(t *testing.T) {
	unready := filepath.Join(t.TempDir(), "unready")
	os.WriteFile(unready, nil, 0o600)
	var mu sync.Mutex
	var hook []bool
	var events []string
	s := newTestSupervisor(t, SupervisorOptions{
		OnReadiness: func(u *Unit, st InstanceStatus) {
			mu.Lock()
			defer mu.Unlock()
			if n := len(hook); n == 0 || hook[n-1] != st.Ready {
				hook = append(hook, st.Ready)
			}
		},
		OnEvent: func(e Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e.Instance.Name+" "+e.Message)
		},
	})
	u := Unit{Kind: KindWorkload, Namespace: "default", Name: "web", Replicas: 1, App: fakeCommand(t, "serve", "UP_TEST_UNREADY="+unready),
		Readiness: Readiness{HTTPPath: "/ready", Period: 20 * time.Millisecond, FailureThreshold: 2}, Revision: "1"}
	s.Set(u)
	l := wait(t, s, "failing probe", func(l []InstanceStatus) bool {
		return len(l) == 1 && strings.Contains(l[0].LastProbe, "503 Service Unavailable")
	})
	if l[0].State != StateStarting || l[0].Ready {
		t.Fatalf("before readiness: %+v", l[0])
	}
	if !strings.Contains(l[0].LastProbe, "503 Service Unavailable") {
		t.Errorf("last probe %q", l[0].LastProbe)
	}
	os.Remove(unready)
	wait(t, s, "ready", allReady(1))
	os.WriteFile(unready, nil, 0o600)
	l = wait(t, s, "unready", func(l []InstanceStatus) bool { return l[0].State == StateUnready })
	if l[0].Ready || l[0].PID == 0 || l[0].Restarts != 0 {
		t.Errorf("unready: %+v", l[0])
	}
	os.Remove(unready)
	wait(t, s, "ready again", allReady(1))
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(hook) != "[false true false true]" {
		t.Errorf("OnReadiness saw %v, want [false true false true]", hook)
	}
	want := regexp.MustCompile(`^web-0 started \(pid \d+, port \d+\),web-0 ready,web-0 unready \(GET http://127.0.0.1:\d+/ready: 503 Service Unavailable\),web-0 ready$`)
	if got := strings.Join(events, ","); !want.MatchString(got) {
		t.Errorf("events: %s", got)
	}
}

func TestCrashedInstanceRestartsOnSamePort(t *testing.T) {
	s := newTestSupervisor(t, SupervisorOptions{})
	s.Set(Unit{Kind: KindWorkload, Namespace: "default", Name: "web", Replicas: 1, App: fakeCommand(t, "serve"),
		Readiness: Readiness{HTTPPath: "/ready", Period: 20 * time.Millisecond}, Proxy: fakeProxy(t), Revision: "1"})
	before := wait(t, s, "ready", allReady(1))[0]
	http.Get(fmt.Sprintf("http://127.0.0.1:%d/exit", before.AppPort))
	after := wait(t, s, "restarted and ready", func(l []InstanceStatus) bool {
		return len(l) == 1 && l[0].Restarts == 1 && l[0].State == StateReady
	})[0]
	if after.AppPort != before.AppPort || after.SidecarPID != before.SidecarPID || after.PID == before.PID || after.LastExit != "exit status 3" {
		t.Errorf("before %+v\nafter %+v", before, after)
	}
	if got := get(t, after.AppPort, "/"); !strings.HasPrefix(got, "web-0 ") {
		t.Errorf("GET after restart: %q", got)
	}
	// A proxy that dies is restarted too, without touching the program.
	syscall.Kill(after.SidecarPID, syscall.SIGKILL)
	again := wait(t, s, "proxy restarted", func(l []InstanceStatus) bool {
		return l[0].SidecarRestarts == 1 && l[0].State == StateReady
	})[0]
	if again.PID != after.PID || again.Restarts != 1 {
		t.Errorf("proxy restart touched the program: %+v", again)
	}
}

func TestShutdownKillsProcessGroups(t *testing.T) {
	s := NewSupervisor(SupervisorOptions{LogDir: t.TempDir(), StopTimeout: 200 * time.Millisecond})
	s.Set(Unit{Kind: KindWorkload, Namespace: "default", Name: "stuck", Replicas: 2, App: fakeCommand(t, "hang"), Proxy: fakeProxy(t), Revision: "1"})
	l := wait(t, s, "running", allReady(2))
	var pids []int
	for _, st := range l {
		pids = append(pids, st.PID, st.SidecarPID)
		var lines []Line
		for {
			var ch <-chan struct{}
			lines, _, ch = s.Logs("default", "stuck", false)[st.Instance[len(st.Instance)-1]-'0'].Sink.Tail(-1)
			if len(lines) > 0 {
				break
			}
			<-ch
		}
		var gc int
		if _, err := fmt.Sscanf(lines[0].Text, "grandchild %d", &gc); err != nil {
			t.Fatalf("%s: first log line %q", st.Instance, lines[0].Text)
		}
		pids = append(pids, gc)
	}
	for _, pid := range pids {
		if !alive(pid) {
			t.Fatalf("pid %d not running before shutdown", pid)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	for _, pid := range pids {
		if alive(pid) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			t.Errorf("pid %d survived shutdown: %s", pid, b)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if err := s.Set(Unit{Namespace: "a", Name: "b", App: &Command{Path: "x"}}); err != ErrShutdown {
		t.Errorf("Set after Shutdown: %v", err)
	}
}

func TestRevisionChangeReplacesInstances(t *testing.T) {
	s := newTestSupervisor(t, SupervisorOptions{})
	u := Unit{Kind: KindWorkload, Namespace: "default", Name: "web", Replicas: 2, App: fakeCommand(t, "serve"),
		Readiness: Readiness{HTTPPath: "/ready", Period: 20 * time.Millisecond}, Revision: "1"}
	s.Set(u)
	before := wait(t, s, "ready", allReady(2))
	u.Revision = "2"
	u.Replicas = 1
	s.Set(u)
	after := wait(t, s, "replaced", func(l []InstanceStatus) bool {
		return allReady(1)(l) && l[0].PID != before[0].PID
	})
	if after[0].AppPort != before[0].AppPort {
		t.Errorf("web-0 moved from port %d to %d", before[0].AppPort, after[0].AppPort)
	}
	for _, st := range before {
		if alive(st.PID) {
			t.Errorf("old %s (pid %d) still runs", st.Instance, st.PID)
		}
	}
	s.Remove("default", "web")
	wait(t, s, "removed", func(l []InstanceStatus) bool { return len(l) == 0 })
	if len(s.Units()) != 0 {
		t.Errorf("units after Remove: %+v", s.Units())
	}
}

func TestSetRejectsBadUnits(t *testing.T) {
	s := newTestSupervisor(t, SupervisorOptions{})
	for _, tc := range []struct {
		name string
		u    Unit
		want string
	}{
		{"no name", Unit{Namespace: "a", App: &Command{}}, "namespace and name are required"},
		{"negative", Unit{Namespace: "a", Name: "b", Replicas: -2, App: &Command{}}, "set unit a/b: replicas must be >= 0, got -2"},
		{"nothing", Unit{Namespace: "a", Name: "b"}, "set unit a/b: nothing to run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Set(tc.u); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestProgramThatCannotStart(t *testing.T) {
	s := newTestSupervisor(t, SupervisorOptions{})
	s.Set(Unit{Kind: KindWorkload, Namespace: "default", Name: "ghost", Replicas: 1, App: &Command{Path: "/nonexistent/program"}, Revision: "1"})
	l := wait(t, s, "backoff", func(l []InstanceStatus) bool { return len(l) == 1 && l[0].State == StateBackoff })
	if !strings.Contains(l[0].LastExit, "start /nonexistent/program: fork/exec /nonexistent/program: no such file or directory") {
		t.Errorf("last exit %q", l[0].LastExit)
	}
}

// TestFreePortsNeverRepeats: ports handed out once are never handed out
// again, even after their probe listeners closed (the kernel may offer a
// just-closed port again to the next bind).
func TestFreePortsNeverRepeats(t *testing.T) {
	used := map[int]bool{}
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		ports, err := freePorts(4, used)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ports {
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
}

// TestHungInstanceRestarts: a program that was ready and then fails its
// readiness checks for HungAfter is killed and restarted.
func TestHungInstanceRestarts(t *testing.T) {
	unready := filepath.Join(t.TempDir(), "unready")
	s := newTestSupervisor(t, SupervisorOptions{HungAfter: 150 * time.Millisecond})
	u := Unit{Kind: KindWorkload, Namespace: "default", Name: "web", Replicas: 1, App: fakeCommand(t, "serve", "UP_TEST_UNREADY="+unready),
		Readiness: Readiness{HTTPPath: "/ready", Period: 20 * time.Millisecond, FailureThreshold: 2}, Revision: "1"}
	s.Set(u)
	first := wait(t, s, "ready", allReady(1))[0]
	os.WriteFile(unready, nil, 0o600)
	l := wait(t, s, "hung instance restarted", func(l []InstanceStatus) bool {
		return len(l) == 1 && l[0].Restarts == 1 && l[0].PID != 0 && l[0].PID != first.PID
	})
	if alive(first.PID) {
		t.Errorf("the hung process %d is still alive", first.PID)
	}
	os.Remove(unready)
	l = wait(t, s, "ready after restart", allReady(1))
	if l[0].Restarts != 1 {
		t.Errorf("restarts = %d, want 1", l[0].Restarts)
	}
}

// TestScaleDownDrains: an instance removed by a scale down is reported
// unready (so its registration leaves every proxy's endpoints) and keeps
// running for DrainDelay before it is stopped.
func TestScaleDownDrains(t *testing.T) {
	type report struct {
		instance string
		at       time.Time
	}
	unready := make(chan report, 16) // instances reported unready while stopping
	stopped := make(chan string, 16) // instances whose programs were stopped
	var mu sync.Mutex
	seen := map[string]bool{}
	s := newTestSupervisor(t, SupervisorOptions{
		DrainDelay: 300 * time.Millisecond,
		OnReadiness: func(u *Unit, st InstanceStatus) {
			mu.Lock()
			defer mu.Unlock()
			if !st.Ready && st.State == StateStopping && !seen[st.Instance] {
				seen[st.Instance] = true
				unready <- report{st.Instance, time.Now()}
			}
		},
		OnEvent: func(e Event) {
			if e.Message == "stopped" {
				select {
				case stopped <- e.Instance.Name:
				default:
				}
			}
		},
	})
	u := Unit{Kind: KindWorkload, Namespace: "shop", Name: "catalog", Replicas: 2, App: fakeCommand(t, "serve"),
		Readiness: Readiness{HTTPPath: "/ready", Period: 50 * time.Millisecond}, Revision: "1"}
	s.Set(u)
	l := wait(t, s, "2 ready", allReady(2))
	victim := l[1]
	if err := s.Scale("shop", "catalog", 1); err != nil {
		t.Fatal(err)
	}
	// Still serving right after it was reported unready...
	timeout := time.After(10 * time.Second)
	var r report
	select {
	case r = <-unready:
		if r.instance != victim.Instance {
			t.Fatalf("%s turned unready, want %s", r.instance, victim.Instance)
		}
	case <-timeout:
		t.Fatal("the removed instance was never reported unready")
	}
	// The drain is the duration under test: look 150 ms into it.
	time.Sleep(time.Until(r.at.Add(150 * time.Millisecond)))
	if !alive(victim.PID) {
		t.Fatalf("%s stopped within 150ms of turning unready, want a 300ms drain", victim.Instance)
	}
	// ...and gone after the drain.
	select {
	case got := <-stopped:
		if got != victim.Instance {
			t.Fatalf("%s stopped, want %s", got, victim.Instance)
		}
	case <-timeout:
		t.Fatal("the removed instance was never stopped")
	}
	if alive(victim.PID) {
		t.Fatalf("pid %d still runs after its instance was stopped", victim.PID)
	}
	wait(t, s, "1 instance", allReady(1))
}

// The OnReadiness hook has run before Wait sees the status it was given:
// under weft up the hook updates the registration, so whoever waits for an
// instance to be ready also finds it registered as ready. The hook is slow
// here on purpose, to open the window the order closes.
func TestReadinessHookBeforeWaiters(t *testing.T) {
	var mu sync.Mutex
	hooked := false
	s := newTestSupervisor(t, SupervisorOptions{
		OnReadiness: func(u *Unit, st InstanceStatus) {
			if !st.Ready {
				return
			}
			time.Sleep(100 * time.Millisecond) // a slow registry update
			mu.Lock()
			hooked = true
			mu.Unlock()
		},
	})
	s.Set(Unit{Kind: KindWorkload, Namespace: "default", Name: "web", Replicas: 1, App: fakeCommand(t, "serve"),
		Readiness: Readiness{HTTPPath: "/ready", Period: 20 * time.Millisecond}, Revision: "1"})
	wait(t, s, "ready", allReady(1))
	mu.Lock()
	defer mu.Unlock()
	if !hooked {
		t.Fatal("Wait saw the instance ready before the OnReadiness hook had run")
	}
}
