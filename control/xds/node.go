package xds

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/control/registry"
)

// Node metadata keys (docs/architecture.md, "Contracts").
const (
	MetaNamespace      = "namespace"
	MetaServiceAccount = "service_account"
	MetaWorkload       = "workload"
	MetaInstanceIP     = "instance_ip"
	MetaInstancePort   = "instance_port" // the sidecar's inbound port: what other proxies dial
	MetaAppPort        = "app_port"      // the local application's port behind the inbound listener
	MetaHTTPProxyPort  = "http_proxy_port"
	MetaProtocol       = "protocol"
	MetaLabels         = "labels"
	MetaLocality       = "locality"
	MetaRole           = "role"
	MetaAdminAddr      = "admin_addr" // host:port of the proxy's admin listener (metrics, tap)
)

// Role is what a proxy does.
type Role string

// Roles.
const (
	RoleSidecar Role = "sidecar"
	RoleGateway Role = "gateway"
)

// DefaultServiceAccount is used when the node names none.
const DefaultServiceAccount = "default"

// ProxyInfo is what the control plane knows about a proxy, read from its xDS
// node. It is a value; treat Labels as read-only.
type ProxyInfo struct {
	// NodeID is node.id, unique per proxy (<workload>-<n>.<namespace>).
	NodeID string
	// Service is node.cluster: the service the sidecar's instance backs.
	Service string
	// Namespace of the proxy. Required.
	Namespace string
	// ServiceAccount is the proxy's identity. Default "default".
	ServiceAccount string
	// Workload the proxy belongs to; may be empty.
	Workload string
	// Role is sidecar (default) or gateway.
	Role Role
	// InstanceAddr is instance_ip:instance_port, where the sidecar's
	// inbound listener accepts traffic from other proxies. Invalid when the
	// node declares no instance.
	InstanceAddr netip.AddrPort
	// AppPort is the port of the local application (inbound cluster
	// 127.0.0.1:AppPort); 0 if unknown.
	AppPort uint16
	// HTTPProxyPort is the port of the sidecar's HTTP proxy listener on
	// 127.0.0.1; 0 for none.
	HTTPProxyPort uint16
	// Protocol of the instance (http, http2, grpc, tcp); may be empty.
	Protocol string
	// Labels of the instance.
	Labels map[string]string
	// Locality of the instance.
	Locality registry.Locality
	// AdminAddr is the host:port of the proxy's admin listener
	// (/stats/prometheus, /tap); empty when the node does not say.
	AdminAddr string
}

// OwnInstance returns the sidecar's own instance for the registry; ok is
// false when the node declares no instance (gateways, clients only).
func (p ProxyInfo) OwnInstance() (registry.Instance, bool) {
	if p.Role != RoleSidecar || !p.InstanceAddr.IsValid() || p.Service == "" {
		return registry.Instance{}, false
	}
	return registry.Instance{
		Service:  registry.ServiceKey{Namespace: p.Namespace, Name: p.Service},
		Addr:     p.InstanceAddr,
		Protocol: p.Protocol,
		Labels:   p.Labels,
		Locality: p.Locality,
		Identity: p.ServiceAccount,
		Workload: p.Workload,
	}, true
}

