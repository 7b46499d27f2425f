// Package fault implements Envoy's HTTP fault injection filter
// (envoy.filters.http.fault): delays and aborts for a percentage of
// requests, optionally only for requests whose headers match, and
// header-controlled faults (x-envoy-fault-delay-request,
// x-envoy-fault-abort-request, x-envoy-fault-abort-grpc-request) when the
// configuration allows them. It is used at the listener (the filter's own
// config) and per route (typed_per_filter_config overrides it).
package fault

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/subset"
)

// Name is the filter's name in http_filters and typed_per_filter_config.
const Name = "envoy.filters.http.fault"

// Headers is read by Decide; names are lower-case.
type Headers interface {
	Get(name string) (string, bool)
}

// Fault is a decoded HTTPFault. Immutable and safe for concurrent use.
type Fault struct {
	delay         time.Duration
	delayPerMil   uint32 // per million requests
	headerDelay   bool
	abortStatus   int
	abortGRPC     int // -1: not a gRPC abort
	abortPerMil   uint32
	headerAbort   bool
	headers       []matcher
	hasDelay      bool
	hasAbort      bool
	upstreamNames []string
}

// Action is what to do with one request. The zero Action does nothing.
type Action struct {
	Delay time.Duration
	// AbortStatus is the HTTP status to answer with (0: no abort);
	// GRPCStatus is set (>= 0) for a gRPC abort, answered trailers-only.
	AbortStatus int
	GRPCStatus  int
}

type matcher struct {
	name, exact, prefix string
	present, invert     bool
}

// DecodeAny decodes a typed config holding an HTTPFault.
func DecodeAny(a *anypb.Any) (*Fault, error) {
	var f faultv3.HTTPFault
	if err := a.UnmarshalTo(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return Decode(&f)
}

// Decode validates an HTTPFault; errors name the field path.
func Decode(f *faultv3.HTTPFault) (*Fault, error) {
	if err := subset.Fields(f, "", "delay", "abort", "headers", "upstream_cluster", "downstream_nodes"); err != nil {
		return nil, err
	}
	if len(f.GetDownstreamNodes()) > 0 {
		return nil, errors.New("downstream_nodes: unsupported by weft")
	}
	out := &Fault{abortGRPC: -1}
	if d := f.GetDelay(); d != nil {
		if err := subset.Fields(d, "delay", "fixed_delay", "header_delay", "percentage"); err != nil {
			return nil, err
		}
		out.hasDelay = true
		switch {
		case d.GetFixedDelay() != nil:
			if err := d.GetFixedDelay().CheckValid(); err != nil || d.GetFixedDelay().AsDuration() < 0 {
				return nil, errors.New("delay.fixed_delay: invalid duration")
			}
			out.delay = d.GetFixedDelay().AsDuration()
		case d.GetHeaderDelay() != nil:
			out.headerDelay = true
		default:
			return nil, errors.New("delay: fixed_delay or header_delay required")
		}
		p, err := perMillion(d.GetPercentage(), "delay.percentage")
		if err != nil {
			return nil, err
		}
		out.delayPerMil = p
	}
	if a := f.GetAbort(); a != nil {
		if err := subset.Fields(a, "abort", "http_status", "grpc_status", "header_abort", "percentage"); err != nil {
			return nil, err
		}
		out.hasAbort = true
		switch e := a.GetErrorType().(type) {
		case *faultv3.FaultAbort_HttpStatus:
			if e.HttpStatus < 200 || e.HttpStatus > 599 {
				return nil, fmt.Errorf("abort.http_status: must be 200-599, got %d", e.HttpStatus)
			}
			out.abortStatus = int(e.HttpStatus)
		case *faultv3.FaultAbort_GrpcStatus:
			if e.GrpcStatus > 16 {
				return nil, fmt.Errorf("abort.grpc_status: must be 0-16, got %d", e.GrpcStatus)
			}
			out.abortStatus, out.abortGRPC = 200, int(e.GrpcStatus)
		case *faultv3.FaultAbort_HeaderAbort_:
			out.headerAbort = true
		default:
			return nil, errors.New("abort: http_status, grpc_status or header_abort required")
		}
		p, err := perMillion(a.GetPercentage(), "abort.percentage")
		if err != nil {
			return nil, err
		}
		out.abortPerMil = p
	}
	for i, h := range f.GetHeaders() {
		m, err := headerMatcher(h, fmt.Sprintf("headers[%d]", i))
		if err != nil {
			return nil, err
		}
		out.headers = append(out.headers, m)
	}
	out.upstreamNames = nil
	if f.GetUpstreamCluster() != "" {
		out.upstreamNames = []string{f.GetUpstreamCluster()}
	}
	return out, nil
}

// Decide returns what to do with a request; r1 and r2 are random numbers
// (independent draws for the delay and the abort). cluster is the routed
// cluster (a fault with upstream_cluster applies to that cluster only).
func (f *Fault) Decide(h Headers, cluster string, r1, r2 uint64) Action {
	act := Action{GRPCStatus: -1}
	if f == nil {
		return act
	}
	if len(f.upstreamNames) > 0 && f.upstreamNames[0] != cluster {
		return act
	}
	for _, m := range f.headers {
		if !m.match(h) {
			return act
		}
	}
	if f.hasDelay && r1%1_000_000 < uint64(f.delayPerMil) {
		if f.headerDelay {
			if v, ok := h.Get("x-envoy-fault-delay-request"); ok {
				if ms, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
					act.Delay = time.Duration(ms) * time.Millisecond
				}
			}
		} else {
			act.Delay = f.delay
		}
	}
	if f.hasAbort && r2%1_000_000 < uint64(f.abortPerMil) {
		switch {
		case f.headerAbort:
			if v, ok := h.Get("x-envoy-fault-abort-request"); ok {
				if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 200 && s <= 599 {
					act.AbortStatus = s
				}
			}
			if v, ok := h.Get("x-envoy-fault-abort-grpc-request"); ok {
				if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 && s <= 16 {
					act.AbortStatus, act.GRPCStatus = 200, s
				}
			}
		default:
			act.AbortStatus, act.GRPCStatus = f.abortStatus, f.abortGRPC
		}
	}
	return act
}

