// Package proxy is weft's sidecar and gateway runtime. It keeps the accepted
// xDS resources per type, builds a complete new graph (route tables and
// clusters) for each update off the hot path, validates it, and swaps it in
// atomically; an update that fails to decode or validate is refused (the xDS
// client NACKs it) and the previous graph keeps serving. Listeners are
// reconciled after each accepted update: new ones are bound, removed ones
// drained, changed ones take the new settings for new requests.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/route"
)

// Options configure a Proxy. The zero value is usable.
type Options struct {
	// Logger receives the proxy's logs; default slog.Default().
	Logger *slog.Logger
	// Clock feeds latency estimators and timers; default time.Now.
	Clock func() time.Time
	// Listen opens the socket of a listener. Default: a TCP listener with
	// SO_REUSEPORT, as Envoy's enable_reuse_port (several sidecars on one
	// host may serve the same upstream port, and a new process can bind
	// before the old one lets go). A gateway (Role "gateway") binds its
	// ports exclusively instead: they face users, and a second mesh on the
	// same port must fail to bind rather than silently take half of the
	// connections.
	// Hot upgrade passes a function that returns inherited sockets first.
	Listen func(name, addr string) (net.Listener, error)
	// DrainTimeout bounds how long a removed listener's connections may finish; default 5s.
	DrainTimeout time.Duration
	// Identity supplies the proxy's own certificate (proxy/identity), served
	// to listeners and clusters as the SDS secret IdentitySecret. nil: the
	// proxy has no identity of its own; only xDS-delivered secrets exist.
	Identity CertificateSource
	// IdentitySecret names that secret; default "default" (as Istio).
	IdentitySecret string

	// Workload, Namespace and Service are the proxy's own instance, as
	// telemetry labels it (the source on outbound listeners, the
	// destination on inbound ones; Service is the service name without
	// namespace). Empty: "unknown".
	Workload, Namespace, Service string
	// Role is "sidecar" (default) or "gateway": a gateway's inbound
	// listeners report as reporter="gateway".
	Role string
	// AccessLog receives one JSON access record per line
	// (docs/observability.md); nil: no access log. Writes are serialised.
	AccessLog io.Writer
	// Telemetry receives spans and access records as OTLP messages
	// (proxy/otlpexport); nil: no spans are made and trace headers pass
	// through unchanged.
	Telemetry TelemetrySink
	// TraceSampling is the ratio (0-1) of requests without a sampling
	// decision that are traced, unless the listener's
	// tracing.random_sampling says otherwise; 0 means
	// DefaultTraceSampling (0.01), negative means none.
	TraceSampling float64
}

// Proxy is the data plane. Its methods are safe for concurrent use; updates
// are serialised.
type Proxy struct {
	log   *slog.Logger
	clock func() time.Time
	opts  Options
	pool  *cluster.Pool

	graph   atomic.Pointer[graph]
	secrets *secretStore

	mu         sync.Mutex // serialises updates and guards the fields below
	accepted   resources
	static     map[string]map[string]proto.Message // bootstrap resources by type URL, kept across xDS updates
	live       map[string]*liveListener
	stats      map[string]*cluster.Stats
	jwt        jwtFilters // running JWT filters of the installed listeners
	lastUpdate time.Time
	version    uint64
	closed     bool
	wg         sync.WaitGroup // listener goroutines

	h1, h2  *http.Transport // upstream transports, pooled by endpoint address
	h1pools sync.Map        // endpoint address (+TLS key) → *h1Pool (fast HTTP/1.1 path)
	// tlsTransports holds one http.Transport per upstream TLS configuration.
	tlsTransports sync.Map
	mirrors       chan struct{} // slots for mirrored requests in flight

	ready   chan struct{}
	readyMu sync.Once
	metrics *metrics
	tel     *telemetry
}

// resources are the accepted, decoded resources of each type.
type resources struct {
	listeners   map[string]*listenerSpec
	routes      map[string]*route.Table
	clusters    map[string]*cluster.Spec
	assignments map[string]*endpointv3.ClusterLoadAssignment
	raw         map[string]map[string]proto.Message // type URL → name → resource, for config_dump
}

// graph is what the hot path reads: immutable once published.
type graph struct {
	version  uint64
	routes   map[string]*route.Table
	clusters map[string]*cluster.Cluster
}