// ParseNode reads a proxy's identity from its xDS node. Errors name the
// metadata key.
func ParseNode(node *corev3.Node) (ProxyInfo, error) {
	if node == nil {
		return ProxyInfo{}, errors.New("node is missing")
	}
	if node.GetId() == "" {
		return ProxyInfo{}, errors.New("node.id is empty")
	}
	p := ProxyInfo{NodeID: node.GetId(), Service: node.GetCluster(), Role: RoleSidecar, ServiceAccount: DefaultServiceAccount}
	fields := node.GetMetadata().GetFields()
	var err error
	str := func(key string, dst *string) {
		if err != nil {
			return
		}
		v, ok := fields[key]
		if !ok {
			return
		}
		s, isStr := v.GetKind().(*structpb.Value_StringValue)
		if !isStr {
			err = fmt.Errorf("node %q: metadata %s: want a string, got %s", p.NodeID, key, kindName(v))
			return
		}
		if s.StringValue != "" {
			*dst = s.StringValue
		}
	}
	port := func(key string, dst *uint16) {
		if err != nil {
			return
		}
		if v, ok := fields[key]; ok {
			*dst, err = parsePort(v)
			if err != nil {
				err = fmt.Errorf("node %q: metadata %s: %w", p.NodeID, key, err)
			}
		}
	}
	var role, ip, locality string
	str(MetaNamespace, &p.Namespace)
	str(MetaServiceAccount, &p.ServiceAccount)
	str(MetaWorkload, &p.Workload)
	str(MetaProtocol, &p.Protocol)
	str(MetaRole, &role)
	str(MetaInstanceIP, &ip)
	str(MetaLocality, &locality)
	str(MetaAdminAddr, &p.AdminAddr)
	var instancePort uint16
	port(MetaInstancePort, &instancePort)
	port(MetaAppPort, &p.AppPort)
	port(MetaHTTPProxyPort, &p.HTTPProxyPort)
	if err != nil {
		return ProxyInfo{}, err
	}
	if p.Namespace == "" {
		return ProxyInfo{}, fmt.Errorf("node %q: metadata %s is required", p.NodeID, MetaNamespace)
	}
	switch Role(role) {
	case "", RoleSidecar:
	case RoleGateway:
		p.Role = RoleGateway
	default:
		return ProxyInfo{}, fmt.Errorf("node %q: metadata %s: %q is not sidecar or gateway", p.NodeID, MetaRole, role)
	}
	if p.Locality, err = registry.ParseLocality(locality); err != nil {
		return ProxyInfo{}, fmt.Errorf("node %q: metadata %s: %w", p.NodeID, MetaLocality, err)
	}
	switch {
	case ip == "" && instancePort == 0:
	case ip == "" || instancePort == 0:
		return ProxyInfo{}, fmt.Errorf("node %q: metadata %s and %s must be set together", p.NodeID, MetaInstanceIP, MetaInstancePort)
	default:
		addr, perr := netip.ParseAddr(ip)
		if perr != nil {
			return ProxyInfo{}, fmt.Errorf("node %q: metadata %s: %q is not an IP address", p.NodeID, MetaInstanceIP, ip)
		}
		if addr.Zone() != "" {
			return ProxyInfo{}, fmt.Errorf("node %q: metadata %s: %q: zones are not supported", p.NodeID, MetaInstanceIP, ip)
		}
		p.InstanceAddr = netip.AddrPortFrom(addr, instancePort)
		if p.Role == RoleSidecar && p.Service == "" {
			return ProxyInfo{}, fmt.Errorf("node %q: node.cluster (the service name) is required with %s", p.NodeID, MetaInstanceIP)
		}
	}
	if p.AdminAddr != "" {
		host, port, serr := net.SplitHostPort(p.AdminAddr)
		if n, perr := strconv.ParseUint(port, 10, 16); serr != nil || host == "" || perr != nil || n == 0 {
			return ProxyInfo{}, fmt.Errorf("node %q: metadata %s: %q is not host:port", p.NodeID, MetaAdminAddr, p.AdminAddr)
		}
	}
	if v, ok := fields[MetaLabels]; ok {
		s, isStruct := v.GetKind().(*structpb.Value_StructValue)
		if !isStruct {
			return ProxyInfo{}, fmt.Errorf("node %q: metadata %s: want a struct of strings, got %s", p.NodeID, MetaLabels, kindName(v))
		}
		p.Labels = make(map[string]string, len(s.StructValue.GetFields()))
		for _, k := range slices.Sorted(maps.Keys(s.StructValue.GetFields())) {
			lv, isStr := s.StructValue.GetFields()[k].GetKind().(*structpb.Value_StringValue)
			if !isStr {
				return ProxyInfo{}, fmt.Errorf("node %q: metadata %s.%s: want a string, got %s", p.NodeID, MetaLabels, k, kindName(s.StructValue.GetFields()[k]))
			}
			p.Labels[k] = lv.StringValue
		}
	}
	return p, nil
}

// parsePort accepts a number or a decimal string in 1-65535.
func parsePort(v *structpb.Value) (uint16, error) {
	var f float64
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		f = k.NumberValue
	case *structpb.Value_StringValue:
		n, err := strconv.ParseUint(k.StringValue, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("%q is not a port (1-65535)", k.StringValue)
		}
		return uint16(n), nil
	default:
		return 0, fmt.Errorf("want a port number, got %s", kindName(v))
	}
	if f != math.Trunc(f) || f < 1 || f > 65535 {
		return 0, fmt.Errorf("%v is not a port (1-65535)", f)
	}
	return uint16(f), nil
}

func kindName(v *structpb.Value) string {
	switch v.GetKind().(type) {
	case *structpb.Value_NullValue:
		return "null"
	case *structpb.Value_NumberValue:
		return "a number"
	case *structpb.Value_StringValue:
		return "a string"
	case *structpb.Value_BoolValue:
		return "a bool"
	case *structpb.Value_StructValue:
		return "a struct"
	case *structpb.Value_ListValue:
		return "a list"
	default:
		return "nothing"
	}
}
