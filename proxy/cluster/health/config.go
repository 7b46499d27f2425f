package health

import (
	"fmt"
	"net/url"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Kind is the probe protocol.
type Kind uint8

const (
	HTTP Kind = iota // GET (or HEAD) over HTTP/1.1, status in the expected ranges
	GRPC             // grpc.health.v1.Health/Check answers SERVING
	TCP              // the connection opens
)

func (k Kind) String() string {
	switch k {
	case HTTP:
		return "http"
	case GRPC:
		return "grpc"
	case TCP:
		return "tcp"
	}
	return "unknown"
}

// StatusRange is a half-open range of HTTP statuses [Start, End).
type StatusRange struct{ Start, End int }

// Config is a decoded Envoy HealthCheck. Immutable; safe for concurrent use.
type Config struct {
	// Timeout of one probe (required).
	Timeout time.Duration
	// Interval between probes of a failing endpoint (required).
	Interval time.Duration
	// IntervalJitter: a random 0..jitter is added to each interval; default 0.
	IntervalJitter time.Duration
	// IntervalJitterPercent: a random 0..percent of Interval is added too;
	// default 0.
	IntervalJitterPercent uint32
	// UnhealthyThreshold probes failed in a row mark the endpoint
	// unhealthy (required, > 0).
	UnhealthyThreshold uint32
	// HealthyThreshold probes passed in a row clear it and stop the
	// probing (required, > 0).
	HealthyThreshold uint32
	// AltPort, when not 0, is probed instead of the endpoint's port.
	AltPort uint32
	Kind    Kind
	// HTTP probe: Path (required), Host (default: the cluster name),
	// Method GET or HEAD (default GET), Expected statuses (default [200,201)).
	HTTP struct {
		Host, Path, Method string
		Expected           []StatusRange
	}
	// GRPC probe: the service name asked about (default "": the server) and
	// the :authority (default: the cluster name).
	GRPC struct{ ServiceName, Authority string }
}

// Supported fields, by message; anything else populated is an error.
var (
	checkFields = map[protoreflect.Name]bool{
		"timeout": true, "interval": true, "interval_jitter": true, "interval_jitter_percent": true,
		"unhealthy_threshold": true, "healthy_threshold": true, "alt_port": true, "reuse_connection": true,
		"http_health_check": true, "tcp_health_check": true, "grpc_health_check": true,
	}
	httpFields = map[protoreflect.Name]bool{"host": true, "path": true, "expected_statuses": true, "method": true}
	grpcFields = map[protoreflect.Name]bool{"service_name": true, "authority": true}
	tcpFields  = map[protoreflect.Name]bool{}
)

// unsupported returns the name of the first populated field of m not in ok.
func unsupported(m proto.Message, ok map[protoreflect.Name]bool) string {
	var bad string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !ok[fd.Name()] {
			bad = string(fd.Name())
			return false
		}
		return true
	})
	return bad
}