// New returns a proxy with no configuration; it serves nothing until the
// first update.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Listen == nil {
		opts.Listen = listenReusePort
		if opts.Role == "gateway" {
			opts.Listen = listenExclusive
		}
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	p := &Proxy{
		log:   opts.Logger.With("component", "proxy"),
		clock: opts.Clock,
		opts:  opts,
		pool:  cluster.NewPool(opts.Clock),
		live:  make(map[string]*liveListener),
		stats: make(map[string]*cluster.Stats),
		ready: make(chan struct{}),
		accepted: resources{
			listeners:   map[string]*listenerSpec{},
			routes:      map[string]*route.Table{},
			clusters:    map[string]*cluster.Spec{},
			assignments: map[string]*endpointv3.ClusterLoadAssignment{},
			raw:         map[string]map[string]proto.Message{},
		},
	}
	if opts.IdentitySecret == "" {
		opts.IdentitySecret = "default"
	}
	p.opts = opts
	p.secrets = &secretStore{own: opts.Identity, ownName: opts.IdentitySecret}
	p.metrics = newMetrics()
	p.tel = newTelemetry(opts)
	p.jwt.log = p.log
	p.h1, p.h2 = newTransports()
	p.mirrors = make(chan struct{}, mirrorSlots)
	p.graph.Store(&graph{routes: map[string]*route.Table{}, clusters: map[string]*cluster.Cluster{}})
	return p
}

// Update implements the xDS client's handler: it replaces the whole set of
// one resource type. On error nothing changes and the error text names the
// resource and field; the caller NACKs with it. It runs on the xDS client's
// goroutine and may take as long as building the graph takes.
func (p *Proxy) Update(typeURL string, set map[string]*anypb.Any) error {
	msgs := make(map[string]proto.Message, len(set))
	for name, a := range set {
		m, err := unpack(typeURL, a)
		if err != nil {
			return fmt.Errorf("%s %q: %w", shortType(typeURL), name, err)
		}
		msgs[name] = m
	}
	// Static resources of the bootstrap stay beside dynamic ones, as in
	// Envoy; a dynamic resource may not take a static one's name.
	p.mu.Lock()
	static := p.static[typeURL]
	p.mu.Unlock()
	for name, m := range static {
		if _, clash := msgs[name]; clash {
			return fmt.Errorf("%s %q: a static resource of the bootstrap has this name", shortType(typeURL), name)
		}
		msgs[name] = m
	}
	return p.replace(typeURL, msgs)
}

func unpack(typeURL string, a *anypb.Any) (proto.Message, error) {
	var m proto.Message
	switch typeURL {
	case resourcev3.ListenerType:
		m = &listenerv3.Listener{}
	case resourcev3.RouteType:
		m = &routev3.RouteConfiguration{}
	case resourcev3.ClusterType:
		m = &clusterv3.Cluster{}
	case resourcev3.EndpointType:
		m = &endpointv3.ClusterLoadAssignment{}
	case resourcev3.SecretType:
		m = &tlsv3.Secret{}
	default:
		return nil, fmt.Errorf("resource type %s unsupported by weft", typeURL)
	}
	if a.GetTypeUrl() != typeURL {
		return nil, fmt.Errorf("type_url %q does not match the subscribed type", a.GetTypeUrl())
	}
	if err := a.UnmarshalTo(m); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return m, nil
}

// StaticResources are the resources of a bootstrap file.
type StaticResources struct {
	Listeners []*listenerv3.Listener
	Clusters  []*clusterv3.Cluster
}

// ApplyStatic installs file-mode resources through the same path as xDS:
// clusters first, then listeners (as Envoy's ordering: CDS, EDS, LDS, RDS).
func (p *Proxy) ApplyStatic(r StaticResources) error {
	cs := make(map[string]proto.Message, len(r.Clusters))
	for i, c := range r.Clusters {
		if _, dup := cs[c.GetName()]; dup {
			return fmt.Errorf("static_resources.clusters[%d]: duplicate name %q", i, c.GetName())
		}
		cs[c.GetName()] = c
	}
	ls := make(map[string]proto.Message, len(r.Listeners))
	for i, l := range r.Listeners {
		if _, dup := ls[l.GetName()]; dup {
			return fmt.Errorf("static_resources.listeners[%d]: duplicate name %q", i, l.GetName())
		}
		ls[l.GetName()] = l
	}
	if err := p.replace(resourcev3.ClusterType, cs); err != nil {
		return fmt.Errorf("static_resources.clusters: %w", err)
	}
	if err := p.replace(resourcev3.ListenerType, ls); err != nil {
		return fmt.Errorf("static_resources.listeners: %w", err)
	}
	p.mu.Lock()
	p.static = map[string]map[string]proto.Message{resourcev3.ClusterType: cs, resourcev3.ListenerType: ls}
	p.mu.Unlock()
	return nil
}

