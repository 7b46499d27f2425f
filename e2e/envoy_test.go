package e2e

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Envoy v3 documents used by the proxy tests, as YAML bootstrap snippets.

func bootstrapDoc(adminPort int, listeners, clusters string) string {
	return fmt.Sprintf(`admin: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
static_resources:
  listeners:
%s
  clusters:
%s`, adminPort, listeners, clusters)
}

func httpListenerDoc(name string, port int, cluster string) string {
	return fmt.Sprintf(`  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s
          upgrade_configs: [{upgrade_type: websocket}]
          route_config:
            virtual_hosts: [{name: all, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: %s, timeout: 0s}}]}]
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]
`, name, port, name, cluster)
}

func tcpListenerDoc(name string, port int, cluster string) string {
	return fmt.Sprintf(`  - name: %s
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: %s
          cluster: %s
`, name, port, name, cluster)
}

func clusterDoc(name string, h2 bool, addrs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: %s\n    type: STATIC\n    connect_timeout: 1s\n", name)
	if h2 {
		b.WriteString(`    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
`)
	}
	fmt.Fprintf(&b, "    load_assignment:\n      cluster_name: %s\n      endpoints:\n      - lb_endpoints:\n", name)
	for _, a := range addrs {
		h, p, _ := net.SplitHostPort(a)
		port, _ := strconv.Atoi(p)
		fmt.Fprintf(&b, "        - endpoint: {address: {socket_address: {address: %s, port_value: %d}}}\n", h, port)
	}
	return b.String()
}

// runtime_Gosched yields while waiting for background traffic counters.
func runtime_Gosched() { time.Sleep(time.Millisecond) }