// Decode validates a Cluster's health_checks and returns the Config of its
// only entry, or nil when there is none (no active checking). Errors name
// the field path from "health_checks".
func Decode(hcs []*corev3.HealthCheck) (*Config, error) {
	switch len(hcs) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, fmt.Errorf("health_checks: at most one health check is supported by weft, got %d", len(hcs))
	}
	const p = "health_checks[0]"
	hc := hcs[0]
	if f := unsupported(hc, checkFields); f != "" {
		return nil, fmt.Errorf("%s.%s: unsupported by weft", p, f)
	}
	c := &Config{}
	for _, d := range []struct {
		name     string
		v        *durationpb.Duration
		dst      *time.Duration
		required bool
	}{
		{"timeout", hc.GetTimeout(), &c.Timeout, true},
		{"interval", hc.GetInterval(), &c.Interval, true},
		{"interval_jitter", hc.GetIntervalJitter(), &c.IntervalJitter, false},
	} {
		if d.v == nil {
			if d.required {
				return nil, fmt.Errorf("%s.%s: required", p, d.name)
			}
			continue
		}
		if d.v.CheckValid() != nil {
			return nil, fmt.Errorf("%s.%s: not a valid duration", p, d.name)
		}
		v := d.v.AsDuration()
		if v < 0 || d.required && v == 0 {
			return nil, fmt.Errorf("%s.%s: must be a positive duration, got %s", p, d.name, v)
		}
		*d.dst = v
	}
	c.IntervalJitterPercent = hc.GetIntervalJitterPercent()
	if hc.GetUnhealthyThreshold() == nil {
		return nil, fmt.Errorf("%s.unhealthy_threshold: required", p)
	}
	if hc.GetHealthyThreshold() == nil {
		return nil, fmt.Errorf("%s.healthy_threshold: required", p)
	}
	c.UnhealthyThreshold = max(hc.GetUnhealthyThreshold().GetValue(), 1)
	c.HealthyThreshold = max(hc.GetHealthyThreshold().GetValue(), 1)
	if ap := hc.GetAltPort(); ap != nil {
		if ap.GetValue() == 0 || ap.GetValue() > 65535 {
			return nil, fmt.Errorf("%s.alt_port: must be 1-65535, got %d", p, ap.GetValue())
		}
		c.AltPort = ap.GetValue()
	}
	switch k := hc.GetHealthChecker().(type) {
	case *corev3.HealthCheck_HttpHealthCheck_:
		h := k.HttpHealthCheck
		pp := p + ".http_health_check"
		if f := unsupported(h, httpFields); f != "" {
			return nil, fmt.Errorf("%s.%s: unsupported by weft", pp, f)
		}
		c.Kind = HTTP
		if h.GetPath() == "" {
			return nil, fmt.Errorf("%s.path: required", pp)
		}
		if u, err := url.ParseRequestURI(h.GetPath()); err != nil || u.Scheme != "" || u.Host != "" || h.GetPath()[0] != '/' {
			return nil, fmt.Errorf("%s.path: %q is not an absolute path", pp, h.GetPath())
		}
		c.HTTP.Path, c.HTTP.Host = h.GetPath(), h.GetHost()
		switch m := h.GetMethod(); m {
		case corev3.RequestMethod_METHOD_UNSPECIFIED, corev3.RequestMethod_GET:
			c.HTTP.Method = "GET"
		case corev3.RequestMethod_HEAD:
			c.HTTP.Method = "HEAD"
		default:
			return nil, fmt.Errorf("%s.method: only GET and HEAD are supported, got %s", pp, m)
		}
		for i, r := range h.GetExpectedStatuses() {
			if r.GetStart() < 100 || r.GetEnd() > 600 || r.GetStart() >= r.GetEnd() {
				return nil, fmt.Errorf("%s.expected_statuses[%d]: must be a range within [100, 600), got [%d, %d)", pp, i, r.GetStart(), r.GetEnd())
			}
			c.HTTP.Expected = append(c.HTTP.Expected, StatusRange{int(r.GetStart()), int(r.GetEnd())})
		}
		if len(c.HTTP.Expected) == 0 {
			c.HTTP.Expected = []StatusRange{{200, 201}}
		}
	case *corev3.HealthCheck_GrpcHealthCheck_:
		if f := unsupported(k.GrpcHealthCheck, grpcFields); f != "" {
			return nil, fmt.Errorf("%s.grpc_health_check.%s: unsupported by weft", p, f)
		}
		c.Kind = GRPC
		c.GRPC.ServiceName = k.GrpcHealthCheck.GetServiceName()
		c.GRPC.Authority = k.GrpcHealthCheck.GetAuthority()
	case *corev3.HealthCheck_TcpHealthCheck_:
		if f := unsupported(k.TcpHealthCheck, tcpFields); f != "" {
			return nil, fmt.Errorf("%s.tcp_health_check.%s: unsupported by weft (connect-only checks)", p, f)
		}
		c.Kind = TCP
	default:
		return nil, fmt.Errorf("%s: one of http_health_check, grpc_health_check, tcp_health_check is required", p)
	}
	return c, nil
}

// expected reports whether an HTTP status passes the check.
func (c *Config) expected(status int) bool {
	for _, r := range c.HTTP.Expected {
		if status >= r.Start && status < r.End {
			return true
		}
	}
	return false
}
