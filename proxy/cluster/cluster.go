// Package cluster turns an Envoy v3 Cluster and its ClusterLoadAssignment into
// the proxy's upstream cluster: an immutable member list with a load-balancing
// picker, plus the settings the forwarder needs (protocol, timeouts, limits).
// Endpoint state lives in a Pool keyed by address and survives rebuilds.
package cluster

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/cluster/health"
	"github.com/weft-mesh/weft/proxy/cluster/lb"
	"github.com/weft-mesh/weft/proxy/cluster/outlier"
	"github.com/weft-mesh/weft/proxy/tlsctx"
)

// Protocol is the upstream HTTP protocol of a cluster.
type Protocol int

const (
	// HTTP1 speaks HTTP/1.1 with keep-alive to the endpoints (Envoy's default).
	HTTP1 Protocol = iota
	// HTTP2 speaks cleartext HTTP/2 with prior knowledge (h2c), multiplexed.
	HTTP2
)

func (p Protocol) String() string {
	if p == HTTP2 {
		return "http2"
	}
	return "http1"
}

// Discovery says where a cluster's endpoints come from.
type Discovery int

const (
	Static Discovery = iota // inline load_assignment
	EDS                     // ClusterLoadAssignment resources over xDS
)

// Limits are the circuit-breaker thresholds of the default priority
// (Envoy defaults: 1024 each, retries 3), and the retry budget.
type Limits struct {
	MaxConnections, MaxPendingRequests, MaxRequests, MaxRetries uint32
	// Budget, when set, replaces MaxRetries: retries in flight may be at
	// most max(MinRetryConcurrency, BudgetPercent% of active requests).
	Budget *RetryBudget
}

// HTTP2ProtocolOptionsType is the key of typed_extension_protocol_options
// that selects the upstream HTTP protocol.
const HTTP2ProtocolOptionsType = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// Spec is the decoded, validated Cluster resource (without endpoints). It is
// immutable once returned.
type Spec struct {
	Name           string
	Discovery      Discovery
	ServiceName    string // EDS service name; defaults to Name
	ConnectTimeout time.Duration
	Protocol       Protocol
	Limits         Limits
	Policy         lb.Policy
	// SlowStart ramps up endpoints that just entered rotation; nil: off.
	SlowStart *lb.SlowStart
	// TLS is the upstream TLS of the cluster; nil: plaintext.
	TLS *tlsctx.Client
	// Inline holds the load_assignment of static clusters.
	Inline *endpointv3.ClusterLoadAssignment
	// Outlier is the passive outlier detection (outlier_detection); nil: off.
	Outlier *outlier.Config
	// Health is the active health check (health_checks), probing only
	// failing endpoints; nil: off.
	Health *health.Config
}

