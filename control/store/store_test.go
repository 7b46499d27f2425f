package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weft-mesh/weft/control/resource"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func openTest(t *testing.T, dir string, opts Options) *Bolt {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func decode(t testing.TB, in string) []resource.Object {
	t.Helper()
	objs, err := resource.Decode("test", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func svc(name string, port int) string {
	return fmt.Sprintf("apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: %s}\nspec: {ports: [{port: %d}]}\n", name, port)
}

func outcomes(r Result) string {
	var parts []string
	for _, o := range r.Objects {
		parts = append(parts, fmt.Sprintf("%s/%s %s g%d rv%s", strings.ToLower(string(o.Key.Kind)), o.Key.Name, o.Outcome, o.Generation, o.ResourceVersion))
	}
	return strings.Join(parts, ", ")
}

func TestApplyGetListDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	if s.Revision() != 0 {
		t.Fatalf("new store revision %d", s.Revision())
	}
	r, err := s.Apply(ctx, decode(t, svc("a", 80)+"---\n"+svc("b", 80)), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(r), "service/a created g1 rv1, service/b created g1 rv1"; got != want || r.Revision != 1 {
		t.Fatalf("apply: %s (rev %d), want %s", got, r.Revision, want)
	}

	// Re-apply: a changed spec bumps generation, a label-only change does
	// not, an equal object is unchanged.
	r, err = s.Apply(ctx, decode(t, svc("a", 81)+"---\n"+strings.Replace(svc("b", 80), "{name: b}", "{name: b, labels: {tier: web}}", 1)+"---\n"+svc("c", 80)), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(r), "service/a configured g2 rv2, service/b configured g1 rv2, service/c created g1 rv2"; got != want {
		t.Fatalf("reapply: %s, want %s", got, want)
	}
	r, err = s.Apply(ctx, decode(t, svc("a", 81)), ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(r), "service/a unchanged g2 rv2"; got != want || r.Revision != 2 || s.Revision() != 2 {
		t.Fatalf("unchanged apply: %s rev %d, want %s rev 2", got, r.Revision, want)
	}

	got, err := s.Get(ctx, resource.Key{Kind: resource.KindService, Namespace: "default", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Service().Ports[0].Port != 81 || got.Generation != 2 || got.ResourceVersion != "2" || !got.CreationTimestamp.Equal(t0) {
		t.Fatalf("get a = %+v", got)
	}
	_, err = s.Get(ctx, resource.Key{Kind: resource.KindService, Namespace: "default", Name: "zz"})
	if !errors.Is(err, ErrNotFound) || err.Error() != `services "zz" in namespace "default": not found` {
		t.Fatalf("get missing: %v", err)
	}

	if _, err := s.Apply(ctx, decode(t, strings.Replace(svc("a", 80), "{name: a}", "{name: a, namespace: other}", 1)+"---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec: {}\n"), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind resource.Kind
		ns   string
		want int
	}{{resource.KindService, "", 4}, {resource.KindService, "default", 3}, {resource.KindService, "other", 1}, {"", "", 5}, {"", "other", 1}, {resource.KindWorkload, "default", 1}, {resource.KindGateway, "", 0}} {
		l, err := s.List(ctx, tc.kind, tc.ns)
		if err != nil || len(l) != tc.want {
			t.Errorf("List(%q, %q) = %d objects, %v; want %d", tc.kind, tc.ns, len(l), err, tc.want)
		}
	}

	r, err = s.Delete(ctx, []resource.Key{{Kind: resource.KindService, Namespace: "default", Name: "a"}, {Kind: resource.KindService, Namespace: "default", Name: "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(r), "service/a deleted g0 rv, service/nope not found g0 rv"; got != want || r.Revision != 4 {
		t.Fatalf("delete: %s rev %d, want %s rev 4", got, r.Revision, want)
	}
	r, err = s.Delete(ctx, []resource.Key{{Kind: resource.KindService, Namespace: "default", Name: "a"}})
	if err != nil || r.Revision != 4 {
		t.Fatalf("delete of a missing object changed the revision: %v %d", err, r.Revision)
	}

	// Everything survives a reopen.
	s.Close()
	s2 := openTest(t, dir, Options{})
	if s2.Revision() != 4 {
		t.Fatalf("revision after reopen = %d, want 4", s2.Revision())
	}
	l, err := s2.List(ctx, "", "")
	if err != nil || len(l) != 4 {
		t.Fatalf("after reopen: %d objects, %v", len(l), err)
	}
}

func TestOptimisticConcurrencyAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	if _, err := s.Apply(ctx, decode(t, svc("a", 80)), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, decode(t, svc("a", 81)), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	stale := decode(t, strings.Replace(svc("a", 82), "{name: a}", "{name: a, resourceVersion: \"1\"}", 1)+"---\n"+svc("new", 80)+"---\n"+
		strings.Replace(svc("ghost", 80), "{name: ghost}", "{name: ghost, resourceVersion: \"9\"}", 1))
	_, err := s.Apply(ctx, stale, ApplyOptions{})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err = %v, want a conflict", err)
	}
	for _, want := range []string{
		"conflict: Service default/a was modified (resourceVersion 1 in the request, 2 stored); get it again and reapply your change",
		"conflict: Service default/ghost has resourceVersion 9 in the request but does not exist; remove resourceVersion to create it",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if _, err := s.Get(ctx, resource.Key{Kind: resource.KindService, Namespace: "default", Name: "new"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("object of a failed apply was stored: %v", err)
	}
	if s.Revision() != 2 {
		t.Fatalf("revision moved to %d", s.Revision())
	}
	// The matching version succeeds.
	r, err := s.Apply(ctx, decode(t, strings.Replace(svc("a", 82), "{name: a}", "{name: a, resourceVersion: \"2\"}", 1)), ApplyOptions{})
	if err != nil || outcomes(r) != "service/a configured g3 rv3" {
		t.Fatalf("apply with current version: %s, %v", outcomes(r), err)
	}
}

func TestDryRun(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	if _, err := s.Apply(ctx, decode(t, svc("a", 80)), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Apply(ctx, decode(t, svc("a", 81)+"---\n"+svc("b", 80)), ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(r), "service/a configured g2 rv2, service/b created g1 rv2"; got != want || r.Revision != 1 {
		t.Fatalf("dry run: %s rev %d, want %s rev 1", got, r.Revision, want)
	}
	if l, _ := s.List(ctx, "", ""); len(l) != 1 || l[0].Service().Ports[0].Port != 80 || s.Revision() != 1 {
		t.Fatalf("dry run stored something: %+v", l)
	}
}

func recv(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

func describeEvent(e Event) string {
	if e.Object.Name == "" {
		return fmt.Sprintf("%s@%d", e.Type, e.Revision)
	}
	return fmt.Sprintf("%s %s@%d", e.Type, e.Object.Name, e.Revision)
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openTest(t, t.TempDir(), Options{})
	if _, err := s.Apply(ctx, decode(t, svc("a", 80)+"---\n"+svc("b", 80)), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, decode(t, svc("a", 81)+"---\n"+svc("c", 80)), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, decode(t, svc("a", 81)), ApplyOptions{}); err != nil { // unchanged: no event
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, []resource.Key{{Kind: resource.KindService, Namespace: "default", Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"Added a@1", "Added b@1", "Synced@1", "Modified a@2", "Added c@2", "Deleted b@3"}
	for i, w := range want {
		if got := describeEvent(recv(t, ch)); got != w {
			t.Fatalf("event %d = %s, want %s", i, got, w)
		}
	}

	// Replay from a revision.
	ch2, err := s.Watch(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want[3:] {
		if got := describeEvent(recv(t, ch2)); got != w {
			t.Fatalf("replayed event %d = %s, want %s", i, got, w)
		}
	}
	if _, err := s.Watch(ctx, 99); err == nil || !strings.Contains(err.Error(), "revision 99 is in the future (current 3)") {
		t.Fatalf("watch from the future: %v", err)
	}

	// Cancelling the context closes the channel.
	wctx, wcancel := context.WithCancel(ctx)
	ch3, err := s.Watch(wctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	wcancel()
	for range ch3 {
	}
}

func TestWatchHistoryTooOld(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{History: 2})
	for i := range 4 {
		if _, err := s.Apply(ctx, decode(t, svc(fmt.Sprintf("s%d", i), 80)), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := s.Watch(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if e := recv(t, ch); e.Type != Resync {
		t.Fatalf("got %s, want Resync", describeEvent(e))
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Resync")
	}
	ch, err = s.Watch(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := describeEvent(recv(t, ch)); got != "Added s2@3" {
		t.Fatalf("replay from 2: %s", got)
	}
}

func TestWatchOverflowResyncs(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{WatchQueue: 3})
	ch, err := s.Watch(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if e := recv(t, ch); e.Type != Synced {
		t.Fatalf("got %s, want Synced", describeEvent(e))
	}
	// The consumer does not read: the fourth queued event overflows. The
	// pump may already hold one event in hand, so write plenty.
	for i := range 10 {
		if _, err := s.Apply(ctx, decode(t, svc(fmt.Sprintf("s%d", i), 80)), ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var last Event
	n := 0
	for e := range ch {
		last = e
		n++
	}
	if last.Type != Resync || n > 5 {
		t.Fatalf("after %d events the last was %s, want Resync within 5", n, describeEvent(last))
	}
}

func TestCloseClosesWatchers(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range ch {
	}
	if _, err := s.Apply(context.Background(), nil, ApplyOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{
			name: "not a bbolt file",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte(strings.Repeat("this is not a database\n", 1000)), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "is not a valid weft state file (invalid database); it was left untouched",
		},
		{
			name: "foreign bbolt file",
			prepare: func(t *testing.T, path string) {
				db, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err }); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: `is a bbolt database of another program (buckets "users", no weft meta bucket); it was left untouched`,
		},
		{
			name: "foreign meta bucket",
			prepare: func(t *testing.T, path string) {
				db, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if err := db.Update(func(tx *bolt.Tx) error {
					b, err := tx.CreateBucket([]byte("meta"))
					if err != nil {
						return err
					}
					return b.Put([]byte("format"), []byte("other-app"))
				}); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: `is a bbolt database of another program (format marker "other-app", want "weft-state")`,
		},
		{
			name: "newer format",
			prepare: func(t *testing.T, path string) {
				s, err := Open(filepath.Dir(path), Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(metaBucket).Put(versionKey, []byte("7")) }); err != nil {
					t.Fatal(err)
				}
				s.Close()
			},
			wantErr: "was written by a newer weft (state format 7, this binary reads up to 1); upgrade weft",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			tc.prepare(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir, Options{})
			if err == nil {
				s.Close()
				t.Fatal("open succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s and contain %q", err, path, tc.wantErr)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Fatal("the file was modified")
			}
		})
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	_ = s
	start := time.Now()
	_, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "state directory "+dir+" is in use by another process") {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second open took %s", d)
	}
}

func BenchmarkApplyUnchanged(b *testing.B) {
	ctx := context.Background()
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	objs := decode(b, svc("a", 80)+"---\n"+svc("b", 80))
	if _, err := s.Apply(ctx, objs, ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Apply(ctx, objs, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Apply(ctx, decode(b, svc("a", 80)), ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	key := resource.Key{Kind: resource.KindService, Namespace: "default", Name: "a"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
