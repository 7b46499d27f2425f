// Package registry holds the service instances a control plane knows about:
// the sidecars' own instances (one session per connected sidecar), endpoints
// an application registers through its sidecar, and static entries declared
// in resources. Liveness is the session: when a sidecar's stream drops its
// instances are removed after a grace period unless it reconnects. Every
// change bumps a global revision and is published to watchers as a delta.
//
// Memory is laid out for a million instances per replica: service keys are
// shared per service, and the per-workload attributes (labels, locality,
// identity, protocol) are interned once and referenced by pointer, so an
// instance costs its address plus a few words.
package registry

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultGrace is how long a closed session's instances survive.
const DefaultGrace = 10 * time.Second

// DefaultQueueSize is the default bound of a watcher's event queue.
const DefaultQueueSize = 1024

// ServiceKey names a service.
type ServiceKey struct {
	Namespace string
	Name      string
}

// String returns "namespace/name".
func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// Locality is where an instance runs.
type Locality struct {
	Region  string
	Zone    string
	SubZone string
}

// String returns "region/zone/subzone" without trailing empty parts.
func (l Locality) String() string {
	switch {
	case l.SubZone != "":
		return l.Region + "/" + l.Zone + "/" + l.SubZone
	case l.Zone != "":
		return l.Region + "/" + l.Zone
	default:
		return l.Region
	}
}

// ParseLocality parses "region[/zone[/subzone]]"; the empty string is the
// zero Locality.
func ParseLocality(s string) (Locality, error) {
	if s == "" {
		return Locality{}, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return Locality{}, fmt.Errorf("locality %q: want region/zone/subzone, got %d parts", s, len(parts))
	}
	for i, p := range parts {
		if p == "" {
			return Locality{}, fmt.Errorf("locality %q: part %d is empty", s, i+1)
		}
	}
	var l Locality
	l.Region = parts[0]
	if len(parts) > 1 {
		l.Zone = parts[1]
	}
	if len(parts) > 2 {
		l.SubZone = parts[2]
	}
	return l, nil
}

// Instance is one reachable endpoint of a service. Values returned by the
// registry share their Labels map with the registry: treat it as read-only.
type Instance struct {
	// Service is the service the instance belongs to. Required.
	Service ServiceKey
	// Addr is the address other proxies connect to. Required, port non-zero.
	Addr netip.AddrPort
	// Protocol is the service protocol (http, http2, grpc, tcp); may be empty.
	Protocol string
	// Labels are the workload's labels (version, ...). Read-only.
	Labels map[string]string
	// Locality is where the instance runs.
	Locality Locality
	// Identity is the instance's service account.
	Identity string
	// Workload is the name of the workload the instance belongs to (the
	// sidecar's node metadata); empty for static instances.
	Workload string
	// Unready marks an instance that must not receive traffic; the zero
	// value is ready.
	Unready bool
	// Weight is the load-balancing weight; 0 means the default of 1.
	Weight uint32
	// Source is set by the registry: "session/<id>" or "static/<source>".
	Source string
}

func (in Instance) validate() error {
	if in.Service.Name == "" {
		return errors.New("service name is empty")
	}
	if in.Service.Namespace == "" {
		return fmt.Errorf("service %q: namespace is empty", in.Service.Name)
	}
	if !in.Addr.Addr().IsValid() {
		return fmt.Errorf("service %s: address is not set", in.Service)
	}
	if in.Addr.Port() == 0 {
		return fmt.Errorf("service %s: address %s: port is 0", in.Service, in.Addr.Addr())
	}
	return nil
}

// Options configure a Registry. The zero value is usable.
type Options struct {
	// Grace is how long a closed session's instances are kept so that the
	// sidecar can reconnect. Default 10s.
	Grace time.Duration
	// Clock drives grace expiry. Default SystemClock.
	Clock Clock
	// QueueSize bounds each watcher's queue of undelivered events; on
	// overflow the queue is dropped and the watcher gets a resync.
	// Default 1024.
	QueueSize int
}

// Registry is the in-memory instance registry. It is safe for concurrent
// use; reads take a shared lock, mutations an exclusive one.
type Registry struct {
	grace     time.Duration
	clock     Clock
	queueSize int

	mu       sync.RWMutex
	rev      uint64
	count    int
	services map[ServiceKey]*service
	attrs    map[attrsKey]*attrs
	sessions map[string]*owner
	statics  map[string]*owner
	all      []*subscriber // WatchAll subscribers
	closed   bool
}

