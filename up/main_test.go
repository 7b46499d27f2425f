package up

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the fake programs the supervisor runs: with
// UP_TEST_MODE set it becomes one of them instead of running tests.
//
//	serve:  HTTP on $PORT; /ready answers 503 while $UP_TEST_UNREADY names
//	        an existing file; /exit exits with status 3; / names the instance
//	crash:  prints a line and exits with status 2, unless $UP_TEST_SERVE_IF
//	        names an existing file (then it serves)
//	talk:   prints a line to stdout, one to stderr, a partial one to
//	        stdout, and exits
//	hang:   ignores SIGTERM, starts a grandchild (mode sleep), prints its pid
//	proxy:  serves GET /ready on --admin-addr, like `weft proxy`
const modeEnv = "UP_TEST_MODE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(modeEnv); mode != "" {
		fakeProgram(mode)
		return
	}
	os.Exit(m.Run())
}

func fakeProgram(mode string) {
	switch mode {
	case "crash":
		if f := os.Getenv("UP_TEST_SERVE_IF"); f == "" || !exists(f) {
			fmt.Fprintln(os.Stderr, "crashing")
			os.Exit(2)
		}
		fallthrough
	case "serve":
		mux := http.NewServeMux()
		mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
			if f := os.Getenv("UP_TEST_UNREADY"); f != "" && exists(f) {
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		mux.HandleFunc("/exit", func(http.ResponseWriter, *http.Request) { os.Exit(3) })
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "%s %s", os.Getenv("WEFT_INSTANCE"), os.Getenv("HTTP_PROXY"))
		})
		fmt.Println("serving on", os.Getenv("PORT"))
		err := http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), mux)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	case "proxy":
		// Takes `weft proxy`'s arguments; only --admin-addr matters.
		var admin string
		for i, a := range os.Args {
			if a == "--admin-addr" && i+1 < len(os.Args) {
				admin = os.Args[i+1]
			}
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "LIVE") })
		fmt.Fprintln(os.Stderr, "proxy token", os.Getenv("WEFT_JOIN_TOKEN"))
		fmt.Fprintln(os.Stderr, "proxy args", strings.Join(os.Args[1:], " "))
		fmt.Fprintln(os.Stderr, http.ListenAndServe(admin, mux))
		os.Exit(1)
	case "talk":
		fmt.Println("hello trace_id=4bf92f3577b34da6a3ce929d0e0e4736")
		fmt.Fprintln(os.Stderr, "oops")
		fmt.Print("no newline")
		os.Exit(0)
	case "hang":
		signal.Ignore(syscall.SIGTERM)
		self, _ := os.Executable()
		c := exec.Command(self)
		c.Env = append(os.Environ(), modeEnv+"=sleep")
		if err := c.Start(); err != nil {
			fmt.Println("start grandchild:", err)
			os.Exit(1)
		}
		fmt.Printf("grandchild %d\n", c.Process.Pid)
		select {}
	case "sleep":
		signal.Ignore(syscall.SIGTERM)
		select {}
	}
	fmt.Fprintln(os.Stderr, "unknown mode", mode)
	os.Exit(1)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// fakeCommand runs the test binary in a mode.
func fakeCommand(t *testing.T, mode string, env ...string) *Command {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &Command{Path: self, Env: append([]string{modeEnv + "=" + mode}, env...)}
}

// fakeProxy returns a Unit.Proxy that runs the test binary as a proxy.
func fakeProxy(t *testing.T) func(Instance) Command {
	c := fakeCommand(t, "proxy")
	return func(in Instance) Command {
		cc := *c
		cc.Args = []string{"--admin-addr", fmt.Sprintf("127.0.0.1:%d", in.Ports.Admin)}
		return cc
	}
}

// alive reports whether a process (not a zombie) with pid exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3 is the state; Z is a zombie (dead, not yet reaped).
	f := strings.Fields(string(b))
	return len(f) < 3 || f[2] != "Z"
}

// fakeClock is a Clock that moves only when told to. Safe for concurrent
// use.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clk  *fakeClock
	at   time.Time
	c    chan time.Time
	done bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clk: c, at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.done = true
		t.c <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			t.c <- c.now
		default:
			kept = append(kept, t)
		}
	}
	c.timers = kept
}

// advanceUntil advances the clock by step each time the instance
// goroutines have set a new timer, until cond holds.
func (c *fakeClock) advanceUntil(t *testing.T, s *Supervisor, step time.Duration, cond func([]InstanceStatus) bool) []InstanceStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ch := s.Changed()
		l := s.Instances()
		if cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met; instances %+v", l)
		}
		c.mu.Lock()
		pending := len(c.timers)
		c.mu.Unlock()
		if pending > 0 {
			c.Advance(step)
			continue
		}
		// Every timer fired: wait for the goroutine to set the next one
		// (it publishes its status right after).
		select {
		case <-ch:
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}
