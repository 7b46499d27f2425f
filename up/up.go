// Package up is `weft up`, the local runtime: it starts an embedded control
// plane, applies a mesh file, builds the Workloads that say how, and runs
// every Workload's instances with a `weft proxy` sidecar next to each, and a
// gateway proxy per Gateway, as child processes that it restarts when they
// exit and scales on request.
//
// Each instance gets a free port in $PORT, HTTP_PROXY pointing at its
// sidecar's HTTP proxy listener, and WEFT_NAMESPACE, WEFT_WORKLOAD and
// WEFT_INSTANCE. Its sidecar registers the instance (node id
// <workload>-<n>.<namespace>); the runtime marks the registration unready
// while the instance fails its readiness check, has exited, or its sidecar is
// not ready, so that other proxies send it no traffic. A sidecar survives
// restarts of its program (and is itself restarted when it exits).
package up

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control"
	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/store"
	"github.com/weft-mesh/weft/control/telemetry"
)

// ReadyLine is printed, alone on its line, once everything runs.
const ReadyLine = "weft: ready"

// readySettle is how long the instances' states must not have changed
// before ReadyLine is printed.
const readySettle = 300 * time.Millisecond

// Options configure Run.
type Options struct {
	// Files are the mesh files and folders (-f).
	Files []string
	// StateDir holds the store, the join token, built binaries (bin/) and
	// logs (logs/). Default "./.weft".
	StateDir string
	// APIAddr is the API's listen address. Default "127.0.0.1:7070".
	APIAddr string
	// XDSAddr is the xDS server's listen address. Default "127.0.0.1:0"
	// (a free port, printed).
	XDSAddr string
	// Version is reported by the API.
	Version string
	// Out receives progress lines; default os.Stdout.
	Out io.Writer
	// Logger receives diagnostics; default slog.Default().
	Logger *slog.Logger
	// Executable is the weft binary run as `weft proxy`. Default
	// os.Executable().
	Executable string
	// Supervisor tunes the supervisor; Run sets its LogDir, OnReadiness
	// and OnEvent. StopTimeout defaults to 4s here so that everything
	// stops within 10s of a signal.
	Supervisor SupervisorOptions
	// OnReady, if set, is called once everything is ready (for tests).
	OnReady func(*Runtime)
}

// Runtime is a running `weft up`. Its methods are safe for concurrent use.
type Runtime struct {
	opts  Options
	out   *syncWriter
	log   *slog.Logger
	env   unitEnv
	files []resource.Object

	plane *control.Plane
	mesh  *control.Mesh
	sup   *Supervisor
	// stopping is closed when the runtime stops (ends log streams so that
	// the API can shut down at once).
	stopping chan struct{}

	mu       sync.Mutex
	built    map[string]string // workload key -> revision last built
	units    map[string]Unit   // by namespace/name: what the supervisor runs
	gateways map[string][]string
}

// syncWriter serializes progress lines from many goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format, args...)
}

