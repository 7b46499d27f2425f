package shop_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is a shop command running as a process.
type proc struct {
	cmd  *exec.Cmd
	addr string
	logs chan string // stderr lines after "listening"
}

var listeningRE = regexp.MustCompile(`msg=listening .*addr=(127\.0\.0\.1:\d+)`)

// start runs bin with PORT=0 and env, and waits for its "listening" log
// line, which carries the port it got.
func start(t *testing.T, bin string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), append([]string{"PORT=0", "WEFT_INSTANCE=" + filepath.Base(bin) + "-0"}, env...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: make(chan string, 100)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
				continue
			}
			select {
			case p.logs <- sc.Text():
			default:
			}
		}
		close(addr)
		close(p.logs)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("%s exited before listening", bin)
		}
		p.addr = a
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no listening line within 30s", bin)
	}
	return p
}

// stop sends SIGTERM and checks the process exits 0 soon.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range p.logs { // drain until stderr closes
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("%s exited with %v after SIGTERM, want 0", p.cmd.Path, err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s still running 10s after SIGTERM", p.cmd.Path)
	}
}

// TestCommands builds the four commands as weft up does and runs them as
// processes with the environment weft up gives them (here wired directly),
// then stops them with SIGTERM.
func TestCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds four binaries")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./frontend", "./catalog", "./cart", "./checkout")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bin := func(name string) string { return filepath.Join(dir, name) }

	cat := start(t, bin("catalog"), "VERSION=v2")
	crt := start(t, bin("cart"))
	co := start(t, bin("checkout"), "CART_ADDR="+crt.addr, "CATALOG_URL=http://"+cat.addr)
	fe := start(t, bin("frontend"), "CART_ADDR="+crt.addr, "CATALOG_URL=http://"+cat.addr, "CHECKOUT_URL=http://"+co.addr)

	base := "http://" + fe.addr
	for _, p := range []*proc{cat, crt, co, fe} {
		if code, _, body := call(t, "GET", "http://"+p.addr+"/healthz", "", ""); code != 200 {
			t.Errorf("%s /healthz = %d %s", p.cmd.Path, code, body)
		}
	}
	if code, _, body := call(t, "POST", base+"/api/cart/carol/items", "application/json", `{"sku":"sticker","qty":3}`); code != 200 {
		t.Fatalf("add = %d %s", code, body)
	}
	code, _, body := call(t, "POST", base+"/api/checkout/carol", "", "")
	if code != 200 || !strings.Contains(body, `"totalCents":1200`) {
		t.Fatalf("checkout = %d %s", code, body)
	}
	if _, hdr, _ := call(t, "GET", base+"/", "", ""); hdr.Get("x-catalog-version") != "v2" || hdr.Get("x-catalog-instance") != "catalog-0" {
		t.Errorf("page headers %v", hdr)
	}
	for _, p := range []*proc{fe, co, crt, cat} {
		p.stop(t)
	}

	// A command without $PORT refuses to start, saying why.
	out, err := exec.Command(bin("catalog")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "$PORT is not set") {
		t.Errorf("catalog without PORT: %v\n%s", err, out)
	}
}
