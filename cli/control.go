//go:build !proxyonly

package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/control"
)

// addControlCommands attaches `weft control`.
func addControlCommands(root *cobra.Command, s streams) {
	var (
		cfg       control.Config
		logLevel  string
		joinToken string
	)
	cmd := &cobra.Command{
		Use:   "control",
		Short: "Run the weft control plane",
		Long: `Run the control plane: the resource API (weft apply/get/delete talk to it),
the embedded store in --state-dir and the xDS server the proxies connect to.
It runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			cfg.Version = Version
			cfg.Logger = slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
			cfg.OnReady = func(p *control.Plane) {
				fmt.Fprintf(s.err, "weft control: API on http://%s, state in %s\n", p.APIAddr, cfg.StateDir)
			}
			return control.Run(cmd.Context(), cfg, controlComponents(s, cfg, joinToken)...)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.StateDir, "state-dir", control.DefaultStateDir, "directory of the state file (weft.db)")
	fl.StringVar(&cfg.APIAddr, "api-addr", control.DefaultAPIAddr, "listen address of the HTTP resource API")
	fl.StringVar(&cfg.XDSAddr, "xds-addr", control.DefaultXDSAddr, "listen address of the gRPC xDS server")
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&joinToken, "join-token", os.Getenv("WEFT_JOIN_TOKEN"), "token proxies must present (default $WEFT_JOIN_TOKEN, else <state-dir>/join-token, generated on first start)")
	root.AddCommand(cmd)
}

// controlComponents returns what `weft control` runs next to the store and
// the API: the registry and the xDS server.
func controlComponents(s streams, cfg control.Config, token string) []control.Component {
	return []control.Component{control.MeshComponent(control.MeshOptions{
		JoinToken: token,
		Started: func(m *control.Mesh) {
			fmt.Fprintf(s.err, "weft control: xDS on %s (join token in %s/join-token)\n", m.XDSAddr, cfg.StateDir)
		},
	})}
}
