package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/weft-mesh/weft/control/resource"
)

// FileName is the name of the state file inside the state directory.
const FileName = "weft.db"

// Format of the state file: the meta bucket holds formatKey = formatMarker
// and versionKey = the format version; objects live in the objects bucket
// under "Kind\x00namespace\x00name" as the JSON document of the object.
const (
	formatMarker  = "weft-state"
	FormatVersion = 1
)

var (
	metaBucket    = []byte("meta")
	objectsBucket = []byte("objects")
	formatKey     = []byte("format")
	versionKey    = []byte("version")
	revisionKey   = []byte("revision")
)

// Options tune a Bolt store. The zero value is usable.
type Options struct {
	// LockTimeout is how long Open waits for another process to release the
	// state file. Default 500ms.
	LockTimeout time.Duration
	// Now is the clock for creation timestamps. Default time.Now.
	Now func() time.Time
	// WatchQueue is the number of undelivered events a watcher may have
	// before it gets Resync. Default 1024.
	WatchQueue int
	// History is the number of recent events kept to serve
	// Watch(ctx, fromRevision > 0). Default 4096.
	History int
	// Logger receives operational messages. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 500 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.WatchQueue <= 0 {
		o.WatchQueue = 1024
	}
	if o.History <= 0 {
		o.History = 4096
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "store")
}

// Bolt is the embedded Store: one bbolt file in the state directory, with
// the hashmap freelist and an fsync on every commit. It is safe for
// concurrent use. Only one process may open a state directory at a time.
type Bolt struct {
	db   *bolt.DB
	path string
	opts Options

	rev atomic.Int64

	// mu serializes writes with watcher registration and event fan-out, so
	// that a watcher's snapshot and its first live event never overlap or
	// leave a gap.
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	history  []Event
	floor    int64 // changes up to floor are no longer in history
	closed   bool
	closing  chan struct{}
	wg       sync.WaitGroup
}

var _ Store = (*Bolt)(nil)

// Open opens (or creates) the state file in dir. It fails with a clear error
// when another process holds the directory, when the file is not a bbolt
// file, is a bbolt file of another program, is corrupt, or was written by a
// newer weft; it never resets an existing file.
func Open(dir string, opts Options) (s *Bolt, err error) {
	opts.setDefaults()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: create state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	defer func() {
		// bbolt panics on some kinds of page corruption.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("open store: state file %s is corrupt (%v); it was left untouched: restore a backup or move it away", path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      opts.LockTimeout,
		FreelistType: bolt.FreelistMapType,
		NoSync:       false,
	})
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, fmt.Errorf("open store: state directory %s is in use by another process (could not lock %s within %s)", dir, path, opts.LockTimeout)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
			return nil, fmt.Errorf("open store: %s is not a valid weft state file (%w); it was left untouched: restore a backup or move it away", path, err)
		}
		return nil, fmt.Errorf("open store: %s: %w", path, err)
	}
	s = &Bolt{db: db, path: path, opts: opts, watchers: map[*watcher]struct{}{}, closing: make(chan struct{})}
	rev, err := s.init()
	if err != nil {
		db.Close()
		return nil, err
	}
	s.rev.Store(rev)
	s.floor = rev
	return s, nil
}

// init checks (or writes, for a new file) the format marker and version,
// checks the file's consistency and returns the stored revision.
func (s *Bolt) init() (int64, error) {
	var rev int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if meta == nil {
			var names []string
			_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, strconv.Quote(string(name)))
				return nil
			})
			if len(names) > 0 {
				return fmt.Errorf("open store: %s is a bbolt database of another program (buckets %s, no weft meta bucket); it was left untouched", s.path, strings.Join(names, ", "))
			}
			var err error
			if meta, err = tx.CreateBucket(metaBucket); err != nil {
				return fmt.Errorf("open store: create meta bucket: %w", err)
			}
			if _, err := tx.CreateBucket(objectsBucket); err != nil {
				return fmt.Errorf("open store: create objects bucket: %w", err)
			}
			if err := meta.Put(formatKey, []byte(formatMarker)); err != nil {
				return fmt.Errorf("open store: %w", err)
			}
			if err := meta.Put(versionKey, []byte(strconv.Itoa(FormatVersion))); err != nil {
				return fmt.Errorf("open store: %w", err)
			}
			return meta.Put(revisionKey, encodeRev(0))
		}
		if f := meta.Get(formatKey); string(f) != formatMarker {
			return fmt.Errorf("open store: %s is a bbolt database of another program (format marker %q, want %q); it was left untouched", s.path, f, formatMarker)
		}
		v, err := strconv.Atoi(string(meta.Get(versionKey)))
		if err != nil {
			return fmt.Errorf("open store: %s: unreadable format version %q", s.path, meta.Get(versionKey))
		}
		if v > FormatVersion {
			return fmt.Errorf("open store: %s was written by a newer weft (state format %d, this binary reads up to %d); upgrade weft", s.path, v, FormatVersion)
		}
		if tx.Bucket(objectsBucket) == nil {
			return fmt.Errorf("open store: %s is damaged: the objects bucket is missing", s.path)
		}
		rb := meta.Get(revisionKey)
		if len(rb) != 8 {
			return fmt.Errorf("open store: %s is damaged: bad revision record", s.path)
		}
		rev = int64(binary.BigEndian.Uint64(rb))
		return nil
	})
	if err != nil {
		return 0, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
			if len(errs) >= 5 {
				break
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("open store: %s is corrupt: %w; it was left untouched: restore a backup or move it away", s.path, errors.Join(errs...))
		}
		return nil
	})
	return rev, err
}

