package proxy

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbacnetv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/filter/authz"
	"github.com/weft-mesh/weft/proxy/tlsctx"
)

// listenerSpec is a decoded, validated Listener. Immutable.
type listenerSpec struct {
	name string
	addr string // host:port
	http *hcmSpec
	tcp  *tcpSpec
	tls  *tlsctx.Server // nil: plaintext
	// permissive: the listener has a TLS chain and a plaintext chain
	// (Istio's PERMISSIVE mTLS): the first byte of a connection picks one.
	permissive bool
	raw        *listenerv3.Listener
}

// same reports whether two specs need the same socket.
func (l *listenerSpec) sameSocket(o *listenerSpec) bool { return o != nil && l.addr == o.addr }

// tcpSpec is the decoded tcp_proxy.
type tcpSpec struct {
	statPrefix string
	clusters   []weightedName
	total      uint32
	idle       time.Duration
	// rbac holds the envoy.filters.network.rbac filters before tcp_proxy,
	// in chain order; nil: none.
	rbac *authz.Chain
}

type weightedName struct {
	name   string
	weight uint32
}

const (
	hcmFilterName    = "envoy.filters.network.http_connection_manager"
	tcpFilterName    = "envoy.filters.network.tcp_proxy"
	routerFilterName = "envoy.filters.http.router"
)

// decodeListener validates l against the supported subset and decodes it.
func decodeListener(l *listenerv3.Listener, secrets tlsctx.Secrets) (*listenerSpec, error) {
	if err := supported.Check(l); err != nil {
		return nil, err
	}
	if l.GetName() == "" {
		return nil, fmt.Errorf("name: required")
	}
	sa := l.GetAddress().GetSocketAddress()
	if sa == nil {
		return nil, fmt.Errorf("address.socket_address: required")
	}
	host := sa.GetAddress()
	if _, err := netip.ParseAddr(host); err != nil && host != "localhost" {
		return nil, fmt.Errorf("address.socket_address.address: %q is not an IP address", host)
	}
	if sa.GetPortValue() > 65535 {
		return nil, fmt.Errorf("address.socket_address.port_value: %d out of range", sa.GetPortValue())
	}
	s := &listenerSpec{
		name: l.GetName(),
		addr: net.JoinHostPort(host, strconv.Itoa(int(sa.GetPortValue()))),
		raw:  l,
	}
	chain, err := s.chooseChain(l, secrets)
	if err != nil {
		return nil, err
	}
	fs := chain.GetFilters()
	cp := fmt.Sprintf("filter_chains[%d]", slices.Index(l.GetFilterChains(), chain))
	// Network RBAC filters may precede the terminal filter.
	var rbac []*authz.Filter
	for len(fs) > 1 {
		f := fs[0]
		p := fmt.Sprintf("%s.filters[%d]", cp, len(rbac))
		if !f.GetTypedConfig().MessageIs(&rbacnetv3.RBAC{}) {
			return nil, fmt.Errorf("%s: only %s may precede the terminal filter, got %q", p, authz.NetworkName, f.GetName())
		}
		rf, err := authz.DecodeNetworkAny(f.GetTypedConfig())
		if err != nil {
			return nil, fmt.Errorf("%s.typed_config.%w", p, err)
		}
		rbac = append(rbac, rf)
		fs = fs[1:]
	}
	if len(fs) != 1 {
		return nil, fmt.Errorf("%s.filters: a terminal network filter is required", cp)
	}
	f := fs[0]
	p := fmt.Sprintf("%s.filters[%d]", cp, len(rbac))
	if f.GetTypedConfig() == nil {
		return nil, fmt.Errorf("%s.typed_config: required", p)
	}
	switch {
	case f.GetTypedConfig().MessageIs(&hcmv3.HttpConnectionManager{}):
		if len(rbac) > 0 {
			return nil, fmt.Errorf("%s.filters[0]: network RBAC before http_connection_manager is unsupported by weft; use envoy.filters.http.rbac", cp)
		}
		var h hcmv3.HttpConnectionManager
		if err := f.GetTypedConfig().UnmarshalTo(&h); err != nil {
			return nil, fmt.Errorf("%s.typed_config: %w", p, err)
		}
		hs, err := decodeHCM(&h)
		if err != nil {
			return nil, fmt.Errorf("%s.typed_config.%w", p, err)
		}
		if s.permissive && hs.codec == hcmv3.HttpConnectionManager_HTTP2 {
			return nil, fmt.Errorf("%s.typed_config.codec_type: HTTP2 with a tls and a raw_buffer chain is unsupported by weft (use AUTO)", p)
		}
		s.http = hs
		if s.tls != nil && len(s.tls.Config.NextProtos) == 0 {
			// Envoy's defaults for an HTTP listener: h2 unless HTTP/1 only.
			cfg := s.tls.Config.Clone()
			switch hs.codec {
			case hcmv3.HttpConnectionManager_HTTP1:
				cfg.NextProtos = []string{"http/1.1"}
			case hcmv3.HttpConnectionManager_HTTP2:
				cfg.NextProtos = []string{"h2"}
			default:
				cfg.NextProtos = []string{"h2", "http/1.1"}
			}
			s.tls = &tlsctx.Server{Config: cfg, ALPN: cfg.NextProtos}
		}
	case f.GetTypedConfig().MessageIs(&tcpv3.TcpProxy{}):
		var t tcpv3.TcpProxy
		if err := f.GetTypedConfig().UnmarshalTo(&t); err != nil {
			return nil, fmt.Errorf("%s.typed_config: %w", p, err)
		}
		ts, err := decodeTCP(&t)
		if err != nil {
			return nil, fmt.Errorf("%s.typed_config.%w", p, err)
		}
		if len(rbac) > 0 {
			ts.rbac = authz.NewChain(rbac...)
		}
		s.tcp = ts
	default:
		return nil, fmt.Errorf("%s.typed_config: %s unsupported by weft", p, f.GetTypedConfig().GetTypeUrl())
	}
	return s, nil
}

