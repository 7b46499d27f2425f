//go:build !proxyonly

package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/control/alert"
	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/telemetry"
	"github.com/weft-mesh/weft/up"
)

// addTelemetryCommands attaches top, traces and tap (weft logs lives with
// the weft up verbs and reads the hub too).
func addTelemetryCommands(root *cobra.Command, s streams) {
	root.AddCommand(newTopCmd(s), newTracesCmd(s), newTapCmd(s))
}

// topInterval is how often weft top refreshes.
var topInterval = 2 * time.Second

// serverURL is the API base URL for --server ($WEFT_SERVER, default).
func serverURL(server string) string {
	if server == "" {
		server = os.Getenv(serverEnv)
	}
	if server == "" {
		server = api.DefaultAddr
	}
	return api.BaseURL(server)
}

// openStream GETs a streaming endpoint; the caller closes the body.
func openStream(ctx context.Context, server, path string, q url.Values) (io.ReadCloser, error) {
	base := serverURL(server)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the weft control plane at %s: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, api.ResponseError(http.MethodGet, path, resp, data)
	}
	return resp.Body, nil
}

// eachLine calls f with every line of an NDJSON stream until it ends or
// ctx is done (which is not an error).
func eachLine(ctx context.Context, body io.Reader, f func([]byte) error) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if err := f(sc.Bytes()); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

func getTelemetry(ctx context.Context, server, path string, q url.Values, out any) error {
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return newClient(server).GetJSON(ctx, path, out)
}

// ---- weft top ----------------------------------------------------------

func newTopCmd(s streams) *cobra.Command {
	var (
		server, namespace string
		once              bool
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show live request rate, success rate and latency per workload and per edge",
		Long: `Show the golden metrics the control plane computes from its proxies' metrics
(scraped every 5 s): for each workload, the requests it served (as its own
sidecars report them), and for each edge (source workload -> destination
service), the requests its callers sent. RPS, success rate (non-5xx), p50 and
p99 latency. It refreshes every 2 s until Ctrl-C; --once prints once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			q := url.Values{}
			if namespace != "" {
				q.Set("namespace", namespace)
			}
			tick := time.NewTicker(topInterval)
			defer tick.Stop()
			for {
				var top telemetry.Top
				if err := getTelemetry(ctx, server, telemetry.TopPath, q, &top); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return reportAPIError(s, err)
				}
				if !once {
					fmt.Fprint(s.out, "\x1b[H\x1b[2J") // clear the terminal
				}
				printTop(s.out, top)
				if once {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		},
	}
	addServerFlag(cmd, &server)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace (default: all)")
	cmd.Flags().BoolVar(&once, "once", false, "print once and exit")
	return cmd
}

func printTop(w io.Writer, top telemetry.Top) {
	if top.Time.IsZero() {
		fmt.Fprintln(w, "No metrics yet: the control plane needs two scrapes (10 s) of proxies that declare admin_addr.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tRPS\tSUCCESS\tP50\tP99")
	for _, wl := range top.Workloads {
		fmt.Fprintf(tw, "%s/%s\t%s\n", wl.Namespace, wl.Workload, goldenColumns(wl.Golden))
	}
	if len(top.Workloads) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "EDGE\tRPS\tSUCCESS\tP50\tP99")
	for _, e := range top.Edges {
		fmt.Fprintf(tw, "%s/%s -> %s\t%s\n", e.SourceNamespace, e.SourceWorkload, e.DestinationService, goldenColumns(e.Golden))
	}
	if len(top.Edges) == 0 {
		fmt.Fprintln(tw, "(none)")
	}
	tw.Flush()
}

func goldenColumns(g telemetry.Golden) string {
	success := "-"
	if g.SuccessRate != nil {
		success = strconv.FormatFloat(*g.SuccessRate*100, 'f', 2, 64) + "%"
	}
	return strings.Join([]string{strconv.FormatFloat(g.RPS, 'f', 1, 64), success, latency(g.P50MS), latency(g.P99MS)}, "\t")
}

// latency formats milliseconds: "0.75ms", "12ms", "1.2s"; "-" for none.
func latency(ms *float64) string {
	switch {
	case ms == nil:
		return "-"
	case *ms >= 1000:
		return strconv.FormatFloat(*ms/1000, 'f', 1, 64) + "s"
	case *ms >= 10:
		return strconv.FormatFloat(*ms, 'f', 0, 64) + "ms"
	default:
		return strconv.FormatFloat(*ms, 'f', 2, 64) + "ms"
	}
}

// ---- weft traces -------------------------------------------------------

func newTracesCmd(s streams) *cobra.Command {
	var (
		server, service string
		minDuration     time.Duration
		limit           int
	)
	cmd := &cobra.Command{
		Use:   "traces [TRACE_ID]",
		Short: "List recent traces, or show one as a waterfall",
		Long: `List the most recent traces the control plane holds (the proxies export a
span per hop; weft control samples --trace-sampling of requests, weft up all,
and requests that fail are always kept), or, given a trace id, print its spans
as an indented waterfall.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 1 {
				var tr telemetry.Trace
				if err := getTelemetry(ctx, server, telemetry.TracesPath+"/"+url.PathEscape(args[0]), nil, &tr); err != nil {
					return reportAPIError(s, err)
				}
				printWaterfall(s.out, tr, 40)
				return nil
			}
			q := url.Values{}
			if service != "" {
				q.Set("service", service)
			}
			if minDuration > 0 {
				q.Set("minDuration", minDuration.String())
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			var list telemetry.TraceList
			if err := getTelemetry(ctx, server, telemetry.TracesPath, q, &list); err != nil {
				return reportAPIError(s, err)
			}
			if len(list.Traces) == 0 {
				fmt.Fprintln(s.err, "No traces.")
				return nil
			}
			printTraces(s.out, list.Traces, time.Now())
			return nil
		},
	}
	addServerFlag(cmd, &server)
	cmd.Flags().StringVar(&service, "service", "", "only traces through this workload (NAME or NAME.NAMESPACE)")
	cmd.Flags().DurationVar(&minDuration, "min-duration", 0, "only traces at least this long (e.g. 100ms)")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many traces")
	return cmd
}

