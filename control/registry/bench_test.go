package registry

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
)

// workloadInstances returns instance i of workload w, with the labels,
// locality and identity every instance of that workload shares.
func workloadInstance(w, i int, labels map[string]string) Instance {
	return Instance{
		Service:  ServiceKey{Namespace: fmt.Sprintf("team-%d", w%20), Name: fmt.Sprintf("svc-%d", w)},
		Addr:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(w >> 8), byte(w), byte(i)}), 8080),
		Protocol: "http",
		Labels:   labels,
		Locality: Locality{Region: "eu-west", Zone: fmt.Sprintf("eu-west-%d", w%3), SubZone: ""},
		Identity: fmt.Sprintf("svc-%d", w),
	}
}

func workloadLabels(w int) map[string]string {
	return map[string]string{
		"app":               fmt.Sprintf("svc-%d", w),
		"version":           fmt.Sprintf("v%d", w%3),
		"team":              fmt.Sprintf("team-%d", w%20),
		"pod-template-hash": fmt.Sprintf("%08x", w*2654435761),
	}
}

// BenchmarkRegistryMemory measures the heap held per instance: 100k
// instances across 1k services, each registered by its own sidecar session.
func BenchmarkRegistryMemory(b *testing.B) {
	const services, perService = 1000, 100
	b.ReportAllocs()
	var perInstance float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := New(Options{Clock: newManualClock()})
		for w := range services {
			labels := workloadLabels(w)
			for i := range perService {
				id := fmt.Sprintf("svc-%d-%d.team-%d", w, i, w%20)
				if err := r.OpenSession(id, []Instance{workloadInstance(w, i, labels)}); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if r.Len() != services*perService {
			b.Fatalf("Len() = %d", r.Len())
		}
		perInstance = float64(after.HeapAlloc-before.HeapAlloc) / float64(services*perService)
		runtime.KeepAlive(r)
	}
	b.ReportMetric(perInstance, "bytes/instance")
}

type countingListener struct{ n atomic.Int64 }

func (c *countingListener) Update(ev Event) { c.n.Add(int64(len(ev.Added) + len(ev.Removed))) }

// BenchmarkAddRemoveWatched adds and removes one endpoint of a 100-instance
// service watched by 10 per-service watchers and one WatchAll watcher.
func BenchmarkAddRemoveWatched(b *testing.B) {
	r := New(Options{Clock: newManualClock()})
	defer r.Close()
	labels := workloadLabels(1)
	for i := range 100 {
		if err := r.OpenSession(fmt.Sprint(i), []Instance{workloadInstance(1, i, labels)}); err != nil {
			b.Fatal(err)
		}
	}
	svc := workloadInstance(1, 0, labels).Service
	for range 10 {
		defer r.Watch(svc, &countingListener{})()
	}
	defer r.WatchAll(&countingListener{})()
	extra := workloadInstance(1, 200, labels)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.AddEndpoint("0", extra); err != nil {
			b.Fatal(err)
		}
		if err := r.RemoveEndpoint("0", extra); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionChurn opens and expires a session (one instance) per
// iteration against a registry of 10k instances with a WatchAll watcher.
func BenchmarkSessionChurn(b *testing.B) {
	c := newManualClock()
	r := New(Options{Clock: c})
	defer r.Close()
	for w := range 100 {
		labels := workloadLabels(w)
		for i := range 100 {
			if err := r.OpenSession(fmt.Sprintf("%d-%d", w, i), []Instance{workloadInstance(w, i, labels)}); err != nil {
				b.Fatal(err)
			}
		}
	}
	defer r.WatchAll(&countingListener{})()
	in := workloadInstance(7, 250, workloadLabels(7))
	b.ReportAllocs()
	for b.Loop() {
		if err := r.OpenSession("churn", []Instance{in}); err != nil {
			b.Fatal(err)
		}
		r.CloseSession("churn")
		c.Advance(DefaultGrace)
	}
}

// BenchmarkEndpoints reads a 100-instance service, as the translator does.
func BenchmarkEndpoints(b *testing.B) {
	r := New(Options{Clock: newManualClock()})
	defer r.Close()
	labels := workloadLabels(1)
	for i := range 100 {
		if err := r.OpenSession(fmt.Sprint(i), []Instance{workloadInstance(1, i, labels)}); err != nil {
			b.Fatal(err)
		}
	}
	svc := workloadInstance(1, 0, labels).Service
	b.ReportAllocs()
	for b.Loop() {
		if len(r.Endpoints(svc)) != 100 {
			b.Fatal("wrong count")
		}
	}
}
