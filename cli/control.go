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
	"github.com/weft-mesh/weft/control/telemetry"
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
the embedded store in --state-dir, the xDS server the proxies connect to and
the telemetry hub (spans and access logs over OTLP on the xDS port, metrics
scraped from each proxy; weft top, traces, logs and tap read it). It runs
until interrupted.`,
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
			if mesh.TraceSampling < 0 || mesh.TraceSampling > 1 {
				return fmt.Errorf("--trace-sampling: %v is not a share from 0 to 1", mesh.TraceSampling)
			}
			if mesh.Telemetry.MaxSpans <= 0 || mesh.Telemetry.MaxLogs <= 0 || mesh.Telemetry.Retention <= 0 {
				return fmt.Errorf("--telemetry-max-spans, --telemetry-max-logs and --telemetry-retention must be positive")
			}
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
	fl.StringVar(&mesh.OTLPSocket, "otlp-socket", "", "Unix socket (mode 0600) on which the telemetry hub takes OTLP/HTTP exports from proxies on this machine, cheaper than the API port (weft proxy --telemetry-addr unix://PATH); default <state-dir>/otlp.sock, off for none")
	fl.Float64Var(&mesh.TraceSampling, "trace-sampling", 0.01, "share of requests without a sampling decision that proxies trace (0 to 1; 5xx and local replies are always traced)")
	fl.IntVar(&mesh.Telemetry.MaxSpans, "telemetry-max-spans", telemetry.DefaultMaxSpans, "spans the telemetry hub keeps in memory (oldest dropped first)")
	fl.IntVar(&mesh.Telemetry.MaxLogs, "telemetry-max-logs", telemetry.DefaultMaxLogs, "log records (access and application logs) the telemetry hub keeps in memory")
	fl.DurationVar(&mesh.Telemetry.Retention, "telemetry-retention", telemetry.DefaultRetention, "how long the telemetry hub keeps spans and log records")
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