// Decode validates c and returns its Spec. Errors name the field path.
func Decode(c *clusterv3.Cluster, clock func() time.Time, secrets tlsctx.Secrets) (*Spec, error) {
	if c.GetName() == "" {
		return nil, fmt.Errorf("name: required")
	}
	s := &Spec{Name: c.GetName(), ConnectTimeout: 5 * time.Second, ServiceName: c.GetName()}
	switch t := c.GetType(); t {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
		s.Discovery = Static
		if c.GetLoadAssignment() == nil {
			return nil, fmt.Errorf("load_assignment: required for a %s cluster", t)
		}
		s.Inline = c.GetLoadAssignment()
	case clusterv3.Cluster_EDS:
		s.Discovery = EDS
		if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
			s.ServiceName = n
		}
		if c.GetLoadAssignment() != nil {
			return nil, fmt.Errorf("load_assignment: not allowed on an EDS cluster")
		}
	default:
		return nil, fmt.Errorf("type: %s unsupported by weft", t)
	}
	if d := c.GetConnectTimeout(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() <= 0 {
			return nil, fmt.Errorf("connect_timeout: must be a positive duration")
		}
		s.ConnectTimeout = d.AsDuration()
	}
	if c.GetHttp2ProtocolOptions() != nil {
		s.Protocol = HTTP2
	}
	if a, ok := c.GetTypedExtensionProtocolOptions()[HTTP2ProtocolOptionsType]; ok {
		var o httpv3.HttpProtocolOptions
		if err := a.UnmarshalTo(&o); err != nil {
			return nil, fmt.Errorf("typed_extension_protocol_options[%q]: %w", HTTP2ProtocolOptionsType, err)
		}
		switch {
		case o.GetExplicitHttpConfig().GetHttp2ProtocolOptions() != nil:
			s.Protocol = HTTP2
		case o.GetExplicitHttpConfig() != nil:
			s.Protocol = HTTP1
		default:
			return nil, fmt.Errorf("typed_extension_protocol_options[%q]: only explicit_http_config is supported", HTTP2ProtocolOptionsType)
		}
	}
	s.Limits = Limits{MaxConnections: 1024, MaxPendingRequests: 1024, MaxRequests: 1024, MaxRetries: 3}
	for i, th := range c.GetCircuitBreakers().GetThresholds() {
		if th.GetPriority() != corev3.RoutingPriority_DEFAULT {
			continue
		}
		p := fmt.Sprintf("circuit_breakers.thresholds[%d]", i)
		for _, f := range []struct {
			name string
			v    *wrapperspb.UInt32Value
			dst  *uint32
		}{
			{"max_connections", th.GetMaxConnections(), &s.Limits.MaxConnections},
			{"max_pending_requests", th.GetMaxPendingRequests(), &s.Limits.MaxPendingRequests},
			{"max_requests", th.GetMaxRequests(), &s.Limits.MaxRequests},
			{"max_retries", th.GetMaxRetries(), &s.Limits.MaxRetries},
		} {
			if f.v != nil && f.v.GetValue() == 0 && f.name != "max_retries" {
				return nil, fmt.Errorf("%s.%s: must be > 0", p, f.name)
			}
			if f.v != nil {
				*f.dst = f.v.GetValue()
			}
		}
		if rb := th.GetRetryBudget(); rb != nil {
			b, err := decodeRetryBudget(rb)
			if err != nil {
				return nil, fmt.Errorf("%s.retry_budget.%w", p, err)
			}
			s.Limits.Budget = b
		}
	}
	if ts := c.GetTransportSocket(); ts != nil {
		down, up, err := tlsctx.DecodeTransportSocket(ts)
		if err != nil {
			return nil, fmt.Errorf("transport_socket.%w", err)
		}
		if down != nil {
			return nil, fmt.Errorf("transport_socket.typed_config: a cluster needs an UpstreamTlsContext")
		}
		if s.TLS, err = tlsctx.NewClient(up, secrets); err != nil {
			return nil, fmt.Errorf("transport_socket.typed_config.%w", err)
		}
		if len(s.TLS.Config.NextProtos) == 0 {
			cfg := s.TLS.Config.Clone()
			cfg.NextProtos = []string{"http/1.1"}
			if s.Protocol == HTTP2 {
				cfg.NextProtos = []string{"h2"}
			}
			s.TLS = &tlsctx.Client{Config: cfg, Key: s.TLS.Key}
		}
	}
	od, err := outlier.Decode(c.GetOutlierDetection())
	if err != nil {
		return nil, fmt.Errorf("outlier_detection.%w", err)
	}
	s.Outlier = od
	if s.Health, err = health.Decode(c.GetHealthChecks()); err != nil {
		return nil, err
	}
	pol, err := lb.FromCluster(c, clock)
	if err != nil {
		return nil, err
	}
	s.Policy = pol
	if s.SlowStart, err = lb.SlowStartFromCluster(c); err != nil {
		return nil, err
	}
	if s.Inline != nil {
		if _, err := decodeMembers(s.Inline); err != nil {
			return nil, fmt.Errorf("load_assignment.%w", err)
		}
	}
	return s, nil
}

// member is one decoded lb endpoint before it is bound to the pool.
type member struct {
	addr     string
	weight   uint32
	priority uint32
	locality string
	locW     uint32
	healthy  bool
	meta     EndpointMeta
}