func (m matcher) match(h Headers) bool {
	v, ok := h.Get(m.name)
	var r bool
	switch {
	case m.present:
		r = ok
	case !ok:
		return false // an absent header never matches a value matcher
	case m.exact != "":
		r = v == m.exact
	default:
		r = strings.HasPrefix(v, m.prefix)
	}
	return r != m.invert
}

func headerMatcher(h *routev3.HeaderMatcher, p string) (matcher, error) {
	if err := subset.Fields(h, p, "name", "present_match", "string_match", "invert_match"); err != nil {
		return matcher{}, err
	}
	m := matcher{name: strings.ToLower(h.GetName()), invert: h.GetInvertMatch()}
	if m.name == "" {
		return m, fmt.Errorf("%s.name: required", p)
	}
	switch {
	case h.GetPresentMatch():
		m.present = true
	case h.GetStringMatch().GetExact() != "":
		m.exact = h.GetStringMatch().GetExact()
	case h.GetStringMatch().GetPrefix() != "":
		m.prefix = h.GetStringMatch().GetPrefix()
	default:
		return m, fmt.Errorf("%s: only present_match and string_match exact or prefix are supported", p)
	}
	return m, nil
}

func perMillion(p *typev3.FractionalPercent, path string) (uint32, error) {
	if p == nil {
		return 1_000_000, nil // Envoy: unset percentage means 100%
	}
	var scale uint32
	switch p.GetDenominator() {
	case typev3.FractionalPercent_HUNDRED:
		scale = 10_000
	case typev3.FractionalPercent_TEN_THOUSAND:
		scale = 100
	case typev3.FractionalPercent_MILLION:
		scale = 1
	default:
		return 0, fmt.Errorf("%s.denominator: unsupported", path)
	}
	return min(p.GetNumerator()*scale, 1_000_000), nil
}
