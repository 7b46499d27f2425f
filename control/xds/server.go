// Package xds is weft's Aggregated Discovery Service: a gRPC server (delta and
// state-of-the-world on one listener, built on go-control-plane) that gives
// every connected proxy its own configuration, computed by a Translator from
// the proxy's identity, recomputes it when the registry or the resources
// change (debounced), sends only what changed, and tracks ACKs and NACKs per
// proxy and type.
package xds

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/registry"
)

// Options configure a Server.
type Options struct {
	// Translator computes each proxy's configuration. Required.
	Translator Translator
	// Registry receives the sidecars' sessions and is watched for
	// changes. Required.
	Registry *registry.Registry
	// Auth checks each stream's bearer token. Required.
	Auth Authenticator
	// Metrics registers the server's collectors; nil keeps them private.
	Metrics prometheus.Registerer
	// Clock drives the debouncer and timestamps. Default the system clock.
	Clock registry.Clock
	// DebounceQuiet is how long no change must arrive before a recompute.
	// Default 100ms.
	DebounceQuiet time.Duration
	// DebounceMax caps the delay from the first change to the recompute.
	// Default 1s.
	DebounceMax time.Duration
	// Logger; default slog.Default(). A "component=xds" attribute is added.
	Logger *slog.Logger
	// GRPCOptions are added to the gRPC server's options.
	GRPCOptions []grpc.ServerOption
	// CA signs the proxies' certificate requests (certs.go); nil: the
	// certificate service is not offered.
	CA Signer
	// TrustDomain of the identities the CA certifies; default
	// "cluster.local".
	TrustDomain string
	// Register, if set, is called once by New with the gRPC server, to add
	// other services on the xDS port (the telemetry hub's OTLP receivers).
	// Such services authenticate their calls with Server.Authenticate.
	Register func(grpc.ServiceRegistrar)
}

// Server is the ADS server. Its methods are safe for concurrent use.
type Server struct {
	translate   Translator
	reg         *registry.Registry
	auth        Authenticator
	ca          Signer
	trustDomain string
	clock       registry.Clock
	log         *slog.Logger
	metrics     *metrics

	ctx    context.Context
	cancel context.CancelFunc
	cache  cache.SnapshotCache
	grpc   *grpc.Server

	debounce  *debouncer
	stopWatch func()

	mu      sync.Mutex
	streams map[streamKey]*stream
	proxies map[string]*proxy

	stopOnce sync.Once
}

// streamKey tells delta and state-of-the-world streams apart: the two
// go-control-plane servers number their streams independently.
type streamKey struct {
	delta bool
	id    int64
}

// stream is one xDS stream. Its fields other than proxy are only used from
// the stream's goroutine (go-control-plane calls the request and response
// callbacks of one stream from one goroutine).
type stream struct {
	key    streamKey
	ctx    context.Context
	token  string
	proxy  *proxy            // nil until the first request authenticated; guarded by Server.mu
	nonces map[string]sentAs // response nonce → what it carried
}

type sentAs struct {
	typeURL string
	version string
}

// proxy is one connected node. mu serialises computing and setting its
// snapshot; statusMu guards the status fields and is never held while
// calling into the cache.
type proxy struct {
	info     ProxyInfo
	identity Identity

	mu       sync.Mutex
	closed   bool
	snap     *snapshot
	services map[registry.ServiceKey]struct{}

	conns int // open streams; guarded by Server.mu

	statusMu     sync.Mutex
	streams      int // copy of conns for status
	protocol     string
	connectedAt  time.Time
	version      uint64
	translateErr string
	types        map[string]*typeState
}

