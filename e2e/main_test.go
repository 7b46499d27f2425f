// Package e2e runs the real weft binary as users do: processes on loopback,
// driven through the same flags, files and APIs.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// weftBin is the binary built once for all tests.
var weftBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weft-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	weftBin = filepath.Join(dir, "weft")
	args := []string{"build", "-o", weftBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/weft")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build weft:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running weft command whose output is kept for failures.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
}

// start runs weft with args; the process is stopped at the end of the test
// and its output logged if the test failed.
func start(t *testing.T, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(weftBin, args...), done: make(chan struct{})}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("weft %s output:\n%s", strings.Join(args, " "), p.output())
		}
	})
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stop sends SIGTERM and waits up to 10 s (then kills).
func (p *process) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("weft did not stop within 10s of SIGINT")
		p.cmd.Process.Kill()
		<-p.done
	}
}

// freePort returns a loopback port that was free a moment ago and that no
// other freePort call of this test binary returned: the kernel may offer a
// just-released port again at once, and two "free" ports of one test must
// not collide.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range 1000 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		if p := l.Addr().(*net.TCPAddr).Port; !portsGiven[p] {
			portsGiven[p] = true
			return p
		}
	}
	t.Fatal("no unused loopback port")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// waitReady polls the admin /ready endpoint of a proxy until it answers 200.
func waitReady(t *testing.T, p *process, adminPort int) {
	t.Helper()
	waitHTTP(t, p, fmt.Sprintf("http://127.0.0.1:%d/ready", adminPort))
}

func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}

// shopDemo is `weft up -f examples/shop` running for one test.
type shopDemo struct {
	proc    *process
	state   string // its --state-dir
	server  string // its API address, host:port
	gateway string // the base URL of its edge gateway
}

// startShopDemo runs the demo and waits until it is ready. It skips under
// -short, and when the port of the demo's gateway (8080) is taken.
func startShopDemo(t *testing.T) *shopDemo {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the whole demo")
	}
	if l, err := net.Listen("tcp", "127.0.0.1:8080"); err != nil {
		t.Skipf("the demo's gateway port 8080 is taken: %v", err)
	} else {
		l.Close()
	}
	d := &shopDemo{state: filepath.Join(t.TempDir(), "state"), server: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		gateway: "http://127.0.0.1:8080"}
	d.proc = start(t, "up", "-f", "../examples/shop", "--state-dir", d.state, "--api-addr", d.server)
	waitOutput(t, d.proc, "\nweft: ready\n", 4*time.Minute)
	return d
}