// New returns an empty registry.
func New(opts Options) *Registry {
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	return &Registry{
		grace:     opts.Grace,
		clock:     opts.Clock,
		queueSize: opts.QueueSize,
		services:  make(map[ServiceKey]*service),
		attrs:     make(map[attrsKey]*attrs),
		sessions:  make(map[string]*owner),
		statics:   make(map[string]*owner),
	}
}

// service holds the instances of one service, keyed by address.
type service struct {
	key       ServiceKey
	instances map[netip.AddrPort]*record
	rev       uint64
	watchers  []*subscriber
}

// attrsKey identifies an interned attribute set; labels is the canonical
// encoding of the label map.
type attrsKey struct {
	labels   string
	locality Locality
	identity string
	protocol string
	workload string
}

// attrs are the attributes most instances of a workload share. Interned and
// reference-counted under Registry.mu.
type attrs struct {
	key    attrsKey
	labels map[string]string
	refs   int
}

// owner is a session or a static source: who keeps a record alive.
type owner struct {
	source  string // "session/<id>" or "static/<id>"
	records []*record
	open    int    // open streams (sessions only)
	gen     uint64 // bumped on open and close; guards the grace timer
	timer   Timer
}

// record is one stored instance (80 bytes on 64-bit platforms).
type record struct {
	svc     *service
	addr    netip.AddrPort
	attrs   *attrs
	owner   *owner
	idx     int32 // position in owner.records
	weight  uint32
	unready bool
	extra   bool // registered with AddEndpoint, not the session's own instance
}

func (rec *record) instance() Instance {
	a := rec.attrs
	return Instance{
		Service:  rec.svc.key,
		Addr:     rec.addr,
		Protocol: a.key.protocol,
		Labels:   a.labels,
		Locality: a.key.locality,
		Identity: a.key.identity,
		Workload: a.key.workload,
		Unready:  rec.unready,
		Weight:   rec.weight,
		Source:   rec.owner.source,
	}
}

// batch collects the changes of one mutation; it is published at the end
// with one new revision.
type batch map[*service]*Event

func (b batch) add(svc *service, in Instance) {
	ev := b.event(svc)
	ev.Added = append(ev.Added, in)
}

func (b batch) remove(svc *service, in Instance) {
	ev := b.event(svc)
	ev.Removed = append(ev.Removed, in)
}

func (b batch) event(svc *service) *Event {
	ev := b[svc]
	if ev == nil {
		ev = &Event{Service: svc.key}
		b[svc] = ev
	}
	return ev
}

