package proxy

import (
	// The tls_inspector listener filter's config type must be known to
	// decode listeners that name it.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"

	"github.com/weft-mesh/weft/proxy/subset"
)

// supported is the subset of Envoy v3 that weft's proxy implements for
// Listener, Cluster and ClusterLoadAssignment resources (RouteConfiguration is
// checked field by field in proxy/route). docs/xds-subset.md is generated from
// it (go test ./proxy -run TestSubsetDoc -update).
var supported = subset.NewTable(
	subset.Message{Type: "envoy.config.listener.v3.Listener", Fields: []subset.Field{
		{Name: "name", Note: "required, unique"},
		{Name: "address", Note: "socket_address only (TCP)"},
		{Name: "filter_chains", Note: "one chain, or two matched on transport_protocol tls and raw_buffer with the same filters (PERMISSIVE mTLS)"},
		{Name: "listener_filters", Note: "envoy.filters.listener.tls_inspector only"},
		{Name: "stat_prefix", Note: "accepted, no effect"},
		{Name: "per_connection_buffer_limit_bytes", Note: "accepted, no effect"},
		{Name: "metadata", Note: "accepted, no effect"},
		{Name: "traffic_direction", Note: "accepted; labels metrics"},
	}},
	subset.Message{Type: "envoy.config.core.v3.Address", Fields: []subset.Field{{Name: "socket_address"}}},
	subset.Message{Type: "envoy.config.core.v3.SocketAddress", Fields: []subset.Field{
		{Name: "address", Note: "IP literal, or localhost"},
		{Name: "port_value"},
		{Name: "protocol", Note: "TCP only"},
	}},
	subset.Message{Type: "envoy.config.listener.v3.FilterChain", Fields: []subset.Field{
		{Name: "filters", Note: "a terminal http_connection_manager or tcp_proxy; envoy.filters.network.rbac filters may precede tcp_proxy"},
		{Name: "filter_chain_match", Note: "transport_protocol only (tls, raw_buffer)"},
		{Name: "transport_socket", Note: "envoy.transport_sockets.tls with a DownstreamTlsContext"},
		{Name: "name", Note: "accepted, no effect"},
	}},
	subset.Message{Type: "envoy.config.core.v3.TransportSocket", Fields: []subset.Field{{Name: "name"}, {Name: "typed_config"}}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", Fields: []subset.Field{
		{Name: "common_tls_context"}, {Name: "require_client_certificate"},
	}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", Fields: []subset.Field{
		{Name: "common_tls_context"}, {Name: "sni", Note: "server name sent, and checked when no SAN matcher is set"},
	}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext", Fields: []subset.Field{
		{Name: "tls_certificates", Note: "PEM from filename, inline_string or inline_bytes"},
		{Name: "validation_context", Note: "trusted_ca and match_typed_subject_alt_names"},
		{Name: "tls_certificate_sds_secret_configs", Note: "one secret, over ADS; \"default\" is the proxy's own certificate (issued by the control plane's CA, key kept in the proxy)"},
		{Name: "validation_context_sds_secret_config", Note: "over ADS (the trust bundle \"ROOTCA\")"},
		{Name: "combined_validation_context", Note: "SAN matchers in default_validation_context, CAs from the SDS secret"},
		{Name: "alpn_protocols", Note: "default for HTTP listeners: h2, http/1.1"},
		{Name: "tls_params", Note: "TLSv1_2 and TLSv1_3 bounds"},
	}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.TlsCertificate", Fields: []subset.Field{{Name: "certificate_chain"}, {Name: "private_key"}}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.TlsParameters", Fields: []subset.Field{
		{Name: "tls_minimum_protocol_version"}, {Name: "tls_maximum_protocol_version"},
	}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.CertificateValidationContext", Fields: []subset.Field{
		{Name: "trusted_ca"}, {Name: "match_typed_subject_alt_names", Note: "DNS and URI SANs; exact, prefix, suffix"},
	}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig", Fields: []subset.Field{{Name: "name"}, {Name: "sds_config", Note: "ads only"}}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.CommonTlsContext.CombinedCertificateValidationContext", Fields: []subset.Field{
		{Name: "default_validation_context"}, {Name: "validation_context_sds_secret_config"},
	}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.Secret", Fields: []subset.Field{
		{Name: "name"}, {Name: "tls_certificate", Note: "inline PEM"}, {Name: "validation_context", Note: "trusted_ca inline PEM"},
	}},
	subset.Message{Type: "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
	subset.Message{Type: "envoy.config.listener.v3.FilterChainMatch", Fields: []subset.Field{{Name: "transport_protocol", Note: "tls or raw_buffer"}}},
	subset.Message{Type: "envoy.config.listener.v3.ListenerFilter", Fields: []subset.Field{{Name: "name"}, {Name: "typed_config", Note: "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector, empty"}}},
	subset.Message{Type: "envoy.extensions.transport_sockets.tls.v3.SubjectAltNameMatcher", Fields: []subset.Field{{Name: "san_type"}, {Name: "matcher"}}},
	subset.Message{Type: "envoy.type.matcher.v3.StringMatcher", Fields: []subset.Field{{Name: "exact"}, {Name: "prefix"}, {Name: "suffix"}, {Name: "ignore_case"}}},
	subset.Message{Type: "envoy.config.core.v3.DataSource", Fields: []subset.Field{{Name: "filename"}, {Name: "inline_string"}, {Name: "inline_bytes"}}},
	subset.Message{Type: "envoy.config.listener.v3.Filter", Fields: []subset.Field{
		{Name: "name"}, {Name: "typed_config"},
	}},
	subset.Message{Type: "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager", Fields: []subset.Field{
		{Name: "codec_type", Note: "AUTO (HTTP/1.1 and h2c prior knowledge), HTTP1, HTTP2"},
		{Name: "stat_prefix", Note: "labels metrics"},
		{Name: "rds", Note: "route_config_name over ADS"},
		{Name: "route_config", Note: "inline RouteConfiguration"},
		{Name: "http_filters", Note: "in this order, each optional: envoy.filters.http.jwt_authn (at most one), envoy.filters.http.rbac (any number, evaluated in order: DENY then ALLOW), envoy.filters.http.fault; then envoy.filters.http.router last"},
		{Name: "use_remote_address", Note: "append the peer address to x-forwarded-for, set x-forwarded-proto"},
		{Name: "xff_num_trusted_hops"},
		{Name: "generate_request_id", Note: "default true: x-request-id set when absent"},
		{Name: "stream_idle_timeout"},
		{Name: "request_timeout"},
		{Name: "request_headers_timeout"},
		{Name: "max_request_headers_kb", Note: "default 60; larger heads get 431"},
		{Name: "common_http_protocol_options", Note: "idle_timeout only"},
		{Name: "upgrade_configs", Note: "websocket and CONNECT"},
		{Name: "normalize_path", Note: "accepted, no effect yet"},
		{Name: "merge_slashes", Note: "accepted, no effect yet"},
		{Name: "tracing", Note: "random_sampling only (percent of requests without a sampling decision that are traced; default: the proxy's --trace-sampling)"},
	}},
	subset.Message{Type: "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing", Fields: []subset.Field{
		{Name: "random_sampling"},
	}},
	subset.Message{Type: "envoy.extensions.filters.network.http_connection_manager.v3.Rds", Fields: []subset.Field{
		{Name: "route_config_name"}, {Name: "config_source", Note: "ADS or empty"},
	}},
	subset.Message{Type: "envoy.config.core.v3.ConfigSource", Fields: []subset.Field{
		{Name: "ads"}, {Name: "resource_api_version"}, {Name: "initial_fetch_timeout", Note: "accepted, no effect"},
	}},
	subset.Message{Type: "envoy.config.core.v3.AggregatedConfigSource", Any: true},
	subset.Message{Type: "envoy.config.core.v3.HttpProtocolOptions", Fields: []subset.Field{{Name: "idle_timeout"}}},
	subset.Message{Type: "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig", Fields: []subset.Field{
		{Name: "upgrade_type", Note: "websocket or CONNECT"}, {Name: "enabled"},
	}},
	subset.Message{Type: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter", Fields: []subset.Field{
		{Name: "name"}, {Name: "typed_config"},
	}},
	// The fault filter's config is checked field by field by proxy/filter/fault.
	subset.Message{Type: "envoy.extensions.filters.http.fault.v3.HTTPFault", Any: true},
	// The JWT and RBAC filters' configs are checked field by field by
	// proxy/filter/jwt and proxy/filter/authz.
	subset.Message{Type: "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication", Any: true},
	subset.Message{Type: "envoy.extensions.filters.http.rbac.v3.RBAC", Any: true},
	subset.Message{Type: "envoy.extensions.filters.network.rbac.v3.RBAC", Any: true},
	subset.Message{Type: "envoy.extensions.filters.http.router.v3.Router", Fields: []subset.Field{
		{Name: "suppress_envoy_headers", Note: "accepted; weft sets no x-envoy headers"},
	}},
	// Inline route configurations are checked by proxy/route.
	subset.Message{Type: "envoy.config.route.v3.RouteConfiguration", Any: true},
	subset.Message{Type: "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", Fields: []subset.Field{
		{Name: "stat_prefix", Note: "labels metrics"},
		{Name: "cluster"},
		{Name: "weighted_clusters"},
		{Name: "idle_timeout", Note: "default 1h"},
	}},
	subset.Message{Type: "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster", Fields: []subset.Field{{Name: "clusters"}}},
	subset.Message{Type: "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight", Fields: []subset.Field{
		{Name: "name"}, {Name: "weight"},
	}},

	subset.Message{Type: "envoy.config.cluster.v3.Cluster", Fields: []subset.Field{
		{Name: "name"},
		{Name: "type", Note: "STATIC, STRICT_DNS/LOGICAL_DNS (IP or localhost), EDS"},
		{Name: "eds_cluster_config"},
		{Name: "connect_timeout", Note: "default 5s"},
		{Name: "lb_policy", Note: "ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV"},
		{Name: "ring_hash_lb_config"}, {Name: "maglev_lb_config"}, {Name: "least_request_lb_config"},
		{Name: "common_lb_config", Note: "healthy_panic_threshold, locality_weighted_lb_config"},
		{Name: "load_balancing_policy", Note: "Envoy typed policies and weft.lb.peak_ewma"},
		{Name: "load_assignment", Note: "static clusters"},
		{Name: "circuit_breakers", Note: "DEFAULT priority thresholds"},
		{Name: "transport_socket", Note: "envoy.transport_sockets.tls with an UpstreamTlsContext"},
		{Name: "outlier_detection", Note: "Envoy semantics; checked field by field by proxy/cluster/outlier"},
		{Name: "health_checks", Note: "one HTTP, gRPC or TCP check; weft probes only endpoints that are failing"},
		{Name: "http2_protocol_options", Note: "selects h2c upstream"},
		{Name: "typed_extension_protocol_options", Note: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions explicit_http_config"},
		{Name: "per_connection_buffer_limit_bytes", Note: "accepted, no effect"},
		{Name: "dns_lookup_family", Note: "accepted, no effect"},
		{Name: "metadata", Note: "accepted, no effect"},
		{Name: "alt_stat_name", Note: "accepted, no effect"},
	}},
	subset.Message{Type: "envoy.config.cluster.v3.OutlierDetection", Any: true},
	subset.Message{Type: "envoy.config.core.v3.HealthCheck", Any: true},
	subset.Message{Type: "envoy.config.cluster.v3.Cluster.EdsClusterConfig", Fields: []subset.Field{{Name: "eds_config"}, {Name: "service_name"}}},
	subset.Message{Type: "envoy.config.cluster.v3.CircuitBreakers", Fields: []subset.Field{{Name: "thresholds"}}},
	subset.Message{Type: "envoy.config.cluster.v3.CircuitBreakers.Thresholds", Fields: []subset.Field{
		{Name: "priority"}, {Name: "max_connections"}, {Name: "max_pending_requests", Note: "accepted; weft does not queue requests for connections"}, {Name: "max_requests"}, {Name: "max_retries"},
		{Name: "retry_budget", Note: "budget_percent (20) and min_retry_concurrency (3); replaces max_retries"},
	}},
	subset.Message{Type: "envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget", Fields: []subset.Field{
		{Name: "budget_percent"}, {Name: "min_retry_concurrency"},
	}},
	subset.Message{Type: "envoy.type.v3.Percent", Fields: []subset.Field{{Name: "value"}}},
	// Load-balancing settings are checked by proxy/cluster/lb.
	subset.Message{Type: "envoy.config.cluster.v3.Cluster.RingHashLbConfig", Any: true},
	subset.Message{Type: "envoy.config.cluster.v3.Cluster.MaglevLbConfig", Any: true},
	subset.Message{Type: "envoy.config.cluster.v3.Cluster.LeastRequestLbConfig", Any: true},
	subset.Message{Type: "envoy.config.cluster.v3.Cluster.CommonLbConfig", Any: true},
	subset.Message{Type: "envoy.config.cluster.v3.LoadBalancingPolicy", Any: true},
	subset.Message{Type: "envoy.config.core.v3.Http2ProtocolOptions", Any: true},
	subset.Message{Type: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", Fields: []subset.Field{{Name: "explicit_http_config"}}},
	subset.Message{Type: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig", Fields: []subset.Field{
		{Name: "http_protocol_options"}, {Name: "http2_protocol_options"},
	}},
	subset.Message{Type: "envoy.config.core.v3.Http1ProtocolOptions", Any: true},
	subset.Message{Type: "envoy.config.core.v3.Metadata", Any: true},

	subset.Message{Type: "envoy.config.endpoint.v3.ClusterLoadAssignment", Fields: []subset.Field{
		{Name: "cluster_name"}, {Name: "endpoints"}, {Name: "policy", Note: "overprovisioning_factor accepted; drop_overloads refused"},
	}},
	subset.Message{Type: "envoy.config.endpoint.v3.ClusterLoadAssignment.Policy", Fields: []subset.Field{
		{Name: "overprovisioning_factor", Note: "accepted; weft uses 140"},
	}},
	subset.Message{Type: "envoy.config.endpoint.v3.LocalityLbEndpoints", Fields: []subset.Field{
		{Name: "locality"}, {Name: "lb_endpoints"}, {Name: "load_balancing_weight"}, {Name: "priority"},
	}},
	subset.Message{Type: "envoy.config.core.v3.Locality", Fields: []subset.Field{{Name: "region"}, {Name: "zone"}, {Name: "sub_zone"}}},
	subset.Message{Type: "envoy.config.endpoint.v3.LbEndpoint", Fields: []subset.Field{
		{Name: "endpoint"}, {Name: "health_status", Note: "UNKNOWN, HEALTHY, DEGRADED count as healthy"}, {Name: "load_balancing_weight"}, {Name: "metadata", Note: "filter_metadata[\"weft\"] workload, namespace, service_account: the destination labels of metrics, access records and spans"},
	}},
	subset.Message{Type: "envoy.config.endpoint.v3.Endpoint", Fields: []subset.Field{{Name: "address"}, {Name: "hostname", Note: "accepted, no effect"}}},
)
