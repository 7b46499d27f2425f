package up

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Supervisor defaults.
const (
	DefaultBackoffInitial = 100 * time.Millisecond
	DefaultBackoffMax     = 10 * time.Second
	DefaultBackoffReset   = 30 * time.Second
	DefaultStopTimeout    = 5 * time.Second
	DefaultProxyWait      = 10 * time.Second
	DefaultProbeTimeout   = time.Second
)

// Unit kinds.
const (
	KindWorkload = "Workload"
	KindGateway  = "Gateway"
)

// Unit is one thing the supervisor runs: a Workload (Replicas instances of
// a program, each with a proxy next to it) or a Gateway (proxies only).
type Unit struct {
	// Kind is KindWorkload or KindGateway (shown by `weft ps`).
	Kind string
	// Namespace and Name identify the unit; instances are named
	// <name>-<n> and their proxies' node ids are <name>-<n>.<namespace>.
	Namespace, Name string
	// Replicas is the number of instances.
	Replicas int
	// App is each instance's program; nil for a unit of proxies only.
	App *Command
	// Readiness of App.
	Readiness Readiness
	// Proxy returns the command of an instance's proxy; nil for none.
	Proxy func(Instance) Command
	// Revision identifies the unit's configuration: Set replaces running
	// instances when it changes (and only scales when it does not).
	Revision string

	// Service, Protocol, ServiceAccount and Labels describe the instances
	// for the OnReadiness hook; the supervisor does not read them.
	Service        string
	Protocol       string
	ServiceAccount string
	Labels         map[string]string
}

func (u *Unit) key() string { return u.Namespace + "/" + u.Name }

// Ports are the loopback ports of one instance, fixed for its lifetime
// (across restarts). A port is 0 when the instance has no such listener.
type Ports struct {
	App       int // the program listens here ($PORT)
	Inbound   int // the proxy's inbound listener, what other proxies dial
	HTTPProxy int // the proxy's HTTP proxy listener ($HTTP_PROXY)
	Admin     int // the proxy's admin listener
}

// Instance identifies one instance of a unit.
type Instance struct {
	Namespace string
	Unit      string
	Index     int
	// Name is <unit>-<index>.
	Name string
	// NodeID is the proxy's xDS node id, <unit>-<index>.<namespace>.
	NodeID string
	Ports  Ports
}

// State is an instance's lifecycle state.
type State string

// States.
const (
	StateStarting State = "starting" // not ready yet
	StateReady    State = "ready"    // passed readiness; proxy ready
	StateUnready  State = "unready"  // was ready, now fails readiness
	StateBackoff  State = "backoff"  // exited; waiting to restart
	StateStopping State = "stopping" // being stopped (scale down, shutdown)
)

// InstanceStatus is the observable state of one instance (`weft ps`).
type InstanceStatus struct {
	Kind          string `json:"kind"`
	Namespace     string `json:"namespace"`
	Workload      string `json:"workload"`
	Instance      string `json:"instance"`
	NodeID        string `json:"nodeId"`
	State         State  `json:"state"`
	Ready         bool   `json:"ready"`
	PID           int    `json:"pid"` // 0 when the program is not running
	AppPort       int    `json:"appPort"`
	SidecarPID    int    `json:"sidecarPid"` // 0 when the proxy is not running
	SidecarReady  bool   `json:"sidecarReady"`
	InboundPort   int    `json:"inboundPort"`
	HTTPProxyPort int    `json:"httpProxyPort"`
	AdminPort     int    `json:"adminPort"`
	// Restarts counts restarts of the program (of the proxy for a
	// gateway); SidecarRestarts those of a workload's proxy.
	Restarts        int       `json:"restarts"`
	SidecarRestarts int       `json:"sidecarRestarts"`
	StartedAt       time.Time `json:"startedAt,omitzero"`
	// LastExit says how the program last ended ("exit status 2").
	LastExit string `json:"lastExit,omitempty"`
	// NextRestart is when a program in backoff is started again.
	NextRestart time.Time `json:"nextRestart,omitzero"`
	Backoff     string    `json:"backoff,omitempty"`
	// LastProbe is the last readiness failure, if the last probe failed.
	LastProbe string `json:"lastProbe,omitempty"`
}

