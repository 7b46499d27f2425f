package registry

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// manualClock is a Clock whose time only moves with Advance; due timers run
// on the caller's goroutine.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c    *manualClock
	at   time.Time
	f    func()
	done bool
}

func newManualClock() *manualClock { return &manualClock{now: time.Unix(1_700_000_000, 0)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*manualTimer
	pending := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t)
		default:
			pending = append(pending, t)
		}
	}
	c.timers = pending
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

func inst(svc, addr string) Instance {
	ns, name, _ := strings.Cut(svc, "/")
	return Instance{
		Service:  ServiceKey{Namespace: ns, Name: name},
		Addr:     netip.MustParseAddrPort(addr),
		Protocol: "http",
		Labels:   map[string]string{"app": name, "version": "v1"},
		Identity: name,
	}
}

func key(svc string) ServiceKey {
	ns, name, _ := strings.Cut(svc, "/")
	return ServiceKey{Namespace: ns, Name: name}
}

func addrs(ins []Instance) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.Addr.String()
	}
	slices.Sort(out)
	return out
}

// recorder is a Listener that forwards events on a channel.
type recorder struct{ ch chan Event }

func newRecorder() *recorder         { return &recorder{ch: make(chan Event, 64)} }
func (rc *recorder) Update(ev Event) { rc.ch <- ev }

func (rc *recorder) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev := <-rc.ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return Event{}
	}
}

