// Package lb holds the load-balancing policies of the weft sidecar, in
// grpc-go's shape: a Policy builds an immutable Picker from the current member
// list on every update; Pick never blocks and never allocates. Per-endpoint
// load state (Load) lives outside the pickers, in objects that survive
// updates.
//
// Every policy first applies Envoy's priority and locality rules (plan.go):
// healthy share per priority with overprovisioning factor 1.4, spill-over to
// lower priorities, the panic threshold, and locality weights. The policy then
// chooses among the members of the resulting groups.
package lb

import (
	"errors"

	"github.com/cespare/xxhash/v2"
)

// ErrNoEndpoint is returned by Pick when no member may receive traffic.
var ErrNoEndpoint = errors.New("no healthy endpoint")

// Member is one endpoint as a picker sees it. Members are values copied into
// the picker at Build; the Load they point to is shared and live.
type Member struct {
	Load           *Load  // in-flight count and latency estimate; nil only for policies that ignore load
	Weight         uint32 // load_balancing_weight; 0 means 1
	Priority       uint32 // Envoy priority level, 0 highest
	Locality       string // "region/zone/subzone"
	LocalityWeight uint32 // weight of the member's locality; 0: locality weighting off
	Healthy        bool
	Key            string // stable identity for hashing: the address "ip:port"
}

// PickInfo is what a picker may use from the request.
type PickInfo struct {
	// Hash is the request hash computed by the caller from the route's hash
	// policy (HashString, HashBytes, CombineHash); only hashing policies use
	// it. Without HasHash they pick as if with a random hash (Envoy).
	Hash    uint64
	HasHash bool
}

// Picker chooses a member for one request. Pickers are immutable after Build
// and safe for concurrent use; Pick never blocks and does not allocate.
type Picker interface {
	// Pick returns an index into the members given to Build, or
	// ErrNoEndpoint.
	Pick(PickInfo) (int, error)
}

// Policy builds pickers. Implementations are immutable values, safe for
// concurrent use.
type Policy interface {
	// Build returns a picker over members. It does not keep members; it
	// may precompute tables (rings, schedules). members must not change
	// while Build runs.
	Build(members []Member) Picker
	// Name is the policy's short name ("round_robin", "peak_ewma", ...).
	Name() string
}

// HashString returns the hash of s used for consistent hashing (xxHash64,
// as Envoy).
func HashString(s string) uint64 { return xxhash.Sum64String(s) }

// HashBytes returns the hash of b used for consistent hashing (xxHash64).
func HashBytes(b []byte) uint64 { return xxhash.Sum64(b) }

// CombineHash folds the hash of one more hash-policy element into h the way
// Envoy combines several hash policies of a route: rotate left by one, xor.
func CombineHash(h, next uint64) uint64 { return (h<<1 | h>>63) ^ next }

// noPicker is the picker of an empty or all-unavailable member set.
type noPicker struct{}

func (noPicker) Pick(PickInfo) (int, error) { return -1, ErrNoEndpoint }