// OpenSession opens (or reopens) the session id with the sidecar's own
// instances. Reopening a session that is in its grace period cancels the
// expiry; own instances that did not change publish nothing. A session may be
// open on several streams at once; it closes when all have closed.
func (r *Registry) OpenSession(id string, own []Instance) error {
	if id == "" {
		return errors.New("open session: id is empty")
	}
	for i, in := range own {
		if err := in.validate(); err != nil {
			return fmt.Errorf("open session %q: instance %d: %w", id, i, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("open session: registry is closed")
	}
	o := r.sessions[id]
	if o == nil {
		o = &owner{source: "session/" + id}
		r.sessions[id] = o
	}
	if o.timer != nil {
		o.timer.Stop()
		o.timer = nil
	}
	o.open++
	o.gen++
	b := batch{}
	keep := make(map[recordKey]bool, len(own))
	for _, in := range own {
		keep[recordKey{in.Service, in.Addr}] = true
	}
	for _, rec := range slices.Clone(o.records) {
		if !rec.extra && !keep[recordKey{rec.svc.key, rec.addr}] {
			r.del(b, rec)
		}
	}
	for _, in := range own {
		r.put(b, o, in, false)
	}
	r.publish(b)
	return nil
}

type recordKey struct {
	svc  ServiceKey
	addr netip.AddrPort
}

// CloseSession marks one stream of the session closed. When no stream is
// left, the session's instances are removed after the grace period unless the
// session reopens first. Closing an unknown session does nothing.
func (r *Registry) CloseSession(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.sessions[id]
	if o == nil || o.open == 0 {
		return
	}
	o.open--
	if o.open > 0 {
		return
	}
	o.gen++
	gen := o.gen
	o.timer = r.clock.AfterFunc(r.grace, func() { r.expire(o, gen) })
}

// expire runs on the clock's timer goroutine.
func (r *Registry) expire(o *owner, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := o.id()
	if o.gen != gen || o.open > 0 || r.sessions[id] != o {
		return // reopened meanwhile
	}
	b := batch{}
	for len(o.records) > 0 {
		r.del(b, o.records[len(o.records)-1])
	}
	delete(r.sessions, id)
	r.publish(b)
}

// AddEndpoint registers an extra endpoint that lives as long as the session
// (an application registering through its sidecar). Adding an existing
// address replaces it.
func (r *Registry) AddEndpoint(sessionID string, in Instance) error {
	if err := in.validate(); err != nil {
		return fmt.Errorf("session %q: add endpoint: %w", sessionID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.sessions[sessionID]
	if o == nil {
		return fmt.Errorf("session %q: add endpoint: no such session", sessionID)
	}
	b := batch{}
	r.put(b, o, in, true)
	r.publish(b)
	return nil
}

// RemoveEndpoint removes an endpoint the session registered with
// AddEndpoint; only Service and Addr of in are used.
func (r *Registry) RemoveEndpoint(sessionID string, in Instance) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.sessions[sessionID]
	if o == nil {
		return fmt.Errorf("session %q: remove endpoint: no such session", sessionID)
	}
	svc := r.services[in.Service]
	var rec *record
	if svc != nil {
		rec = svc.instances[in.Addr]
	}
	if rec == nil || rec.owner != o || !rec.extra {
		return fmt.Errorf("session %q: remove endpoint %s %s: not registered by this session", sessionID, in.Service, in.Addr)
	}
	b := batch{}
	r.del(b, rec)
	r.publish(b)
	return nil
}

// SetStatic replaces the instances declared by source (a resource, for
// example "ServiceEntry/ns/name"). An empty list removes them all.
func (r *Registry) SetStatic(source string, ins []Instance) error {
	if source == "" {
		return errors.New("set static: source is empty")
	}
	for i, in := range ins {
		if err := in.validate(); err != nil {
			return fmt.Errorf("set static %q: instance %d: %w", source, i, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.statics[source]
	if o == nil {
		if len(ins) == 0 {
			return nil
		}
		o = &owner{source: "static/" + source}
		r.statics[source] = o
	}
	b := batch{}
	keep := make(map[recordKey]bool, len(ins))
	for _, in := range ins {
		keep[recordKey{in.Service, in.Addr}] = true
	}
	for _, rec := range slices.Clone(o.records) {
		if !keep[recordKey{rec.svc.key, rec.addr}] {
			r.del(b, rec)
		}
	}
	for _, in := range ins {
		r.put(b, o, in, false)
	}
	if len(o.records) == 0 {
		delete(r.statics, source)
	}
	r.publish(b)
	return nil
}

// put inserts or updates in, owned by o. Caller holds r.mu.
func (r *Registry) put(b batch, o *owner, in Instance, extra bool) {
	svc := r.services[in.Service]
	if svc == nil {
		svc = &service{key: in.Service, instances: make(map[netip.AddrPort]*record)}
		r.services[in.Service] = svc
	}
	a := r.intern(in)
	rec := svc.instances[in.Addr]
	if rec != nil {
		if rec.attrs == a && rec.owner == o && rec.weight == in.Weight && rec.unready == in.Unready && rec.extra == extra {
			r.release(a) // unchanged
			return
		}
		r.release(rec.attrs)
		rec.attrs, rec.weight, rec.unready, rec.extra = a, in.Weight, in.Unready, extra
		if rec.owner != o {
			rec.owner.unlink(rec)
			o.link(rec)
		}
		b.add(svc, rec.instance())
		return
	}
	rec = &record{svc: svc, addr: in.Addr, attrs: a, weight: in.Weight, unready: in.Unready, extra: extra}
	o.link(rec)
	svc.instances[in.Addr] = rec
	r.count++
	b.add(svc, rec.instance())
}

// del removes rec. Caller holds r.mu.
func (r *Registry) del(b batch, rec *record) {
	svc := rec.svc
	b.remove(svc, rec.instance())
	delete(svc.instances, rec.addr)
	rec.owner.unlink(rec)
	r.release(rec.attrs)
	r.count--
	if len(svc.instances) == 0 && len(svc.watchers) == 0 {
		delete(r.services, svc.key)
	}
}

// id returns the session id or static source name.
func (o *owner) id() string {
	_, id, _ := strings.Cut(o.source, "/")
	return id
}

func (o *owner) link(rec *record) {
	rec.owner = o
	rec.idx = int32(len(o.records))
	o.records = append(o.records, rec)
}

func (o *owner) unlink(rec *record) {
	last := len(o.records) - 1
	moved := o.records[last]
	o.records[rec.idx] = moved
	moved.idx = rec.idx
	o.records[last] = nil
	o.records = o.records[:last]
	if len(o.records) == 0 {
		o.records = nil
	}
}

// intern returns the shared attribute set of in with one more reference.
func (r *Registry) intern(in Instance) *attrs {
	key := attrsKey{labels: labelsKey(in.Labels), locality: in.Locality, identity: in.Identity, protocol: in.Protocol, workload: in.Workload}
	if a := r.attrs[key]; a != nil {
		a.refs++
		return a
	}
	var labels map[string]string
	if len(in.Labels) > 0 {
		labels = maps.Clone(in.Labels)
	}
	a := &attrs{key: key, labels: labels, refs: 1}
	r.attrs[key] = a
	return a
}

func (r *Registry) release(a *attrs) {
	a.refs--
	if a.refs == 0 {
		delete(r.attrs, a.key)
	}
}

// labelsKey is the canonical encoding of a label map.
func labelsKey(labels map[string]string) string {
	switch len(labels) {
	case 0:
		return ""
	case 1:
		for k, v := range labels {
			return k + "\x00" + v
		}
	}
	keys := slices.Sorted(maps.Keys(labels))
	n := 0
	for _, k := range keys {
		n += len(k) + len(labels[k]) + 2
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, k := range keys {
		sb.WriteString(k)
		sb.WriteByte(0)
		sb.WriteString(labels[k])
		sb.WriteByte(0)
	}
	return sb.String()
}

// publish assigns the batch one revision and queues its events. Caller holds
// r.mu exclusively.
func (r *Registry) publish(b batch) {
	if len(b) == 0 {
		return
	}
	r.rev++
	for svc, ev := range b {
		ev.Revision = r.rev
		svc.rev = r.rev
		for _, s := range svc.watchers {
			s.enqueue(*ev)
		}
		for _, s := range r.all {
			s.enqueue(*ev)
		}
	}
}

// Endpoints returns the instances of svc sorted by address.
func (r *Registry) Endpoints(svc ServiceKey) []Instance {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.endpointsLocked(svc)
}

func (r *Registry) endpointsLocked(key ServiceKey) []Instance {
	svc := r.services[key]
	if svc == nil || len(svc.instances) == 0 {
		return nil
	}
	out := make([]Instance, 0, len(svc.instances))
	for _, rec := range svc.instances {
		out = append(out, rec.instance())
	}
	slices.SortFunc(out, func(a, b Instance) int { return a.Addr.Compare(b.Addr) })
	return out
}

// ServiceRevision returns the revision of the last change to svc (0 if it
// never had instances). It lets readers cache per-service output.
func (r *Registry) ServiceRevision(svc ServiceKey) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if s := r.services[svc]; s != nil {
		return s.rev
	}
	return 0
}

// Services returns the services that have instances, sorted.
func (r *Registry) Services() []ServiceKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]ServiceKey, 0, len(r.services))
	for k, s := range r.services {
		if len(s.instances) > 0 {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b ServiceKey) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Revision returns the global revision: the number of published changes.
func (r *Registry) Revision() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rev
}

// Len returns the number of instances.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// Sessions returns the number of sessions, open or in their grace period.
func (r *Registry) Sessions() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.sessions)
}

// Close stops every grace timer and every watcher, waiting for the
// watchers' goroutines to return. It must not be called from a Listener.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	var subs []*subscriber
	for _, o := range r.sessions {
		if o.timer != nil {
			o.timer.Stop()
			o.timer = nil
		}
		o.gen++
	}
	subs = append(subs, r.all...)
	r.all = nil
	for _, svc := range r.services {
		subs = append(subs, svc.watchers...)
		svc.watchers = nil
	}
	r.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
}