// Run runs `weft up` until ctx is done: it loads and validates the mesh
// files (an invalid file is refused before anything starts), locks the state
// directory, builds the Workloads that have build, then runs the control
// plane and every instance. It returns nil after a clean stop.
func Run(ctx context.Context, opts Options) error {
	if opts.StateDir == "" {
		opts.StateDir = control.DefaultStateDir
	}
	if opts.APIAddr == "" {
		opts.APIAddr = control.DefaultAPIAddr
	}
	if opts.XDSAddr == "" {
		opts.XDSAddr = "127.0.0.1:0"
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Supervisor.StopTimeout <= 0 {
		opts.Supervisor.StopTimeout = 4 * time.Second
	}
	rt := &Runtime{
		opts:     opts,
		out:      &syncWriter{w: opts.Out},
		log:      opts.Logger.With("component", "up"),
		built:    map[string]string{},
		units:    map[string]Unit{},
		gateways: map[string][]string{},
	}
	objs, warnings, err := Load(ctx, opts.Files)
	for _, w := range warnings {
		rt.out.printf("weft: warning: %s\n", w)
	}
	if err != nil {
		return fmt.Errorf("invalid mesh (nothing was started):\n%w", err)
	}
	rt.files = objs
	stateDir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	cwd, _ := os.Getwd()
	weft := opts.Executable
	if weft == "" {
		if weft, err = os.Executable(); err != nil {
			return fmt.Errorf("find the weft binary to run proxies: %w", err)
		}
	}
	rt.env = unitEnv{stateDir: stateDir, cwd: cwd, weft: weft}
	unlock, err := lockStateDir(stateDir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := checkGatewayPorts(objs); err != nil {
		return err
	}
	services := serviceSpecs(objs)
	for i := range objs {
		o := &objs[i]
		if w := o.Workload(); w != nil && w.Build != nil {
			rt.out.printf("weft: building %s/%s (go build %s)\n", o.Namespace, o.Name, w.Build.Go)
			if err := rt.env.buildWorkload(ctx, o); err != nil {
				return err
			}
			rt.built[o.Namespace+"/"+o.Name] = rt.env.workloadUnit(o, services).Revision
		}
	}
	cfg := control.Config{
		StateDir: stateDir, APIAddr: opts.APIAddr, XDSAddr: opts.XDSAddr, Version: opts.Version, Logger: opts.Logger,
	}
	err = control.Run(ctx, cfg,
		// weft up runs every hop over mTLS unless a PeerAuthentication
		// says otherwise,
		// and traces every request.
		control.MeshComponent(control.MeshOptions{MTLSMode: v1alpha1.MTLSStrict, TraceSampling: 1, Started: func(m *control.Mesh) { rt.mesh = m }}),
		rt.component)
	if err != nil && strings.Contains(err.Error(), "in use by another process") {
		return fmt.Errorf("%w: is `weft control` running on it? Stop it or use another --state-dir", err)
	}
	return err
}

// lockStateDir takes <dir>/up.lock so that a second `weft up` on the same
// state directory refuses before starting anything. The lock is released
// when the process exits, however it exits.
func lockStateDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, "up.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		owner := ""
		if pid := strings.TrimSpace(string(b)); pid != "" {
			owner = " (pid " + pid + ")"
		}
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another weft up%s: stop it first, or use another --state-dir", dir, owner)
		}
		return nil, fmt.Errorf("lock state directory %s: %w", dir, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		f.Truncate(0)
		f.Close()
	}, nil
}

// checkGatewayPorts fails when a port a Gateway listens on is taken.
func checkGatewayPorts(objs []resource.Object) error {
	var errs []error
	for i := range objs {
		o := &objs[i]
		if o.Kind != resource.KindGateway {
			continue
		}
		for _, p := range GatewayPorts(o) {
			l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
			if err != nil {
				errs = append(errs, fmt.Errorf("gateway %s/%s: port %d is not free: %w", o.Namespace, o.Name, p, err))
				continue
			}
			l.Close()
		}
	}
	return errors.Join(errs...)
}

// component is the control-plane component of the runtime.
func (rt *Runtime) component(p *control.Plane) (func(context.Context) error, error) {
	if rt.mesh == nil {
		return nil, errors.New("up: the mesh component must run first")
	}
	rt.plane = p
	rt.env.xdsAddr = rt.mesh.XDSAddr.String()
	rt.env.telemetryURL = otlpHTTPURL(p.APIAddr)
	if rt.mesh.OTLPSocket != "" {
		// Everything runs on this machine: the hub's Unix socket costs
		// less CPU per byte than loopback TCP (bench/README.md).
		rt.env.telemetryURL = "unix://" + rt.mesh.OTLPSocket
	}
	rt.env.joinToken = rt.mesh.JoinToken
	rt.env.tokens = func(ns, sa string) (string, error) { return rt.mesh.Tokens.Issue(ns, sa, 0) }
	so := rt.opts.Supervisor
	so.LogDir = filepath.Join(rt.env.stateDir, "logs")
	so.OnReadiness = rt.setReadiness
	so.OnEvent = func(e Event) { rt.out.printf("weft: %s/%s %s\n", e.Instance.Namespace, e.Instance.Name, e.Message) }
	if so.OnAppLine == nil && rt.mesh.Telemetry != nil {
		so.OnAppLine = appLogShipper(rt.mesh.Telemetry)
	}
	if so.Logger == nil {
		so.Logger = rt.opts.Logger
	}
	rt.sup = NewSupervisor(so)
	rt.stopping = make(chan struct{})
	rt.registerAPI(p.API)
	return rt.run, nil
}

