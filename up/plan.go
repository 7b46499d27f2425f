package up

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/resource"
)

// AnnotationDir is set by Load on every object to the absolute folder of
// the mesh file it came from: relative paths of a Workload (command,
// build.go) resolve against it, and its instances run there.
const AnnotationDir = "up.weft.dev/dir"

// Load reads the mesh files named by paths (files, or folders whose *.yaml,
// *.yml and *.json files are read in name order), decodes them strictly and
// validates them together. Every error names the file, the document, the
// object and the field path; all are returned joined. Warnings (references
// to objects that are not in the files) do not fail the load.
func Load(ctx context.Context, paths []string) (objs []resource.Object, warnings []string, err error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("no mesh file: use -f FILE or -f DIR")
	}
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, fmt.Errorf("mesh file: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, nil, fmt.Errorf("mesh folder: %w", err)
		}
		n := len(files)
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
		if len(files) == n {
			return nil, nil, fmt.Errorf("mesh folder %s: no .yaml, .yml or .json files", p)
		}
		sort.Strings(files[n:])
	}
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("mesh file: %w", err))
			continue
		}
		dir, err := filepath.Abs(filepath.Dir(f))
		if err != nil {
			errs = append(errs, fmt.Errorf("mesh file %s: %w", f, err))
			continue
		}
		o, err := resource.Decode(f, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for i := range o {
			o[i].Annotations = maps.Clone(o[i].Annotations)
			if o[i].Annotations == nil {
				o[i].Annotations = map[string]string{}
			}
			o[i].Annotations[AnnotationDir] = dir
		}
		objs = append(objs, o...)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	if len(objs) == 0 {
		return nil, nil, fmt.Errorf("%s: no objects", strings.Join(paths, ", "))
	}
	warnings, err = resource.Validate(ctx, objs, nil)
	if err != nil {
		return nil, warnings, err
	}
	if err := checkNames(objs); err != nil {
		return nil, warnings, err
	}
	return objs, warnings, nil
}

// checkNames refuses a Gateway and a Workload of the same namespace and
// name: their processes and proxies would share names and node ids.
func checkNames(objs []resource.Object) error {
	workloads := map[[2]string]bool{}
	for _, o := range objs {
		if o.Kind == resource.KindWorkload {
			workloads[[2]string{o.Namespace, o.Name}] = true
		}
	}
	var errs []error
	for _, o := range objs {
		if o.Kind == resource.KindGateway && workloads[[2]string{o.Namespace, o.Name}] {
			errs = append(errs, fmt.Errorf("%s: metadata.name: a Workload %s/%s exists too; weft up names processes and proxies after both: rename one", resource.Key{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}, o.Namespace, o.Name))
		}
	}
	return errors.Join(errs...)
}

// Runnable reports whether weft up runs the Workload (it has a command or
// a build).
func Runnable(w *v1alpha1.WorkloadSpec) bool { return len(w.Command) > 0 || w.Build != nil }

// unitEnv is what turning objects into units needs besides the objects.
type unitEnv struct {
	stateDir string // absolute
	cwd      string // base for objects without AnnotationDir
	weft     string // the weft binary (for `weft proxy`)
	xdsAddr  string
	// telemetryURL is where proxies send spans and access records over
	// OTLP/HTTP (the hub's Unix socket, or the API); empty: OTLP/gRPC
	// to xdsAddr.
	telemetryURL string
	joinToken    string
	// tokens issues the join token of one identity (namespace, service
	// account); nil: every proxy gets joinToken.
	tokens func(namespace, serviceAccount string) (string, error)
}

// telemetryArgs are the proxy flags that send its telemetry over
// OTLP/HTTP (to the hub's Unix socket, else its API port), which costs
// less CPU per byte than OTLP/gRPC (bench/README.md); none without a
// telemetryURL.
func (e *unitEnv) telemetryArgs() []string {
	if e.telemetryURL == "" {
		return nil
	}
	return []string{"--telemetry-addr", e.telemetryURL}
}

// tokenFor returns the join token a proxy of ns/sa presents: bound to that
// identity, so it gets that identity's certificate and nothing else.
func (e *unitEnv) tokenFor(ns, sa string) string {
	if e.tokens == nil {
		return e.joinToken
	}
	t, err := e.tokens(ns, sa)
	if err != nil {
		return "" // refused by the control plane; the proxy logs why
	}
	return t
}

// baseDir is the folder relative paths of o resolve against.
func (e *unitEnv) baseDir(o *resource.Object) string {
	if d := o.Annotations[AnnotationDir]; d != "" {
		return d
	}
	return e.cwd
}

// binPath is where a Workload with build is built to.
func (e *unitEnv) binPath(o *resource.Object) string {
	return filepath.Join(e.stateDir, "bin", o.Namespace+"-"+o.Name)
}

