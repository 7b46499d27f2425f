package v1alpha1

import (
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Protocol is the application protocol of a port.
type Protocol string

// Protocols a Service port or a Workload may speak.
const (
	ProtocolHTTP  Protocol = "http"  // HTTP/1.1 (and h2c upgrade)
	ProtocolHTTP2 Protocol = "http2" // HTTP/2 with prior knowledge
	ProtocolGRPC  Protocol = "grpc"  // gRPC over HTTP/2
	ProtocolTCP   Protocol = "tcp"   // opaque TCP
)

// Protocols lists the valid protocols in documentation order.
var Protocols = []Protocol{ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC, ProtocolTCP}

// Valid reports whether p is one of Protocols.
func (p Protocol) Valid() bool {
	for _, q := range Protocols {
		if p == q {
			return true
		}
	}
	return false
}

// IsHTTP reports whether p is request-based (http, http2 or grpc).
func (p Protocol) IsHTTP() bool { return p == ProtocolHTTP || p == ProtocolHTTP2 || p == ProtocolGRPC }

// Visibility says who may reach a Service.
type Visibility string

// Visibilities, from the narrowest to the widest.
const (
	// VisibilityNamespace: only proxies in the Service's namespace.
	VisibilityNamespace Visibility = "namespace"
	// VisibilityMesh: every proxy in the mesh (the default).
	VisibilityMesh Visibility = "mesh"
	// VisibilityIntranet: the mesh and clients on the local network through
	// a gateway.
	VisibilityIntranet Visibility = "intranet"
	// VisibilityInternet: also exposed through internet-facing gateways.
	VisibilityInternet Visibility = "internet"
)

// Visibilities lists the valid visibilities, narrowest first.
var Visibilities = []Visibility{VisibilityNamespace, VisibilityMesh, VisibilityIntranet, VisibilityInternet}

// Valid reports whether v is one of Visibilities.
func (v Visibility) Valid() bool {
	for _, w := range Visibilities {
		if v == w {
			return true
		}
	}
	return false
}

// Service is a named set of ports that clients address ("catalog",
// "catalog.shop"), backed by the instances of one or more Workloads.
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceSpec `json:"spec"`
	Status *Status     `json:"status,omitempty"`
}

// ServiceSpec is the desired state of a Service.
type ServiceSpec struct {
	// Ports the Service exposes. At least one; names and port numbers are
	// unique within the Service.
	Ports []ServicePort `json:"ports"`

	// Visibility says who may reach the Service. Default "mesh".
	Visibility Visibility `json:"visibility,omitempty"`

	// Selector picks the backing instances by their labels (the Workload's
	// labels). Optional; when set it takes precedence over Workload.
	Selector map[string]string `json:"selector,omitempty"`

	// Workload names the Workload (same namespace) whose instances back the
	// Service. Optional; when neither Selector nor Workload is set the
	// backing Workload is the one with the Service's own name.
	Workload string `json:"workload,omitempty"`
}

// ServicePort is one port of a Service.
type ServicePort struct {
	// Name of the port, a DNS-1123 label. Optional when the Service has a
	// single port; defaults to the protocol name ("http", "grpc", ...).
	Name string `json:"name,omitempty"`

	// Port clients connect to, 1-65535. Required.
	Port int32 `json:"port"`

	// TargetPort is the port the application listens on. Default: Port.
	TargetPort int32 `json:"targetPort,omitempty"`

	// Protocol spoken on the port: http, http2, grpc or tcp. Default "http".
	Protocol Protocol `json:"protocol,omitempty"`
}

// SetDefaults fills the documented defaults of the spec in place.
func (s *ServiceSpec) SetDefaults() {
	if s.Visibility == "" {
		s.Visibility = VisibilityMesh
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = ProtocolHTTP
		}
		if p.TargetPort == 0 {
			p.TargetPort = p.Port
		}
		if p.Name == "" && len(s.Ports) == 1 {
			p.Name = string(p.Protocol)
		}
	}
}

// SetDefaults fills the spec defaults and those that depend on the name:
// Workload defaults to the Service's name when no Selector is set.
func (s *Service) SetDefaults() {
	s.Spec.SetDefaults()
	if s.Spec.Workload == "" && len(s.Spec.Selector) == 0 {
		s.Spec.Workload = s.Name
	}
}

// Port returns the port named name, or, when name is a decimal number, the
// port with that number.
func (s *ServiceSpec) Port(name string) (ServicePort, bool) {
	for _, p := range s.Ports {
		if p.Name == name {
			return p, true
		}
	}
	for _, p := range s.Ports {
		if strconv.Itoa(int(p.Port)) == name {
			return p, true
		}
	}
	return ServicePort{}, false
}
