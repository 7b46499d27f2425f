package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

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
	raw  *listenerv3.Listener
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
func decodeListener(l *listenerv3.Listener) (*listenerSpec, error) {
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
	if n := len(l.GetFilterChains()); n != 1 {
		return nil, fmt.Errorf("filter_chains: exactly one chain is supported, got %d", n)
	}
	if ts := l.GetFilterChains()[0].GetTransportSocket(); ts != nil {
		down, up, err := tlsctx.DecodeTransportSocket(ts)
		if err != nil {
			return nil, fmt.Errorf("filter_chains[0].transport_socket.%w", err)
		}
		if up != nil {
			return nil, fmt.Errorf("filter_chains[0].transport_socket.typed_config: a listener needs a DownstreamTlsContext")
		}
		srv, err := tlsctx.NewServer(down)
		if err != nil {
			return nil, fmt.Errorf("filter_chains[0].transport_socket.typed_config.%w", err)
		}
		s.tls = srv
	}
	fs := l.GetFilterChains()[0].GetFilters()
	if len(fs) != 1 {
		return nil, fmt.Errorf("filter_chains[0].filters: exactly one network filter is supported, got %d", len(fs))
	}
	f := fs[0]
	p := "filter_chains[0].filters[0]"
	if f.GetTypedConfig() == nil {
		return nil, fmt.Errorf("%s.typed_config: required", p)
	}
	switch {
	case f.GetTypedConfig().MessageIs(&hcmv3.HttpConnectionManager{}):
		var h hcmv3.HttpConnectionManager
		if err := f.GetTypedConfig().UnmarshalTo(&h); err != nil {
			return nil, fmt.Errorf("%s.typed_config: %w", p, err)
		}
		hs, err := decodeHCM(&h)
		if err != nil {
			return nil, fmt.Errorf("%s.typed_config.%w", p, err)
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