func (rc *recorder) none(t *testing.T, r *Registry) {
	t.Helper()
	// Events are queued synchronously by the mutation; a watch on a
	// throwaway service proves the registry is quiescent, then the channel
	// must be empty.
	done := make(chan struct{})
	stop := r.Watch(key("zz/fence"), ListenerFunc(func(Event) { close(done) }))
	<-done
	stop()
	select {
	case ev := <-rc.ch:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func TestSessionLifecycle(t *testing.T) {
	tests := []struct {
		name      string
		steps     func(r *Registry, c *manualClock)
		wantAddrs []string
		wantLen   int
	}{
		{
			name: "open registers own instance",
			steps: func(r *Registry, c *manualClock) {
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
			},
			wantAddrs: []string{"10.0.0.1:80"},
			wantLen:   1,
		},
		{
			name: "instances stay during grace",
			steps: func(r *Registry, c *manualClock) {
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
				r.CloseSession("a-0.shop")
				c.Advance(9 * time.Second)
			},
			wantAddrs: []string{"10.0.0.1:80"},
			wantLen:   1,
		},
		{
			name: "instances expire after grace",
			steps: func(r *Registry, c *manualClock) {
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
				must(r.AddEndpoint("a-0.shop", inst("shop/a", "10.0.0.1:81")))
				r.CloseSession("a-0.shop")
				c.Advance(10 * time.Second)
			},
			wantAddrs: []string{},
			wantLen:   0,
		},
		{
			name: "reconnect within grace keeps instances",
			steps: func(r *Registry, c *manualClock) {
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
				r.CloseSession("a-0.shop")
				c.Advance(5 * time.Second)
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
				c.Advance(time.Hour)
			},
			wantAddrs: []string{"10.0.0.1:80"},
			wantLen:   1,
		},
		{
			name: "session open on two streams survives one close",
			steps: func(r *Registry, c *manualClock) {
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
				r.CloseSession("a-0.shop")
				c.Advance(time.Hour)
			},
			wantAddrs: []string{"10.0.0.1:80"},
			wantLen:   1,
		},
		{
			name: "reopen with a new address replaces own instance and keeps extras",
			steps: func(r *Registry, c *manualClock) {
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
				must(r.AddEndpoint("a-0.shop", inst("shop/a", "10.0.0.1:81")))
				r.CloseSession("a-0.shop")
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.2:80")}))
			},
			wantAddrs: []string{"10.0.0.1:81", "10.0.0.2:80"},
			wantLen:   2,
		},
		{
			name: "remove endpoint",
			steps: func(r *Registry, c *manualClock) {
				must(r.OpenSession("a-0.shop", []Instance{inst("shop/a", "10.0.0.1:80")}))
				must(r.AddEndpoint("a-0.shop", inst("shop/a", "10.0.0.1:81")))
				must(r.RemoveEndpoint("a-0.shop", inst("shop/a", "10.0.0.1:81")))
			},
			wantAddrs: []string{"10.0.0.1:80"},
			wantLen:   1,
		},
		{
			name: "static entries replace and survive sessions",
			steps: func(r *Registry, c *manualClock) {
				must(r.SetStatic("Service/shop/a", []Instance{inst("shop/a", "10.1.0.1:80"), inst("shop/a", "10.1.0.2:80")}))
				must(r.SetStatic("Service/shop/a", []Instance{inst("shop/a", "10.1.0.2:80"), inst("shop/a", "10.1.0.3:80")}))
				c.Advance(time.Hour)
			},
			wantAddrs: []string{"10.1.0.2:80", "10.1.0.3:80"},
			wantLen:   2,
		},
		{
			name: "static empty list removes the source",
			steps: func(r *Registry, c *manualClock) {
				must(r.SetStatic("Service/shop/a", []Instance{inst("shop/a", "10.1.0.1:80")}))
				must(r.SetStatic("Service/shop/a", nil))
			},
			wantAddrs: []string{},
			wantLen:   0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newManualClock()
			r := New(Options{Clock: c})
			defer r.Close()
			tt.steps(r, c)
			if got := addrs(r.Endpoints(key("shop/a"))); !slices.Equal(got, tt.wantAddrs) {
				t.Errorf("endpoints = %v, want %v", got, tt.wantAddrs)
			}
			if got := r.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
		})
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func TestErrors(t *testing.T) {
	r := New(Options{Clock: newManualClock()})
	defer r.Close()
	must(r.OpenSession("s", []Instance{inst("shop/a", "10.0.0.1:80")}))
	noPort := inst("shop/a", "10.0.0.1:80")
	noPort.Addr = netip.AddrPortFrom(noPort.Addr.Addr(), 0)
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"empty session id", r.OpenSession("", nil), "open session: id is empty"},
		{"missing namespace", r.OpenSession("x", []Instance{{Service: ServiceKey{Name: "a"}}}), `open session "x": instance 0: service "a": namespace is empty`},
		{"missing service", r.OpenSession("x", []Instance{{}}), `open session "x": instance 0: service name is empty`},
		{"missing address", r.AddEndpoint("s", Instance{Service: key("shop/a")}), `session "s": add endpoint: service shop/a: address is not set`},
		{"zero port", r.AddEndpoint("s", noPort), `session "s": add endpoint: service shop/a: address 10.0.0.1: port is 0`},
		{"unknown session add", r.AddEndpoint("nope", inst("shop/a", "10.0.0.1:81")), `session "nope": add endpoint: no such session`},
		{"remove own instance", r.RemoveEndpoint("s", inst("shop/a", "10.0.0.1:80")), `session "s": remove endpoint shop/a 10.0.0.1:80: not registered by this session`},
		{"unknown session remove", r.RemoveEndpoint("nope", inst("shop/a", "10.0.0.1:80")), `session "nope": remove endpoint: no such session`},
		{"static empty source", r.SetStatic("", nil), "set static: source is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || tt.err.Error() != tt.want {
				t.Fatalf("error = %v, want %q", tt.err, tt.want)
			}
		})
	}
	if got := r.Len(); got != 1 {
		t.Fatalf("failed calls changed the registry: Len() = %d", got)
	}
}

