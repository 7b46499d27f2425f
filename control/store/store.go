// Package store keeps the control plane's resources: a small Store interface
// (so that an etcd store and a Kubernetes source can come later without
// touching callers) and its embedded implementation on one bbolt file.
//
// Every write is one transaction: an Apply or Delete of many objects is
// stored wholly or not at all. The store has one revision counter that every
// changing transaction increments; an object's ResourceVersion is the
// revision of its last write. Watchers receive the changes in revision order.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/weft-mesh/weft/control/resource"
)

// Store holds resources. Implementations are safe for concurrent use.
type Store interface {
	// List returns the objects of kind in namespace, sorted by namespace
	// and name. An empty kind means every kind, an empty namespace every
	// namespace.
	List(ctx context.Context, kind resource.Kind, namespace string) ([]resource.Object, error)

	// Get returns one object, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key resource.Key) (resource.Object, error)

	// Apply creates or updates objs in one transaction, all or nothing.
	// An object with a non-empty ResourceVersion must match the stored one
	// (optimistic concurrency), else Apply fails with *ConflictError for
	// every mismatch and stores nothing. Objects equal to the stored ones
	// (spec, labels, annotations) are not rewritten. The store sets
	// ResourceVersion, Generation (incremented when the spec changes) and
	// CreationTimestamp. Callers validate objs first (resource.Validate).
	Apply(ctx context.Context, objs []resource.Object, opts ApplyOptions) (Result, error)

	// Delete removes the objects in one transaction. Keys that do not exist
	// are reported with outcome OutcomeNotFound and are not an error.
	Delete(ctx context.Context, keys []resource.Key) (Result, error)

	// Watch streams changes after fromRevision. With fromRevision 0 it
	// first sends every stored object as Added, then Synced, then the
	// changes. With fromRevision > 0 it replays the changes after that
	// revision when it still has them, else it sends Resync at once. A
	// watcher that does not keep up gets Resync and its channel is closed:
	// the consumer must Watch(ctx, 0) again and rebuild its view. The
	// channel is closed when ctx is done or the store is closed.
	Watch(ctx context.Context, fromRevision int64) (<-chan Event, error)

	// Revision is the store's current revision (0 for an empty new store).
	Revision() int64

	// Close releases the store; watchers' channels are closed.
	Close() error
}

// ApplyOptions modify an Apply.
type ApplyOptions struct {
	// DryRun computes the outcome (and conflicts) without storing anything.
	DryRun bool
}

// Outcome is what happened to one object of an Apply or Delete.
type Outcome string

// Outcomes.
const (
	OutcomeCreated    Outcome = "created"
	OutcomeConfigured Outcome = "configured"
	OutcomeUnchanged  Outcome = "unchanged"
	OutcomeDeleted    Outcome = "deleted"
	OutcomeNotFound   Outcome = "not found"
)

// ObjectResult is the outcome for one object, in input order.
type ObjectResult struct {
	Key             resource.Key
	Outcome         Outcome
	ResourceVersion string // after the operation; empty when deleted or not found
	Generation      int64
}

// Result is the outcome of an Apply or Delete.
type Result struct {
	// Revision is the store revision after the operation (unchanged when
	// nothing changed or on a dry run).
	Revision int64
	Objects  []ObjectResult
}

// EventType says what an Event reports.
type EventType int

// Event types.
const (
	// Added: the object was created (or is part of the initial state).
	Added EventType = iota + 1
	// Modified: the object changed (spec, labels or annotations).
	Modified
	// Deleted: the object was removed; Object is its last stored state.
	Deleted
	// Synced: the initial state of a Watch(ctx, 0) has been sent.
	Synced
	// Resync: the watcher lost events; it must list again. The channel is
	// closed after it.
	Resync
)

// String returns the event type's name.
func (t EventType) String() string {
	switch t {
	case Added:
		return "Added"
	case Modified:
		return "Modified"
	case Deleted:
		return "Deleted"
	case Synced:
		return "Synced"
	case Resync:
		return "Resync"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change. Objects in events are shared between watchers and
// must not be modified.
type Event struct {
	Type     EventType
	Object   resource.Object // zero for Synced and Resync
	Revision int64           // revision of the change (for Synced: of the snapshot)
}

// Errors.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: an optimistic-concurrency check failed.
	ErrConflict = errors.New("conflict")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store closed")
)

// ConflictError reports an object whose ResourceVersion did not match.
type ConflictError struct {
	Key resource.Key
	// Want is the ResourceVersion the caller sent; Have the stored one
	// (empty when the object does not exist).
	Want, Have string
}

// Error describes the conflict.
func (e *ConflictError) Error() string {
	if e.Have == "" {
		return fmt.Sprintf("conflict: %s has resourceVersion %s in the request but does not exist; remove resourceVersion to create it", e.Key, e.Want)
	}
	return fmt.Sprintf("conflict: %s was modified (resourceVersion %s in the request, %s stored); get it again and reapply your change", e.Key, e.Want, e.Have)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// notFound returns an error wrapping ErrNotFound for key.
func notFound(key resource.Key) error {
	ki, _ := resource.InfoFor(key.Kind)
	plural := ki.Plural
	if plural == "" {
		plural = strings.ToLower(string(key.Kind))
	}
	return fmt.Errorf("%s %q in namespace %q: %w", plural, key.Name, key.Namespace, ErrNotFound)
}