func encodeRev(r int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(r))
	return b[:]
}

func objectKey(k resource.Key) []byte {
	return []byte(string(k.Kind) + "\x00" + k.Namespace + "\x00" + k.Name)
}

func listPrefix(kind resource.Kind, ns string) []byte {
	switch {
	case kind == "":
		return nil
	case ns == "":
		return []byte(string(kind) + "\x00")
	}
	return []byte(string(kind) + "\x00" + ns + "\x00")
}

func decodeStored(b []byte) (resource.Object, error) {
	var o resource.Object
	if err := o.UnmarshalJSON(b); err != nil {
		return o, fmt.Errorf("stored object: %w", err)
	}
	return o, nil
}

// Path returns the state file's path.
func (s *Bolt) Path() string { return s.path }

// Revision returns the current revision.
func (s *Bolt) Revision() int64 { return s.rev.Load() }

// Get returns one object.
func (s *Bolt) Get(ctx context.Context, key resource.Key) (resource.Object, error) {
	if err := ctx.Err(); err != nil {
		return resource.Object{}, err
	}
	var o resource.Object
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(objectsBucket).Get(objectKey(key))
		if b == nil {
			return notFound(key)
		}
		var err error
		o, err = decodeStored(b)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return o, fmt.Errorf("get %s: %w", key, err)
	}
	return o, err
}

// List returns objects of kind (all kinds when empty) in namespace (all
// namespaces when empty), sorted by kind, namespace and name.
func (s *Bolt) List(ctx context.Context, kind resource.Kind, namespace string) ([]resource.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []resource.Object
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = listTx(tx, kind, namespace)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	return out, nil
}

func listTx(tx *bolt.Tx, kind resource.Kind, namespace string) ([]resource.Object, error) {
	var out []resource.Object
	prefix := listPrefix(kind, namespace)
	c := tx.Bucket(objectsBucket).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if kind == "" && namespace != "" {
			parts := bytes.SplitN(k, []byte{0}, 3)
			if len(parts) != 3 || string(parts[1]) != namespace {
				continue
			}
		}
		o, err := decodeStored(v)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// planned is the computed effect of an Apply on one object.
type planned struct {
	obj     resource.Object // as it will be stored
	outcome Outcome
}

// Apply stores objs in one transaction; see Store.Apply.
func (s *Bolt) Apply(ctx context.Context, objs []resource.Object, opts ApplyOptions) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Result{}, ErrClosed
	}
	rev := s.rev.Load() + 1
	now := s.opts.Now().UTC().Truncate(time.Second)
	var plan []planned
	// Plan in a read transaction first: an apply that changes nothing (or a
	// dry run) never opens a write transaction, so it costs no fsync.
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		plan, err = s.plan(tx, objs, rev, now)
		return err
	})
	if err == nil && !opts.DryRun && changed(plan) {
		err = s.db.Update(func(tx *bolt.Tx) error {
			var err error
			// Writers are serialized by s.mu, so this plan equals the one
			// above; computing it in the write transaction keeps it exact.
			if plan, err = s.plan(tx, objs, rev, now); err != nil {
				return err
			}
			b := tx.Bucket(objectsBucket)
			for _, p := range plan {
				if p.outcome == OutcomeUnchanged {
					continue
				}
				data, err := p.obj.MarshalJSON()
				if err != nil {
					return err
				}
				if err := b.Put(objectKey(p.obj.Key()), data); err != nil {
					return fmt.Errorf("put %s: %w", p.obj.Key(), err)
				}
			}
			return tx.Bucket(metaBucket).Put(revisionKey, encodeRev(rev))
		})
	}
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return Result{}, err
		}
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	res := Result{Revision: s.rev.Load()}
	for _, p := range plan {
		res.Objects = append(res.Objects, ObjectResult{Key: p.obj.Key(), Outcome: p.outcome, ResourceVersion: p.obj.ResourceVersion, Generation: p.obj.Generation})
	}
	if opts.DryRun || !changed(plan) {
		return res, nil
	}
	res.Revision = rev
	s.rev.Store(rev)
	events := make([]Event, 0, len(plan))
	for _, p := range plan {
		switch p.outcome {
		case OutcomeCreated:
			events = append(events, Event{Type: Added, Object: p.obj, Revision: rev})
		case OutcomeConfigured:
			events = append(events, Event{Type: Modified, Object: p.obj, Revision: rev})
		}
	}
	s.publish(events)
	return res, nil
}