func (rt *Runtime) run(ctx context.Context) error {
	defer func() {
		close(rt.stopping)
		rt.out.printf("weft: stopping\n")
		sctx, cancel := context.WithTimeout(context.Background(), rt.opts.Supervisor.StopTimeout+3*time.Second)
		defer cancel()
		if err := rt.sup.Shutdown(sctx); err != nil {
			rt.log.Error("stop instances", "err", err)
		}
	}()
	rt.out.printf("weft: control plane: API on http://%s, xDS on %s, state in %s\n", rt.plane.APIAddr, rt.mesh.XDSAddr, rt.env.stateDir)
	if err := rt.apply(ctx); err != nil {
		return err
	}
	return rt.watch(ctx)
}

// apply stores the mesh files' objects in one transaction.
func (rt *Runtime) apply(ctx context.Context) error {
	st := rt.plane.Store
	warnings, err := resource.Validate(ctx, rt.files, st)
	for _, w := range warnings {
		rt.log.Debug("apply warning", "warning", w)
	}
	if err != nil {
		return fmt.Errorf("apply the mesh files: %w", err)
	}
	res, err := st.Apply(ctx, rt.files, store.ApplyOptions{})
	if err != nil {
		return fmt.Errorf("apply the mesh files: %w", err)
	}
	counts := map[store.Outcome]int{}
	for _, o := range res.Objects {
		counts[o.Outcome]++
	}
	rt.out.printf("weft: applied %d objects (%d created, %d configured, %d unchanged)\n",
		len(res.Objects), counts[store.OutcomeCreated], counts[store.OutcomeConfigured], counts[store.OutcomeUnchanged])
	return nil
}

