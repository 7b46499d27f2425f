//go:build !proxyonly

package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/control"
	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/up"
)

// addUpCommands attaches `weft up` and the verbs that talk to it: ps,
// scale and logs.
func addUpCommands(root *cobra.Command, s streams) {
	root.AddCommand(newUpCmd(s), newPsCmd(s), newScaleCmd(s), newLogsCmd(s))
}

func newUpCmd(s streams) *cobra.Command {
	var (
		opts     up.Options
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "up -f FILE|DIR",
		Short: "Run a mesh locally: control plane, workloads, sidecars and gateways",
		Long: `Run a mesh on this machine, in the foreground: an embedded control plane
(API on --api-addr), the mesh file's resources, every Workload's instances
(built first when they say build: {go: PACKAGE}) each with a weft proxy
sidecar, and a gateway proxy per Gateway. Crashed instances are restarted
with backoff. It prints "weft: ready" and the URLs once everything is ready;
Ctrl-C stops everything.

Relative paths in a mesh file resolve against the file's folder. Each
instance gets $PORT (where it must listen), HTTP_PROXY (its sidecar, so
http://<service>.<namespace>/ works), WEFT_NAMESPACE, WEFT_WORKLOAD and
WEFT_INSTANCE. Logs go to <state-dir>/logs/ and to 'weft logs'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			opts.Version = Version
			opts.Out = s.out
			opts.Logger = slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
			return up.Run(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&opts.Files, "filename", "f", nil, "mesh file or folder of mesh files (repeatable)")
	fl.StringVar(&opts.StateDir, "state-dir", control.DefaultStateDir, "directory of the state (store, join token, built binaries, logs)")
	fl.StringVar(&opts.APIAddr, "api-addr", control.DefaultAPIAddr, "listen address of the API and dashboard")
	fl.StringVar(&opts.XDSAddr, "xds-addr", "127.0.0.1:0", "listen address of the xDS server (port 0: any free port)")
	fl.StringVar(&logLevel, "log-level", "warn", "log level of the control plane's diagnostics: debug, info, warn, error")
	cmd.MarkFlagRequired("filename")
	return cmd
}

// upClient returns the runtime client for --server ($WEFT_SERVER, default).
func upClient(server string) *up.Client {
	if server == "" {
		server = os.Getenv(serverEnv)
	}
	if server == "" {
		server = api.DefaultAddr
	}
	return up.NewClient(server, nil)
}

func newPsCmd(s streams) *cobra.Command {
	var server, namespace, output string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the instances weft up runs",
		Long: `List the instances weft up runs: program and sidecar pids, ports, state and
restarts. -o json prints a JSON array (one object per instance with at least
workload, instance, pid, appPort, sidecarPid, inboundPort, adminPort, state
and restarts).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" && output != "wide" {
				return fmt.Errorf("-o: want json or wide, got %q", output)
			}
			list, err := upClient(server).Instances(cmd.Context(), namespace)
			if err != nil {
				return reportAPIError(s, err)
			}
			if output == "json" {
				b, err := json.MarshalIndent(list, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintf(s.out, "%s\n", b)
				return nil
			}
			if len(list) == 0 {
				fmt.Fprintln(s.err, "No instances.")
				return nil
			}
			printInstances(s, list, output == "wide", time.Now())
			return nil
		},
	}
	addServerFlag(cmd, &server)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace (default: all)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or wide")
	return cmd
}