// New builds a server; it does not listen until Serve.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Translator == nil:
		return nil, errors.New("xds: options: Translator is required")
	case opts.Registry == nil:
		return nil, errors.New("xds: options: Registry is required")
	case opts.Auth == nil:
		return nil, errors.New("xds: options: Auth is required")
	}
	if opts.Clock == nil {
		opts.Clock = registry.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = prometheus.NewRegistry()
	}
	s := &Server{
		translate:   opts.Translator,
		reg:         opts.Registry,
		auth:        opts.Auth,
		ca:          opts.CA,
		trustDomain: cmp.Or(opts.TrustDomain, "cluster.local"),
		clock:       opts.Clock,
		log:         opts.Logger.With("component", "xds"),
		streams:     make(map[streamKey]*stream),
		proxies:     make(map[string]*proxy),
	}
	m, err := newMetrics(opts.Metrics, func() float64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return float64(len(s.proxies))
	}, func() float64 { return float64(s.reg.Len()) })
	if err != nil {
		return nil, fmt.Errorf("xds: register metrics: %w", err)
	}
	s.metrics = m
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cache = cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	s.debounce = newDebouncer(opts.Clock, opts.DebounceQuiet, opts.DebounceMax, s.recompute)
	gopts := append([]grpc.ServerOption{
		grpc.MaxConcurrentStreams(1 << 20),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}, opts.GRPCOptions...)
	s.grpc = grpc.NewServer(gopts...)
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(s.grpc, serverv3.NewServer(s.ctx, s.cache, callbacks{s}))
	if s.ca != nil {
		s.registerCertService(s.grpc)
	}
	if opts.Register != nil {
		opts.Register(s.grpc)
	}
	s.stopWatch = s.reg.WatchAll(registry.ListenerFunc(func(ev registry.Event) {
		c := change{all: ev.Resync}
		if !ev.Resync {
			c.services = map[registry.ServiceKey]struct{}{ev.Service: {}}
		}
		s.debounce.add(c)
	}))
	return s, nil
}

// Serve accepts xDS streams on lis until Stop. It returns nil after Stop.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop ends every stream (the proxies keep their configuration and
// reconnect), waits for the handlers to return and stops the debouncer and
// the registry watch. Sessions enter their grace period.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.cancel()
		s.grpc.GracefulStop()
		s.stopWatch()
		s.debounce.stop()
	})
}

// ConfigChanged tells the server that resources changed: every proxy is
// recomputed after the debounce delay.
func (s *Server) ConfigChanged() {
	s.debounce.add(change{all: true})
}

// recompute runs on the debouncer's goroutine.
func (s *Server) recompute(c change) {
	s.mu.Lock()
	list := make([]*proxy, 0, len(s.proxies))
	for _, p := range s.proxies {
		list = append(list, p)
	}
	s.mu.Unlock()
	work := make(chan *proxy)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(len(list), 1)) {
		wg.Go(func() {
			for p := range work {
				s.update(p, c.since)
			}
		})
	}
	for _, p := range list {
		if c.all || p.dependsOn(c.services) {
			work <- p
		}
	}
	close(work)
	wg.Wait()
}

func (p *proxy) dependsOn(services map[registry.ServiceKey]struct{}) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range services {
		if _, ok := p.services[k]; ok {
			return true
		}
		if _, ok := p.services[registry.ServiceKey{Namespace: k.Namespace, Name: AnyService}]; ok {
			return true
		}
	}
	return false
}

// update computes p's configuration and sets it if it changed. since is
// when the change that caused it happened.
func (s *Server) update(p *proxy, since time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	s.metrics.recomputes.Inc()
	res, err := s.translate(p.info)
	var snap *snapshot
	if err == nil {
		snap, err = newSnapshot(res)
	}
	if err != nil {
		s.metrics.translateErrors.Inc()
		s.log.Warn("translate failed; proxy keeps its configuration", "node", p.info.NodeID, "err", err)
		p.statusMu.Lock()
		p.translateErr = err.Error()
		p.statusMu.Unlock()
		return
	}
	p.services = make(map[registry.ServiceKey]struct{}, len(res.Services))
	for _, k := range res.Services {
		p.services[k] = struct{}{}
	}
	p.statusMu.Lock()
	p.translateErr = ""
	if snap.sameAs(p.snap) {
		p.statusMu.Unlock()
		return
	}
	for _, t := range snap.changedTypes(p.snap) {
		// A push that supersedes an unACKed one keeps the older change
		// time: the proxy has been behind since then.
		ts := p.typeState(t)
		ts.pendingVersion = snap.GetVersion(t)
		if ts.pendingSince.IsZero() {
			ts.pendingSince = since
		}
	}
	p.version++
	p.statusMu.Unlock()
	p.snap = snap
	if err := s.cache.SetSnapshot(s.ctx, p.info.NodeID, snap); err != nil && s.ctx.Err() == nil {
		s.log.Warn("set snapshot", "node", p.info.NodeID, "err", err)
	}
}

