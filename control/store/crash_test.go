package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/weft-mesh/weft/control/resource"
)

const (
	crashChildEnv = "WEFT_STORE_CRASH_CHILD"
	crashBatch    = 5 // objects created per apply, plus one update of "counter"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		if err := crashChild(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashBatchObjects is apply number i: crashBatch new Services labelled
// batch=i, and the Service "counter" updated to label batch=i.
func crashBatchObjects(i int) ([]resource.Object, error) {
	var b strings.Builder
	pad := strings.Repeat("x", 2000)
	for j := 0; j <= crashBatch; j++ {
		name := fmt.Sprintf("b%d-%d", i, j)
		if j == crashBatch {
			name = "counter"
		}
		fmt.Fprintf(&b, "---\napiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: %s, labels: {batch: \"%d\"}, annotations: {pad: %s}}\nspec: {ports: [{port: %d}]}\n", name, i, pad, 1000+i%60000)
	}
	return resource.Decode("crash", []byte(b.String()))
}

// crashChild applies batches forever, acknowledging each on stdout.
func crashChild(dir string) error {
	s, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := 0
	if c, err := s.Get(ctx, resource.Key{Kind: resource.KindService, Namespace: "default", Name: "counter"}); err == nil {
		start, _ = strconv.Atoi(c.Labels["batch"])
		start++
	}
	for i := start; ; i++ {
		objs, err := crashBatchObjects(i)
		if err != nil {
			return err
		}
		if _, err := s.Apply(ctx, objs, ApplyOptions{}); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(os.Stdout, "ok %d\n", i); err != nil {
			return err
		}
	}
}

// TestCrashSafety kills a writer process with SIGKILL in the middle of its
// applies, several times, and checks after each kill that the file opens,
// that every acknowledged apply is there and that no apply is partial.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	acked := -1
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		target := 5 + round*3
		n := 0
		for n < target && sc.Scan() {
			i, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ok "))
			if err != nil {
				t.Fatalf("child said %q", sc.Text())
			}
			acked = i
			n++
		}
		// The child is now inside its next apply (or about to be).
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() { // acks written before the kill still count
			if i, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "ok ")); err == nil {
				acked = i
			}
		}
		_ = cmd.Wait()
		if n < target {
			t.Fatalf("round %d: child stopped after %d acks: %s", round, n, stderr.String())
		}
		checkCrashState(t, dir, acked)
	}
}

func checkCrashState(t *testing.T, dir string, acked int) {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	objs, err := s.List(context.Background(), resource.KindService, "")
	if err != nil {
		t.Fatal(err)
	}
	perBatch := map[int]int{}
	counter := -1
	var maxRV int64
	for _, o := range objs {
		b, err := strconv.Atoi(o.Labels["batch"])
		if err != nil {
			t.Fatalf("%s: bad batch label %q", o.Key(), o.Labels["batch"])
		}
		if o.Name == "counter" {
			counter = b
			continue
		}
		perBatch[b]++
		rv, _ := strconv.ParseInt(o.ResourceVersion, 10, 64)
		maxRV = max(maxRV, rv)
	}
	maxBatch := -1
	for b, n := range perBatch {
		if n != crashBatch {
			t.Errorf("batch %d is partial: %d of %d objects", b, n, crashBatch)
		}
		maxBatch = max(maxBatch, b)
	}
	if maxBatch != counter {
		t.Errorf("counter says batch %d, newest complete batch is %d", counter, maxBatch)
	}
	if maxBatch < acked {
		t.Errorf("acknowledged batch %d is missing (newest stored %d)", acked, maxBatch)
	}
	if s.Revision() < maxRV {
		t.Errorf("store revision %d behind object version %d", s.Revision(), maxRV)
	}
	for b := 0; b <= maxBatch; b++ {
		if perBatch[b] != crashBatch {
			t.Errorf("batch %d missing", b)
		}
	}
	t.Logf("after kill: %d batches stored, %d acknowledged, revision %d", maxBatch+1, acked+1, s.Revision())
}