// EndpointMeta is who an endpoint is: the weft control plane sends it in
// LbEndpoint.metadata.filter_metadata["weft"] (docs/observability.md).
// Empty strings mean unknown (statically registered instances).
type EndpointMeta struct {
	Workload, Namespace, ServiceAccount string
}

// MetadataKey is the filter_metadata key of EndpointMeta.
const MetadataKey = "weft"

func decodeEndpointMeta(e *endpointv3.LbEndpoint) EndpointMeta {
	st := e.GetMetadata().GetFilterMetadata()[MetadataKey]
	if st == nil {
		return EndpointMeta{}
	}
	f := st.GetFields()
	return EndpointMeta{
		Workload:       f["workload"].GetStringValue(),
		Namespace:      f["namespace"].GetStringValue(),
		ServiceAccount: f["service_account"].GetStringValue(),
	}
}

// DecodeAssignment validates a ClusterLoadAssignment (EDS) without binding it.
func DecodeAssignment(cla *endpointv3.ClusterLoadAssignment) error {
	if cla.GetClusterName() == "" {
		return fmt.Errorf("cluster_name: required")
	}
	_, err := decodeMembers(cla)
	return err
}

func decodeMembers(cla *endpointv3.ClusterLoadAssignment) ([]member, error) {
	var out []member
	if p := cla.GetPolicy(); p != nil && len(p.GetDropOverloads()) > 0 {
		return nil, fmt.Errorf("policy.drop_overloads: unsupported by weft")
	}
	for i, le := range cla.GetEndpoints() {
		loc := le.GetLocality()
		locality := loc.GetRegion() + "/" + loc.GetZone() + "/" + loc.GetSubZone()
		for j, e := range le.GetLbEndpoints() {
			p := fmt.Sprintf("endpoints[%d].lb_endpoints[%d]", i, j)
			sa := e.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				return nil, fmt.Errorf("%s.endpoint.address.socket_address: required", p)
			}
			if sa.GetProtocol() != corev3.SocketAddress_TCP {
				return nil, fmt.Errorf("%s.endpoint.address.socket_address.protocol: only TCP is supported", p)
			}
			port := sa.GetPortValue()
			if port == 0 || port > 65535 {
				return nil, fmt.Errorf("%s.endpoint.address.socket_address.port_value: must be 1-65535, got %d", p, port)
			}
			host := sa.GetAddress()
			if host == "" {
				return nil, fmt.Errorf("%s.endpoint.address.socket_address.address: required", p)
			}
			if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
				return nil, fmt.Errorf("%s.endpoint.address.socket_address.address: %q is not an IP address (or localhost)", p, host)
			}
			hs := e.GetHealthStatus()
			w := e.GetLoadBalancingWeight().GetValue()
			out = append(out, member{
				addr:     net.JoinHostPort(host, strconv.Itoa(int(port))),
				weight:   w,
				priority: le.GetPriority(),
				locality: locality,
				locW:     le.GetLoadBalancingWeight().GetValue(),
				healthy:  hs == corev3.HealthStatus_UNKNOWN || hs == corev3.HealthStatus_HEALTHY || hs == corev3.HealthStatus_DEGRADED,
				meta:     decodeEndpointMeta(e),
			})
		}
	}
	return out, nil
}

// Cluster is a built upstream cluster: spec, endpoints and picker. Safe for
// concurrent use; Release must be called once it is replaced. Its endpoint
// list is immutable; its picker is replaced (off the request path's locks)
// whenever outlier detection or health checking takes an endpoint out of
// rotation or returns it.
type Cluster struct {
	*Spec
	Endpoints []*Endpoint
	// Meta holds what the assignment says about each endpoint (parallel
	// to Endpoints): the same address may be another instance in another
	// cluster, so it is kept here rather than on the pooled Endpoint.
	Meta []EndpointMeta
	// Members are the endpoints as the assignment gave them (EDS health);
	// the picker additionally marks ejected and unhealthy ones unhealthy.
	Members  []lb.Member
	picker   atomic.Pointer[pickerRef]
	pool     *Pool
	released atomic.Bool
	// Stats shared by every build of the same cluster name.
	Stats *Stats

	detector  *outlier.Detector // nil without outlier_detection
	checker   *health.Checker   // nil without health_checks
	rebuildMu sync.Mutex        // serializes picker rebuilds
	// rampStop cancels the pending slow start rebuild (nil: none);
	// guarded by rebuildMu.
	rampStop func() bool
}

