//go:build !proxyonly

package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/resource"
)

// serverEnv names the environment variable with the API address.
const serverEnv = "WEFT_SERVER"

// addResourceCommands attaches apply, get, describe and delete.
func addResourceCommands(root *cobra.Command, s streams) {
	root.AddCommand(newApplyCmd(s), newGetCmd(s), newDescribeCmd(s), newDeleteCmd(s))
}

// addServerFlag adds --server; the address comes from the flag, else
// $WEFT_SERVER, else the default.
func addServerFlag(cmd *cobra.Command, server *string) {
	cmd.PersistentFlags().StringVar(server, "server", "", "control plane API address host:port (default $"+serverEnv+" or "+api.DefaultAddr+")")
}

func newClient(server string) *api.Client {
	if server == "" {
		server = os.Getenv(serverEnv)
	}
	if server == "" {
		server = api.DefaultAddr
	}
	// Writes to an API off loopback need the operator token.
	return api.NewClient(server, nil).WithToken(os.Getenv(tokenEnv))
}

// reportAPIError prints every error (and warning) of a failed request and
// returns the exit error.
func reportAPIError(s streams, err error) error {
	var ae *api.Error
	if !errors.As(err, &ae) {
		fmt.Fprintf(s.err, "error: %v\n", err)
		return exitError{code: 1}
	}
	for _, w := range ae.Warnings {
		fmt.Fprintf(s.err, "Warning: %s\n", w)
	}
	if len(ae.Errors) == 0 {
		fmt.Fprintf(s.err, "error: %s\n", ae.Message)
	}
	for _, e := range ae.Errors {
		fmt.Fprintf(s.err, "error: %s\n", e)
	}
	return exitError{code: 1}
}

// readSources reads the inputs named by -f: files, directories (*.yaml,
// *.yml, *.json; recursive with -R) and "-" for standard input.
func readSources(files []string, recursive bool, stdin io.Reader) ([]api.Source, error) {
	if len(files) == 0 {
		return nil, errors.New("no input: use -f FILE, -f DIR or -f -")
	}
	var out []api.Source
	for _, f := range files {
		if f == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			out = append(out, api.Source{Name: "-", Data: string(b)})
			continue
		}
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			out = append(out, api.Source{Name: f, Data: string(b)})
			continue
		}
		var paths []string
		err = filepath.WalkDir(f, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != f && !recursive {
					return filepath.SkipDir
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(p)) {
			case ".yaml", ".yml", ".json":
				paths = append(paths, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			hint := ""
			if !recursive {
				hint = " (use -R for subdirectories)"
			}
			return nil, fmt.Errorf("%s: no .yaml, .yml or .json files%s", f, hint)
		}
		sort.Strings(paths)
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, api.Source{Name: p, Data: string(b)})
		}
	}
	return out, nil
}

func lowerKind(k resource.Kind) string { return strings.ToLower(string(k)) }