func TestWatchDeltas(t *testing.T) {
	c := newManualClock()
	r := New(Options{Clock: c})
	defer r.Close()
	rc := newRecorder()
	stop := r.Watch(key("shop/a"), rc)
	defer stop()

	if ev := rc.next(t); !ev.Resync || len(ev.Added) != 0 {
		t.Fatalf("first event = %+v, want an empty resync", ev)
	}

	must(r.OpenSession("a-0", []Instance{inst("shop/a", "10.0.0.1:80")}))
	ev := rc.next(t)
	if ev.Resync || addrs(ev.Added)[0] != "10.0.0.1:80" || len(ev.Removed) != 0 || ev.Revision != 1 {
		t.Fatalf("open: event = %+v", ev)
	}
	if ev.Added[0].Source != "session/a-0" {
		t.Fatalf("source = %q, want session/a-0", ev.Added[0].Source)
	}

	// Reconnecting within grace publishes nothing.
	r.CloseSession("a-0")
	c.Advance(time.Second)
	must(r.OpenSession("a-0", []Instance{inst("shop/a", "10.0.0.1:80")}))
	rc.none(t, r)

	// A label change is an update (Added) with a new revision.
	changed := inst("shop/a", "10.0.0.1:80")
	changed.Labels = map[string]string{"app": "a", "version": "v2"}
	must(r.OpenSession("a-0", []Instance{changed}))
	ev = rc.next(t)
	if len(ev.Added) != 1 || ev.Added[0].Labels["version"] != "v2" || ev.Revision != 2 {
		t.Fatalf("update: event = %+v", ev)
	}

	// Changes to other services are not delivered.
	must(r.OpenSession("b-0", []Instance{inst("shop/b", "10.0.0.2:80")}))
	rc.none(t, r)

	// Expiry after the last close removes.
	r.CloseSession("a-0")
	r.CloseSession("a-0")
	c.Advance(DefaultGrace)
	ev = rc.next(t)
	if len(ev.Removed) != 1 || len(ev.Added) != 0 || ev.Revision != 4 {
		t.Fatalf("expiry: event = %+v (revision want 4)", ev)
	}
	if r.Sessions() != 1 {
		t.Fatalf("Sessions() = %d, want 1", r.Sessions())
	}
}

func TestWatchOverflowResyncs(t *testing.T) {
	r := New(Options{Clock: newManualClock(), QueueSize: 4})
	defer r.Close()
	gate := make(chan struct{})
	rc := newRecorder()
	blocked := make(chan struct{})
	first := true
	stop := r.Watch(key("shop/a"), ListenerFunc(func(ev Event) {
		if first {
			first = false
			close(blocked)
			<-gate
		}
		rc.Update(ev)
	}))
	defer stop()
	<-blocked // the listener holds the initial resync

	for i := range 10 {
		must(r.SetStatic(fmt.Sprintf("src%d", i), []Instance{inst("shop/a", fmt.Sprintf("10.0.0.%d:80", i+1))}))
	}
	close(gate)
	if ev := rc.next(t); !ev.Resync { // the initial one
		t.Fatalf("event 1 = %+v, want the initial resync", ev)
	}
	ev := rc.next(t)
	if !ev.Resync || len(ev.Added) != 10 || ev.Revision != 10 {
		t.Fatalf("after overflow: event = resync %v, %d added, revision %d; want a resync with 10 at revision 10", ev.Resync, len(ev.Added), ev.Revision)
	}
	rc.none(t, r)
}

func TestWatchAll(t *testing.T) {
	r := New(Options{Clock: newManualClock()})
	defer r.Close()
	rc := newRecorder()
	stop := r.WatchAll(rc)
	defer stop()
	if ev := rc.next(t); !ev.Resync || ev.Service != (ServiceKey{}) {
		t.Fatalf("first event = %+v, want an empty-service resync", ev)
	}
	must(r.OpenSession("x", []Instance{inst("shop/a", "10.0.0.1:80"), inst("shop/b", "10.0.0.2:80")}))
	got := map[ServiceKey]int{}
	for range 2 {
		ev := rc.next(t)
		got[ev.Service] += len(ev.Added)
		if ev.Revision != 1 {
			t.Fatalf("revision = %d, want 1 (one mutation, one revision)", ev.Revision)
		}
	}
	if got[key("shop/a")] != 1 || got[key("shop/b")] != 1 {
		t.Fatalf("events per service = %v", got)
	}
}

