package xdsclient

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func clusterAny(t testing.TB, name string, timeout time.Duration) *anypb.Any {
	t.Helper()
	a, err := anypb.New(&clusterv3.Cluster{Name: name, ConnectTimeout: durationpb.New(timeout)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func deltaRes(t testing.TB, name, version string, timeout time.Duration) *discoveryv3.Resource {
	return &discoveryv3.Resource{Name: name, Version: version, Resource: clusterAny(t, name, timeout)}
}

// fakeHandler records calls and refuses the sets that reject refuses.
type fakeHandler struct {
	calls  []map[string]*anypb.Any
	reject func(set map[string]*anypb.Any) error
}

func (f *fakeHandler) Update(_ string, set map[string]*anypb.Any) error {
	f.calls = append(f.calls, set)
	if f.reject != nil {
		return f.reject(set)
	}
	return nil
}

func rejectName(bad string) func(map[string]*anypb.Any) error {
	return func(set map[string]*anypb.Any) error {
		if _, ok := set[bad]; ok {
			return fmt.Errorf("cluster %q: refused", bad)
		}
		return nil
	}
}

func names(set map[string]*anypb.Any) []string {
	return slices.Sorted(maps.Keys(set))
}

func timeoutOf(t testing.TB, a *anypb.Any) time.Duration {
	t.Helper()
	var c clusterv3.Cluster
	if err := a.UnmarshalTo(&c); err != nil {
		t.Fatalf("decode cluster: %v", err)
	}
	return c.GetConnectTimeout().AsDuration()
}

// primedState returns a state whose CDS set holds a and b (delta versions "1").
func primedState(t testing.TB) *resourceState {
	s := newResourceState([]string{resourcev3.ClusterType, resourcev3.ListenerType}, func() time.Time { return fixedNow })
	req := s.applyDelta(&discoveryv3.DeltaDiscoveryResponse{
		TypeUrl:   resourcev3.ClusterType,
		Nonce:     "n0",
		Resources: []*discoveryv3.Resource{deltaRes(t, "a", "1", time.Second), deltaRes(t, "b", "1", time.Second)},
	}, &fakeHandler{})
	if req.GetErrorDetail() != nil {
		t.Fatalf("prime: %v", req.GetErrorDetail())
	}
	return s
}

func TestApplyDelta(t *testing.T) {
	listener, err := anypb.New(&listenerv3.Listener{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		resp        func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse
		reject      func(map[string]*anypb.Any) error
		wantErr     string   // NACK text; "" for an ACK
		wantNames   []string // CDS set afterwards
		wantCalls   int
		wantVersion map[string]string
	}{
		{
			name: "update and add",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1", SystemVersionInfo: "v2",
					Resources: []*discoveryv3.Resource{deltaRes(t, "a", "2", 2*time.Second), deltaRes(t, "c", "1", time.Second)}}
			},
			wantNames: []string{"a", "b", "c"}, wantCalls: 1,
			wantVersion: map[string]string{"a": "2", "b": "1", "c": "1"},
		},
		{
			name: "remove, including an unknown name",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1", RemovedResources: []string{"b", "zz"}}
			},
			wantNames: []string{"a"}, wantCalls: 1, wantVersion: map[string]string{"a": "1"},
		},
		{
			name: "empty response after a delivered set is acked without calling the handler",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1"}
			},
			wantNames: []string{"a", "b"}, wantCalls: 0, wantVersion: map[string]string{"a": "1", "b": "1"},
		},
		{
			name: "handler refusal keeps the previous set",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1",
					Resources: []*discoveryv3.Resource{deltaRes(t, "bad", "1", time.Second)}, RemovedResources: []string{"a"}}
			},
			reject:  rejectName("bad"),
			wantErr: `cluster "bad": refused`, wantNames: []string{"a", "b"}, wantCalls: 1,
			wantVersion: map[string]string{"a": "1", "b": "1"},
		},
		{
			name: "unsubscribed type",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.RouteType, Nonce: "n1"}
			},
			wantErr: `type "` + resourcev3.RouteType + `" is not subscribed`, wantNames: []string{"a", "b"},
		},
		{
			name: "empty name",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1",
					Resources: []*discoveryv3.Resource{{Resource: clusterAny(t, "x", time.Second)}}}
			},
			wantErr: "resource 0: empty name", wantNames: []string{"a", "b"},
		},
		{
			name: "missing body",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1",
					Resources: []*discoveryv3.Resource{{Name: "x", Version: "1"}}}
			},
			wantErr: `resource "x": no resource body`, wantNames: []string{"a", "b"},
		},
		{
			name: "body of another type",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1",
					Resources: []*discoveryv3.Resource{{Name: "a", Resource: listener}}}
			},
			wantErr:   `resource "a": type "` + resourcev3.ListenerType + `", want "` + resourcev3.ClusterType + `"`,
			wantNames: []string{"a", "b"},
		},
		{
			name: "duplicate name",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1",
					Resources: []*discoveryv3.Resource{deltaRes(t, "c", "1", time.Second), deltaRes(t, "c", "2", time.Second)}}
			},
			wantErr: `duplicate resource "c"`, wantNames: []string{"a", "b"},
		},
		{
			name: "updated and removed",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1",
					Resources: []*discoveryv3.Resource{deltaRes(t, "a", "2", time.Second)}, RemovedResources: []string{"a"}}
			},
			wantErr: `resource "a" is both updated and removed`, wantNames: []string{"a", "b"},
		},
		{
			name: "handler panic is a refusal",
			resp: func(t *testing.T) *discoveryv3.DeltaDiscoveryResponse {
				return &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "n1", RemovedResources: []string{"a"}}
			},
			reject:  func(map[string]*anypb.Any) error { panic("boom") },
			wantErr: "handler panicked: boom", wantNames: []string{"a", "b"}, wantCalls: 1,
			wantVersion: map[string]string{"a": "1", "b": "1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := primedState(t)
			before := s.types[resourcev3.ClusterType].resources
			h := &fakeHandler{reject: tt.reject}
			resp := tt.resp(t)
			req := s.applyDelta(resp, h)

			if req.GetResponseNonce() != "n1" || req.GetTypeUrl() != resp.GetTypeUrl() {
				t.Errorf("request nonce/type = %q/%q, want n1/%q", req.GetResponseNonce(), req.GetTypeUrl(), resp.GetTypeUrl())
			}
			if got := req.GetErrorDetail().GetMessage(); got != tt.wantErr {
				t.Errorf("error_detail = %q, want %q", got, tt.wantErr)
			}
			if tt.wantErr != "" && req.GetErrorDetail().GetCode() != int32(codes.InvalidArgument) {
				t.Errorf("error_detail code = %d, want INVALID_ARGUMENT", req.GetErrorDetail().GetCode())
			}
			ts := s.types[resourcev3.ClusterType]
			if got := names(ts.resources); !slices.Equal(got, tt.wantNames) {
				t.Errorf("set = %v, want %v", got, tt.wantNames)
			}
			if len(h.calls) != tt.wantCalls {
				t.Errorf("handler calls = %d, want %d", len(h.calls), tt.wantCalls)
			}
			if tt.wantVersion != nil && !maps.Equal(ts.versions, tt.wantVersion) {
				t.Errorf("versions = %v, want %v", ts.versions, tt.wantVersion)
			}
			if got := names(before); !slices.Equal(got, []string{"a", "b"}) {
				t.Errorf("published set was modified: %v", got)
			}
			st := s.snapshot()[0]
			if tt.wantErr != "" && resp.GetTypeUrl() == resourcev3.ClusterType {
				if st.LastNACK != tt.wantErr || !st.LastNACKAt.Equal(fixedNow) || st.NACKs != 1 {
					t.Errorf("status = %+v, want last NACK %q at %v", st, tt.wantErr, fixedNow)
				}
				if st.Nonce != "n0" {
					t.Errorf("status nonce = %q, want the last acked n0", st.Nonce)
				}
			}
			if tt.wantErr == "" && (st.Nonce != "n1" || st.ACKs != 2 || st.Version != resp.GetSystemVersionInfo()) {
				t.Errorf("status = %+v, want nonce n1, 2 acks, version %q", st, resp.GetSystemVersionInfo())
			}
		})
	}
}