func newApplyCmd(s streams) *cobra.Command {
	var (
		server    string
		files     []string
		recursive bool
		dryRun    bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or update resources from files",
		Long: `Create or update resources from YAML or JSON files (multi-document with ---).
Everything given in one apply is validated together and stored all or nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sources, err := readSources(files, recursive, s.in)
			if err != nil {
				return err
			}
			res, err := newClient(server).Apply(cmd.Context(), sources, dryRun)
			if err != nil {
				return reportAPIError(s, err)
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(s.err, "Warning: %s\n", w)
			}
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			for _, r := range res.Results {
				fmt.Fprintf(s.out, "%s/%s %s%s\n", lowerKind(r.Kind), r.Name, r.Outcome, suffix)
			}
			return nil
		},
	}
	addServerFlag(cmd, &server)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (standard input); repeatable")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read directories recursively")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate and show what would change, store nothing")
	return cmd
}

type getFlags struct {
	server        string
	namespace     string
	allNamespaces bool
	output        string
}

func (f *getFlags) add(cmd *cobra.Command, withOutput bool) {
	addServerFlag(cmd, &f.server)
	cmd.Flags().StringVarP(&f.namespace, "namespace", "n", resource.DefaultNamespace, "namespace")
	if withOutput {
		cmd.Flags().BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "list across all namespaces")
		cmd.Flags().StringVarP(&f.output, "output", "o", "", "output format: yaml, json or wide")
	}
}

func kindArg(name string) (resource.KindInfo, error) {
	ki, ok := resource.LookupKind(name)
	if !ok {
		return ki, fmt.Errorf("unknown resource type %q (known: %s)", name, strings.Join(resource.KindNames(), ", "))
	}
	return ki, nil
}

func newGetCmd(s streams) *cobra.Command {
	var f getFlags
	cmd := &cobra.Command{
		Use:   "get KIND [NAME]",
		Short: "List resources or show one",
		Long: `List resources of a kind, or show one. Kinds: services (svc), workloads (wl),
backendpolicies (bp), faultinjections (fi), peerauthentications (pa),
authorizationpolicies (authz, ap), requestauthentications (ra), gateways (gtw),
httproutes, grpcroutes, tcproutes, alertrules, and
proxies (px): the proxies connected to the control plane, with their config
version and last ACK/NACK; alerts: the state of each AlertRule (inactive,
pending, firing, resolving) with its last value.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch f.output {
			case "", "wide", "yaml", "json":
			default:
				return fmt.Errorf("--output: want yaml, json or wide, got %q", f.output)
			}
			if isProxiesKind(args[0]) {
				name := ""
				if len(args) == 2 {
					name = args[1]
				}
				return getProxies(cmd.Context(), s, f, name)
			}
			if isAlertsKind(args[0]) {
				name := ""
				if len(args) == 2 {
					name = args[1]
				}
				return getAlerts(cmd.Context(), s, f, name)
			}
			ki, err := kindArg(args[0])
			if err != nil {
				return err
			}
			c := newClient(f.server)
			if len(args) == 2 {
				o, err := c.Get(cmd.Context(), ki.Plural, f.namespace, args[1])
				if err != nil {
					return reportAPIError(s, err)
				}
				return printObjects(s, ki, []resource.Object{o}, nil, f)
			}
			ns := f.namespace
			if f.allNamespaces {
				ns = ""
			}
			l, err := c.List(cmd.Context(), ki.Plural, ns)
			if err != nil {
				return reportAPIError(s, err)
			}
			if len(l.Items) == 0 && (f.output == "" || f.output == "wide") {
				if ns == "" {
					fmt.Fprintln(s.err, "No resources found")
				} else {
					fmt.Fprintf(s.err, "No resources found in %s namespace.\n", ns)
				}
				return nil
			}
			return printObjects(s, ki, l.Items, &l, f)
		},
	}
	f.add(cmd, true)
	return cmd
}

