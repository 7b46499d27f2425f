package proxy

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbachttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-mesh/weft/proxy/filter/authz"
	"github.com/weft-mesh/weft/proxy/filter/fault"
	"github.com/weft-mesh/weft/proxy/filter/jwt"
	"github.com/weft-mesh/weft/proxy/route"
)

// hcmSpec is the decoded http_connection_manager.
type hcmSpec struct {
	statPrefix        string
	codec             hcmv3.HttpConnectionManager_CodecType
	rdsName           string       // route configuration delivered over RDS
	inline            *route.Table // or inline
	useRemoteAddress  bool
	xffTrustedHops    uint32
	generateRequestID bool
	websocket         bool
	connect           bool
	streamIdle        time.Duration
	requestTimeout    time.Duration
	headersTimeout    time.Duration
	idleTimeout       time.Duration
	maxHeaderBytes    int
	fault             *fault.Fault // the fault filter's own config; nil: not in the chain or empty
	// jwt is envoy.filters.http.jwt_authn; nil: not in the chain.
	jwt *jwt.Filter
	// jwtKey identifies jwt's config (its deterministic proto bytes), so
	// that an unchanged filter keeps its running JWKS fetchers across
	// updates (see jwtFilters).
	jwtKey string
	// rbac holds the envoy.filters.http.rbac filters in chain order
	// (DENY then ALLOW as the control plane emits them); nil: none.
	rbac *authz.Chain
	// sampling is tracing.random_sampling as a ratio (0-1); -1: unset
	// (the proxy's Options.TraceSampling applies).
	sampling float64
}

