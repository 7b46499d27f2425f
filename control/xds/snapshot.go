package xds

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/control/registry"
)

// Resources is the complete configuration of one proxy.
type Resources struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Secrets are SDS secrets: the trust bundle ("ROOTCA"). A proxy's own
	// certificate never travels here (certs.go).
	Secrets []*tlsv3.Secret
	// Services lists the registry services the configuration was computed
	// from: a change to one of them recomputes this proxy, a change to any
	// other does not. A key named AnyService stands for every service of
	// its namespace (label selectors).
	Services []registry.ServiceKey
}

// AnyService as the Name of a dependency matches every service of the
// namespace.
const AnyService = "*"

// Translator computes the configuration of one proxy. It is called from
// several goroutines at once (one per connecting stream, plus the
// recompute loop) and must be safe for concurrent use.
type Translator func(ProxyInfo) (Resources, error)

// typeURLs are the resource types the server serves, in ADS order.
var typeURLs = []string{resource.SecretType, resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType}

// snapshot is an immutable cache.ResourceSnapshot whose per-resource
// versions are content hashes computed once when it is built, and whose
// per-type version is a hash of those: a type whose resources did not change
// keeps its version, so state-of-the-world streams are not resent it and
// delta streams get only the resources whose hash changed.
type snapshot struct {
	items    [types.UnknownType]map[string]types.ResourceWithTTL
	plain    [types.UnknownType]map[string]types.Resource
	versions [types.UnknownType]string
	hashes   map[string]map[string]string // type URL → name → version
}

var _ cache.ResourceSnapshot = (*snapshot)(nil)

func newSnapshot(res Resources) (*snapshot, error) {
	s := &snapshot{hashes: make(map[string]map[string]string, len(typeURLs))}
	add := func(typeURL string, msgs []types.Resource) error {
		rt := cache.GetResponseType(typeURL)
		items := make(map[string]types.ResourceWithTTL, len(msgs))
		plain := make(map[string]types.Resource, len(msgs))
		hashes := make(map[string]string, len(msgs))
		names := make([]string, 0, len(msgs))
		for _, m := range msgs {
			name := cache.GetResourceName(m)
			if name == "" {
				return fmt.Errorf("%s: resource without a name", shortType(typeURL))
			}
			if _, dup := items[name]; dup {
				return fmt.Errorf("%s %q: duplicate name", shortType(typeURL), name)
			}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				return fmt.Errorf("%s %q: marshal: %w", shortType(typeURL), name, err)
			}
			items[name] = types.ResourceWithTTL{Resource: m}
			plain[name] = m
			hashes[name] = strconv.FormatUint(xxhash.Sum64(b), 16)
			names = append(names, name)
		}
		slices.Sort(names)
		h := xxhash.New()
		var n [8]byte
		for _, name := range names {
			binary.LittleEndian.PutUint64(n[:], uint64(len(name)))
			_, _ = h.Write(n[:])
			_, _ = h.WriteString(name)
			_, _ = h.WriteString(hashes[name])
		}
		s.items[rt], s.plain[rt], s.hashes[typeURL] = items, plain, hashes
		s.versions[rt] = strconv.FormatUint(h.Sum64(), 16)
		return nil
	}
	for _, step := range []struct {
		typeURL string
		msgs    []types.Resource
	}{
		{resource.SecretType, asResources(res.Secrets)},
		{resource.ClusterType, asResources(res.Clusters)},
		{resource.EndpointType, asResources(res.Endpoints)},
		{resource.ListenerType, asResources(res.Listeners)},
		{resource.RouteType, asResources(res.Routes)},
	} {
		if err := add(step.typeURL, step.msgs); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func asResources[T types.Resource](in []T) []types.Resource {
	out := make([]types.Resource, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// sameAs reports whether every type version of s equals that of o.
func (s *snapshot) sameAs(o *snapshot) bool {
	return o != nil && s.versions == o.versions
}

// changedTypes returns the type URLs whose version differs from o.
func (s *snapshot) changedTypes(o *snapshot) []string {
	var out []string
	for _, t := range typeURLs {
		rt := cache.GetResponseType(t)
		if o == nil || s.versions[rt] != o.versions[rt] {
			out = append(out, t)
		}
	}
	return out
}

func (s *snapshot) GetVersion(typeURL string) string {
	if rt := cache.GetResponseType(typeURL); rt != types.UnknownType {
		return s.versions[rt]
	}
	return ""
}

func (s *snapshot) GetResourcesAndTTL(typeURL string) map[string]types.ResourceWithTTL {
	if rt := cache.GetResponseType(typeURL); rt != types.UnknownType {
		return s.items[rt]
	}
	return nil
}

func (s *snapshot) GetResources(typeURL string) map[string]types.Resource {
	if rt := cache.GetResponseType(typeURL); rt != types.UnknownType {
		return s.plain[rt]
	}
	return nil
}

// ConstructVersionMap is a no-op: the versions were computed in newSnapshot.
func (s *snapshot) ConstructVersionMap() error { return nil }

func (s *snapshot) GetVersionMap(typeURL string) map[string]string { return s.hashes[typeURL] }

// shortType returns the message name of a type URL ("Cluster").
func shortType(typeURL string) string {
	for i := len(typeURL) - 1; i >= 0; i-- {
		if typeURL[i] == '.' {
			return typeURL[i+1:]
		}
	}
	return typeURL
}