func TestApplyDeltaFirstEmptyResponseIsDelivered(t *testing.T) {
	s := newResourceState([]string{resourcev3.ListenerType}, time.Now)
	h := &fakeHandler{}
	req := s.applyDelta(&discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ListenerType, Nonce: "1"}, h)
	if req.GetErrorDetail() != nil || len(h.calls) != 1 || len(h.calls[0]) != 0 {
		t.Fatalf("want one handler call with an empty set and an ACK; calls=%v nack=%v", h.calls, req.GetErrorDetail())
	}
	if !s.snapshot()[0].Received {
		t.Error("status does not report the type as received")
	}
}

func TestDeltaSubscriptionsCarryHeldVersions(t *testing.T) {
	s := primedState(t)
	reqs := s.deltaSubscriptions()
	if len(reqs) != 2 || reqs[0].GetTypeUrl() != resourcev3.ClusterType || reqs[1].GetTypeUrl() != resourcev3.ListenerType {
		t.Fatalf("subscriptions = %v, want CDS then LDS", reqs)
	}
	if want := map[string]string{"a": "1", "b": "1"}; !maps.Equal(reqs[0].GetInitialResourceVersions(), want) {
		t.Errorf("initial versions = %v, want %v", reqs[0].GetInitialResourceVersions(), want)
	}
	if len(reqs[0].GetResourceNamesSubscribe()) != 0 || len(reqs[1].GetInitialResourceVersions()) != 0 {
		t.Errorf("want wildcard subscriptions and no versions for LDS: %v", reqs)
	}
}

