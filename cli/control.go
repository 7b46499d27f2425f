//go:build !proxyonly

package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control"
)

// addControlCommands attaches `weft control`.
func addControlCommands(root *cobra.Command, s streams) {
	var (
		cfg       control.Config
		logLevel  string
		joinToken string
		mesh      control.MeshOptions
		mtlsMode  string
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
			mesh.MTLSMode = v1alpha1.MTLSMode(strings.ToUpper(mtlsMode))
			if !mesh.MTLSMode.Valid() || mesh.MTLSMode == v1alpha1.MTLSUnset {
				return fmt.Errorf("--mtls-mode: %q is not STRICT, PERMISSIVE or DISABLE", mtlsMode)
			}
			mesh.JoinToken = joinToken
			return control.Run(cmd.Context(), cfg, controlComponents(s, cfg, mesh)...)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfg.StateDir, "state-dir", control.DefaultStateDir, "directory of the state file (weft.db)")
	fl.StringVar(&cfg.APIAddr, "api-addr", control.DefaultAPIAddr, "listen address of the HTTP resource API")
	fl.StringVar(&cfg.XDSAddr, "xds-addr", control.DefaultXDSAddr, "listen address of the gRPC xDS server")
	fl.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&joinToken, "join-token", os.Getenv("WEFT_JOIN_TOKEN"), "the operator token: proxies presenting it may claim any identity, and privileged API calls need it (default $WEFT_JOIN_TOKEN, else <state-dir>/join-token, generated on first start)")
	fl.StringVar(&mesh.TrustDomain, "trust-domain", "cluster.local", "trust domain of the mesh's SPIFFE identities")
	fl.StringVar(&mtlsMode, "mtls-mode", "PERMISSIVE", "mesh-wide mTLS mode where no PeerAuthentication applies: STRICT, PERMISSIVE or DISABLE")
	fl.DurationVar(&mesh.CA.DefaultLeafTTL, "cert-ttl", 24*time.Hour, "lifetime of workload certificates (proxies renew at half of it)")
	fl.BoolVar(&mesh.NoCA, "no-ca", false, "run without a certificate authority (every hop plaintext)")
	fl.StringVar(&mesh.CA.RootCertFile, "ca-root-cert", "", "operator-provided root certificate (PEM); default: generated in <state-dir>/ca")
	fl.StringVar(&mesh.CA.RootKeyFile, "ca-root-key", "", "key of --ca-root-cert (PEM, mode 0600)")
	root.AddCommand(cmd)
}

// controlComponents returns what `weft control` runs next to the store and
// the API: the registry and the xDS server.
func controlComponents(s streams, cfg control.Config, mesh control.MeshOptions) []control.Component {
	mesh.Started = func(m *control.Mesh) {
		fmt.Fprintf(s.err, "weft control: xDS on %s (operator token in %s/join-token)\n", m.XDSAddr, cfg.StateDir)
	}
	return []control.Component{control.MeshComponent(mesh)}
}
