package health

import (
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func base() *corev3.HealthCheck {
	return &corev3.HealthCheck{
		Timeout: durationpb.New(time.Second), Interval: durationpb.New(5 * time.Second),
		UnhealthyThreshold: wrapperspb.UInt32(3), HealthyThreshold: wrapperspb.UInt32(2),
		HealthChecker: &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}},
	}
}

func with(f func(*corev3.HealthCheck)) []*corev3.HealthCheck {
	hc := base()
	f(hc)
	return []*corev3.HealthCheck{hc}
}

func httpCheck(h *corev3.HealthCheck_HttpHealthCheck) func(*corev3.HealthCheck) {
	return func(hc *corev3.HealthCheck) {
		hc.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: h}
	}
}

func TestDecode(t *testing.T) {
	if c, err := Decode(nil); c != nil || err != nil {
		t.Fatalf("Decode(nil) = %v, %v", c, err)
	}
	c, err := Decode(with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{
		Path: "/healthz?full=1", Host: "catalog.shop",
		ExpectedStatuses: []*typev3.Int64Range{{Start: 200, End: 300}},
	})))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kind != HTTP || c.HTTP.Path != "/healthz?full=1" || c.HTTP.Host != "catalog.shop" || c.HTTP.Method != "GET" ||
		len(c.HTTP.Expected) != 1 || c.HTTP.Expected[0] != (StatusRange{200, 300}) ||
		c.Timeout != time.Second || c.Interval != 5*time.Second || c.UnhealthyThreshold != 3 || c.HealthyThreshold != 2 {
		t.Fatalf("http: %+v", *c)
	}
	c, err = Decode(with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/", Method: corev3.RequestMethod_HEAD})))
	if err != nil || c.HTTP.Method != "HEAD" || c.HTTP.Expected[0] != (StatusRange{200, 201}) {
		t.Fatalf("http defaults: %+v, %v", c, err)
	}
	c, err = Decode(with(func(hc *corev3.HealthCheck) {
		hc.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{ServiceName: "shop.Catalog", Authority: "catalog"}}
		hc.AltPort = wrapperspb.UInt32(9901)
		hc.IntervalJitter = durationpb.New(time.Second)
		hc.IntervalJitterPercent = 10
	}))
	if err != nil || c.Kind != GRPC || c.GRPC.ServiceName != "shop.Catalog" || c.GRPC.Authority != "catalog" ||
		c.AltPort != 9901 || c.IntervalJitter != time.Second || c.IntervalJitterPercent != 10 {
		t.Fatalf("grpc: %+v, %v", c, err)
	}
	c, err = Decode(with(func(*corev3.HealthCheck) {}))
	if err != nil || c.Kind != TCP {
		t.Fatalf("tcp: %+v, %v", c, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		hcs  []*corev3.HealthCheck
		want string
	}{
		{"two", []*corev3.HealthCheck{base(), base()}, "health_checks: at most one health check is supported by weft, got 2"},
		{"no timeout", with(func(hc *corev3.HealthCheck) { hc.Timeout = nil }), "health_checks[0].timeout: required"},
		{"no interval", with(func(hc *corev3.HealthCheck) { hc.Interval = nil }), "health_checks[0].interval: required"},
		{"zero interval", with(func(hc *corev3.HealthCheck) { hc.Interval = durationpb.New(0) }), "health_checks[0].interval: must be a positive duration, got 0s"},
		{"bad duration", with(func(hc *corev3.HealthCheck) { hc.Timeout = &durationpb.Duration{Nanos: 2e9} }), "health_checks[0].timeout: not a valid duration"},
		{"negative jitter", with(func(hc *corev3.HealthCheck) { hc.IntervalJitter = durationpb.New(-time.Second) }), "health_checks[0].interval_jitter: must be a positive duration, got -1s"},
		{"no unhealthy threshold", with(func(hc *corev3.HealthCheck) { hc.UnhealthyThreshold = nil }), "health_checks[0].unhealthy_threshold: required"},
		{"no healthy threshold", with(func(hc *corev3.HealthCheck) { hc.HealthyThreshold = nil }), "health_checks[0].healthy_threshold: required"},
		{"alt port", with(func(hc *corev3.HealthCheck) { hc.AltPort = wrapperspb.UInt32(70000) }), "health_checks[0].alt_port: must be 1-65535, got 70000"},
		{"unsupported field", with(func(hc *corev3.HealthCheck) { hc.NoTrafficInterval = durationpb.New(time.Second) }), "health_checks[0].no_traffic_interval: unsupported by weft"},
		{"custom", with(func(hc *corev3.HealthCheck) {
			hc.HealthChecker = &corev3.HealthCheck_CustomHealthCheck_{CustomHealthCheck: &corev3.HealthCheck_CustomHealthCheck{Name: "x"}}
		}), "health_checks[0].custom_health_check: unsupported by weft"},
		{"no checker", with(func(hc *corev3.HealthCheck) { hc.HealthChecker = nil }), "health_checks[0]: one of http_health_check, grpc_health_check, tcp_health_check is required"},
		{"http no path", with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{})), "health_checks[0].http_health_check.path: required"},
		{"http relative path", with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "healthz"})), `health_checks[0].http_health_check.path: "healthz" is not an absolute path`},
		{"http url", with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "http://x/y"})), `health_checks[0].http_health_check.path: "http://x/y" is not an absolute path`},
		{"http method", with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/", Method: corev3.RequestMethod_POST})), "health_checks[0].http_health_check.method: only GET and HEAD are supported, got POST"},
		{"http statuses", with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/", ExpectedStatuses: []*typev3.Int64Range{{Start: 200, End: 200}}})), "health_checks[0].http_health_check.expected_statuses[0]: must be a range within [100, 600), got [200, 200)"},
		{"http codec", with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/", CodecClientType: typev3.CodecClientType_HTTP2})), "health_checks[0].http_health_check.codec_client_type: unsupported by weft"},
		{"grpc metadata", with(func(hc *corev3.HealthCheck) {
			hc.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{
				InitialMetadata: []*corev3.HeaderValueOption{{}},
			}}
		}), "health_checks[0].grpc_health_check.initial_metadata: unsupported by weft"},
		{"tcp send", with(func(hc *corev3.HealthCheck) {
			hc.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{
				Send: &corev3.HealthCheck_Payload{Payload: &corev3.HealthCheck_Payload_Text{Text: "50494e47"}},
			}}
		}), "health_checks[0].tcp_health_check.send: unsupported by weft (connect-only checks)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.hcs)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant %q", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, hc := range []*corev3.HealthCheck{
		base(),
		with(httpCheck(&corev3.HealthCheck_HttpHealthCheck{Path: "/healthz", ExpectedStatuses: []*typev3.Int64Range{{Start: 200, End: 300}}}))[0],
		with(func(hc *corev3.HealthCheck) {
			hc.HealthChecker = &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{ServiceName: "s"}}
		})[0],
		{},
	} {
		b, err := proto.Marshal(hc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var hc corev3.HealthCheck
		if proto.Unmarshal(b, &hc) != nil {
			return
		}
		c, err := Decode([]*corev3.HealthCheck{&hc})
		if err != nil {
			return
		}
		if c.Timeout <= 0 || c.Interval <= 0 || c.UnhealthyThreshold == 0 || c.HealthyThreshold == 0 {
			t.Fatalf("Decode accepted an invalid config: %+v", *c)
		}
		if c.Kind == HTTP && (len(c.HTTP.Expected) == 0 || c.HTTP.Path[0] != '/') {
			t.Fatalf("Decode accepted an invalid HTTP check: %+v", c.HTTP)
		}
	})
}