func printTraces(w io.Writer, list []telemetry.TraceSummary, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "TRACE ID\tROOT\tSERVICES\tSPANS\tERRORS\tDURATION\tAGE")
	for _, t := range list {
		ms := t.DurationMS
		fmt.Fprintf(tw, "%s\t%s: %s\t%s\t%d\t%d\t%s\t%s\n", t.TraceID, t.RootService, t.Root, strings.Join(t.Services, ","),
			t.Spans, t.Errors, latency(&ms), humanDuration(now.Sub(t.Start)))
	}
	tw.Flush()
}

// printWaterfall prints a trace's spans as a tree (children under their
// parent, by start) with each span's offset, duration and a bar of width
// columns on the trace's time line.
func printWaterfall(w io.Writer, tr telemetry.Trace, width int) {
	if len(tr.Spans) == 0 {
		return
	}
	start, end := tr.Spans[0].Start, tr.Spans[0].End
	ids := map[string]bool{}
	for _, sp := range tr.Spans {
		if sp.Start.Before(start) {
			start = sp.Start
		}
		if sp.End.After(end) {
			end = sp.End
		}
		ids[sp.SpanID] = true
	}
	total := end.Sub(start)
	children := map[string][]telemetry.Span{}
	var roots []telemetry.Span
	for _, sp := range tr.Spans {
		if sp.ParentSpanID == "" || !ids[sp.ParentSpanID] {
			roots = append(roots, sp)
			continue
		}
		children[sp.ParentSpanID] = append(children[sp.ParentSpanID], sp)
	}
	fmt.Fprintf(w, "trace %s: %d spans, %s\n", tr.TraceID, len(tr.Spans), fmtDuration(total))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var walk func(sp telemetry.Span, depth int)
	walk = func(sp telemetry.Span, depth int) {
		status := ""
		if sp.Status == "ERROR" {
			status = " !" + cmp.Or(sp.StatusMessage, "error")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s %s %s%s\t%s\n", fmtDuration(sp.Start.Sub(start)), fmtDuration(sp.End.Sub(sp.Start)),
			strings.Repeat("  ", depth), spanService(sp), strings.ToLower(sp.Kind), sp.Name, status, bar(sp, start, total, width))
		for _, c := range children[sp.SpanID] {
			walk(c, depth+1)
		}
	}
	fmt.Fprintln(tw, "OFFSET\tDURATION\tSPAN\t")
	for _, r := range roots {
		walk(r, 0)
	}
	tw.Flush()
}

func spanService(sp telemetry.Span) string {
	if sp.Namespace == "" {
		return sp.Service
	}
	return sp.Service + "." + sp.Namespace
}

