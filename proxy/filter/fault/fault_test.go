package fault

import (
	"strings"
	"testing"
	"time"

	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

type hdrs map[string]string

func (h hdrs) Get(n string) (string, bool) { v, ok := h[n]; return v, ok }

func parse(t *testing.T, js string) *faultv3.HTTPFault {
	t.Helper()
	var f faultv3.HTTPFault
	if err := protojson.Unmarshal([]byte(js), &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		h         hdrs
		r1, r2    uint64
		want      Action
	}{
		{"fixed delay, 100%", `{"delay": {"fixedDelay": "0.5s"}}`, nil, 0, 0, Action{Delay: 500 * time.Millisecond, GRPCStatus: -1}},
		{"delay 10%, drawn in", `{"delay": {"fixedDelay": "1s", "percentage": {"numerator": 10}}}`, nil, 99_999, 0, Action{Delay: time.Second, GRPCStatus: -1}},
		{"delay 10%, drawn out", `{"delay": {"fixedDelay": "1s", "percentage": {"numerator": 10}}}`, nil, 100_000, 0, Action{GRPCStatus: -1}},
		{"abort 503", `{"abort": {"httpStatus": 503}}`, nil, 0, 0, Action{AbortStatus: 503, GRPCStatus: -1}},
		{"grpc abort", `{"abort": {"grpcStatus": 14}}`, nil, 0, 0, Action{AbortStatus: 200, GRPCStatus: 14}},
		{"header abort", `{"abort": {"headerAbort": {}}}`, hdrs{"x-envoy-fault-abort-request": "429"}, 0, 0, Action{AbortStatus: 429, GRPCStatus: -1}},
		{"header delay", `{"delay": {"headerDelay": {}}}`, hdrs{"x-envoy-fault-delay-request": "25"}, 0, 0, Action{Delay: 25 * time.Millisecond, GRPCStatus: -1}},
		{"header match", `{"abort": {"httpStatus": 500}, "headers": [{"name": "x-user", "stringMatch": {"exact": "canary"}}]}`, hdrs{"x-user": "canary"}, 0, 0, Action{AbortStatus: 500, GRPCStatus: -1}},
		{"header mismatch", `{"abort": {"httpStatus": 500}, "headers": [{"name": "x-user", "stringMatch": {"exact": "canary"}}]}`, hdrs{"x-user": "bob"}, 0, 0, Action{GRPCStatus: -1}},
		{"other cluster", `{"abort": {"httpStatus": 500}, "upstreamCluster": "db"}`, nil, 0, 0, Action{GRPCStatus: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Decode(parse(t, tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Decide(tc.h, "web", tc.r1, tc.r2); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ cfg, want string }{
		{`{"abort": {"httpStatus": 99}}`, "abort.http_status: must be 200-599, got 99"},
		{`{"abort": {}}`, "abort: http_status, grpc_status or header_abort required"},
		{`{"delay": {}}`, "delay: fixed_delay or header_delay required"},
		{`{"maxActiveFaults": 3}`, "max_active_faults: unsupported by weft"},
		{`{"headers": [{"name": "x", "rangeMatch": {"start": 1, "end": 2}}]}`, "headers[0].range_match: unsupported by weft"},
	} {
		_, err := Decode(parse(t, tc.cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"abort": {"httpStatus": 503}}`, `{"delay": {"fixedDelay": "1s", "percentage": {"numerator": 5, "denominator": "MILLION"}}}`} {
		var m faultv3.HTTPFault
		protojson.Unmarshal([]byte(s), &m)
		b, _ := proto.Marshal(&m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m faultv3.HTTPFault
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		if fl, err := Decode(&m); err == nil {
			fl.Decide(hdrs{"x-envoy-fault-abort-request": "503"}, "c", 1, 2)
		}
	})
}
