package up

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/weft-mesh/weft/control/resource"
)

// buildWorkload runs `go build -o <state-dir>/bin/<namespace>-<name> <pkg>`
// in the Workload's folder. It always runs: the Go build cache makes an
// unchanged build quick, and a changed source is never missed. The error
// carries the compiler's output.
func (e *unitEnv) buildWorkload(ctx context.Context, o *resource.Object) error {
	b := o.Workload().Build
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build %s/%s: the go command is needed for spec.build.go: %w", o.Namespace, o.Name, err)
	}
	out := e.binPath(o)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("build %s/%s: %w", o.Namespace, o.Name, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, b.Go)
	cmd.Dir = e.baseDir(o)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(buf.String())
		var ee *exec.ExitError
		if errors.As(err, &ee) && msg != "" {
			return fmt.Errorf("build %s/%s: go build %s (in %s) failed:\n%s", o.Namespace, o.Name, b.Go, cmd.Dir, msg)
		}
		return fmt.Errorf("build %s/%s: go build %s (in %s): %w", o.Namespace, o.Name, b.Go, cmd.Dir, err)
	}
	return nil
}
