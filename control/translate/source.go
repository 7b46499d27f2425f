package translate

import (
	"sync/atomic"

	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
)

// Source holds the current Resources for the xDS server's translator. Set
// swaps them when the store changes (then call xds.Server.ConfigChanged).
// It is safe for concurrent use.
type Source struct {
	cur  atomic.Pointer[Resources]
	mesh atomic.Pointer[MeshConfig]
}

// SetMesh makes m the mesh-wide settings (trust bundle after a CA
// rotation, default mTLS mode).
func (s *Source) SetMesh(m MeshConfig) { s.mesh.Store(&m) }

// Mesh returns the mesh-wide settings (zero before SetMesh).
func (s *Source) Mesh() MeshConfig {
	if m := s.mesh.Load(); m != nil {
		return *m
	}
	return MeshConfig{}
}

// Set indexes objs and makes them current. The objects must not be
// modified afterwards.
func (s *Source) Set(objs []resource.Object) { s.cur.Store(Index(objs)) }

// Current returns the current Resources (empty before the first Set).
func (s *Source) Current() *Resources {
	if r := s.cur.Load(); r != nil {
		return r
	}
	return Index(nil)
}

// Translator returns the xds.Translator that translates each proxy with
// the current resources and the registry view.
func (s *Source) Translator(view View) xds.Translator {
	return func(p xds.ProxyInfo) (xds.Resources, error) {
		return Translate(Input{Proxy: p, Resources: s.Current(), Registry: view, Mesh: s.Mesh()})
	}
}
