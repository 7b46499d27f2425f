package lb

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/cespare/xxhash/v2"
)

// Ring sizes of Envoy's ring hash.
const (
	DefaultMinRingSize = 1024
	DefaultMaxRingSize = 8 << 20
	// MaxRingSize is the largest ring Envoy (and weft) accepts.
	MaxRingSize = 8 << 20
)

// RingHash is consistent hashing on a ring (Ketama), as Envoy's RING_HASH:
// each member is placed on the ring at xxHash64(Key + "_" + n) for n
// replicas, in proportion to its normalized weight; the ring has at least
// MinRingSize entries (more when a weight is small relative to the others)
// and at most MaxRingSize. A request goes to the first entry at or after its
// hash. Safe for concurrent use.
type RingHash struct {
	Common
	MinRingSize uint64 // 0 means 1024
	MaxRingSize uint64 // 0 means 8M
}

// Name implements Policy.
func (RingHash) Name() string { return "ring_hash" }

// Build implements Policy.
func (p RingHash) Build(ms []Member) Picker {
	gs := p.plan(ms)
	if len(gs) == 0 {
		return noPicker{}
	}
	idx, w, _ := flatten(gs)
	minSize, maxSize := p.MinRingSize, p.MaxRingSize
	if minSize == 0 {
		minSize = DefaultMinRingSize
	}
	if maxSize == 0 {
		maxSize = DefaultMaxRingSize
	}
	minSize = min(minSize, maxSize)
	total := 0.0
	for _, x := range w {
		total += x
	}
	minW := 1.0
	for _, x := range w {
		minW = min(minW, x/total)
	}
	scale := min(math.Ceil(minW*float64(minSize))/minW, float64(maxSize))

	type entry struct {
		h uint64
		i int32
	}
	ring := make([]entry, 0, int(math.Ceil(scale))+len(w))
	var buf []byte
	cur, target := 0.0, 0.0
	for k, x := range w {
		target += x / total * scale
		key := ms[idx[k]].Key
		for n := 0; cur < target; n++ {
			buf = strconv.AppendInt(append(append(buf[:0], key...), '_'), int64(n), 10)
			ring = append(ring, entry{xxhash.Sum64(buf), idx[k]})
			cur++
		}
	}
	slices.SortFunc(ring, func(a, b entry) int {
		if c := cmp.Compare(a.h, b.h); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	if len(ring) == 0 {
		return noPicker{}
	}
	rp := &ringPicker{hash: make([]uint64, len(ring)), idx: make([]int32, len(ring))}
	for k, e := range ring {
		rp.hash[k], rp.idx[k] = e.h, e.i
	}
	return rp
}

type ringPicker struct {
	hash []uint64 // sorted
	idx  []int32
}

func (p *ringPicker) Pick(info PickInfo) (int, error) {
	h := info.Hash
	if !info.HasHash {
		h = rand.Uint64()
	}
	lo, hi := 0, len(p.hash)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.hash[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(p.hash) {
		lo = 0
	}
	return int(p.idx[lo]), nil
}

// Maglev table sizes.
const (
	DefaultMaglevTableSize = 65537
	MaxMaglevTableSize     = 5000011 // Envoy's limit
)

// Maglev is Google's Maglev consistent hashing, as Envoy's MAGLEV: a lookup
// table of TableSize entries (a prime) filled by each member's permutation
// (offset = xxHash64(Key) mod size, skip = xxHash64(Key, seed 1) mod
// (size-1) + 1), weighted as Envoy does: a member of half the largest
// weight claims a slot every second round. A request goes to table[hash mod
// size]. Safe for concurrent use.
type Maglev struct {
	Common
	TableSize uint64 // prime; 0 means 65537
}

// Name implements Policy.
func (Maglev) Name() string { return "maglev" }

// Build implements Policy.
func (p Maglev) Build(ms []Member) Picker {
	gs := p.plan(ms)
	if len(gs) == 0 {
		return noPicker{}
	}
	idx, w, _ := flatten(gs)
	size := p.TableSize
	if size == 0 {
		size = DefaultMaglevTableSize
	}
	total, maxW := 0.0, 0.0
	for _, x := range w {
		total += x
	}
	// Each member walks its permutation offset, offset+skip, ... (mod
	// size); cur is the next position of that walk.
	type build struct {
		cur, skip uint64
		w, target float64
	}
	bs := make([]build, len(w))
	seeded := xxhash.NewWithSeed(1)
	for k, x := range w {
		key := ms[idx[k]].Key
		seeded.ResetWithSeed(1)
		_, _ = seeded.WriteString(key)
		bs[k] = build{
			cur:  xxhash.Sum64String(key) % size,
			skip: seeded.Sum64()%(size-1) + 1,
			w:    x / total,
		}
		maxW = max(maxW, bs[k].w)
	}
	for k := range bs {
		bs[k].target = maxW
	}
	table := make([]int32, size)
	for i := range table {
		table[i] = -1
	}
	step := func(b *build) {
		b.cur += b.skip
		if b.cur >= size {
			b.cur -= size
		}
	}
	filled := uint64(0)
	for iter := 1.0; filled < size; iter++ {
		for k := range bs {
			if filled == size {
				break
			}
			b := &bs[k]
			// A member of maximal weight takes a slot every round; one
			// of a third of it every third round.
			if iter*b.w < b.target {
				continue
			}
			b.target += maxW
			for table[b.cur] >= 0 {
				step(b)
			}
			table[b.cur] = idx[k]
			step(b)
			filled++
		}
	}
	return &maglevPicker{table: table}
}

type maglevPicker struct {
	table []int32
}

func (p *maglevPicker) Pick(info PickInfo) (int, error) {
	h := info.Hash
	if !info.HasHash {
		h = rand.Uint64()
	}
	return int(p.table[h%uint64(len(p.table))]), nil
}