// watch keeps the supervisor's units equal to the stored Workloads and
// Gateways: the mesh files' at start, then whatever `weft apply`, `weft
// delete` and `weft scale` change.
func (rt *Runtime) watch(ctx context.Context) error {
	waiting := false
	for {
		ch, err := rt.plane.Store.Watch(ctx, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch the store: %w", err)
		}
		objs := map[resource.Key]resource.Object{}
		synced := false
		for ev := range ch {
			switch ev.Type {
			case store.Added, store.Modified:
				objs[ev.Object.Key()] = ev.Object
			case store.Deleted:
				delete(objs, ev.Object.Key())
			case store.Synced:
				synced = true
			}
			if !synced || ev.Type == store.Resync {
				continue
			}
			rt.reconcile(ctx, objs)
			if !waiting {
				waiting = true
				go rt.waitReady(ctx)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// reconcile computes the units from the stored objects and hands the
// changes to the supervisor, building programs whose spec changed.
func (rt *Runtime) reconcile(ctx context.Context, objs map[resource.Key]resource.Object) {
	services := serviceSpecs(slices.Collect(maps.Values(objs)))
	want := map[string]Unit{}
	gateways := map[string][]string{}
	keys := slices.SortedFunc(func(yield func(resource.Key) bool) {
		for k := range objs {
			if !yield(k) {
				return
			}
		}
	}, func(a, b resource.Key) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		o := objs[k]
		key := k.Namespace + "/" + k.Name
		switch k.Kind {
		case resource.KindWorkload:
			if Runnable(o.Workload()) {
				want[key] = rt.env.workloadUnit(&o, services)
			}
		case resource.KindGateway:
			if _, taken := want[key]; taken {
				rt.log.Warn("gateway not started: a Workload has the same name", "gateway", key)
				continue
			}
			want[key] = rt.env.gatewayUnit(&o)
			gateways[key] = GatewayURLs(&o)
		}
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.gateways = gateways
	for key, u := range rt.units {
		if _, ok := want[key]; !ok {
			rt.sup.Remove(u.Namespace, u.Name)
			delete(rt.units, key)
			rt.out.printf("weft: %s %s removed\n", strings.ToLower(u.Kind), key)
		}
	}
	for _, k := range keys {
		key := k.Namespace + "/" + k.Name
		u, ok := want[key]
		if !ok || string(k.Kind) != u.Kind {
			continue
		}
		old, had := rt.units[key]
		if had && old.Revision == u.Revision && old.Replicas == u.Replicas {
			continue
		}
		o := objs[k]
		if w := o.Workload(); w != nil && w.Build != nil && rt.built[key] != u.Revision {
			if rt.built[key] == "failed "+u.Revision {
				continue // the same spec failed to build: wait for a change
			}
			rt.out.printf("weft: building %s (go build %s)\n", key, w.Build.Go)
			if err := rt.env.buildWorkload(ctx, &o); err != nil {
				rt.out.printf("weft: %v\n", err)
				rt.built[key] = "failed " + u.Revision
				continue
			}
			rt.built[key] = u.Revision
		}
		switch {
		case !had:
			rt.out.printf("weft: starting %s %s (%d %s)\n", strings.ToLower(u.Kind), key, u.Replicas, plural(u.Replicas, "instance"))
		case old.Revision != u.Revision:
			rt.out.printf("weft: %s %s changed: replacing its instances\n", strings.ToLower(u.Kind), key)
		default:
			rt.out.printf("weft: scaling %s from %d to %d\n", key, old.Replicas, u.Replicas)
		}
		if err := rt.sup.Set(u); err != nil {
			rt.out.printf("weft: %s: %v\n", key, err)
			continue
		}
		rt.units[key] = u
	}
}

// serviceSpecs indexes the Services of objs by namespace and name.
func serviceSpecs(objs []resource.Object) map[[2]string]*v1alpha1.ServiceSpec {
	out := map[[2]string]*v1alpha1.ServiceSpec{}
	for _, o := range objs {
		if s := o.Service(); s != nil {
			out[[2]string{o.Namespace, o.Name}] = s
		}
	}
	return out
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// setReadiness keeps a sidecar's registration in step with its instance:
// unready while the program is not ready, has exited, or the instance is
// stopping. It runs on the instance's goroutine after every probe round, so
// a registration the sidecar reset by reconnecting is corrected within a
// probe period. Before the sidecar's first connection there is no session
// to update; the sidecar becomes ready (and the program starts) only after
// it has connected.
func (rt *Runtime) setReadiness(u *Unit, st InstanceStatus) {
	if u.Kind != KindWorkload || st.InboundPort == 0 || rt.mesh == nil {
		return
	}
	in := registry.Instance{
		Service:  registry.ServiceKey{Namespace: u.Namespace, Name: u.Service},
		Addr:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(st.InboundPort)),
		Protocol: u.Protocol,
		Labels:   u.Labels,
		Identity: u.ServiceAccount,
		// The session registered the instance with its workload (node
		// metadata); replacing it without would strip the workload from
		// the endpoint metadata that labels the callers' metrics.
		Workload: u.Name,
		Unready:  !st.Ready,
	}
	if err := rt.mesh.Registry.AddEndpoint(st.NodeID, in); err != nil {
		rt.log.Debug("set readiness", "node", st.NodeID, "err", err)
	}
}

// waitReady prints ReadyLine and the URLs once every instance is ready and
// every proxy has ACKed its configuration; until then it names what it is
// waiting for every 30 seconds.
func (rt *Runtime) waitReady(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond) // proxies' sync state has no change signal
	defer tick.Stop()
	last := time.Now()
	for {
		changed := rt.sup.Changed()
		pending := rt.pending()
		// A readiness change reaches the proxies after the xDS server's
		// debounce (100ms): only a state that held for readySettle, with
		// every proxy ACKed, is ready.
		if len(pending) == 0 && time.Since(rt.sup.LastChange()) >= readySettle {
			break
		}
		if time.Since(last) >= 30*time.Second {
			last = time.Now()
			rt.out.printf("weft: still waiting for: %s\n", strings.Join(pending, "; "))
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
	var b strings.Builder
	b.WriteString(ReadyLine + "\n")
	rt.mu.Lock()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range rt.gateways {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		for _, u := range rt.gateways[k] {
			fmt.Fprintf(&b, "  gateway %s: %s\n", k, u)
		}
	}
	rt.mu.Unlock()
	if a := rt.plane.APIAddr; a != nil {
		fmt.Fprintf(&b, "  dashboard/API: http://%s/\n", a)
		server := ""
		if a.String() != control.DefaultAPIAddr {
			server = " --server " + a.String()
		}
		fmt.Fprintf(&b, "  try: weft ps%s, weft logs%s WORKLOAD -f, weft scale%s WORKLOAD=N; Ctrl-C stops everything\n", server, server, server)
	}
	rt.out.printf("%s", b.String())
	if rt.opts.OnReady != nil {
		rt.opts.OnReady(rt)
	}
}

// pending lists what is not ready yet: instances that have not passed
// readiness, and proxies that are not connected or have not ACKed.
func (rt *Runtime) pending() []string {
	var out []string
	have := map[string]int{}
	var proxies map[string]bool // nil: not checked (no xDS server)
	if rt.mesh != nil {
		proxies = map[string]bool{}
		for _, p := range rt.mesh.XDS.Proxies() {
			proxies[p.ID] = p.Synced && p.LastNack == ""
		}
	}
	for _, st := range rt.sup.Instances() {
		if st.State == StateStopping {
			continue
		}
		have[st.Namespace+"/"+st.Workload]++
		name := st.Namespace + "/" + st.Instance
		switch {
		case st.State != StateReady:
			msg := name + " " + string(st.State)
			if st.LastProbe != "" {
				msg += " (" + st.LastProbe + ")"
			} else if st.LastExit != "" {
				msg += " (" + st.LastExit + ")"
			}
			out = append(out, msg)
		case proxies != nil && !proxies[st.NodeID]:
			out = append(out, name+" proxy not synced")
		}
	}
	for _, u := range rt.sup.Units() {
		if n := have[u.Namespace+"/"+u.Name]; n < u.Replicas {
			out = append(out, fmt.Sprintf("%s/%s %d of %d instances", u.Namespace, u.Name, n, u.Replicas))
		}
	}
	return out
}

// Supervisor returns the runtime's supervisor.
func (rt *Runtime) Supervisor() *Supervisor { return rt.sup }

// APIAddr returns the address the API listens on.
func (rt *Runtime) APIAddr() net.Addr { return rt.plane.APIAddr }

// appLogShipper returns the supervisor hook that ships each line an
// application writes to the control plane's telemetry hub (in process),
// as an application log record with its trace id when it carries one.
func appLogShipper(hub *telemetry.Hub) func(id Instance, stream, line string, at time.Time) {
	return func(id Instance, stream, line string, at time.Time) {
		hub.AddLogs([]telemetry.LogRecord{{
			Time: at, Kind: telemetry.LogApp, Body: line, TraceID: telemetry.ExtractTraceID(line),
			Namespace: id.Namespace, Workload: id.Unit, Instance: id.Name, Stream: stream,
		}})
	}
}

// otlpHTTPURL is the base URL of the API's OTLP/HTTP receivers as a local
// proxy reaches them (an unspecified listen address on loopback).
func otlpHTTPURL(api net.Addr) string {
	a, ok := api.(*net.TCPAddr)
	if !ok {
		return ""
	}
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}