func decodeTCP(t *tcpv3.TcpProxy) (*tcpSpec, error) {
	s := &tcpSpec{statPrefix: t.GetStatPrefix(), idle: time.Hour}
	switch {
	case t.GetCluster() != "":
		s.clusters = []weightedName{{t.GetCluster(), 1}}
		s.total = 1
	case t.GetWeightedClusters() != nil:
		for i, c := range t.GetWeightedClusters().GetClusters() {
			if c.GetName() == "" {
				return nil, fmt.Errorf("weighted_clusters.clusters[%d].name: required", i)
			}
			s.clusters = append(s.clusters, weightedName{c.GetName(), c.GetWeight()})
			s.total += c.GetWeight()
		}
		if s.total == 0 {
			return nil, fmt.Errorf("weighted_clusters: total weight must be > 0")
		}
	default:
		return nil, fmt.Errorf("cluster_specifier: cluster or weighted_clusters required")
	}
	if d := t.GetIdleTimeout(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return nil, fmt.Errorf("idle_timeout: invalid duration")
		}
		s.idle = d.AsDuration()
	}
	return s, nil
}

// pick chooses a cluster name by weight; r is a random number.
func (t *tcpSpec) pick(r uint64) string {
	if len(t.clusters) == 1 {
		return t.clusters[0].name
	}
	n := uint32(r % uint64(t.total))
	for _, c := range t.clusters {
		if n < c.weight {
			return c.name
		}
		n -= c.weight
	}
	return t.clusters[len(t.clusters)-1].name
}

// tlsInspector is the listener filter that reads the transport protocol.
const tlsInspector = "envoy.filters.listener.tls_inspector"

