// Package bootstrap reads an Envoy v3 bootstrap document (YAML or JSON) for
// the proxy's file mode: `admin` and `static_resources` (listeners, clusters
// with inline load_assignment), and optionally `node` and
// `dynamic_resources.ads_config` pointing at a control plane. Unknown fields
// are errors; supported-subset checks happen later on the same path as xDS.
package bootstrap

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	// Typed configs a bootstrap may carry in google.protobuf.Any values;
	// imported so that protojson can resolve their type URLs.
	_ "github.com/cncf/xds/go/xds/type/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/least_request/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/maglev/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/random/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/ring_hash/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/round_robin/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// Config is what the proxy takes from a bootstrap file.
type Config struct {
	Node      *corev3.Node
	AdminAddr string // host:port of the admin listener; empty: none
	Listeners []*listenerv3.Listener
	Clusters  []*clusterv3.Cluster
	// ADSCluster names the static cluster of the control plane, when the
	// file has dynamic_resources.ads_config (grpc_services[0].envoy_grpc).
	ADSCluster string
}

// Load reads and decodes a bootstrap file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a bootstrap document in YAML or JSON.
func Parse(data []byte) (*Config, error) {
	js := data
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		var err error
		if js, err = yaml.YAMLToJSON(data); err != nil {
			return nil, fmt.Errorf("yaml: %w", err)
		}
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("decode bootstrap: %w", err)
	}
	if err := checkSubset(&b); err != nil {
		return nil, err
	}
	c := &Config{
		Node:      b.GetNode(),
		Listeners: b.GetStaticResources().GetListeners(),
		Clusters:  b.GetStaticResources().GetClusters(),
	}
	if a := b.GetAdmin(); a != nil {
		sa := a.GetAddress().GetSocketAddress()
		if sa == nil {
			return nil, fmt.Errorf("admin.address.socket_address: required")
		}
		c.AdminAddr = net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue())))
	}
	if ads := b.GetDynamicResources().GetAdsConfig(); ads != nil {
		gs := ads.GetGrpcServices()
		if len(gs) != 1 || gs[0].GetEnvoyGrpc() == nil {
			return nil, fmt.Errorf("dynamic_resources.ads_config.grpc_services: exactly one envoy_grpc service is supported")
		}
		c.ADSCluster = gs[0].GetEnvoyGrpc().GetClusterName()
	}
	return c, nil
}

// checkSubset refuses top-level bootstrap sections weft does not implement.
func checkSubset(b *bootstrapv3.Bootstrap) error {
	allowed := map[string]bool{
		"node": true, "static_resources": true, "admin": true, "dynamic_resources": true,
		"layered_runtime": true, "stats_config": true, "overload_manager": true,
	}
	var err error
	b.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !allowed[string(fd.Name())] {
			err = fmt.Errorf("%s: unsupported by weft", fd.Name())
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	if len(b.GetStaticResources().GetSecrets()) > 0 {
		return fmt.Errorf("static_resources.secrets: unsupported by weft yet")
	}
	return nil
}
