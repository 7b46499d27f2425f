package registry

import (
	"net/netip"
	"sync"
)

// Event is one versioned change of a service's instances.
type Event struct {
	// Service is the changed service; zero in a WatchAll resync.
	Service ServiceKey
	// Revision is the registry revision of the change.
	Revision uint64
	// Added holds new and changed instances.
	Added []Instance
	// Removed holds instances that are gone.
	Removed []Instance
	// Resync replaces what the listener knew. From Watch, Added is then the
	// complete current set of Service. From WatchAll, the event carries no
	// instances: anything may have changed, re-read the registry.
	Resync bool
}

// Listener receives the events of a watch. Update is called on the watch's
// own goroutine, one event at a time in revision order; it may block, which
// only delays this watch (its queue fills and is replaced by a resync).
type Listener interface {
	Update(Event)
}

// ListenerFunc adapts a function to Listener.
type ListenerFunc func(Event)

// Update calls f(ev).
func (f ListenerFunc) Update(ev Event) { f(ev) }

// Watch subscribes l to the changes of svc. The first event is a resync with
// the current instances. The returned stop function unsubscribes and waits
// for the listener's goroutine to return; it must not be called from the
// listener itself.
func (r *Registry) Watch(svc ServiceKey, l Listener) (stop func()) {
	return r.watch(&svc, l)
}

// WatchAll subscribes l to the changes of every service. The first event is
// a resync (with no instances).
func (r *Registry) WatchAll(l Listener) (stop func()) {
	return r.watch(nil, l)
}

func (r *Registry) watch(key *ServiceKey, l Listener) func() {
	s := &subscriber{
		reg:    r,
		key:    key,
		l:      l,
		max:    r.queueSize,
		resync: true,
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.wake <- struct{}{}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		close(s.done)
		return func() {}
	}
	if key == nil {
		r.all = append(r.all, s)
	} else {
		svc := r.services[*key]
		if svc == nil {
			svc = &service{key: *key, instances: make(map[netip.AddrPort]*record)}
			r.services[*key] = svc
		}
		svc.watchers = append(svc.watchers, s)
	}
	r.mu.Unlock()
	go s.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.unwatch(s)
			s.stop()
		})
	}
}

func (r *Registry) unwatch(s *subscriber) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.key == nil {
		r.all = remove(r.all, s)
		return
	}
	svc := r.services[*s.key]
	if svc == nil {
		return
	}
	svc.watchers = remove(svc.watchers, s)
	if len(svc.watchers) == 0 && len(svc.instances) == 0 {
		delete(r.services, svc.key)
	}
}

func remove(subs []*subscriber, s *subscriber) []*subscriber {
	for i, x := range subs {
		if x == s {
			subs[i] = subs[len(subs)-1]
			subs[len(subs)-1] = nil
			return subs[:len(subs)-1]
		}
	}
	return subs
}

// subscriber is one watch: a bounded queue drained by its own goroutine.
type subscriber struct {
	reg *Registry
	key *ServiceKey // nil: all services
	l   Listener
	max int

	mu     sync.Mutex
	queue  []Event
	head   int
	resync bool

	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// enqueue is called with Registry.mu held exclusively; it never blocks.
func (s *subscriber) enqueue(ev Event) {
	s.mu.Lock()
	if s.resync {
		// A resync is pending: it will read the state including ev.
		s.mu.Unlock()
		return
	}
	if len(s.queue)-s.head >= s.max {
		clear(s.queue)
		s.queue, s.head, s.resync = s.queue[:0], 0, true
	} else {
		s.queue = append(s.queue, ev)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next returns the next event to deliver.
func (s *subscriber) next() (Event, bool) {
	s.mu.Lock()
	if s.resync {
		s.mu.Unlock()
		return s.resyncEvent(), true
	}
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
		return Event{}, false
	}
	ev := s.queue[s.head]
	s.queue[s.head] = Event{}
	s.head++
	return ev, true
}

// resyncEvent reads the current state. Registry.mu is taken before s.mu, as
// in enqueue, so no event published before the read is left in the queue.
func (s *subscriber) resyncEvent() Event {
	r := s.reg
	r.mu.RLock()
	defer r.mu.RUnlock()
	s.mu.Lock()
	clear(s.queue)
	s.queue, s.head, s.resync = s.queue[:0], 0, false
	s.mu.Unlock()
	ev := Event{Revision: r.rev, Resync: true}
	if s.key != nil {
		ev.Service = *s.key
		ev.Added = r.endpointsLocked(*s.key)
	}
	return ev
}

func (s *subscriber) run() {
	defer close(s.done)
	for {
		select {
		case <-s.quit:
			return
		case <-s.wake:
		}
		for {
			ev, ok := s.next()
			if !ok {
				break
			}
			s.l.Update(ev)
			select {
			case <-s.quit:
				return
			default:
			}
		}
	}
}

func (s *subscriber) stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	<-s.done
}