// Event is something that happened to an instance, for progress output.
type Event struct {
	Time     time.Time
	Instance Instance
	// Message is a short lower-case sentence: "ready", "exited (exit
	// status 1), restarting in 200ms", ...
	Message string
}

// SupervisorOptions configure a Supervisor. The zero value is usable.
type SupervisorOptions struct {
	// Clock drives backoff, probes and stop timeouts. Default SystemClock.
	Clock Clock
	// LogDir receives one log file per program (<namespace>-<instance>.log
	// and <namespace>-<instance>.proxy.log); "" keeps logs in memory only.
	LogDir string
	// LogLines is the number of lines per program kept in memory.
	// Default 1000.
	LogLines int
	// LogFileSize bounds each log file; it is rotated once (.1).
	// Default 10 MiB.
	LogFileSize int64
	// BackoffInitial, BackoffMax: a program that exits is restarted after
	// BackoffInitial, doubling on each exit up to BackoffMax; the backoff
	// resets when the program ran for BackoffReset. Defaults 100ms, 10s,
	// 30s.
	BackoffInitial, BackoffMax, BackoffReset time.Duration
	// StopTimeout is how long a program has to exit after SIGTERM before
	// its process group is killed. Default 5s.
	StopTimeout time.Duration
	// ProxyWait: an instance's program starts once its proxy is ready (so
	// that its upstreams work from the start), or after ProxyWait.
	// Default 10s.
	ProxyWait time.Duration
	// ProbeTimeout bounds one readiness probe. Default 1s.
	ProbeTimeout time.Duration
	// DrainDelay: before a planned stop of a ready instance (scale down,
	// replacement), its registration turns unready and the program keeps
	// running this long, so proxies stop sending it requests first.
	// Default 1s (the control plane debounces changes for 100 ms); not
	// applied on shutdown. Negative disables.
	DrainDelay time.Duration
	// HungAfter: a program that was ready and then fails its readiness
	// check for this long is considered hung, killed and restarted (with
	// the usual backoff). Default max(5s, 5 × the readiness period).
	HungAfter time.Duration
	// OnReadiness, if set, is called on the instance's goroutine after
	// every probe round and every state change (it must return quickly),
	// before Wait's callers see the change.
	OnReadiness func(u *Unit, st InstanceStatus)
	// OnEvent, if set, is called on the instance's goroutine for starts,
	// exits and readiness changes (it must return quickly).
	OnEvent func(Event)
	// OnAppLine, if set, receives every line an instance's program writes
	// (without its newline; lines longer than 16 KiB are split) with its
	// stream, "stdout" or "stderr", and the time it was written. It is
	// called on the goroutine copying that stream, in order, and must not
	// block.
	OnAppLine func(id Instance, stream, line string, at time.Time)
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (o *SupervisorOptions) setDefaults() {
	if o.Clock == nil {
		o.Clock = SystemClock{}
	}
	if o.BackoffInitial <= 0 {
		o.BackoffInitial = DefaultBackoffInitial
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultBackoffMax
	}
	if o.DrainDelay == 0 {
		o.DrainDelay = time.Second
	}
	if o.BackoffReset <= 0 {
		o.BackoffReset = DefaultBackoffReset
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.ProxyWait <= 0 {
		o.ProxyWait = DefaultProxyWait
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "up")
}

// Supervisor runs units' instances as child processes: it starts them,
// probes their readiness, restarts them with exponential backoff when they
// exit, scales them and stops them. It is safe for concurrent use; each
// instance is run by one goroutine that the Supervisor owns and Shutdown
// waits for.
type Supervisor struct {
	usedPorts map[int]bool // ports handed to instances; guarded by mu
	opts      SupervisorOptions
	prober    *prober

	mu         sync.Mutex
	units      map[string]*unitState
	sinks      map[string]*LogSink // by <namespace>/<instance>[.proxy]
	changed    chan struct{}
	lastChange time.Time
	shutdown   bool
	wg         sync.WaitGroup
}

// unitState is a unit and its instances. Guarded by Supervisor.mu.
type unitState struct {
	unit      *Unit
	instances map[int]*instance // by index; includes stopping ones
}

// NewSupervisor returns a supervisor that runs nothing yet.
func NewSupervisor(opts SupervisorOptions) *Supervisor {
	opts.setDefaults()
	return &Supervisor{
		opts:    opts,
		prober:  newProber(opts.ProbeTimeout),
		units:   map[string]*unitState{},
		sinks:   map[string]*LogSink{},
		changed: make(chan struct{}),
	}
}

// ErrShutdown is returned by Set after Shutdown.
var ErrShutdown = errors.New("supervisor is shut down")

// Set adds the unit or updates it: with the same Revision only the number of
// instances changes (new ones get the lowest free indices, the highest are
// stopped first); with another Revision every instance is replaced (each new
// one starts when the old one of its index has stopped).
func (s *Supervisor) Set(u Unit) error {
	if u.Name == "" || u.Namespace == "" {
		return errors.New("set unit: namespace and name are required")
	}
	if u.Replicas < 0 {
		return fmt.Errorf("set unit %s/%s: replicas must be >= 0, got %d", u.Namespace, u.Name, u.Replicas)
	}
	if u.App == nil && u.Proxy == nil {
		return fmt.Errorf("set unit %s/%s: nothing to run (no program, no proxy)", u.Namespace, u.Name)
	}
	u.Readiness = u.Readiness.withDefaults()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutdown {
		return ErrShutdown
	}
	us := s.units[u.key()]
	if us == nil {
		us = &unitState{instances: map[int]*instance{}}
		s.units[u.key()] = us
	}
	replace := us.unit != nil && us.unit.Revision != u.Revision
	us.unit = &u
	if replace {
		for _, in := range us.instances {
			in.cancel()
		}
	}
	s.reconcileLocked(us)
	s.notifyLocked()
	return nil
}

// Scale changes the number of instances of a unit.
func (s *Supervisor) Scale(namespace, name string, replicas int) error {
	if replicas < 0 {
		return fmt.Errorf("scale %s/%s: replicas must be >= 0, got %d", namespace, name, replicas)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	us := s.units[namespace+"/"+name]
	if us == nil || us.unit == nil {
		return fmt.Errorf("scale %s/%s: no such workload", namespace, name)
	}
	u := *us.unit
	u.Replicas = replicas
	us.unit = &u
	s.reconcileLocked(us)
	s.notifyLocked()
	return nil
}

// Remove stops every instance of a unit and forgets it.
func (s *Supervisor) Remove(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	us := s.units[namespace+"/"+name]
	if us == nil {
		return
	}
	us.unit = nil
	for _, in := range us.instances {
		in.cancel()
	}
	if len(us.instances) == 0 {
		delete(s.units, namespace+"/"+name)
	}
	s.notifyLocked()
}

// reconcileLocked starts or stops instances so that the live (not
// stopping) ones are exactly indices 0..Replicas-1. Caller holds s.mu.
func (s *Supervisor) reconcileLocked(us *unitState) {
	u := us.unit
	live := map[int]*instance{}
	for idx, in := range us.instances {
		if !in.stopping() {
			live[idx] = in
		}
	}
	for idx, in := range live {
		if idx >= u.Replicas {
			in.cancel()
			continue
		}
		in.setUnit(u)
	}
	for idx := 0; idx < u.Replicas; idx++ {
		if live[idx] != nil {
			continue
		}
		prev := us.instances[idx] // a stopping instance of that index
		in, err := s.newInstance(u, idx, prev)
		if err != nil {
			s.opts.Logger.Error("create instance", "unit", u.key(), "index", idx, "err", err)
			continue
		}
		us.instances[idx] = in
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			in.run()
			s.forget(us, idx, in)
		}()
	}
}

// forget removes a finished instance.
func (s *Supervisor) forget(us *unitState, idx int, in *instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if us.instances[idx] == in {
		delete(us.instances, idx)
	}
	if us.unit == nil && len(us.instances) == 0 {
		for k, v := range s.units {
			if v == us {
				delete(s.units, k)
			}
		}
	}
	s.notifyLocked()
}

// newInstance allocates ports and log sinks. Caller holds s.mu.
func (s *Supervisor) newInstance(u *Unit, idx int, prev *instance) (*instance, error) {
	id := Instance{Namespace: u.Namespace, Unit: u.Name, Index: idx, Name: u.Name + "-" + strconv.Itoa(idx)}
	id.NodeID = id.Name + "." + u.Namespace
	if prev != nil && (prev.id.Ports.App != 0) == (u.App != nil) && (prev.id.Ports.Admin != 0) == (u.Proxy != nil) {
		id.Ports = prev.id.Ports // the same instance name keeps its ports
	} else {
		var n int
		if u.App != nil {
			n++
		}
		if u.Proxy != nil {
			n += 3
		}
		if s.usedPorts == nil {
			s.usedPorts = map[int]bool{}
		}
		ports, err := freePorts(n, s.usedPorts)
		if err != nil {
			return nil, err
		}
		if u.App != nil {
			id.Ports.App, ports = ports[0], ports[1:]
		}
		if u.Proxy != nil {
			if u.App != nil {
				id.Ports.Inbound, id.Ports.HTTPProxy = ports[0], ports[1]
			}
			id.Ports.Admin = ports[2]
		}
	}
	in := &instance{s: s, id: id, unit: u, done: make(chan struct{})}
	if prev != nil {
		in.after = prev.done
	}
	in.ctx, in.cancel = context.WithCancel(context.Background())
	var err error
	if u.App != nil {
		if in.appLog, err = s.sinkLocked(u.Namespace + "-" + id.Name + ".log"); err != nil {
			return nil, err
		}
	}
	if u.Proxy != nil {
		name := u.Namespace + "-" + id.Name + ".proxy.log"
		if u.App == nil {
			name = u.Namespace + "-" + id.Name + ".log"
		}
		if in.proxyLog, err = s.sinkLocked(name); err != nil {
			return nil, err
		}
	}
	in.status = InstanceStatus{
		Kind: u.Kind, Namespace: u.Namespace, Workload: u.Name, Instance: id.Name, NodeID: id.NodeID,
		State: StateStarting, AppPort: id.Ports.App, InboundPort: id.Ports.Inbound,
		HTTPProxyPort: id.Ports.HTTPProxy, AdminPort: id.Ports.Admin,
	}
	return in, nil
}

// sinkLocked returns the log sink of a file name, shared by the successive
// instances of one name. Caller holds s.mu.
func (s *Supervisor) sinkLocked(name string) (*LogSink, error) {
	if l := s.sinks[name]; l != nil {
		return l, nil
	}
	path := ""
	if s.opts.LogDir != "" {
		if err := os.MkdirAll(s.opts.LogDir, 0o700); err != nil {
			return nil, fmt.Errorf("log directory: %w", err)
		}
		path = filepath.Join(s.opts.LogDir, name)
	}
	l, err := NewLogSink(path, s.opts.LogLines, s.opts.LogFileSize, s.opts.Clock.Now)
	if err != nil {
		return nil, err
	}
	s.sinks[name] = l
	return l, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago
// and are not in used; it adds them to used. A port handed to one instance
// is never handed to another while the supervisor lives: the kernel may
// offer a port again as soon as the probe closes, before its owner (an app
// that restarts, a sidecar still starting) binds it.
func freePorts(n int, used map[int]bool) ([]int, error) {
	out := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("allocate a port: no unused port found")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("allocate a port: %w", err)
		}
		lns = append(lns, l) // held until all are chosen, so none repeats
		port := l.Addr().(*net.TCPAddr).Port
		if used[port] {
			continue
		}
		used[port] = true
		out = append(out, port)
	}
	return out, nil
}

func (s *Supervisor) notify() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Supervisor) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
	s.lastChange = s.opts.Clock.Now()
}