// chooseChain validates the filter chains and returns the one whose
// filters serve every connection: either a single chain, or two chains
// matched on transport_protocol "tls" and "raw_buffer" whose filters are
// the same (Istio's PERMISSIVE inbound), which needs the tls_inspector
// listener filter. It sets s.tls and s.permissive.
func (s *listenerSpec) chooseChain(l *listenerv3.Listener, secrets tlsctx.Secrets) (*listenerv3.FilterChain, error) {
	chains := l.GetFilterChains()
	inspector := false
	for i, lf := range l.GetListenerFilters() {
		if lf.GetName() != tlsInspector {
			return nil, fmt.Errorf("listener_filters[%d]: %q unsupported by weft (%s)", i, lf.GetName(), tlsInspector)
		}
		inspector = true
	}
	decodeTLS := func(i int) (*tlsctx.Server, error) {
		ts := chains[i].GetTransportSocket()
		if ts == nil {
			return nil, nil
		}
		down, up, err := tlsctx.DecodeTransportSocket(ts)
		if err != nil {
			return nil, fmt.Errorf("filter_chains[%d].transport_socket.%w", i, err)
		}
		if up != nil {
			return nil, fmt.Errorf("filter_chains[%d].transport_socket.typed_config: a listener needs a DownstreamTlsContext", i)
		}
		srv, err := tlsctx.NewServer(down, secrets)
		if err != nil {
			return nil, fmt.Errorf("filter_chains[%d].transport_socket.typed_config.%w", i, err)
		}
		return srv, nil
	}
	switch len(chains) {
	case 1:
		if m := chains[0].GetFilterChainMatch(); m != nil && m.GetTransportProtocol() != "" {
			return nil, fmt.Errorf("filter_chains[0].filter_chain_match: a single chain must match every connection")
		}
		srv, err := decodeTLS(0)
		if err != nil {
			return nil, err
		}
		s.tls = srv
		return chains[0], nil
	case 2:
	default:
		return nil, fmt.Errorf("filter_chains: one chain, or a tls and a raw_buffer chain, are supported; got %d", len(chains))
	}
	tlsIdx := -1
	for i, c := range chains {
		switch tp := c.GetFilterChainMatch().GetTransportProtocol(); tp {
		case "tls":
			if tlsIdx >= 0 {
				return nil, fmt.Errorf("filter_chains[%d].filter_chain_match.transport_protocol: a second tls chain", i)
			}
			tlsIdx = i
		case "raw_buffer":
		default:
			return nil, fmt.Errorf("filter_chains[%d].filter_chain_match.transport_protocol: %q; two chains must match tls and raw_buffer", i, tp)
		}
	}
	if tlsIdx < 0 {
		return nil, fmt.Errorf("filter_chains[1].filter_chain_match.transport_protocol: two chains must match tls and raw_buffer")
	}
	if !inspector {
		return nil, fmt.Errorf("listener_filters: matching on transport_protocol needs %s", tlsInspector)
	}
	rawIdx := 1 - tlsIdx
	if chains[rawIdx].GetTransportSocket() != nil {
		return nil, fmt.Errorf("filter_chains[%d].transport_socket: the raw_buffer chain must be plaintext", rawIdx)
	}
	a, b := chains[tlsIdx].GetFilters(), chains[rawIdx].GetFilters()
	if len(a) != len(b) {
		return nil, fmt.Errorf("filter_chains[%d].filters: weft needs the same filters in the tls and raw_buffer chains", rawIdx)
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return nil, fmt.Errorf("filter_chains[%d].filters[%d]: weft needs the same filters in the tls and raw_buffer chains", rawIdx, i)
		}
	}
	srv, err := decodeTLS(tlsIdx)
	if err != nil {
		return nil, err
	}
	if srv == nil {
		return nil, fmt.Errorf("filter_chains[%d].transport_socket: the tls chain needs a DownstreamTlsContext", tlsIdx)
	}
	s.tls, s.permissive = srv, true
	return chains[tlsIdx], nil
}

// tlsRecordHandshake is the first byte of a TLS ClientHello record.
const tlsRecordHandshake = 0x16

// sniffTLS reports whether connection c of a listener speaks TLS: always
// for a TLS-only listener, never for a plaintext one, and by its first
// byte (a TLS handshake record) for a permissive one. The returned conn
// replays the byte read.
func (ll *liveListener) sniffTLS(c net.Conn, ls *listenerSpec) (net.Conn, bool) {
	if ls.tls == nil || !ls.permissive {
		return c, ls.tls != nil
	}
	var b [1]byte
	c.SetReadDeadline(time.Now().Add(tlsHandshakeTimeout))
	n, _ := io.ReadFull(c, b[:])
	c.SetReadDeadline(time.Time{})
	if n == 0 {
		return c, false // the read fails again on the plaintext path
	}
	return &prefixConn{Conn: c, prefix: b[:]}, b[0] == tlsRecordHandshake
}
