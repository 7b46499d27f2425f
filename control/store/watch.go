package store

import (
	"context"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// watcher is one Watch subscription: a queue filled by publish (under
// Bolt.mu, never blocking) and drained into ch by the watcher's own
// goroutine.
type watcher struct {
	ch    chan Event
	limit int

	mu       sync.Mutex
	queue    []Event
	overflow bool // Resync queued; nothing more is accepted
	wake     chan struct{}
}

// push queues events; on overflow it replaces the queue with a Resync.
func (w *watcher) push(evs []Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.overflow {
		return
	}
	if len(w.queue)+len(evs) > w.limit {
		w.queue = append(w.queue[:0], Event{Type: Resync})
		w.overflow = true
	} else {
		w.queue = append(w.queue, evs...)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Watch streams changes; see Store.Watch.
func (s *Bolt) Watch(ctx context.Context, fromRevision int64) (<-chan Event, error) {
	if fromRevision < 0 {
		return nil, fmt.Errorf("watch: negative revision %d", fromRevision)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	cur := s.rev.Load()
	if fromRevision > cur {
		return nil, fmt.Errorf("watch: revision %d is in the future (current %d)", fromRevision, cur)
	}
	var initial []Event
	switch {
	case fromRevision == 0:
		err := s.db.View(func(tx *bolt.Tx) error {
			objs, err := listTx(tx, "", "")
			if err != nil {
				return err
			}
			initial = make([]Event, 0, len(objs)+1)
			for _, o := range objs {
				initial = append(initial, Event{Type: Added, Object: o, Revision: cur})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("watch: %w", err)
		}
		initial = append(initial, Event{Type: Synced, Revision: cur})
	case fromRevision < s.floor:
		initial = []Event{{Type: Resync}}
	default:
		for _, e := range s.history {
			if e.Revision > fromRevision {
				initial = append(initial, e)
			}
		}
	}
	w := &watcher{ch: make(chan Event), limit: len(initial) + s.opts.WatchQueue, queue: initial, wake: make(chan struct{}, 1)}
	if len(initial) > 0 && initial[len(initial)-1].Type == Resync {
		w.overflow = true
	}
	s.watchers[w] = struct{}{}
	s.wg.Add(1)
	go s.pump(ctx, w)
	return w.ch, nil
}

// pump delivers w's queue until ctx is done, the store closes or a Resync
// has been delivered. It owns closing w.ch.
func (s *Bolt) pump(ctx context.Context, w *watcher) {
	defer s.wg.Done()
	defer close(w.ch)
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()
	for {
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, e := range batch {
			select {
			case w.ch <- e:
			case <-ctx.Done():
				return
			case <-s.closing:
				return
			}
			if e.Type == Resync {
				return
			}
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

// publish records events of one committed transaction in the history and
// queues them for every watcher. Called with s.mu held; never blocks.
func (s *Bolt) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	s.history = append(s.history, evs...)
	if over := len(s.history) - s.opts.History; over > 0 {
		// Drop whole revisions only, so that a replay is never partial.
		cut := over
		last := s.history[cut-1].Revision
		for cut < len(s.history) && s.history[cut].Revision == last {
			cut++
		}
		s.floor = last
		s.history = append(s.history[:0:0], s.history[cut:]...)
	}
	for w := range s.watchers {
		w.push(evs)
	}
}
