package xdsclient

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// wrappedResourceType is the type URL of envoy.service.discovery.v3.Resource,
// which a state-of-the-world server may use to wrap each resource (for a name
// or a TTL) instead of sending the resource itself.
var wrappedResourceType = "type.googleapis.com/" + string((&discoveryv3.Resource{}).ProtoReflect().Descriptor().FullName())

// typeState is what the client holds for one subscribed type URL.
type typeState struct {
	typeURL string

	// Fields below are written only by the goroutine that applies responses,
	// under resourceState.mu; that goroutine reads them without the lock.

	// resources is the last accepted set. A published map is never
	// modified again: a change builds a new map (the handler may keep it).
	resources map[string]*anypb.Any
	// versions holds the per-resource versions of the accepted set (delta
	// only), sent as initial_resource_versions on a new delta stream.
	versions map[string]string
	// version is the version_info (SotW) or system_version_info (delta)
	// of the last accepted response.
	version string
	// nonce is the nonce of the last ACKed response.
	nonce string
	// delivered reports whether the handler accepted a set of this type.
	delivered bool
	// rejected reports that the last SotW response (version_info
	// nackVersion) was NACKed.
	rejected    bool
	nackVersion string
	nackErr     string
	nackAt      time.Time
	acks, nacks uint64
}

// resourceState is the client's resource state for all subscribed types.
// apply* run on one goroutine at a time; snapshot is safe for concurrent use.
type resourceState struct {
	now   func() time.Time
	order []*typeState
	mu    sync.Mutex // guards the fields of each typeState against snapshot
	types map[string]*typeState
}

func newResourceState(typeURLs []string, now func() time.Time) *resourceState {
	s := &resourceState{now: now, types: make(map[string]*typeState, len(typeURLs))}
	for _, t := range typeURLs {
		ts := &typeState{typeURL: t, resources: map[string]*anypb.Any{}, versions: map[string]string{}}
		s.order = append(s.order, ts)
		s.types[t] = ts
	}
	return s
}

// errDetail turns a refusal into the error_detail of a NACK.
func errDetail(err error) *rpcstatus.Status {
	return &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: err.Error()}
}

// applyDelta merges an incremental response into a copy of its type's set,
// hands the result to h and returns the ACK or NACK to send. It never
// panics on malformed input: anything it cannot apply is NACKed.
func (s *resourceState) applyDelta(resp *discoveryv3.DeltaDiscoveryResponse, h Handler) *discoveryv3.DeltaDiscoveryRequest {
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
	ts := s.types[resp.GetTypeUrl()]
	if ts == nil {
		req.ErrorDetail = errDetail(fmt.Errorf("type %q is not subscribed", resp.GetTypeUrl()))
		return req
	}
	next, changed, err := mergeDelta(ts, resp)
	if err == nil && (changed || !ts.delivered) {
		err = callHandler(h, ts.typeURL, next)
	}
	if err != nil {
		s.nack(ts, err, false, "")
		req.ErrorDetail = errDetail(err)
		return req
	}

	s.mu.Lock()
	if changed || !ts.delivered {
		ts.resources = next
	}
	for _, r := range resp.GetResources() {
		ts.versions[r.GetName()] = r.GetVersion()
	}
	for _, name := range resp.GetRemovedResources() {
		delete(ts.versions, name)
	}
	ts.delivered = true
	ts.version = resp.GetSystemVersionInfo()
	ts.nonce = resp.GetNonce()
	ts.acks++
	s.mu.Unlock()
	return req
}

// mergeDelta returns the type's set with resp applied, and whether resp
// changed anything. The current set is left untouched.
func mergeDelta(ts *typeState, resp *discoveryv3.DeltaDiscoveryResponse) (map[string]*anypb.Any, bool, error) {
	added, removed := resp.GetResources(), resp.GetRemovedResources()
	if len(added) == 0 && len(removed) == 0 {
		return ts.resources, false, nil
	}
	// names guards against a name added twice, or added and removed, in
	// one response; a single added resource needs no check.
	var names map[string]struct{}
	if len(added) > 1 || (len(added) == 1 && len(removed) > 0) {
		names = make(map[string]struct{}, len(added))
	}
	next := maps.Clone(ts.resources) // copies the table without rehashing
	if next == nil {
		next = make(map[string]*anypb.Any, len(added))
	}
	for i, r := range added {
		name := r.GetName()
		if name == "" {
			return nil, false, fmt.Errorf("resource %d: empty name", i)
		}
		body := r.GetResource()
		if body == nil {
			return nil, false, fmt.Errorf("resource %q: no resource body", name)
		}
		if body.GetTypeUrl() != ts.typeURL {
			return nil, false, fmt.Errorf("resource %q: type %q, want %q", name, body.GetTypeUrl(), ts.typeURL)
		}
		if names != nil {
			if _, dup := names[name]; dup {
				return nil, false, fmt.Errorf("duplicate resource %q", name)
			}
			names[name] = struct{}{}
		}
		next[name] = body
	}
	for _, name := range removed {
		if _, both := names[name]; both {
			return nil, false, fmt.Errorf("resource %q is both updated and removed", name)
		}
		delete(next, name)
	}
	return next, true, nil
}