// replace decodes a whole type's set, builds the new graph and swaps it.
func (p *Proxy) replace(typeURL string, msgs map[string]proto.Message) error {
	start := p.clock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("proxy is shut down")
	}
	next := p.accepted
	next.raw = maps.Clone(p.accepted.raw)
	names := sortedNames(msgs)
	if typeURL == resourcev3.SecretType {
		// Secrets are read at handshakes, not from the graph.
		decoded := make(map[string]*secret, len(msgs))
		for _, name := range names {
			sec := msgs[name].(*tlsv3.Secret)
			if sec.GetName() != name {
				return fmt.Errorf("secret %q: name %q does not match the resource name", name, sec.GetName())
			}
			if err := supported.Check(sec); err != nil {
				return fmt.Errorf("secret %q: %w", name, err)
			}
			d, err := p.secrets.decodeSecret(sec)
			if err != nil {
				return fmt.Errorf("secret %q: %w", name, err)
			}
			decoded[name] = d
		}
		p.secrets.xds.Store(&decoded)
		next.raw[typeURL] = msgs
		p.accepted = next
		p.lastUpdate = p.clock()
		p.metrics.updates.Add(1)
		return nil
	}
	switch typeURL {
	case resourcev3.ListenerType:
		next.listeners = make(map[string]*listenerSpec, len(msgs))
		addrs := map[string]string{}
		for _, name := range names {
			l, err := decodeListener(msgs[name].(*listenerv3.Listener), p.secrets)
			if err != nil {
				return fmt.Errorf("listener %q: %w", name, err)
			}
			if l.name != name {
				return fmt.Errorf("listener %q: name %q does not match the resource name", name, l.name)
			}
			if other, dup := addrs[l.addr]; dup && l.addr[len(l.addr)-2:] != ":0" {
				return fmt.Errorf("listener %q: address %s already used by listener %q", name, l.addr, other)
			}
			addrs[l.addr] = name
			next.listeners[name] = l
		}
		p.jwt.adopt(next.listeners)
	case resourcev3.RouteType:
		next.routes = make(map[string]*route.Table, len(msgs))
		for _, name := range names {
			t, err := route.Build(msgs[name].(*routev3.RouteConfiguration))
			if err != nil {
				return err // names the route configuration and the field
			}
			if t.Name() != name {
				return fmt.Errorf("route config %q: name does not match the resource name %q", t.Name(), name)
			}
			next.routes[name] = t
		}
	case resourcev3.ClusterType:
		next.clusters = make(map[string]*cluster.Spec, len(msgs))
		for _, name := range names {
			c := msgs[name].(*clusterv3.Cluster)
			if prev, ok := p.accepted.raw[typeURL][name]; ok && proto.Equal(prev, c) {
				next.clusters[name] = p.accepted.clusters[name]
				msgs[name] = prev
				continue
			}
			if err := supported.Check(c); err != nil {
				return fmt.Errorf("cluster %q: %w", name, err)
			}
			s, err := cluster.Decode(c, p.clock, p.secrets)
			if err != nil {
				return fmt.Errorf("cluster %q: %w", name, err)
			}
			next.clusters[name] = s
		}
	case resourcev3.EndpointType:
		next.assignments = make(map[string]*endpointv3.ClusterLoadAssignment, len(msgs))
		for _, name := range names {
			cla := msgs[name].(*endpointv3.ClusterLoadAssignment)
			if prev, ok := p.accepted.assignments[name]; ok && proto.Equal(prev, cla) {
				next.assignments[name] = prev
				msgs[name] = prev
				continue
			}
			if err := supported.Check(cla); err != nil {
				return fmt.Errorf("cluster load assignment %q: %w", name, err)
			}
			if err := cluster.DecodeAssignment(cla); err != nil {
				return fmt.Errorf("cluster load assignment %q: %w", name, err)
			}
			next.assignments[name] = cla
		}
	default:
		return fmt.Errorf("resource type %s unsupported by weft", typeURL)
	}
	next.raw[typeURL] = msgs

	old := p.graph.Load()
	g, err := p.build(next, old)
	if err != nil {
		return err
	}
	// Bind new listener sockets before publishing, so that a listener that
	// cannot bind refuses the whole update.
	if typeURL == resourcev3.ListenerType {
		if err := p.reconcileListeners(next.listeners); err != nil {
			for _, c := range g.clusters {
				if old.clusters[c.Name] != c {
					c.Release()
				}
			}
			return err
		}
	}
	p.version++
	g.version = p.version
	p.graph.Store(g)
	for name, c := range old.clusters {
		if g.clusters[name] != c {
			c.Release()
		}
	}
	p.accepted = next
	if typeURL == resourcev3.ListenerType {
		p.jwt.commit(next.listeners)
	}
	p.lastUpdate = p.clock()
	p.metrics.updates.Add(1)
	p.log.Debug("config applied", "type", shortType(typeURL), "resources", len(msgs), "version", p.version, "took", p.clock().Sub(start))
	if p.warm() {
		p.readyMu.Do(func() { close(p.ready) })
	}
	return nil
}