// typeState returns the state of typeURL; caller holds statusMu.
func (p *proxy) typeState(typeURL string) *typeState {
	ts := p.types[typeURL]
	if ts == nil {
		ts = &typeState{TypeStatus: TypeStatus{Type: shortType(typeURL)}}
		p.types[typeURL] = ts
	}
	return ts
}

// open records a new stream; a stream without a bearer token is refused.
func (s *Server) open(ctx context.Context, key streamKey) error {
	token, err := bearerToken(ctx)
	if err != nil {
		return status.Errorf(codes.Unauthenticated, "xds: %v", err)
	}
	s.mu.Lock()
	s.streams[key] = &stream{key: key, ctx: ctx, token: token, nonces: make(map[string]sentAs)}
	s.mu.Unlock()
	return nil
}

// request handles a request's bookkeeping: authentication and attachment
// on the first one, then ACK/NACK tracking.
func (s *Server) request(key streamKey, node *corev3.Node, typeURL, nonce string, errDetail *status.Status) error {
	s.mu.Lock()
	st := s.streams[key]
	var p *proxy
	if st != nil {
		p = st.proxy
	}
	s.mu.Unlock()
	if st == nil {
		return status.Error(codes.Internal, "xds: unknown stream")
	}
	if p == nil {
		var err error
		if p, err = s.attach(st, node); err != nil {
			return err
		}
	}
	if nonce == "" {
		return nil
	}
	sent, ok := st.nonces[nonce]
	if !ok {
		return nil // a stale nonce, or one from before a reconnect
	}
	delete(st.nonces, nonce)
	now := s.clock.Now()
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	ts := p.typeState(sent.typeURL)
	if errDetail != nil {
		ts.NackVersion, ts.NackReason, ts.NackAt = sent.version, errDetail.Message(), now
		if ts.pendingVersion == sent.version {
			ts.pendingVersion, ts.pendingSince = "", time.Time{}
		}
		s.metrics.nacks.WithLabelValues(ts.Type).Inc()
		s.log.Warn("proxy rejected configuration", "node", p.info.NodeID, "type", ts.Type, "version", sent.version, "reason", errDetail.Message())
		return nil
	}
	ts.AckedVersion, ts.AckedAt = sent.version, now
	if ts.pendingVersion == sent.version && !ts.pendingSince.IsZero() {
		s.metrics.pushLatency.Observe(now.Sub(ts.pendingSince).Seconds())
		ts.pendingVersion, ts.pendingSince = "", time.Time{}
	}
	return nil
}

// attach authenticates the stream's first request and joins the stream to
// its proxy, computing the proxy's first configuration and opening its
// registry session.
func (s *Server) attach(st *stream, node *corev3.Node) (*proxy, error) {
	if node == nil {
		return nil, status.Error(codes.InvalidArgument, "xds: the first request carries no node")
	}
	id, err := s.auth.Authenticate(st.ctx, st.token, node)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "xds: node %q: %v", node.GetId(), err)
	}
	info, err := ParseNode(node)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "xds: %v", err)
	}
	if err := checkClaims(id, info); err != nil {
		return nil, status.Errorf(codes.PermissionDenied, "xds: node %q: %v", info.NodeID, err)
	}
	protocol := "sotw"
	if st.key.delta {
		protocol = "delta"
	}
	now := s.clock.Now()
	s.mu.Lock()
	p := s.proxies[info.NodeID]
	fresh := p == nil
	if fresh {
		p = &proxy{info: info, identity: id, connectedAt: now, types: make(map[string]*typeState)}
		p.mu.Lock() // held until the first configuration is set
		s.proxies[info.NodeID] = p
	}
	p.conns++
	streams := p.conns
	st.proxy = p
	s.mu.Unlock()
	p.statusMu.Lock()
	p.streams, p.protocol = streams, protocol
	p.statusMu.Unlock()

	own, hasOwn := info.OwnInstance()
	var instances []registry.Instance
	if hasOwn {
		instances = []registry.Instance{own}
	}
	if err := s.reg.OpenSession(info.NodeID, instances); err != nil {
		s.log.Warn("open registry session", "node", info.NodeID, "err", err)
	}
	if fresh {
		p.mu.Unlock()
		s.update(p, now)
	}
	s.log.Info("proxy connected", "node", info.NodeID, "protocol", protocol, "subject", id.Subject)
	return p, nil
}

