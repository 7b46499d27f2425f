package outlier

import (
	"testing"

	"github.com/weft-mesh/weft/proxy/cluster/fakeclock"
)

// BenchmarkReport is the hot path: one report per request.
func BenchmarkReport(b *testing.B) {
	for _, bc := range []struct {
		name string
		r    Result
	}{
		{"success", Result{Status: 200}},
		{"5xx", Result{Status: 500}}, // ejects every 5th report until max percent refuses
		{"connect_failure", Result{Failure: ConnectFailure}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Defaults()
			hosts := []*Host{NewHost("10.0.0.1:80"), NewHost("10.0.0.2:80")}
			d := NewDetector(&cfg, hosts, Options{Clock: fakeclock.New()})
			d.Start()
			defer d.Stop()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					hosts[0].Report(bc.r)
				}
			})
		})
	}
}
