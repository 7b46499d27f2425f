// Command weft is the single binary of the weft service mesh: the sidecar
// proxy, the control plane, the local runtime and the CLI.
package main

import (
	"os"

	"github.com/weft-mesh/weft/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