type pickerRef struct{ lb.Picker }

// Stats are per-cluster counters, kept across rebuilds. Safe for concurrent use.
type Stats struct {
	Requests, Retries, NoEndpoint, ConnectFail, Timeouts atomic.Uint64
	// Overflows counts requests refused by a circuit breaker (requests or
	// connections); RetryOverflows retries not made because of the retry
	// limit or budget.
	Overflows, RetryOverflows          atomic.Uint64
	Active, ActiveRetries, Connections atomic.Int64
	// Responses counts upstream responses by status class: [1] 1xx … [5] 5xx.
	Responses [6]atomic.Uint64
	// Outlier counts ejections (by reason, overflow, active); Health the
	// active probes.
	Outlier outlier.Stats
	Health  health.Stats
}

// Build binds spec to its endpoints (cla for EDS clusters; nil means none yet)
// taking references in pool. stats may be nil.
func Build(spec *Spec, cla *endpointv3.ClusterLoadAssignment, pool *Pool, stats *Stats) (*Cluster, error) {
	if spec.Discovery == Static {
		cla = spec.Inline
	}
	ms, err := decodeMembers(cla)
	if err != nil {
		return nil, fmt.Errorf("cluster %q: %w", spec.Name, err)
	}
	if stats == nil {
		stats = &Stats{}
	}
	c := &Cluster{Spec: spec, pool: pool, Stats: stats}
	c.Endpoints = make([]*Endpoint, len(ms))
	c.Members = make([]lb.Member, len(ms))
	c.Meta = make([]EndpointMeta, len(ms))
	for i, m := range ms {
		ep := pool.acquire(m.addr)
		c.Endpoints[i] = ep
		c.Meta[i] = m.meta
		c.Members[i] = lb.Member{
			Load: ep.Load, Weight: m.weight, Priority: m.priority,
			Locality: m.locality, LocalityWeight: m.locW, Healthy: m.healthy, Key: m.addr,
		}
	}
	c.startHealth()
	c.rebuild()
	return c, nil
}

// startHealth starts the cluster's outlier detector and health checker over
// its distinct endpoints.
func (c *Cluster) startHealth() {
	if c.Spec.Outlier == nil && c.Spec.Health == nil {
		return
	}
	var hosts []*outlier.Host
	var targets []*health.Target
	seen := make(map[*Endpoint]bool, len(c.Endpoints))
	for _, ep := range c.Endpoints {
		if !seen[ep] {
			seen[ep] = true
			hosts = append(hosts, ep.Outlier)
			targets = append(targets, ep.Health)
		}
	}
	if c.Spec.Health != nil {
		o := health.Options{
			Clock: c.pool.timers, ClusterName: c.Spec.Name, Stats: &c.Stats.Health,
			OnHealthy: c.onHealthy, OnUnhealthy: func(*health.Target) { c.rebuild() },
		}
		if c.Spec.TLS != nil {
			o.TLS = c.Spec.TLS.Config
		}
		c.checker = health.NewChecker(c.Spec.Health, targets, o)
	}
	if c.Spec.Outlier != nil {
		c.detector = outlier.NewDetector(c.Spec.Outlier, hosts, outlier.Options{
			Clock: c.pool.timers, OnChange: c.rebuild, Stats: &c.Stats.Outlier,
		})
	}
	// Both exist before either starts: their callbacks read both.
	if c.checker != nil {
		c.checker.Start()
	}
	if c.detector != nil {
		c.detector.Start()
	}
}