func sotwResp(t testing.TB, version, nonce string, rs ...*anypb.Any) *discoveryv3.DiscoveryResponse {
	return &discoveryv3.DiscoveryResponse{TypeUrl: resourcev3.ClusterType, VersionInfo: version, Nonce: nonce, Resources: rs}
}

func TestApplySotW(t *testing.T) {
	listener, err := anypb.New(&listenerv3.Listener{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := func(t *testing.T, name string, body *anypb.Any) *anypb.Any {
		a, err := anypb.New(&discoveryv3.Resource{Name: name, Resource: body})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name      string
		resources func(t *testing.T) []*anypb.Any
		reject    func(map[string]*anypb.Any) error
		wantErr   string
		wantNames []string
	}{
		{
			name: "replace",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{clusterAny(t, "b", time.Second), clusterAny(t, "c", time.Second)}
			},
			wantNames: []string{"b", "c"},
		},
		{
			name: "empty set",
			resources: func(t *testing.T) []*anypb.Any {
				return nil
			},
			wantNames: []string{},
		},
		{
			name: "wrapped resources",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{wrapped(t, "w", clusterAny(t, "ignored", time.Second)), wrapped(t, "", clusterAny(t, "inner", time.Second))}
			},
			wantNames: []string{"inner", "w"},
		},
		{
			name: "no name",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{clusterAny(t, "", time.Second)}
			},
			wantErr: "resource 0: resource has no name", wantNames: []string{"a"},
		},
		{
			name: "malformed body",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{clusterAny(t, "x", time.Second), {TypeUrl: resourcev3.ClusterType, Value: []byte{0x0a, 0x05, 'a'}}}
			},
			wantErr: "resource 1: read name: unexpected EOF", wantNames: []string{"a"},
		},
		{
			name: "nil resource",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{nil}
			},
			wantErr: "resource 0: empty resource", wantNames: []string{"a"},
		},
		{
			name: "wrapper without body",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{wrapped(t, "w", nil)}
			},
			wantErr: `resource 0: wrapped resource "w": no resource body`, wantNames: []string{"a"},
		},
		{
			name: "another type",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{listener}
			},
			wantErr:   `resource "a": type "` + resourcev3.ListenerType + `", want "` + resourcev3.ClusterType + `"`,
			wantNames: []string{"a"},
		},
		{
			name: "duplicate",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{clusterAny(t, "x", time.Second), clusterAny(t, "x", 2*time.Second)}
			},
			wantErr: `duplicate resource "x"`, wantNames: []string{"a"},
		},
		{
			name: "handler refusal",
			resources: func(t *testing.T) []*anypb.Any {
				return []*anypb.Any{clusterAny(t, "bad", time.Second)}
			},
			reject:  rejectName("bad"),
			wantErr: `cluster "bad": refused`, wantNames: []string{"a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newResourceState([]string{resourcev3.ClusterType}, func() time.Time { return fixedNow })
			if req := s.applySotW(sotwResp(t, "v1", "n0", clusterAny(t, "a", time.Second)), &fakeHandler{}); req.GetErrorDetail() != nil {
				t.Fatalf("prime: %v", req.GetErrorDetail())
			}
			req := s.applySotW(sotwResp(t, "v2", "n1", tt.resources(t)...), &fakeHandler{reject: tt.reject})
			if got := req.GetErrorDetail().GetMessage(); got != tt.wantErr {
				t.Errorf("error_detail = %q, want %q", got, tt.wantErr)
			}
			wantVersion := "v2"
			if tt.wantErr != "" {
				wantVersion = "v1" // a NACK carries the last accepted version
			}
			if req.GetVersionInfo() != wantVersion || req.GetResponseNonce() != "n1" {
				t.Errorf("request version/nonce = %q/%q, want %q/n1", req.GetVersionInfo(), req.GetResponseNonce(), wantVersion)
			}
			if got := names(s.types[resourcev3.ClusterType].resources); !slices.Equal(got, tt.wantNames) {
				t.Errorf("set = %v, want %v", got, tt.wantNames)
			}
		})
	}
}