func TestInterning(t *testing.T) {
	r := New(Options{Clock: newManualClock()})
	defer r.Close()
	for i := range 50 {
		must(r.OpenSession(fmt.Sprint(i), []Instance{inst("shop/a", fmt.Sprintf("10.0.0.%d:80", i+1))}))
	}
	if n := len(r.attrs); n != 1 {
		t.Fatalf("attribute sets = %d, want 1 shared by all instances", n)
	}
	eps := r.Endpoints(key("shop/a"))
	eps[0].Labels["x"] = "y" // the contract forbids this; here it proves sharing
	if _, ok := eps[1].Labels["x"]; !ok {
		t.Fatal("labels are not shared between instances of a workload")
	}
	delete(eps[0].Labels, "x")
	for i := range 50 {
		r.CloseSession(fmt.Sprint(i))
	}
	r.clock.(*manualClock).Advance(DefaultGrace)
	if n := len(r.attrs); n != 0 || len(r.services) != 0 {
		t.Fatalf("after expiry: %d attribute sets, %d services; want 0, 0", n, len(r.services))
	}
}

func TestOwnershipTransfer(t *testing.T) {
	r := New(Options{Clock: newManualClock()})
	defer r.Close()
	must(r.SetStatic("s1", []Instance{inst("shop/a", "10.0.0.1:80")}))
	must(r.OpenSession("a", []Instance{inst("shop/a", "10.0.0.1:80")}))
	// The static source no longer owns the address: dropping it keeps the
	// session's registration.
	must(r.SetStatic("s1", nil))
	eps := r.Endpoints(key("shop/a"))
	if len(eps) != 1 || eps[0].Source != "session/a" {
		t.Fatalf("endpoints = %+v, want one owned by session/a", eps)
	}
}

func TestParseLocality(t *testing.T) {
	tests := []struct {
		in      string
		want    Locality
		wantErr string
	}{
		{"", Locality{}, ""},
		{"eu", Locality{Region: "eu"}, ""},
		{"eu/eu-1a", Locality{Region: "eu", Zone: "eu-1a"}, ""},
		{"eu/eu-1a/rack3", Locality{"eu", "eu-1a", "rack3"}, ""},
		{"eu//rack3", Locality{}, `locality "eu//rack3": part 2 is empty`},
		{"a/b/c/d", Locality{}, `locality "a/b/c/d": want region/zone/subzone, got 4 parts`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLocality(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseLocality(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func FuzzParseLocality(f *testing.F) {
	for _, s := range []string{"", "eu", "eu/eu-1a/r", "a//b", "////", "a/b/c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLocality(s)
		if err != nil {
			return
		}
		if l.String() != s {
			t.Fatalf("round trip %q -> %q", s, l.String())
		}
	})
}

// TestWorkloadAttribute checks that the workload travels with the instance
// and that a change of workload alone is a change.
func TestWorkloadAttribute(t *testing.T) {
	r := New(Options{})
	defer r.Close()
	in := inst("shop/catalog", "10.0.0.1:80")
	in.Workload = "catalog-v1"
	if err := r.OpenSession("catalog-v1-0.shop", []Instance{in}); err != nil {
		t.Fatal(err)
	}
	got := r.Endpoints(key("shop/catalog"))
	if len(got) != 1 || got[0].Workload != "catalog-v1" || got[0].Source != "session/catalog-v1-0.shop" {
		t.Fatalf("endpoints %+v, want one of workload catalog-v1 from the session", got)
	}
	rev := r.Revision()
	in.Workload = "catalog-v2"
	if err := r.OpenSession("catalog-v1-0.shop", []Instance{in}); err != nil {
		t.Fatal(err)
	}
	if r.Revision() == rev {
		t.Fatal("changing the workload published nothing")
	}
	if got := r.Endpoints(key("shop/catalog")); got[0].Workload != "catalog-v2" {
		t.Fatalf("workload %q, want catalog-v2", got[0].Workload)
	}
}
