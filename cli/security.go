//go:build !proxyonly

package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/control/api"
)

// tokenEnv holds the operator token for the CLI.
const tokenEnv = "WEFT_TOKEN"

// addSecurityCommands attaches `weft token create` and `weft ca rotate`,
// the operator's verbs: both need the operator token (--token, else
// $WEFT_TOKEN; `weft control` writes it to <state-dir>/join-token).
func addSecurityCommands(root *cobra.Command, s streams) {
	var server, token string
	flags := func(cmd *cobra.Command) {
		addServerFlag(cmd, &server)
		cmd.Flags().StringVar(&token, "token", "", "the operator token (default $"+tokenEnv+")")
	}
	client := func() *api.Client {
		if token == "" {
			token = os.Getenv(tokenEnv)
		}
		return newClient(server).WithToken(token)
	}

	var req api.JoinTokenRequest
	create := &cobra.Command{
		Use:   "create --namespace NS --service-account SA",
		Short: "Issue a join token bound to one identity",
		Long: `Issue a join token for a proxy: it gets the configuration and the SPIFFE
certificate of spiffe://<trust-domain>/ns/NS/sa/SA and nothing else. Give it to
the proxy as --token or $WEFT_JOIN_TOKEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out api.JoinTokenResponse
			if err := client().PostJSON(cmd.Context(), "/api/v1/join-tokens", req, &out); err != nil {
				return reportAPIError(s, err)
			}
			fmt.Fprintln(s.out, out.Token)
			return nil
		},
	}
	flags(create)
	create.Flags().StringVarP(&req.Namespace, "namespace", "n", "default", "namespace of the identity")
	create.Flags().StringVar(&req.ServiceAccount, "service-account", "default", "service account of the identity")
	create.Flags().StringVar(&req.TTL, "ttl", "", "lifetime of the token (e.g. 720h); default: until the control plane's join key changes")
	tokenCmd := &cobra.Command{Use: "token", Short: "Manage join tokens"}
	tokenCmd.AddCommand(create)

	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate the mesh's root certificate",
		Long: `Replace the CA's root and intermediate. The old root stays in the trust
bundle for the overlap (2 x the certificate lifetime) and the new bundle is
pushed to every proxy at once; proxies move to certificates of the new root as
they renew them, without failed requests.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out api.RotateResponse
			if err := client().PostJSON(cmd.Context(), "/api/v1/ca/rotate", struct{}{}, &out); err != nil {
				return reportAPIError(s, err)
			}
			fmt.Fprintf(s.out, "root rotated; new root sha256 %s\n", out.Root)
			return nil
		},
	}
	flags(rotate)
	caCmd := &cobra.Command{Use: "ca", Short: "Manage the mesh's certificate authority"}
	caCmd.AddCommand(rotate)
	root.AddCommand(tokenCmd, caCmd)
}