func changed(plan []planned) bool {
	for _, p := range plan {
		if p.outcome != OutcomeUnchanged {
			return true
		}
	}
	return false
}

// plan computes what Apply would do, checking resourceVersions.
func (s *Bolt) plan(tx *bolt.Tx, objs []resource.Object, rev int64, now time.Time) ([]planned, error) {
	b := tx.Bucket(objectsBucket)
	out := make([]planned, 0, len(objs))
	var conflicts []error
	revStr := strconv.FormatInt(rev, 10)
	for i := range objs {
		in := objs[i]
		key := in.Key()
		var old *resource.Object
		if data := b.Get(objectKey(key)); data != nil {
			o, err := decodeStored(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			old = &o
		}
		if in.ResourceVersion != "" {
			have := ""
			if old != nil {
				have = old.ResourceVersion
			}
			if have != in.ResourceVersion {
				conflicts = append(conflicts, &ConflictError{Key: key, Want: in.ResourceVersion, Have: have})
				continue
			}
		}
		next := in
		next.Raw, next.Source, next.Index = nil, "", 0
		if old == nil {
			next.ResourceVersion, next.Generation, next.CreationTimestamp = revStr, 1, now
			out = append(out, planned{obj: next, outcome: OutcomeCreated})
			continue
		}
		same, err := resource.SameContent(old, &next)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if same {
			out = append(out, planned{obj: *old, outcome: OutcomeUnchanged})
			continue
		}
		sameSpec, err := resource.SameSpec(old, &next)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		next.ResourceVersion, next.Generation, next.CreationTimestamp = revStr, old.Generation, old.CreationTimestamp
		if !sameSpec {
			next.Generation++
		}
		out = append(out, planned{obj: next, outcome: OutcomeConfigured})
	}
	if len(conflicts) > 0 {
		return nil, errors.Join(conflicts...)
	}
	return out, nil
}

// Delete removes keys in one transaction; see Store.Delete.
func (s *Bolt) Delete(ctx context.Context, keys []resource.Key) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Result{}, ErrClosed
	}
	rev := s.rev.Load() + 1
	res := Result{Revision: s.rev.Load()}
	var events []Event
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(objectsBucket)
		res.Objects, events = res.Objects[:0], events[:0]
		for _, k := range keys {
			data := b.Get(objectKey(k))
			if data == nil {
				res.Objects = append(res.Objects, ObjectResult{Key: k, Outcome: OutcomeNotFound})
				continue
			}
			o, err := decodeStored(data)
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			if err := b.Delete(objectKey(k)); err != nil {
				return fmt.Errorf("delete %s: %w", k, err)
			}
			res.Objects = append(res.Objects, ObjectResult{Key: k, Outcome: OutcomeDeleted})
			events = append(events, Event{Type: Deleted, Object: o, Revision: rev})
		}
		if len(events) == 0 {
			return nil
		}
		return tx.Bucket(metaBucket).Put(revisionKey, encodeRev(rev))
	})
	if err != nil {
		return Result{}, fmt.Errorf("delete: %w", err)
	}
	if len(events) > 0 {
		res.Revision = rev
		s.rev.Store(rev)
		s.publish(events)
	}
	return res, nil
}

// Close closes every watcher and the file.
func (s *Bolt) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}