// printObjects writes objects as a table, YAML or JSON; list is set when the
// output is a list.
func printObjects(s streams, ki resource.KindInfo, objs []resource.Object, list *api.List, f getFlags) error {
	var v any = objs[0]
	if list != nil {
		v = list
	}
	switch f.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "    ")
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "%s\n", b)
		return nil
	case "yaml":
		b, err := toYAML(v)
		if err != nil {
			return err
		}
		s.out.Write(b)
		return nil
	}
	wide := f.output == "wide"
	tw := tabwriter.NewWriter(s.out, 0, 8, 3, ' ', 0)
	head := columns(ki.Kind, wide)
	if f.allNamespaces {
		head = append([]string{"NAMESPACE"}, head...)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	now := time.Now()
	for i := range objs {
		r := row(&objs[i], wide, now)
		if f.allNamespaces {
			r = append([]string{objs[i].Namespace}, r...)
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// writeStructured writes v as JSON or YAML when output asks for one; done
// reports whether it did (else the caller prints its table).
func writeStructured(w io.Writer, output string, v any) (done bool, err error) {
	var b []byte
	switch output {
	case "json":
		if b, err = json.MarshalIndent(v, "", "    "); err == nil {
			b = append(b, '\n')
		}
	case "yaml":
		b, err = toYAML(v)
	default:
		return false, nil
	}
	if err != nil {
		return true, err
	}
	_, err = w.Write(b)
	return true, err
}

func toYAML(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(b)
}

func columns(k resource.Kind, wide bool) []string {
	var c, w []string
	switch k {
	case resource.KindService:
		c, w = []string{"NAME", "PORTS", "VISIBILITY"}, []string{"BACKED-BY"}
	case resource.KindWorkload:
		c, w = []string{"NAME", "SERVICE", "REPLICAS", "PROTOCOL"}, []string{"SERVICE-ACCOUNT", "UPSTREAMS", "COMMAND"}
	case resource.KindBackendPolicy:
		c, w = []string{"NAME", "TARGET", "LOAD-BALANCER"}, []string{"CONNECT-TIMEOUT", "REQUEST-TIMEOUT", "RETRIES", "OUTLIER-DETECTION", "HEALTH-CHECK"}
	case resource.KindFaultInjection:
		c, w = []string{"NAME", "DELAY", "ABORT"}, []string{"HEADERS"}
	case resource.KindPeerAuthentication:
		c, w = []string{"NAME", "MODE", "SELECTOR"}, nil
	case resource.KindAuthorizationPolicy:
		c, w = []string{"NAME", "ACTION", "RULES", "SELECTOR"}, nil
	case resource.KindRequestAuthentication:
		c, w = []string{"NAME", "ISSUERS", "SELECTOR"}, []string{"JWKS"}
	case resource.KindGateway:
		c, w = []string{"NAME", "CLASS", "LISTENERS"}, []string{"EXPOSURE"}
	case resource.KindHTTPRoute, resource.KindGRPCRoute:
		c, w = []string{"NAME", "HOSTNAMES", "PARENTS"}, []string{"BACKENDS"}
	case resource.KindTCPRoute:
		c, w = []string{"NAME", "PARENTS"}, []string{"BACKENDS"}
	default:
		c = []string{"NAME"}
	}
	c = append(c, "AGE")
	if wide {
		c = append(c, w...)
	}
	return c
}

func row(o *resource.Object, wide bool, now time.Time) []string {
	age := "<unknown>"
	if !o.CreationTimestamp.IsZero() {
		age = humanDuration(now.Sub(o.CreationTimestamp))
	}
	var c, w []string
	switch o.Kind {
	case resource.KindService:
		s := o.Service()
		var ports []string
		for _, p := range s.Ports {
			pp := strconv.Itoa(int(p.Port))
			if p.TargetPort != 0 && p.TargetPort != p.Port {
				pp += ":" + strconv.Itoa(int(p.TargetPort))
			}
			ports = append(ports, pp+"/"+string(p.Protocol))
		}
		backed := "workload/" + s.Workload
		if len(s.Selector) > 0 {
			backed = labelString(s.Selector)
		}
		c, w = []string{o.Name, strings.Join(ports, ","), string(s.Visibility)}, []string{backed}
	case resource.KindWorkload:
		s := o.Workload()
		var ups []string
		for _, u := range s.Upstreams {
			name := u.Service
			if u.Namespace != "" && u.Namespace != o.Namespace {
				name += "." + u.Namespace
			}
			ups = append(ups, fmt.Sprintf("%s:%d", name, u.Port))
		}
		proto := string(s.Protocol)
		if proto == "" {
			proto = "<service's>" // defaults to the protocol of the Service port it serves
		}
		c = []string{o.Name, s.Service, strconv.Itoa(int(s.ReplicaCount())), proto}
		w = []string{s.ServiceAccount, orNone(strings.Join(ups, ",")), orNone(strings.Join(s.Command, " "))}
	case resource.KindBackendPolicy:
		s := o.BackendPolicy()
		lb := "<default>"
		if s.LoadBalancer != nil && s.LoadBalancer.Policy != "" {
			lb = string(s.LoadBalancer.Policy)
		}
		retries := "<none>"
		if s.Retries != nil && s.Retries.Attempts != nil {
			retries = strconv.Itoa(int(*s.Retries.Attempts))
		}
		c = []string{o.Name, strings.ToLower(s.TargetRef.Kind) + "/" + s.TargetRef.Name, lb}
		w = []string{durationOrNone(s.ConnectTimeout.Duration), durationOrNone(s.RequestTimeout.Duration), retries, outlierSummary(s.OutlierDetection), healthSummary(s.HealthCheck)}
	case resource.KindFaultInjection:
		s := o.FaultInjection()
		delay, abort := "<none>", "<none>"
		if d := s.Delay; d != nil {
			delay = d.FixedDelay.Duration.String() + percentSuffix(d.Percent)
		}
		if a := s.Abort; a != nil {
			switch {
			case a.HTTPStatus != nil:
				abort = strconv.Itoa(int(*a.HTTPStatus))
			case a.GRPCStatus != nil:
				abort = "grpc " + strconv.Itoa(int(*a.GRPCStatus))
			}
			abort += percentSuffix(a.Percent)
		}
		var hs []string
		for _, h := range s.Headers {
			if h.Present {
				hs = append(hs, h.Name)
			} else {
				hs = append(hs, h.Name+"="+h.Value)
			}
		}
		c, w = []string{o.Name, delay, abort}, []string{orNone(strings.Join(hs, ","))}
	case resource.KindPeerAuthentication:
		s := o.PeerAuthentication()
		mode := string(v1alpha1.MTLSUnset)
		if s.MTLS != nil && s.MTLS.Mode != "" {
			mode = string(s.MTLS.Mode)
		}
		c = []string{o.Name, mode, selectorString(s.Selector)}
	case resource.KindAuthorizationPolicy:
		s := o.AuthorizationPolicy()
		c = []string{o.Name, string(s.Action), strconv.Itoa(len(s.Rules)), selectorString(s.Selector)}
	case resource.KindRequestAuthentication:
		s := o.RequestAuthentication()
		var iss, keys []string
		for _, r := range s.JWTRules {
			iss = append(iss, r.Issuer)
			if r.JWKSURI != "" {
				keys = append(keys, r.JWKSURI)
			} else {
				keys = append(keys, "<inline>")
			}
		}
		c, w = []string{o.Name, strings.Join(iss, ","), selectorString(s.Selector)}, []string{strings.Join(keys, ",")}
	case resource.KindGateway:
		s := o.Gateway()
		var ls []string
		for _, l := range s.Listeners {
			ls = append(ls, fmt.Sprintf("%s:%d/%s", l.Name, l.Port, l.Protocol))
		}
		exposure := resource.ExposureInternet
		if e := o.Annotations[resource.ExposureAnnotation]; e != "" {
			exposure = e
		}
		c, w = []string{o.Name, string(s.GatewayClassName), strings.Join(ls, ",")}, []string{exposure}
	case resource.KindHTTPRoute:
		s := o.HTTPRoute()
		var backends []gwv1.BackendRef
		for _, r := range s.Rules {
			for _, b := range r.BackendRefs {
				backends = append(backends, b.BackendRef)
			}
		}
		c, w = []string{o.Name, hostnames(s.Hostnames), parents(s.ParentRefs)}, []string{backendList(backends)}
	case resource.KindGRPCRoute:
		s := o.GRPCRoute()
		var backends []gwv1.BackendRef
		for _, r := range s.Rules {
			for _, b := range r.BackendRefs {
				backends = append(backends, b.BackendRef)
			}
		}
		c, w = []string{o.Name, hostnames(s.Hostnames), parents(s.ParentRefs)}, []string{backendList(backends)}
	case resource.KindTCPRoute:
		s := o.TCPRoute()
		var backends []gwv1.BackendRef
		for _, r := range s.Rules {
			backends = append(backends, r.BackendRefs...)
		}
		c, w = []string{o.Name, parents(s.ParentRefs)}, []string{backendList(backends)}
	default:
		c = []string{o.Name}
	}
	c = append(c, age)
	if wide {
		c = append(c, w...)
	}
	return c
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// percentSuffix formats a fault's share: "" for all requests, else " (5%)".
func percentSuffix(p *int32) string {
	if p == nil || *p == 100 {
		return ""
	}
	return " (" + strconv.Itoa(int(*p)) + "%)"
}

// outlierSummary lists the detectors a policy turns on.
func outlierSummary(o *v1alpha1.OutlierDetection) string {
	if o == nil {
		return "<none>"
	}
	var ds []string
	for _, d := range []struct {
		name string
		n    *int32
	}{{"5xx", o.Consecutive5xx}, {"gateway", o.ConsecutiveGatewayErrors}, {"local", o.ConsecutiveLocalOriginFailures}} {
		if d.n != nil && *d.n > 0 {
			ds = append(ds, d.name+"="+strconv.Itoa(int(*d.n)))
		}
	}
	if o.SuccessRate != nil {
		ds = append(ds, "success-rate")
	}
	if o.FailurePercentage != nil {
		ds = append(ds, "failure-percentage")
	}
	return orNone(strings.Join(ds, ","))
}

// healthSummary names a policy's probe.
func healthSummary(h *v1alpha1.HealthCheck) string {
	switch {
	case h == nil:
		return "<none>"
	case h.HTTP != nil:
		return "http " + h.HTTP.Path
	case h.GRPC != nil:
		return "grpc " + h.GRPC.Service
	}
	return "tcp"
}

func durationOrNone(d time.Duration) string {
	if d == 0 {
		return "<none>"
	}
	return d.String()
}

// selectorString shows a workload selector; "<all>" selects every
// workload of the namespace.
func selectorString(s *v1alpha1.WorkloadSelector) string {
	if s == nil || len(s.MatchLabels) == 0 {
		return "<all>"
	}
	return labelString(s.MatchLabels)
}

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

func hostnames(hs []gwv1.Hostname) string {
	if len(hs) == 0 {
		return "<none>"
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = string(h)
	}
	return strings.Join(out, ",")
}

func parents(ps []gwv1.ParentReference) string {
	var out []string
	for _, p := range ps {
		kind := "gateway"
		if p.Kind != nil {
			kind = strings.ToLower(string(*p.Kind))
		}
		s := kind + "/" + string(p.Name)
		if p.Port != nil {
			s += ":" + strconv.Itoa(int(*p.Port))
		}
		out = append(out, s)
	}
	return orNone(strings.Join(out, ","))
}

func backendList(bs []gwv1.BackendRef) string {
	var out []string
	for _, b := range bs {
		s := string(b.Name)
		if b.Port != nil {
			s += ":" + strconv.Itoa(int(*b.Port))
		}
		if b.Weight != nil {
			s += fmt.Sprintf("(%d)", *b.Weight)
		}
		out = append(out, s)
	}
	return orNone(strings.Join(out, ","))
}

// humanDuration formats an age as kubectl does: 45s, 5m3s, 2h, 3d4h, 40d.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 10*time.Minute:
		return fmt.Sprintf("%dm%ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 3*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 8*time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d < 8*24*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
	return fmt.Sprintf("%dd", int(d.Hours())/24)
}

func newDescribeCmd(s streams) *cobra.Command {
	var f getFlags
	cmd := &cobra.Command{
		Use:   "describe KIND NAME",
		Short: "Show one resource in detail",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ki, err := kindArg(args[0])
			if err != nil {
				return err
			}
			c := newClient(f.server)
			o, err := c.Get(cmd.Context(), ki.Plural, f.namespace, args[1])
			if err != nil {
				return reportAPIError(s, err)
			}
			return describe(cmd.Context(), s, c, &o)
		},
	}
	f.add(cmd, false)
	return cmd
}

func describe(ctx context.Context, s streams, c *api.Client, o *resource.Object) error {
	tw := tabwriter.NewWriter(s.out, 0, 8, 1, ' ', 0)
	field := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	field("Name", o.Name)
	field("Namespace", o.Namespace)
	field("Kind", string(o.Kind))
	field("API Version", o.APIVersion)
	field("Labels", orNone(labelString(o.Labels)))
	field("Annotations", orNone(labelString(o.Annotations)))
	field("Resource Version", o.ResourceVersion)
	field("Generation", strconv.FormatInt(o.Generation, 10))
	if !o.CreationTimestamp.IsZero() {
		field("Created", fmt.Sprintf("%s (%s ago)", o.CreationTimestamp.Format(time.RFC3339), humanDuration(time.Since(o.CreationTimestamp))))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	spec, err := toYAML(o.Spec)
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, "Spec:")
	for _, l := range strings.Split(strings.TrimRight(string(spec), "\n"), "\n") {
		fmt.Fprintf(s.out, "  %s\n", l)
	}
	if o.Kind != resource.KindService {
		return nil
	}
	refs, err := referencesTo(ctx, c, o.Namespace, o.Name)
	if err != nil {
		fmt.Fprintf(s.err, "Warning: cannot list references: %v\n", err)
		return nil
	}
	fmt.Fprintln(s.out, "Referenced By:")
	if len(refs) == 0 {
		fmt.Fprintln(s.out, "  <none>")
	}
	for _, r := range refs {
		fmt.Fprintf(s.out, "  %s\n", r)
	}
	return nil
}

// referencesTo lists the objects that refer to Service ns/name.
func referencesTo(ctx context.Context, c *api.Client, ns, name string) ([]string, error) {
	var out []string
	for _, kind := range []string{"workloads", "backendpolicies", "httproutes", "grpcroutes", "tcproutes"} {
		l, err := c.List(ctx, kind, "")
		if err != nil {
			return nil, err
		}
		for i := range l.Items {
			o := &l.Items[i]
			if how := refersTo(o, ns, name); how != "" {
				out = append(out, fmt.Sprintf("%s/%s (%s) %s", lowerKind(o.Kind), o.Name, o.Namespace, how))
			}
		}
	}
	return out, nil
}

func refersTo(o *resource.Object, ns, name string) string {
	local := func(refNS *gwv1.Namespace) bool {
		n := o.Namespace
		if refNS != nil {
			n = string(*refNS)
		}
		return n == ns
	}
	var how []string
	add := func(s string) {
		if !slices.Contains(how, s) {
			how = append(how, s)
		}
	}
	backend := func(b gwv1.BackendRef) {
		if string(b.Name) == name && local(b.Namespace) && (b.Kind == nil || *b.Kind == "Service") {
			add("backend")
		}
	}
	parentRefs := func(ps []gwv1.ParentReference) {
		for _, p := range ps {
			if p.Kind != nil && *p.Kind == "Service" && string(p.Name) == name && local(p.Namespace) {
				add("parent")
			}
		}
	}
	switch o.Kind {
	case resource.KindWorkload:
		w := o.Workload()
		if o.Namespace == ns && w.Service == name {
			add("backs it")
		}
		for _, u := range w.Upstreams {
			if u.Service == name && (u.Namespace == ns || (u.Namespace == "" && o.Namespace == ns)) {
				add(fmt.Sprintf("upstream on port %d", u.Port))
			}
		}
	case resource.KindBackendPolicy:
		if o.Namespace == ns && o.BackendPolicy().TargetRef.Name == name {
			add("targets it")
		}
	case resource.KindHTTPRoute:
		r := o.HTTPRoute()
		parentRefs(r.ParentRefs)
		for _, rule := range r.Rules {
			for _, b := range rule.BackendRefs {
				backend(b.BackendRef)
			}
			for _, f := range rule.Filters {
				if m := f.RequestMirror; m != nil && string(m.BackendRef.Name) == name && local(m.BackendRef.Namespace) &&
					(m.BackendRef.Kind == nil || *m.BackendRef.Kind == "Service") {
					add("mirror")
				}
			}
		}
	case resource.KindGRPCRoute:
		r := o.GRPCRoute()
		parentRefs(r.ParentRefs)
		for _, rule := range r.Rules {
			for _, b := range rule.BackendRefs {
				backend(b.BackendRef)
			}
		}
	case resource.KindTCPRoute:
		r := o.TCPRoute()
		parentRefs(r.ParentRefs)
		for _, rule := range r.Rules {
			for _, b := range rule.BackendRefs {
				backend(b)
			}
		}
	}
	return strings.Join(how, ", ")
}

func newDeleteCmd(s streams) *cobra.Command {
	var (
		f              getFlags
		files          []string
		recursive      bool
		ignoreNotFound bool
	)
	cmd := &cobra.Command{
		Use:   "delete (-f FILE|DIR|- | KIND NAME...)",
		Short: "Delete resources by file or by kind and name",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := newClient(f.server)
			var res api.ApplyResponse
			switch {
			case len(files) > 0 && len(args) > 0:
				return errors.New("give either -f or KIND NAME, not both")
			case len(files) > 0:
				sources, err := readSources(files, recursive, s.in)
				if err != nil {
					return err
				}
				if res, err = c.DeleteSources(cmd.Context(), sources); err != nil {
					return reportAPIError(s, err)
				}
			case len(args) >= 2:
				ki, err := kindArg(args[0])
				if err != nil {
					return err
				}
				failed := false
				for _, name := range args[1:] {
					r, err := c.Delete(cmd.Context(), ki.Plural, f.namespace, name)
					var ae *api.Error
					switch {
					case errors.As(err, &ae) && ae.Status == 404:
						res.Results = append(res.Results, api.ObjectResult{Kind: ki.Kind, Namespace: f.namespace, Name: name, Outcome: "not found"})
					case err != nil:
						reportAPIError(s, err)
						failed = true
					default:
						res.Results = append(res.Results, r.Results...)
					}
				}
				if failed {
					return exitError{code: 1}
				}
			default:
				return errors.New("give -f FILE or KIND NAME")
			}
			missing := false
			for _, r := range res.Results {
				if r.Outcome == "not found" {
					if !ignoreNotFound {
						ki, _ := resource.InfoFor(r.Kind)
						fmt.Fprintf(s.err, "Error from server (NotFound): %s %q not found in namespace %q\n", ki.Plural, r.Name, r.Namespace)
						missing = true
					}
					continue
				}
				fmt.Fprintf(s.out, "%s/%s %s\n", lowerKind(r.Kind), r.Name, r.Outcome)
			}
			if missing {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (standard input); repeatable")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read directories recursively")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "do not fail on objects that do not exist")
	return cmd
}
