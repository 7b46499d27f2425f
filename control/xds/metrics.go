package xds

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors.
type metrics struct {
	pushes          *prometheus.CounterVec
	pushBytes       *prometheus.CounterVec
	pushLatency     prometheus.Histogram
	nacks           *prometheus.CounterVec
	translateErrors prometheus.Counter
	recomputes      prometheus.Counter
	certsIssued     prometheus.Counter
	certsRefused    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, proxies, instances func() float64) (*metrics, error) {
	m := &metrics{
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_xds_pushes_total",
			Help: "xDS responses sent to proxies, by resource type.",
		}, []string{"type"}),
		pushBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_xds_push_bytes_total",
			Help: "Bytes of resources sent to proxies, by resource type.",
		}, []string{"type"}),
		pushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weft_xds_push_latency_seconds",
			Help:    "Time from a configuration or registry change to the proxy's ACK of the resulting version.",
			Buckets: []float64{.01, .025, .05, .1, .15, .25, .5, 1, 2.5, 5, 10},
		}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_xds_nacks_total",
			Help: "xDS responses rejected by proxies, by resource type.",
		}, []string{"type"}),
		translateErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_xds_translate_errors_total",
			Help: "Failures to compute a proxy's configuration (the proxy keeps its previous one).",
		}),
		recomputes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_xds_recomputes_total",
			Help: "Per-proxy configuration computations.",
		}),
		certsIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_ca_certificates_issued_total",
			Help: "Workload certificates signed for proxies.",
		}),
		certsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_ca_certificate_requests_refused_total",
			Help: "Certificate requests refused (identity not allowed or invalid CSR).",
		}),
	}
	collectors := []prometheus.Collector{
		m.pushes, m.pushBytes, m.pushLatency, m.nacks, m.translateErrors, m.recomputes, m.certsIssued, m.certsRefused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weft_xds_connected_proxies",
			Help: "Proxies with at least one open xDS stream.",
		}, proxies),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weft_registry_instances",
			Help: "Instances in the registry.",
		}, instances),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