func TestApplySotWRepeatedRejectedVersion(t *testing.T) {
	s := newResourceState([]string{resourcev3.ClusterType}, func() time.Time { return fixedNow })
	h := &fakeHandler{reject: rejectName("bad")}
	s.applySotW(sotwResp(t, "v1", "1", clusterAny(t, "a", time.Second)), h)
	for i, nonce := range []string{"2", "3"} {
		req := s.applySotW(sotwResp(t, "v2", nonce, clusterAny(t, "bad", time.Second)), h)
		if req.GetErrorDetail().GetMessage() != `cluster "bad": refused` || req.GetVersionInfo() != "v1" || req.GetResponseNonce() != nonce {
			t.Fatalf("response %d: request = %v, want a NACK of nonce %s at v1", i, req, nonce)
		}
	}
	if len(h.calls) != 2 {
		t.Errorf("handler calls = %d, want 2 (the repeated version is refused without a call)", len(h.calls))
	}
	if st := s.snapshot()[0]; st.NACKs != 2 || st.ACKs != 1 || st.Version != "v1" {
		t.Errorf("status = %+v", st)
	}
	req := s.applySotW(sotwResp(t, "v3", "4", clusterAny(t, "a", 2*time.Second)), h)
	if req.GetErrorDetail() != nil || len(h.calls) != 3 || req.GetVersionInfo() != "v3" {
		t.Errorf("a new version is handled: request %v, calls %d", req, len(h.calls))
	}
}

