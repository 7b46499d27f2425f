// Package cli holds the cobra commands of the weft binary. Each role adds its
// commands in its own file (proxy.go, control.go, resources.go, ...); this file
// only assembles them.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/weft-mesh/weft/cli.Version=...".
var Version = "0.1.0-dev"

// streams are the standard streams a command writes to; tests pass buffers.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// exitError carries a process exit code through cobra without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// NewRoot builds the root command with every verb attached.
func NewRoot(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "weft",
		Short:         "weft: a light, fast service mesh",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.AddCommand(newVersionCmd(s))
	addProxyCommands(root, s)
	addControlCommands(root, s)
	addResourceCommands(root, s)
	addSecurityCommands(root, s)
	addUpCommands(root, s)
	addTelemetryCommands(root, s)
	return root
}

// Main runs the CLI and returns the process exit code. SIGINT and SIGTERM
// cancel the command's context.
func Main(args []string, in io.Reader, out, errw io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := NewRoot(streams{in: in, out: out, err: errw})
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		fmt.Fprintf(errw, "weft: %v\n", err)
		return 1
	}
	return 0
}

func newVersionCmd(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the weft version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(s.out, "weft %s\n", Version)
			return nil
		},
	}
}