// sent records a response.
func (s *Server) sent(key streamKey, typeURL, version, nonce string, size int) {
	s.mu.Lock()
	st := s.streams[key]
	var p *proxy
	if st != nil {
		p = st.proxy
	}
	s.mu.Unlock()
	if p == nil {
		return
	}
	if len(st.nonces) > 64 { // a client that never answers; keep the map bounded
		clear(st.nonces)
	}
	st.nonces[nonce] = sentAs{typeURL: typeURL, version: version}
	p.statusMu.Lock()
	ts := p.typeState(typeURL)
	ts.SentVersion, ts.SentAt = version, s.clock.Now()
	p.statusMu.Unlock()
	short := shortType(typeURL)
	s.metrics.pushes.WithLabelValues(short).Inc()
	s.metrics.pushBytes.WithLabelValues(short).Add(float64(size))
}

// closed detaches a stream; the last stream of a proxy removes it and
// starts its registry session's grace period.
func (s *Server) closed(key streamKey) {
	s.mu.Lock()
	st := s.streams[key]
	delete(s.streams, key)
	var p *proxy
	last := false
	if st != nil && st.proxy != nil {
		p = st.proxy
		p.conns--
		streams := p.conns
		p.statusMu.Lock()
		p.streams = streams
		p.statusMu.Unlock()
		if p.conns == 0 {
			last = true
			delete(s.proxies, p.info.NodeID)
		}
	}
	s.mu.Unlock()
	if p == nil {
		return
	}
	if last {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		s.cache.ClearSnapshot(p.info.NodeID)
		s.log.Info("proxy disconnected", "node", p.info.NodeID)
	}
	s.reg.CloseSession(p.info.NodeID)
}

// callbacks adapts the Server to go-control-plane's callbacks; they run on
// the streams' goroutines.
type callbacks struct{ s *Server }

func (c callbacks) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	return c.s.open(ctx, streamKey{id: id})
}

func (c callbacks) OnStreamClosed(id int64, _ *corev3.Node) { c.s.closed(streamKey{id: id}) }

func (c callbacks) OnStreamRequest(id int64, req *discoveryv3.DiscoveryRequest) error {
	return c.s.request(streamKey{id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), nackStatus(req.GetErrorDetail()))
}

func (c callbacks) OnStreamResponse(_ context.Context, id int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
	c.s.sent(streamKey{id: id}, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), proto.Size(resp))
}

func (c callbacks) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	return c.s.open(ctx, streamKey{delta: true, id: id})
}

func (c callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) {
	c.s.closed(streamKey{delta: true, id: id})
}

func (c callbacks) OnStreamDeltaRequest(id int64, req *discoveryv3.DeltaDiscoveryRequest) error {
	return c.s.request(streamKey{delta: true, id: id}, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), nackStatus(req.GetErrorDetail()))
}

func (c callbacks) OnStreamDeltaResponse(id int64, _ *discoveryv3.DeltaDiscoveryRequest, resp *discoveryv3.DeltaDiscoveryResponse) {
	c.s.sent(streamKey{delta: true, id: id}, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce(), proto.Size(resp))
}

func (c callbacks) OnFetchRequest(context.Context, *discoveryv3.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "xds: REST fetch is not served")
}

func (c callbacks) OnFetchResponse(*discoveryv3.DiscoveryRequest, *discoveryv3.DiscoveryResponse) {}

// nackStatus converts a request's error_detail; nil means an ACK.
func nackStatus(d interface {
	GetCode() int32
	GetMessage() string
}) *status.Status {
	if d == nil || (d.GetCode() == 0 && d.GetMessage() == "") {
		return nil
	}
	return status.New(codes.Code(d.GetCode()), d.GetMessage())
}
