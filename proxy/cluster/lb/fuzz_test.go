package lb

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"
)

func FuzzFromCluster(f *testing.F) {
	seeds := []*clusterv3.Cluster{
		{},
		{LbPolicy: clusterv3.Cluster_RING_HASH},
		{LbPolicy: clusterv3.Cluster_LOAD_BALANCING_POLICY_CONFIG},
		policies(peak(map[string]any{"decay": "3s", "default_rtt": "2ms"})),
		policies(peak(map[string]any{"x": true})),
	}
	for _, c := range seeds {
		b, err := proto.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c clusterv3.Cluster
		if proto.Unmarshal(b, &c) != nil {
			return
		}
		p, err := FromCluster(&c, nil)
		if err != nil {
			if p != nil {
				t.Fatal("policy returned with an error")
			}
			return
		}
		if p == nil || p.Name() == "" {
			t.Fatalf("nil or unnamed policy without an error")
		}
		// Keep hashing tables small enough for fuzzing.
		switch q := p.(type) {
		case RingHash:
			q.MinRingSize, q.MaxRingSize = min(q.MinRingSize, 4096), min(q.MaxRingSize, 4096)
			p = q
		case Maglev:
			if q.TableSize > 65537 {
				q.TableSize = 65537
			}
			p = q
		}
		ms := healthy(nil, 3, 1, 2)
		if _, err := p.Build(ms).Pick(PickInfo{}); err != nil {
			t.Fatalf("%s: pick over healthy members: %v", p.Name(), err)
		}
	})
}

// FuzzBuildPick builds every policy over members decoded from the input
// (6 bytes each: weight, priority, locality, locality weight, flags, active)
// and checks that picks stay in range and fail only when nothing is eligible.
func FuzzBuildPick(f *testing.F) {
	f.Add(uint8(0), []byte{1, 0, 0, 1, 1, 0, 3, 1, 1, 2, 0, 5}, uint64(7))
	f.Add(uint8(5), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint64(0))
	f.Add(uint8(3), []byte{255, 9, 3, 0, 3, 200}, uint64(1<<63))
	f.Fuzz(func(t *testing.T, policy uint8, data []byte, hash uint64) {
		clock := newFakeClock()
		var ms []Member
		for len(data) >= 6 && len(ms) < 64 {
			m := Member{
				Load:           NewLoad(clock.Now),
				Weight:         uint32(data[0]) * uint32(data[0]),
				Priority:       uint32(data[1] % 4),
				Locality:       string('a' + rune(data[2]%3)),
				LocalityWeight: uint32(data[3] % 5),
				Healthy:        data[4]&1 == 1,
				Key:            addr(int(binary.LittleEndian.Uint16(data[:2]))),
			}
			for range data[5] % 8 {
				tk := m.Load.Start()
				clock.Advance(time.Duration(data[5]) * time.Millisecond)
				if data[5]%3 == 0 {
					m.Load.Done(tk, data[4]&2 == 2)
				}
			}
			ms = append(ms, m)
			data = data[6:]
		}
		com := Common{PanicThreshold: float64(policy % 3 * 40), LocalityWeighted: policy&8 == 8}
		ps := []Policy{
			RoundRobin{com}, Random{com}, LeastRequest{Common: com, ActiveRequestBias: float64(policy % 3)},
			RingHash{Common: com, MaxRingSize: 4096}, Maglev{Common: com, TableSize: 251}, PeakEWMA{Common: com, Clock: clock.Now},
		}
		p := ps[int(policy)%len(ps)]
		pk := p.Build(ms)
		anyHealthy := false
		for _, m := range ms {
			anyHealthy = anyHealthy || m.Healthy
		}
		eligible := anyHealthy || (len(ms) > 0 && com.PanicThreshold > 0)
		for i := range 8 {
			k, err := pk.Pick(PickInfo{Hash: hash + uint64(i), HasHash: i%2 == 0})
			if err != nil {
				if !errors.Is(err, ErrNoEndpoint) || eligible {
					t.Fatalf("%s: pick error %v with eligible members", p.Name(), err)
				}
				continue
			}
			if !eligible || k < 0 || k >= len(ms) {
				t.Fatalf("%s: picked %d of %d members (eligible %v)", p.Name(), k, len(ms), eligible)
			}
		}
	})
}