// warm reports whether the accepted configuration can serve: it has
// listeners and every route configuration they name over RDS has arrived
// (Envoy's listener warming). Called with p.mu held.
func (p *Proxy) warm() bool {
	if len(p.accepted.listeners) == 0 {
		return false
	}
	for _, l := range p.accepted.listeners {
		if l.http != nil && l.http.rdsName != "" {
			if _, ok := p.accepted.routes[l.http.rdsName]; !ok {
				return false
			}
		}
	}
	return true
}

// build makes a graph from r, reusing clusters of old whose spec and
// assignment did not change.
func (p *Proxy) build(r resources, old *graph) (*graph, error) {
	g := &graph{routes: r.routes, clusters: make(map[string]*cluster.Cluster, len(r.clusters))}
	for name, spec := range r.clusters {
		var cla *endpointv3.ClusterLoadAssignment
		if spec.Discovery == cluster.EDS {
			cla = r.assignments[spec.ServiceName]
		}
		if oc := old.clusters[name]; oc != nil && oc.Spec == spec && (spec.Discovery == cluster.Static || p.accepted.assignments[spec.ServiceName] == cla) {
			g.clusters[name] = oc
			continue
		}
		st := p.stats[name]
		if st == nil {
			st = &cluster.Stats{}
			p.stats[name] = st
		}
		c, err := cluster.Build(spec, cla, p.pool, st)
		if err != nil {
			for _, b := range g.clusters {
				if old.clusters[b.Name] != b {
					b.Release()
				}
			}
			return nil, err
		}
		g.clusters[name] = c
	}
	return g, nil
}

// Configured is closed once the first configuration with listeners, and
// the route configurations they read over RDS, is applied.
func (p *Proxy) Configured() <-chan struct{} { return p.ready }

// Shutdown closes every listener and waits for connections to drain up to
// ctx's deadline.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	lls := make([]*liveListener, 0, len(p.live))
	for _, ll := range p.live {
		lls = append(lls, ll)
	}
	p.live = map[string]*liveListener{}
	p.jwt.stop()
	p.mu.Unlock()
	for _, ll := range lls {
		ll.close(ctx)
	}
	p.closeIdleH1()
	p.h1.CloseIdleConnections()
	p.h2.CloseIdleConnections()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		p.tel.close() // every request has ended: hand out their records
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ListenerAddr returns the bound address of a listener (useful with port 0).
func (p *Proxy) ListenerAddr(name string) (net.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ll := p.live[name]
	if ll == nil {
		return nil, false
	}
	return ll.ln.Addr(), true
}

func sortedNames[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func shortType(typeURL string) string {
	switch typeURL {
	case resourcev3.ListenerType:
		return "LDS"
	case resourcev3.RouteType:
		return "RDS"
	case resourcev3.ClusterType:
		return "CDS"
	case resourcev3.EndpointType:
		return "EDS"
	case resourcev3.SecretType:
		return "SDS"
	}
	return typeURL
}
