package lb

import (
	"fmt"
	"testing"
)

func TestHashStable(t *testing.T) {
	for _, p := range []Policy{RingHash{}, Maglev{}} {
		t.Run(p.Name(), func(t *testing.T) {
			ms := healthy(nil, 10)
			a, b := p.Build(ms), p.Build(ms)
			for k := range 1000 {
				info := PickInfo{Hash: HashString(addr(k) + "/user"), HasHash: true}
				i, _ := a.Pick(info)
				j, _ := a.Pick(info)
				l, _ := b.Pick(info)
				if i != j || i != l {
					t.Fatalf("key %d: picks %d, %d, rebuilt %d; want one endpoint", k, i, j, l)
				}
			}
		})
	}
}

func TestHashMinimalRemap(t *testing.T) {
	const n, keys = 10, 20_000
	// Maglev moves about 1/n. Envoy's ring keeps its size when a member
	// goes, so the others gain replicas (here 103 → 114 each) which take
	// over a further ~1/n of the keys; weft keeps Envoy's ring (same
	// points for the same addresses) and accepts that.
	limit := map[string]float64{"ring_hash": 2.0 / n, "maglev": 1.3 / n}
	for _, p := range []Policy{RingHash{}, Maglev{}} {
		t.Run(p.Name(), func(t *testing.T) {
			ms := healthy(nil, n)
			before := p.Build(ms)
			removed := 4
			rest := append(append([]Member{}, ms[:removed]...), ms[removed+1:]...)
			after := p.Build(rest)
			moved := 0
			for k := range keys {
				info := PickInfo{Hash: HashString(fmt.Sprintf("key-%d", k)), HasHash: true}
				i, _ := before.Pick(info)
				j, _ := after.Pick(info)
				if rest[j].Key != ms[i].Key {
					moved++
				}
			}
			// Ideal: only the removed endpoint's keys (1/n) move.
			frac := float64(moved) / keys
			if frac > limit[p.Name()] {
				t.Fatalf("%.3f of keys moved after removing 1 of %d endpoints, want at most %.3f", frac, n, limit[p.Name()])
			}
			if frac < 1.0/n*0.5 {
				t.Fatalf("only %.3f of keys moved; the removed endpoint's keys must move", frac)
			}
		})
	}
}

func TestHashWithoutHashIsRandom(t *testing.T) {
	for _, p := range []Policy{RingHash{}, Maglev{}} {
		ms := healthy(nil, 4)
		got := shares(t, p.Build(ms), 4, 40_000, nil)
		for i, s := range got {
			if s < 0.15 {
				t.Fatalf("%s: member %d got %.3f without a request hash, want about 0.25", p.Name(), i, s)
			}
		}
	}
}

func TestRingSize(t *testing.T) {
	tests := []struct {
		name     string
		p        RingHash
		weights  []uint32
		n        int
		min, max int
	}{
		{"defaults, 3 equal", RingHash{}, nil, 3, 1024, 1026},
		// min normalized weight 1/1000: ceil(0.001×1024)/0.001 = 2000.
		{"1000 members", RingHash{}, nil, 1000, 2000, 2000},
		// weight 1 of 1001: scale ceil(1024/1001)×1001 = 2002.
		{"skewed", RingHash{}, []uint32{1, 1000}, 2, 2002, 2003},
		{"capped by maximum", RingHash{MinRingSize: 1024, MaxRingSize: 100}, nil, 3, 100, 101},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rp, ok := tc.p.Build(healthy(nil, tc.n, tc.weights...)).(*ringPicker)
			if !ok {
				t.Fatal("not a ring picker")
			}
			if l := len(rp.hash); l < tc.min || l > tc.max {
				t.Fatalf("ring of %d entries, want %d-%d", l, tc.min, tc.max)
			}
		})
	}
}

func TestMaglevTableWeights(t *testing.T) {
	p := Maglev{TableSize: 65537}.Build(healthy(nil, 3, 1, 2, 5)).(*maglevPicker)
	var c [3]int
	for _, i := range p.table {
		if i < 0 {
			t.Fatal("table has an empty slot")
		}
		c[i]++
	}
	want := []float64{0.125, 0.25, 0.625}
	for i := range c {
		if got := float64(c[i]) / float64(len(p.table)); got < want[i]-0.002 || got > want[i]+0.002 {
			t.Fatalf("member %d holds %.4f of the table, want %.3f", i, got, want[i])
		}
	}
}

func TestCombineHash(t *testing.T) {
	a, b := HashString("x"), HashBytes([]byte("y"))
	if HashString("y") != b {
		t.Fatal("HashString and HashBytes differ on the same input")
	}
	if CombineHash(a, b) == CombineHash(b, a) {
		t.Fatal("CombineHash is symmetric; the order of hash policies must matter")
	}
	if CombineHash(0, b) != b {
		t.Fatal("CombineHash(0, h) must be h")
	}
}
