package lb

import (
	"fmt"
	"testing"
)

func BenchmarkPick(b *testing.B) {
	clock := newFakeClock()
	for _, p := range allPolicies(clock.Now) {
		for _, n := range []int{10, 1000} {
			for _, weights := range [][]uint32{nil, {1, 2, 3}} {
				name := fmt.Sprintf("%s/members=%d", p.Name(), n)
				if weights != nil {
					name += "/weighted"
				}
				b.Run(name, func(b *testing.B) {
					ms := healthy(clock.Now, n, weights...)
					pk := p.Build(ms)
					b.ReportAllocs()
					h := uint64(0x9e3779b97f4a7c15)
					for b.Loop() {
						h = h*6364136223846793005 + 1442695040888963407
						if _, err := pk.Pick(PickInfo{Hash: h, HasHash: true}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

func BenchmarkPickParallel(b *testing.B) {
	for _, p := range allPolicies(nil) {
		b.Run(p.Name(), func(b *testing.B) {
			ms := healthy(nil, 100)
			pk := p.Build(ms)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k, _ := pk.Pick(PickInfo{})
					ms[k].Load.Done(ms[k].Load.Start(), false)
				}
			})
		})
	}
}

func BenchmarkLoadStartDone(b *testing.B) {
	l := NewLoad(nil)
	b.ReportAllocs()
	for b.Loop() {
		l.Done(l.Start(), false)
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, p := range []Policy{RingHash{}, Maglev{}, RoundRobin{}} {
		for _, weights := range [][]uint32{nil, {1, 2, 3}} {
			name := p.Name()
			if weights != nil {
				name += "/weighted"
			}
			b.Run(name+"/members=100", func(b *testing.B) {
				ms := healthy(nil, 100, weights...)
				b.ReportAllocs()
				for b.Loop() {
					p.Build(ms)
				}
			})
		}
	}
}