func TestResourceName(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    string
		wantErr string
	}{
		{name: "cluster", in: mustMarshal(t, &clusterv3.Cluster{Name: "c", ConnectTimeout: durationpb.New(time.Second)}), want: "c"},
		{name: "last occurrence wins", in: []byte{0x0a, 1, 'x', 0x0a, 1, 'y'}, want: "y"},
		{name: "name in another field", in: []byte{0x1a, 1, 'n'}, wantErr: "resource has no name"},
		{name: "empty", in: nil, wantErr: "resource has no name"},
		{name: "bad tag", in: []byte{0x80}, wantErr: "read name: unexpected EOF"},
		{name: "field 1 not bytes", in: []byte{0x08, 0x01}, wantErr: "resource has no name"},
		{name: "truncated other field", in: []byte{0x12, 0x05}, wantErr: "read name: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resourceName(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExponentialBackoff(t *testing.T) {
	b := ExponentialBackoff(250*time.Millisecond, 30*time.Second)
	for _, tt := range []struct {
		attempt int
		ceil    time.Duration
	}{{-1, 30 * time.Second}, {0, 250 * time.Millisecond}, {3, 2 * time.Second}, {7, 30 * time.Second}, {63, 30 * time.Second}, {1000, 30 * time.Second}} {
		for range 50 {
			if d := b(tt.attempt); d < 0 || d >= tt.ceil {
				t.Fatalf("attempt %d: %v outside [0, %v)", tt.attempt, d, tt.ceil)
			}
		}
	}
}

// fuzzState returns a state for the fuzz targets, primed with a CDS set.
func fuzzState(t testing.TB) (*resourceState, Handler) {
	s := primedState(t)
	return s, HandlerFunc(func(_ string, set map[string]*anypb.Any) error {
		if _, bad := set["bad"]; bad {
			return errors.New("refused")
		}
		return nil
	})
}

func FuzzApplyDelta(f *testing.F) {
	f.Add(mustMarshal(f, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "1",
		Resources: []*discoveryv3.Resource{deltaRes(f, "c", "1", time.Second)}, RemovedResources: []string{"a"}}))
	f.Add(mustMarshal(f, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "2",
		Resources: []*discoveryv3.Resource{deltaRes(f, "bad", "1", time.Second), {Name: "x"}}}))
	f.Add(mustMarshal(f, &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ListenerType}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var resp discoveryv3.DeltaDiscoveryResponse
		if proto.Unmarshal(b, &resp) != nil {
			return
		}
		s, h := fuzzState(t)
		before := names(s.types[resourcev3.ClusterType].resources)
		req := s.applyDelta(&resp, h)
		if req.GetErrorDetail() != nil && resp.GetTypeUrl() == resourcev3.ClusterType {
			if got := names(s.types[resourcev3.ClusterType].resources); !slices.Equal(got, before) {
				t.Fatalf("NACK changed the set: %v -> %v", before, got)
			}
		}
		if req.GetResponseNonce() != resp.GetNonce() {
			t.Fatalf("nonce %q, want %q", req.GetResponseNonce(), resp.GetNonce())
		}
	})
}

func FuzzApplySotW(f *testing.F) {
	f.Add(mustMarshal(f, sotwResp(f, "v1", "1", clusterAny(f, "a", time.Second), clusterAny(f, "b", time.Second))))
	f.Add(mustMarshal(f, sotwResp(f, "v2", "2", clusterAny(f, "bad", time.Second))))
	w, err := anypb.New(&discoveryv3.Resource{Name: "w", Resource: clusterAny(f, "x", time.Second)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustMarshal(f, sotwResp(f, "v3", "3", w)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var resp discoveryv3.DiscoveryResponse
		if proto.Unmarshal(b, &resp) != nil {
			return
		}
		s, h := fuzzState(t)
		held := s.types[resourcev3.ClusterType].version
		req := s.applySotW(&resp, h)
		if req.GetErrorDetail() == nil && resp.GetTypeUrl() == resourcev3.ClusterType &&
			len(s.types[resourcev3.ClusterType].resources) != len(resp.GetResources()) {
			t.Fatalf("ACKed a set of %d for a response of %d", len(s.types[resourcev3.ClusterType].resources), len(resp.GetResources()))
		}
		if req.GetErrorDetail() != nil && resp.GetTypeUrl() == resourcev3.ClusterType && req.GetVersionInfo() != held {
			t.Fatalf("NACK carries version %q, want the held %q", req.GetVersionInfo(), held)
		}
	})
}

func BenchmarkApplyDeltaOneOf1000(b *testing.B) {
	s := newResourceState([]string{resourcev3.ClusterType}, time.Now)
	initial := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "0"}
	for i := range 1000 {
		initial.Resources = append(initial.Resources, deltaRes(b, fmt.Sprintf("outbound|80||svc-%d.default", i), "1", time.Second))
	}
	h := HandlerFunc(func(string, map[string]*anypb.Any) error { return nil })
	if req := s.applyDelta(initial, h); req.GetErrorDetail() != nil {
		b.Fatal(req.GetErrorDetail())
	}
	update := &discoveryv3.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, Nonce: "1",
		Resources: []*discoveryv3.Resource{deltaRes(b, "outbound|80||svc-500.default", "2", 2*time.Second)}}
	b.ReportAllocs()
	for b.Loop() {
		if req := s.applyDelta(update, h); req.GetErrorDetail() != nil {
			b.Fatal(req.GetErrorDetail())
		}
	}
}