// applySotW replaces its type's set with a state-of-the-world response,
// hands it to h and returns the ACK or NACK to send. A NACK carries the
// last accepted version_info. A response repeating a version that was just
// NACKed is NACKed again without calling h (servers that resend a rejected
// version until it changes would otherwise rebuild the config each time).
func (s *resourceState) applySotW(resp *discoveryv3.DiscoveryResponse, h Handler) *discoveryv3.DiscoveryRequest {
	req := &discoveryv3.DiscoveryRequest{TypeUrl: resp.GetTypeUrl(), ResponseNonce: resp.GetNonce()}
	ts := s.types[resp.GetTypeUrl()]
	if ts == nil {
		req.ErrorDetail = errDetail(fmt.Errorf("type %q is not subscribed", resp.GetTypeUrl()))
		return req
	}
	req.VersionInfo = ts.version
	if ts.rejected && ts.nackVersion == resp.GetVersionInfo() {
		err := errors.New(ts.nackErr)
		s.nack(ts, err, true, resp.GetVersionInfo())
		req.ErrorDetail = errDetail(err)
		return req
	}
	next, err := decodeSotW(ts.typeURL, resp.GetResources())
	if err == nil {
		err = callHandler(h, ts.typeURL, next)
	}
	if err != nil {
		s.nack(ts, err, true, resp.GetVersionInfo())
		req.ErrorDetail = errDetail(err)
		return req
	}
	s.mu.Lock()
	ts.resources = next
	ts.delivered = true
	ts.version = resp.GetVersionInfo()
	ts.nonce = resp.GetNonce()
	ts.rejected = false
	ts.acks++
	s.mu.Unlock()
	req.VersionInfo = ts.version
	return req
}

// decodeSotW keys the resources of a state-of-the-world response by name.
func decodeSotW(typeURL string, rs []*anypb.Any) (map[string]*anypb.Any, error) {
	next := make(map[string]*anypb.Any, len(rs))
	for i, body := range rs {
		name, body, err := sotwResource(body)
		if err != nil {
			return nil, fmt.Errorf("resource %d: %w", i, err)
		}
		if body.GetTypeUrl() != typeURL {
			return nil, fmt.Errorf("resource %q: type %q, want %q", name, body.GetTypeUrl(), typeURL)
		}
		if _, dup := next[name]; dup {
			return nil, fmt.Errorf("duplicate resource %q", name)
		}
		next[name] = body
	}
	return next, nil
}

// sotwResource returns the name and the body of one SotW resource, unwrapping
// an envoy.service.discovery.v3.Resource wrapper.
func sotwResource(a *anypb.Any) (string, *anypb.Any, error) {
	if a == nil {
		return "", nil, errors.New("empty resource")
	}
	if a.GetTypeUrl() == wrappedResourceType {
		var w discoveryv3.Resource
		if err := proto.Unmarshal(a.GetValue(), &w); err != nil {
			return "", nil, fmt.Errorf("decode wrapped resource: %w", err)
		}
		if w.GetResource() == nil {
			return "", nil, fmt.Errorf("wrapped resource %q: no resource body", w.GetName())
		}
		if w.GetName() != "" {
			return w.GetName(), w.GetResource(), nil
		}
		a = w.GetResource()
	}
	name, err := resourceName(a.GetValue())
	if err != nil {
		return "", nil, err
	}
	return name, a, nil
}

// resourceName reads a resource's name without decoding the whole message:
// every xDS resource type (Listener, RouteConfiguration, Cluster,
// ClusterLoadAssignment.cluster_name, Secret, VirtualHost, ...) keeps its name
// in field 1 as a string.
func resourceName(b []byte) (string, error) {
	name := ""
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", fmt.Errorf("read name: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return "", fmt.Errorf("read name: %w", protowire.ParseError(m))
			}
			name = string(v) // the last occurrence wins, as in proto decoding
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return "", fmt.Errorf("read name: %w", protowire.ParseError(m))
		}
		b = b[m:]
	}
	if name == "" {
		return "", errors.New("resource has no name")
	}
	return name, nil
}

// callHandler calls h, turning a panic into a refusal so that a bad update
// cannot take the client down.
func callHandler(h Handler, typeURL string, set map[string]*anypb.Any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return h.Update(typeURL, set)
}

// nack records a refusal. sotw marks a state-of-the-world response whose
// version_info was version.
func (s *resourceState) nack(ts *typeState, err error, sotw bool, version string) {
	s.mu.Lock()
	ts.rejected = sotw
	ts.nackVersion = version
	ts.nackErr = err.Error()
	ts.nackAt = s.now()
	ts.nacks++
	s.mu.Unlock()
}

// deltaSubscriptions returns the first requests of a new delta stream, one
// per type in subscription order, with the versions held so the server can
// skip unchanged resources.
func (s *resourceState) deltaSubscriptions() []*discoveryv3.DeltaDiscoveryRequest {
	reqs := make([]*discoveryv3.DeltaDiscoveryRequest, 0, len(s.order))
	for _, ts := range s.order {
		req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: ts.typeURL}
		if len(ts.versions) > 0 {
			req.InitialResourceVersions = maps.Clone(ts.versions)
		}
		reqs = append(reqs, req)
	}
	return reqs
}

// sotwSubscriptions returns the first requests of a new state-of-the-world
// stream. They carry no version_info: a server whose version counter
// restarted could otherwise take the client's old version for its own and
// never send its set.
func (s *resourceState) sotwSubscriptions() []*discoveryv3.DiscoveryRequest {
	reqs := make([]*discoveryv3.DiscoveryRequest, 0, len(s.order))
	for _, ts := range s.order {
		reqs = append(reqs, &discoveryv3.DiscoveryRequest{TypeUrl: ts.typeURL})
	}
	return reqs
}

// snapshot returns the per-type status in subscription order.
func (s *resourceState) snapshot() []TypeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TypeStatus, 0, len(s.order))
	for _, ts := range s.order {
		out = append(out, TypeStatus{
			TypeURL:    ts.typeURL,
			Version:    ts.version,
			Nonce:      ts.nonce,
			Resources:  len(ts.resources),
			Received:   ts.delivered,
			ACKs:       ts.acks,
			NACKs:      ts.nacks,
			LastNACK:   ts.nackErr,
			LastNACKAt: ts.nackAt,
		})
	}
	return out
}