// LastChange returns when an instance's status last changed.
func (s *Supervisor) LastChange() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastChange
}

// Changed returns a channel that is closed at the next change of any
// instance's status (for waiting without polling).
func (s *Supervisor) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Instances returns the status of every instance, sorted by namespace,
// unit and index.
func (s *Supervisor) Instances() []InstanceStatus {
	s.mu.Lock()
	var ins []*instance
	for _, us := range s.units {
		for _, in := range us.instances {
			ins = append(ins, in)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(ins, func(a, b *instance) int {
		return cmp.Or(cmp.Compare(a.id.Namespace, b.id.Namespace), cmp.Compare(a.id.Unit, b.id.Unit),
			cmp.Compare(a.id.Index, b.id.Index))
	})
	out := make([]InstanceStatus, 0, len(ins))
	for _, in := range ins {
		out = append(out, in.snapshot())
	}
	return out
}

// Units returns the units, sorted by namespace and name.
func (s *Supervisor) Units() []Unit {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Unit
	for _, us := range s.units {
		if us.unit != nil {
			out = append(out, *us.unit)
		}
	}
	slices.SortFunc(out, func(a, b Unit) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Wait blocks until cond holds for the instances or ctx is done.
func (s *Supervisor) Wait(ctx context.Context, cond func([]InstanceStatus) bool) error {
	for {
		ch := s.Changed()
		if cond(s.Instances()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// LogSource is one program's log.
type LogSource struct {
	Instance string // <unit>-<n>
	Proxy    bool   // the proxy's log rather than the program's
	Sink     *LogSink
}

// Logs returns the logs of a unit's instances (those ever started, also
// stopped ones), sorted by instance name; the proxies' logs only with
// proxy.
func (s *Supervisor) Logs(namespace, unit string, proxy bool) []LogSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LogSource
	prefix := namespace + "-" + unit + "-"
	for name, sink := range s.sinks {
		rest, ok := cutPrefix(name, prefix)
		if !ok {
			continue
		}
		idx, kind, ok := cutIndex(rest)
		if !ok {
			continue
		}
		isProxy := kind == ".proxy.log"
		if isProxy != proxy {
			// A gateway has only a proxy, logged as its program.
			continue
		}
		out = append(out, LogSource{Instance: unit + "-" + idx, Proxy: isProxy, Sink: sink})
	}
	slices.SortFunc(out, func(a, b LogSource) int {
		return cmp.Or(cmp.Compare(len(a.Instance), len(b.Instance)), cmp.Compare(a.Instance, b.Instance))
	})
	return out
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) < len(p) || s[:len(p)] != p {
		return "", false
	}
	return s[len(p):], true
}

// cutIndex splits "12.proxy.log" into "12" and ".proxy.log".
func cutIndex(s string) (string, string, bool) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || (s[i:] != ".log" && s[i:] != ".proxy.log") {
		return "", "", false
	}
	return s[:i], s[i:], true
}

// shuttingDown reports whether Shutdown was called.
func (s *Supervisor) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutdown
}

// Shutdown stops every instance (SIGTERM, then SIGKILL of the process group
// after StopTimeout) and waits for them, or until ctx is done. Set fails
// afterwards. Log files are closed.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown = true
	for _, us := range s.units {
		for _, in := range us.instances {
			in.cancel()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("shutdown: instances still stopping: %w", ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, l := range s.sinks {
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