func decodeHCM(h *hcmv3.HttpConnectionManager) (*hcmSpec, error) {
	s := &hcmSpec{
		statPrefix:        h.GetStatPrefix(),
		codec:             h.GetCodecType(),
		useRemoteAddress:  h.GetUseRemoteAddress().GetValue(),
		xffTrustedHops:    h.GetXffNumTrustedHops(),
		generateRequestID: h.GetGenerateRequestId() == nil || h.GetGenerateRequestId().GetValue(),
		streamIdle:        5 * time.Minute,
		headersTimeout:    0,
		idleTimeout:       time.Hour,
		maxHeaderBytes:    60 << 10,
		sampling:          -1,
	}
	if tr := h.GetTracing(); tr != nil {
		if rs := tr.GetRandomSampling(); rs != nil {
			v := rs.GetValue()
			if v < 0 || v > 100 || v != v {
				return nil, fmt.Errorf("tracing.random_sampling.value: must be 0-100, got %v", v)
			}
			s.sampling = v / 100
		}
	}
	switch s.codec {
	case hcmv3.HttpConnectionManager_AUTO, hcmv3.HttpConnectionManager_HTTP1, hcmv3.HttpConnectionManager_HTTP2:
	default:
		return nil, fmt.Errorf("codec_type: %s unsupported by weft", s.codec)
	}
	switch {
	case h.GetRds() != nil:
		s.rdsName = h.GetRds().GetRouteConfigName()
		if s.rdsName == "" {
			return nil, fmt.Errorf("rds.route_config_name: required")
		}
		if cs := h.GetRds().GetConfigSource(); cs != nil && cs.GetAds() == nil && cs.GetConfigSourceSpecifier() != nil {
			return nil, fmt.Errorf("rds.config_source: only ads is supported")
		}
	case h.GetRouteConfig() != nil:
		t, err := route.Build(h.GetRouteConfig())
		if err != nil {
			return nil, fmt.Errorf("route_config: %w", err)
		}
		s.inline = t
	default:
		return nil, fmt.Errorf("route_specifier: rds or route_config required")
	}
	fs := h.GetHttpFilters()
	if len(fs) == 0 {
		return nil, fmt.Errorf("http_filters: must end with %s", routerFilterName)
	}
	var rbac []*authz.Filter
	for i, f := range fs {
		tc := f.GetTypedConfig()
		isRouter := tc.MessageIs(&routerv3.Router{}) || (tc == nil && f.GetName() == routerFilterName)
		switch {
		case isRouter && i == len(fs)-1:
		case isRouter:
			return nil, fmt.Errorf("http_filters[%d]: the router must be the last filter", i)
		case tc.MessageIs(&jwtv3.JwtAuthentication{}):
			switch {
			case s.jwt != nil:
				return nil, fmt.Errorf("http_filters[%d]: at most one %s filter is supported", i, jwt.Name)
			case len(rbac) > 0 || s.fault != nil:
				return nil, fmt.Errorf("http_filters[%d]: %s must come before %s and %s", i, jwt.Name, authz.Name, faultFilterName)
			}
			jf, key, err := decodeJWT(tc)
			if err != nil {
				return nil, fmt.Errorf("http_filters[%d].typed_config.%w", i, err)
			}
			s.jwt, s.jwtKey = jf, key
		case tc.MessageIs(&rbachttpv3.RBAC{}):
			if s.fault != nil {
				return nil, fmt.Errorf("http_filters[%d]: %s must come before %s", i, authz.Name, faultFilterName)
			}
			rf, err := authz.DecodeAny(tc)
			if err != nil {
				return nil, fmt.Errorf("http_filters[%d].typed_config.%w", i, err)
			}
			rbac = append(rbac, rf)
		case tc.MessageIs(&faultv3.HTTPFault{}):
			fc, err := fault.DecodeAny(tc)
			if err != nil {
				return nil, fmt.Errorf("http_filters[%d].typed_config: %w", i, err)
			}
			s.fault = fc
		default:
			return nil, fmt.Errorf("http_filters[%d]: filter %q unsupported by weft", i, f.GetName())
		}
	}
	if len(rbac) > 0 {
		s.rbac = authz.NewChain(rbac...)
	}
	for i, u := range h.GetUpgradeConfigs() {
		if e := u.GetEnabled(); e != nil && !e.GetValue() {
			continue
		}
		switch strings.ToLower(u.GetUpgradeType()) {
		case "websocket":
			s.websocket = true
		case "connect":
			s.connect = true
		default:
			return nil, fmt.Errorf("upgrade_configs[%d].upgrade_type: %q unsupported by weft (websocket, CONNECT)", i, u.GetUpgradeType())
		}
	}
	durs := []struct {
		name string
		d    *durationpb.Duration
		dst  *time.Duration
	}{
		{"stream_idle_timeout", h.GetStreamIdleTimeout(), &s.streamIdle},
		{"request_timeout", h.GetRequestTimeout(), &s.requestTimeout},
		{"request_headers_timeout", h.GetRequestHeadersTimeout(), &s.headersTimeout},
		{"common_http_protocol_options.idle_timeout", h.GetCommonHttpProtocolOptions().GetIdleTimeout(), &s.idleTimeout},
	}
	for _, d := range durs {
		if d.d == nil {
			continue
		}
		if err := d.d.CheckValid(); err != nil || d.d.AsDuration() < 0 {
			return nil, fmt.Errorf("%s: invalid duration", d.name)
		}
		*d.dst = d.d.AsDuration()
	}
	if kb := h.GetMaxRequestHeadersKb(); kb != nil {
		if kb.GetValue() == 0 || kb.GetValue() > 8192 {
			return nil, fmt.Errorf("max_request_headers_kb: must be 1-8192, got %d", kb.GetValue())
		}
		s.maxHeaderBytes = int(kb.GetValue()) << 10
	}
	return s, nil
}

// faultFilterName is the fault filter's name in http_filters.
const faultFilterName = "envoy.filters.http.fault"

// jwksClient fetches remote JWKS for every JWT filter. Its transport has
// no Proxy function: fetches go directly, even when the proxy's
// environment carries HTTP_PROXY for its application. Each fetch is bounded
// by the fetcher's timeout.
var jwksClient = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost: 2,
	IdleConnTimeout:     time.Minute,
	TLSHandshakeTimeout: 10 * time.Second,
}}

// decodeJWT decodes a jwt_authn config and returns it with its key: the
// deterministic encoding of the config, so that the same config delivered
// twice (map order may differ on the wire) yields the same key. Remote
// JWKS fetchers are not started here (see jwtFilters).
func decodeJWT(a *anypb.Any) (*jwt.Filter, string, error) {
	var c jwtv3.JwtAuthentication
	if err := a.UnmarshalTo(&c); err != nil {
		return nil, "", fmt.Errorf("%s: %w", jwt.Name, err)
	}
	f, err := jwt.Decode(&c, jwt.Options{Client: jwksClient})
	if err != nil {
		return nil, "", err
	}
	key, err := proto.MarshalOptions{Deterministic: true}.Marshal(&c)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", jwt.Name, err)
	}
	return f, string(key), nil
}
