//go:build proxyonly

package cli

import "github.com/spf13/cobra"

// A proxy-only build (go build -tags proxyonly ./cmd/weft) carries only
// `weft proxy` and `weft version`: without the control plane, the runtime
// and their dependencies, a sidecar maps and initialises far less code.

func addControlCommands(*cobra.Command, streams)   {}
func addResourceCommands(*cobra.Command, streams)  {}
func addUpCommands(*cobra.Command, streams)        {}
func addSecurityCommands(*cobra.Command, streams)  {}
func addTelemetryCommands(*cobra.Command, streams) {}