// workloadUnit turns a runnable Workload into a Unit. services resolves
// the protocol of the Workload's Service when the Workload names none.
func (e *unitEnv) workloadUnit(o *resource.Object, services map[[2]string]*v1alpha1.ServiceSpec) Unit {
	w := o.Workload()
	dir := e.baseDir(o)
	app := &Command{Dir: dir}
	if w.Build != nil {
		app.Path = e.binPath(o)
	} else {
		app.Path = w.Command[0]
		if strings.ContainsRune(app.Path, '/') && !filepath.IsAbs(app.Path) {
			app.Path = filepath.Join(dir, app.Path)
		}
		app.Args = append(app.Args, w.Command[1:]...)
	}
	app.Args = append(app.Args, w.Args...)
	for _, ev := range w.Env {
		app.Env = append(app.Env, ev.Name+"="+ev.Value)
	}
	service := w.Service
	if service == "" {
		service = o.Name
	}
	sa := w.ServiceAccount
	if sa == "" {
		sa = v1alpha1.DefaultServiceAccount
	}
	protocol := workloadProtocol(w, services[[2]string{o.Namespace, service}])
	labels := maps.Clone(w.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	if _, ok := labels["app"]; !ok {
		labels["app"] = o.Name
	}
	var r Readiness
	if rd := w.Readiness; rd != nil {
		r = Readiness{HTTPPath: rd.HTTPPath, TCP: rd.TCP, Period: rd.Period.Duration, FailureThreshold: int(rd.FailureThreshold)}
	}
	u := Unit{
		Kind: KindWorkload, Namespace: o.Namespace, Name: o.Name, Replicas: int(w.ReplicaCount()),
		App: app, Readiness: r, Service: service, Protocol: string(protocol), ServiceAccount: sa, Labels: labels,
	}
	u.Proxy = func(in Instance) Command {
		args := []string{"proxy",
			"--xds-addr", e.xdsAddr,
			"--node-id", in.NodeID,
			"--workload", o.Name,
			"--service", service,
			"--namespace", o.Namespace,
			"--service-account", sa,
			"--protocol", string(protocol),
			"--app-port", strconv.Itoa(in.Ports.App),
			"--inbound-port", strconv.Itoa(in.Ports.Inbound),
			"--http-proxy-port", strconv.Itoa(in.Ports.HTTPProxy),
			"--admin-addr", "127.0.0.1:" + strconv.Itoa(in.Ports.Admin),
			"--labels", labelArg(labels),
		}
		args = append(args, e.telemetryArgs()...)
		return Command{Path: e.weft, Args: args, Env: []string{"WEFT_JOIN_TOKEN=" + e.tokenFor(o.Namespace, sa)}, Dir: e.stateDir}
	}
	u.Revision = revision(w, dir, protocol)
	return u
}

// GatewayNameLabel labels a Gateway's proxies with the Gateway's name, as
// Gateway API implementations do; policies select gateways with it.
const GatewayNameLabel = "gateway.networking.k8s.io/gateway-name"

// gatewayUnit is the proxy of one Gateway.
func (e *unitEnv) gatewayUnit(o *resource.Object) Unit {
	return Unit{
		Kind: KindGateway, Namespace: o.Namespace, Name: o.Name, Replicas: 1, Revision: "gateway",
		Proxy: func(in Instance) Command {
			// A Gateway's proxies run as the service account named after
			// it, with Gateway API's gateway-name label (docs/architecture.md).
			args := append([]string{"proxy",
				"--xds-addr", e.xdsAddr,
				"--role", "gateway",
				"--node-id", in.NodeID,
				"--workload", o.Name,
				"--namespace", o.Namespace,
				"--service-account", o.Name,
				"--labels", GatewayNameLabel + "=" + o.Name,
				"--admin-addr", "127.0.0.1:" + strconv.Itoa(in.Ports.Admin),
			}, e.telemetryArgs()...)
			return Command{Path: e.weft, Dir: e.stateDir, Env: []string{"WEFT_JOIN_TOKEN=" + e.tokenFor(o.Namespace, o.Name)}, Args: args}
		},
	}
}

// workloadProtocol is the Workload's protocol, else the protocol of the
// Service port it serves, else http.
func workloadProtocol(w *v1alpha1.WorkloadSpec, svc *v1alpha1.ServiceSpec) v1alpha1.Protocol {
	if w.Protocol != "" {
		return w.Protocol
	}
	if svc != nil && len(svc.Ports) > 0 {
		p := svc.Ports[0]
		if w.Port != nil {
			if sp, ok := svc.Port(w.Port.String()); ok {
				p = sp
			}
		}
		if p.Protocol != "" {
			return p.Protocol
		}
	}
	return v1alpha1.ProtocolHTTP
}

// labelArg formats labels for --labels (k=v,k=v, sorted).
func labelArg(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

// revision identifies what an instance runs: everything but the replica
// count.
func revision(w *v1alpha1.WorkloadSpec, dir string, protocol v1alpha1.Protocol) string {
	c := *w
	c.Replicas = nil
	b, _ := json.Marshal(struct {
		Spec     v1alpha1.WorkloadSpec
		Dir      string
		Protocol v1alpha1.Protocol
	}{c, dir, protocol})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// GatewayURLs returns the URLs of a Gateway's HTTP listeners on loopback.
func GatewayURLs(o *resource.Object) []string {
	var out []string
	seen := map[gwv1.PortNumber]bool{}
	for _, l := range o.Gateway().Listeners {
		if l.Protocol != gwv1.HTTPProtocolType || seen[l.Port] {
			continue
		}
		seen[l.Port] = true
		out = append(out, fmt.Sprintf("http://127.0.0.1:%d/", l.Port))
	}
	return out
}

// GatewayPorts returns the ports the gateway proxy of o binds.
func GatewayPorts(o *resource.Object) []int {
	var out []int
	for _, l := range o.Gateway().Listeners {
		if (l.Protocol == gwv1.HTTPProtocolType || l.Protocol == gwv1.TCPProtocolType) && !slices.Contains(out, int(l.Port)) {
			out = append(out, int(l.Port))
		}
	}
	return out
}