// bar draws a span on a line of width columns: '.' before and after, '='
// while it runs (at least one column).
func bar(sp telemetry.Span, start time.Time, total time.Duration, width int) string {
	if total <= 0 {
		return "|" + strings.Repeat("=", width) + "|"
	}
	from := int(float64(width) * float64(sp.Start.Sub(start)) / float64(total))
	to := int(float64(width) * float64(sp.End.Sub(start)) / float64(total))
	from = min(max(from, 0), width-1)
	to = min(max(to, from+1), width)
	return "|" + strings.Repeat(".", from) + strings.Repeat("=", to-from) + strings.Repeat(".", width-to) + "|"
}

// fmtDuration prints a duration in ms with up to 3 decimals ("1.25ms").
func fmtDuration(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', -1, 64) + "ms"
}

// ---- weft tap ----------------------------------------------------------

func newTapCmd(s streams) *cobra.Command {
	var server, namespace, path string
	cmd := &cobra.Command{
		Use:   "tap WORKLOAD",
		Short: "Print the requests a workload's proxies handle, live",
		Long: `Print one line per request that the proxies of a workload handle, as they
happen, until Ctrl-C: the control plane opens each proxy's admin /tap stream
(no restart, no config change) and merges them. --path keeps requests whose
path starts with a prefix.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			q := url.Values{"workload": {args[0]}}
			if namespace != "" {
				q.Set("namespace", namespace)
			}
			if path != "" {
				q.Set("path", path)
			}
			body, err := openStream(ctx, server, telemetry.TapPath, q)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return reportAPIError(s, err)
			}
			defer body.Close()
			return eachLine(ctx, body, func(line []byte) error {
				fmt.Fprintln(s.out, tapLine(line))
				return nil
			})
		},
	}
	addServerFlag(cmd, &server)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the workload (default: any)")
	cmd.Flags().StringVar(&path, "path", "", "only requests whose path starts with this prefix")
	return cmd
}

// accessRecord holds the fields of an access record (docs/observability.md)
// that weft tap prints.
type accessRecord struct {
	Time                 time.Time `json:"time"`
	Kind                 string    `json:"kind"`
	Reporter             string    `json:"reporter"`
	Method               string    `json:"method"`
	Authority            string    `json:"authority"`
	Path                 string    `json:"path"`
	Status               int       `json:"status"`
	Flags                string    `json:"flags"`
	DurationMS           float64   `json:"duration_ms"`
	SourceWorkload       string    `json:"source_workload"`
	SourceNamespace      string    `json:"source_namespace"`
	DestinationWorkload  string    `json:"destination_workload"`
	DestinationNamespace string    `json:"destination_namespace"`
	TraceID              string    `json:"trace_id"`
}

// tapLine formats one access record; a line that is not one is printed as
// it is.
func tapLine(line []byte) string {
	var r accessRecord
	if json.Unmarshal(line, &r) != nil || r.Time.IsZero() {
		return string(line)
	}
	ms := r.DurationMS
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-11s ", r.Time.Local().Format("15:04:05.000"), r.Reporter)
	if r.Kind == "tcp" {
		fmt.Fprintf(&b, "TCP %s", r.Authority)
	} else {
		fmt.Fprintf(&b, "%s %s%s %d", r.Method, r.Authority, r.Path, r.Status)
	}
	fmt.Fprintf(&b, " %s %s.%s -> %s.%s", latency(&ms), orUnknown(r.SourceWorkload), orUnknown(r.SourceNamespace),
		orUnknown(r.DestinationWorkload), orUnknown(r.DestinationNamespace))
	if r.Flags != "" && r.Flags != "-" {
		b.WriteString(" flags=" + r.Flags)
	}
	if r.TraceID != "" {
		b.WriteString(" trace=" + r.TraceID)
	}
	return b.String()
}

func orUnknown(s string) string { return cmp.Or(s, "unknown") }

// ---- weft logs against the hub ----------------------------------------

// hubLogsQuery is what `weft logs` asks the telemetry hub.
type hubLogsQuery struct {
	workload, namespace, instance, trace, since string
	follow                                      bool
	limit                                       int
}

// hubLogs prints the hub's log records of q: "[instance] body" for one
// workload, "[workload/instance] body" otherwise; with follow until ctx is
// done.
func hubLogs(ctx context.Context, s streams, server string, q hubLogsQuery) error {
	v := url.Values{}
	for k, val := range map[string]string{"workload": q.workload, "namespace": q.namespace, "trace": q.trace, "since": q.since} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if q.limit > 0 {
		v.Set("limit", strconv.Itoa(q.limit))
	}
	print := func(r telemetry.LogRecord) {
		if q.instance != "" && r.Instance != q.instance {
			return
		}
		tag := cmp.Or(r.Instance, r.Workload)
		if q.workload == "" {
			tag = r.Workload + "/" + r.Instance
		}
		fmt.Fprintf(s.out, "[%s] %s\n", tag, r.Body)
	}
	if !q.follow {
		var list telemetry.LogList
		if err := getTelemetry(ctx, server, telemetry.LogsPath, v, &list); err != nil {
			return err
		}
		for _, r := range list.Records {
			print(r)
		}
		return nil
	}
	v.Set("follow", "true")
	body, err := openStream(ctx, server, telemetry.LogsPath, v)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer body.Close()
	return eachLine(ctx, body, func(line []byte) error {
		var r telemetry.LogRecord
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("log stream: %w", err)
		}
		print(r)
		return nil
	})
}

// notWeftUp reports whether err says the API is not weft up's (a plain
// weft control): weft logs then reads the hub.
func notWeftUp(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.Contains(ae.Message, "is not run by weft up")
}

// upLogsOrHub runs weft logs: weft up's per-instance output when it can,
// else (or with --trace/--since) the telemetry hub's records.
func upLogsOrHub(ctx context.Context, s streams, server string, q up.LogsQuery, hq hubLogsQuery) error {
	if hq.trace == "" && hq.since == "" {
		err := upClient(server).Logs(ctx, q, s.out)
		if err == nil || !notWeftUp(err) {
			return err
		}
		if q.Sidecar {
			return fmt.Errorf("--sidecar: the control plane at %s is not run by weft up, so it holds no sidecar output", serverURL(server))
		}
	}
	if q.Sidecar {
		return errors.New("--sidecar cannot be combined with --trace or --since")
	}
	return hubLogs(ctx, s, server, hq)
}

// ---- weft get alerts ---------------------------------------------------

// alertsPath is the control plane's AlertRule states.
const alertsPath = "/api/v1/alerts"

// isAlertsKind reports whether a `weft get` kind names the AlertRules'
// states ("alertrules" lists the rules themselves).
func isAlertsKind(k string) bool {
	switch strings.ToLower(k) {
	case "alerts", "alert":
		return true
	}
	return false
}

// alertList is what GET /api/v1/alerts answers.
type alertList struct {
	Alerts []alert.Alert `json:"alerts"`
	Events []alert.Event `json:"events"`
}

// getAlerts prints `weft get alerts`: every AlertRule's state, value and
// threshold; -o json/yaml print the API's document (with the recent
// notifications).
func getAlerts(ctx context.Context, s streams, f getFlags, name string) error {
	var list alertList
	if err := newClient(f.server).GetJSON(ctx, alertsPath, &list); err != nil {
		return reportAPIError(s, err)
	}
	keep := func(ns, n string) bool {
		return (name == "" || n == name) && (f.allNamespaces || ns == f.namespace)
	}
	alerts := list.Alerts[:0]
	for _, a := range list.Alerts {
		if keep(a.Namespace, a.Name) {
			alerts = append(alerts, a)
		}
	}
	list.Alerts = alerts
	events := list.Events[:0]
	for _, e := range list.Events {
		if keep(e.Alert.Namespace, e.Alert.Name) {
			events = append(events, e)
		}
	}
	list.Events = events
	if done, err := writeStructured(s.out, f.output, list); done {
		return err
	}
	if len(alerts) == 0 {
		if name != "" {
			return fmt.Errorf("alert %q not found in namespace %s (is there an AlertRule of that name?)", name, f.namespace)
		}
		fmt.Fprintln(s.err, "No alert rules")
		return nil
	}
	printAlerts(s.out, alerts, f.allNamespaces, time.Now())
	return nil
}

func printAlerts(w io.Writer, alerts []alert.Alert, withNamespace bool, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	head := "NAME\tTARGET\tCONDITION\tVALUE\tREQUESTS\tSTATE\tSINCE\tSEVERITY"
	if withNamespace {
		head = "NAMESPACE\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, a := range alerts {
		value, since := "-", "-"
		if !a.Evaluated.IsZero() && (a.Requests > 0 || a.Value != 0) {
			value = strconv.FormatFloat(a.Value, 'g', 4, 64)
		}
		if !a.Since.IsZero() {
			since = shortAge(now.Sub(a.Since))
		}
		row := fmt.Sprintf("%s\t%s\t%s %s %s\t%s\t%s\t%s\t%s\t%s", a.Name, a.Target, a.Metric, a.Op,
			strconv.FormatFloat(a.Threshold, 'g', -1, 64), value, strconv.FormatFloat(a.Requests, 'f', 0, 64), a.State, since, a.Severity)
		if withNamespace {
			row = a.Namespace + "\t" + row
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
}