func printInstances(s streams, list []up.InstanceStatus, wide bool, now time.Time) {
	tw := tabwriter.NewWriter(s.out, 0, 4, 3, ' ', 0)
	head := "NAMESPACE\tINSTANCE\tKIND\tSTATE\tPID\tPORT\tSIDECAR\tINBOUND\tADMIN\tRESTARTS\tAGE"
	if wide {
		head += "\tHTTP PROXY\tLAST EXIT"
	}
	fmt.Fprintln(tw, head)
	num := func(n int) string {
		if n == 0 {
			return "-"
		}
		return strconv.Itoa(n)
	}
	for _, st := range list {
		state := string(st.State)
		if st.State == up.StateBackoff && st.Backoff != "" {
			state += " (" + st.Backoff + ")"
		}
		restarts := strconv.Itoa(st.Restarts)
		if st.SidecarRestarts > 0 {
			restarts += fmt.Sprintf(" (+%d sidecar)", st.SidecarRestarts)
		}
		age := "-"
		if !st.StartedAt.IsZero() {
			age = humanDuration(now.Sub(st.StartedAt))
		}
		sidecar := num(st.SidecarPID)
		if st.Kind == up.KindGateway {
			sidecar = "-"
		}
		row := []string{st.Namespace, st.Instance, strings.ToLower(st.Kind), state, num(st.PID), num(st.AppPort), sidecar,
			num(st.InboundPort), num(st.AdminPort), restarts, age}
		if wide {
			row = append(row, num(st.HTTPProxyPort), orNone(st.LastExit))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

func newScaleCmd(s streams) *cobra.Command {
	var server, namespace string
	cmd := &cobra.Command{
		Use:   "scale WORKLOAD=N...",
		Short: "Change the number of instances of workloads weft up runs",
		Long: `Change the number of instances of one or more Workloads live. The new count
is stored in the Workload (weft get workloads shows it). Without -n the
workload's namespace is found when only one namespace has that name.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			type req struct {
				name string
				n    int32
			}
			var reqs []req
			for _, a := range args {
				name, num, ok := strings.Cut(a, "=")
				n, err := strconv.ParseInt(num, 10, 32)
				if !ok || name == "" || err != nil || n < 0 {
					return fmt.Errorf("argument %q: want WORKLOAD=N with N >= 0", a)
				}
				reqs = append(reqs, req{name, int32(n)})
			}
			c := upClient(server)
			var failed error
			for _, r := range reqs {
				res, err := c.Scale(cmd.Context(), namespace, r.name, r.n)
				if err != nil {
					failed = reportAPIError(s, err)
					continue
				}
				fmt.Fprintf(s.out, "workload %s/%s scaled from %d to %d\n", res.Namespace, res.Workload, res.Previous, res.Replicas)
			}
			return failed
		},
	}
	addServerFlag(cmd, &server)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the workloads (default: the one that has the name)")
	return cmd
}

func newLogsCmd(s streams) *cobra.Command {
	var (
		server string
		q      up.LogsQuery
		hq     hubLogsQuery
	)
	cmd := &cobra.Command{
		Use:   "logs [WORKLOAD]",
		Short: "Print the output of a workload's instances (or of their sidecars)",
		Long: `Print what the instances of a workload (or a gateway) wrote to stdout and
stderr, each line prefixed with [instance]; --sidecar prints their sidecars'
logs instead. weft up keeps the last 1000 lines per instance in memory; the
complete logs are in <state-dir>/logs/.

Against a weft control plane (not weft up), and whenever --trace or --since
is given, the lines come from the control plane's telemetry hub: the
applications' lines weft up ships and the proxies' access records. --trace
ID prints every record of one trace, of any workload (WORKLOAD optional).`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				q.Workload = args[0]
			}
			if q.Workload == "" && hq.trace == "" {
				return fmt.Errorf("give a WORKLOAD, or --trace ID")
			}
			if hq.since != "" {
				if d, err := time.ParseDuration(hq.since); err != nil || d < 0 {
					if _, err := time.Parse(time.RFC3339, hq.since); err != nil {
						return fmt.Errorf("--since: %q is neither a duration (15m) nor an RFC 3339 time", hq.since)
					}
				}
			}
			hq.workload, hq.namespace, hq.instance, hq.follow = q.Workload, q.Namespace, q.Instance, q.Follow
			hq.limit = max(q.Tail, 0)
			if err := upLogsOrHub(cmd.Context(), s, server, q, hq); err != nil {
				return reportAPIError(s, err)
			}
			return nil
		},
	}
	addServerFlag(cmd, &server)
	fl := cmd.Flags()
	fl.StringVarP(&q.Namespace, "namespace", "n", "", "namespace of the workload (default: the one that has the name)")
	fl.BoolVarP(&q.Follow, "follow", "f", false, "keep printing new lines")
	fl.BoolVar(&q.Sidecar, "sidecar", false, "print the sidecars' logs instead of the program's (weft up)")
	fl.StringVar(&q.Instance, "instance", "", "only this instance (e.g. catalog-1)")
	fl.IntVar(&q.Tail, "tail", -1, "lines per instance to print first (-1: all kept in memory)")
	fl.StringVar(&hq.trace, "trace", "", "only the records of this trace id (from the telemetry hub)")
	fl.StringVar(&hq.since, "since", "", "only records since a duration ago (15m) or an RFC 3339 time (from the telemetry hub)")
	return cmd
}