// onHealthy runs when an endpoint passed its probes: it is un-ejected
// (successful_active_health_check_uneject_host) and back in the picker.
func (c *Cluster) onHealthy(t *health.Target) {
	if c.detector != nil && c.Spec.Outlier.SuccessfulActiveHealthCheckUnejectHost {
		for _, ep := range c.Endpoints {
			if ep.Health == t {
				c.detector.Uneject(ep.Outlier)
				break
			}
		}
	}
	c.rebuild()
}

// rebuild builds and publishes a picker in which ejected and unhealthy
// endpoints are unhealthy members (lb's panic threshold then decides
// whether they still get traffic), and has ejected endpoints probed. It
// runs at Build and on the goroutine of an ejection change (see
// outlier.Options.OnChange); it never blocks on the request path.
func (c *Cluster) rebuild() {
	c.rebuildMu.Lock()
	defer c.rebuildMu.Unlock()
	if c.released.Load() {
		return
	}
	ms := make([]lb.Member, len(c.Members))
	copy(ms, c.Members)
	now := c.pool.clock()
	for i, ep := range c.Endpoints {
		ejected := c.detector != nil && ep.Outlier.Ejected()
		if ejected && c.checker != nil {
			c.checker.Suspect(ep.Health)
		}
		if ejected || c.checker != nil && ep.Health.Unhealthy() {
			ms[i].Healthy = false
		}
		ep.noteHealth(ms[i].Healthy, now)
	}
	c.slowStart(ms, now)
	c.picker.Store(&pickerRef{c.Spec.Policy.Build(ms)})
}

// slowStartScale keeps slow start weights integral: every weight is
// multiplied by it, so a factor of 0.1 stays distinguishable.
const slowStartScale = 100

// slowStart scales the weights of members in their slow start window and,
// while any is, schedules the next rebuild (a tenth of the window, between
// 250 ms and 5 s), so that their share grows in steps. Called with
// rebuildMu held.
func (c *Cluster) slowStart(ms []lb.Member, now time.Time) {
	ss := c.Spec.SlowStart
	if ss == nil {
		return
	}
	ramping := false
	for i, ep := range c.Endpoints {
		f := 1.0
		if ms[i].Healthy {
			age := now.Sub(time.Unix(0, ep.since.Load()))
			if f = ss.Factor(age); f < 1 {
				ramping = true
			}
		}
		ms[i].Weight = uint32(max(1, math.Round(float64(max(ms[i].Weight, 1))*slowStartScale*f)))
	}
	if ramping && c.rampStop == nil {
		step := min(max(ss.Window/10, 250*time.Millisecond), 5*time.Second)
		c.rampStop = c.pool.timers.AfterFunc(step, func() {
			c.rebuildMu.Lock()
			c.rampStop = nil
			c.rebuildMu.Unlock()
			c.rebuild()
		})
	}
}

// Picker returns the current picker. Pickers are immutable; a later call
// may return a newer one.
func (c *Cluster) Picker() lb.Picker { return c.picker.Load().Picker }

// Release stops the cluster's outlier detector and health checker and
// returns its endpoint references to the pool. Idempotent. Ejection and
// health marks stay on the pooled endpoints for the cluster's next build.
func (c *Cluster) Release() {
	if c.released.Swap(true) {
		return
	}
	if c.detector != nil {
		c.detector.Stop()
	}
	if c.checker != nil {
		c.checker.Stop()
	}
	c.rebuildMu.Lock()
	if c.rampStop != nil {
		c.rampStop()
		c.rampStop = nil
	}
	c.rebuildMu.Unlock()
	for _, ep := range c.Endpoints {
		c.pool.release(ep.Addr)
	}
}

// Pick chooses an endpoint. It never blocks.
func (c *Cluster) Pick(info lb.PickInfo) (*Endpoint, error) {
	i, err := c.picker.Load().Pick(info)
	if err != nil {
		return nil, err
	}
	return c.Endpoints[i], nil
}

// PickIndex is Pick returning the endpoint's index in Endpoints (and Meta).
func (c *Cluster) PickIndex(info lb.PickInfo) (int, error) {
	return c.picker.Load().Pick(info)
}
