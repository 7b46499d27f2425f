package proxy

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/weft-mesh/weft/proxy/cluster/outlier"
)

// metrics are the proxy's counters, kept as atomics so the hot path does no
// map lookups under a lock; rendered in Prometheus text format on scrape.
// Safe for concurrent use.
type metrics struct {
	updates atomic.Uint64

	mu      sync.Mutex
	replies map[[2]string]*atomic.Uint64 // listener, reason → local replies
	tcp     map[string]*[2]atomic.Uint64 // cluster → bytes in/out
	// rbac counts RBAC decisions: listener, "allowed"/"denied", policy
	// (denials only; "" when no policy matched) → requests or connections.
	// Envoy's http.<stat_prefix>.rbac.allowed/denied.
	rbac map[[3]string]*atomic.Uint64
	// jwt counts requests the JWT filter refused: listener, reason.
	jwt map[[2]string]*atomic.Uint64
}

func newMetrics() *metrics {
	return &metrics{
		replies: map[[2]string]*atomic.Uint64{},
		tcp:     map[string]*[2]atomic.Uint64{},
		rbac:    map[[3]string]*atomic.Uint64{},
		jwt:     map[[2]string]*atomic.Uint64{},
	}
}

// counter returns the counter of key k in set, creating it; mu guards set.
// The counter itself is updated without the lock.
func counter[K comparable, C any](mu *sync.Mutex, set map[K]*C, k K) *C {
	mu.Lock()
	defer mu.Unlock()
	c := set[k]
	if c == nil {
		c = new(C)
		set[k] = c
	}
	return c
}

// rbacDecision counts one RBAC decision; allowed ones are not split by
// policy.
func (m *metrics) rbacDecision(listener string, allowed bool, policy string) {
	k := [3]string{listener, "denied", policy}
	if allowed {
		k[1], k[2] = "allowed", ""
	}
	counter(&m.mu, m.rbac, k).Add(1)
}

// jwtFailure counts one request refused by the JWT filter.
func (m *metrics) jwtFailure(listener, reason string) {
	k := [2]string{listener, reason}
	counter(&m.mu, m.jwt, k).Add(1)
}

func (m *metrics) localReply(listener, reason string) {
	k := [2]string{listener, reason}
	counter(&m.mu, m.replies, k).Add(1)
}

func (m *metrics) tcpBytes(cluster string, in, out int64) {
	c := counter(&m.mu, m.tcp, cluster)
	c[0].Add(uint64(in))
	c[1].Add(uint64(out))
}

// WritePrometheus renders every proxy metric in the Prometheus text format.
func (p *Proxy) WritePrometheus(w io.Writer) error {
	m := p.metrics
	fmt.Fprintf(w, "# TYPE weft_config_updates_total counter\nweft_config_updates_total %d\n", m.updates.Load())
	p.mu.Lock()
	stats := make(map[string][8]uint64, len(p.stats))
	classes := make(map[string][6]uint64, len(p.stats))
	for name, s := range p.stats {
		stats[name] = [8]uint64{s.Requests.Load(), s.Retries.Load(), s.NoEndpoint.Load(), s.ConnectFail.Load(), s.Timeouts.Load(), uint64(s.Active.Load()), s.Overflows.Load(), s.RetryOverflows.Load()}
		var c [6]uint64
		for i := range c {
			c[i] = s.Responses[i].Load()
		}
		classes[name] = c
	}
	version := p.version
	type resilience struct {
		enforced                       [outlier.NumReasons]uint64
		overflow, active               uint64
		probes, probeFailures, probing uint64
	}
	res := make(map[string]resilience, len(p.stats))
	for name, s := range p.stats {
		var r resilience
		for i := range r.enforced {
			r.enforced[i] = s.Outlier.Enforced[i].Load()
		}
		r.overflow, r.active = s.Outlier.Overflow.Load(), uint64(max(s.Outlier.Active.Load(), 0))
		r.probes, r.probeFailures, r.probing = s.Health.Probes.Load(), s.Health.Failures.Load(), uint64(max(s.Health.Probing.Load(), 0))
		res[name] = r
	}
	p.mu.Unlock()
	fmt.Fprintf(w, "# TYPE weft_config_version gauge\nweft_config_version %d\n", version)
	names := sortedNames(stats)
	for i, metric := range []string{"weft_cluster_upstream_requests_total", "weft_cluster_retries_total", "weft_cluster_no_healthy_endpoint_total", "weft_cluster_connect_failures_total", "weft_cluster_timeouts_total", "weft_cluster_active_requests", "weft_cluster_overflows_total", "weft_cluster_retry_overflows_total"} {
		kind := "counter"
		if i == 5 {
			kind = "gauge"
		}
		fmt.Fprintf(w, "# TYPE %s %s\n", metric, kind)
		for _, n := range names {
			fmt.Fprintf(w, "%s{cluster=%q} %d\n", metric, n, stats[n][i])
		}
	}
	fmt.Fprintf(w, "# TYPE weft_cluster_outlier_ejections_total counter\n")
	for _, n := range names {
		for i, v := range res[n].enforced {
			if v > 0 {
				fmt.Fprintf(w, "weft_cluster_outlier_ejections_total{cluster=%q,reason=%q} %d\n", n, outlier.Reason(i).String(), v)
			}
		}
	}
	for _, g := range []struct {
		name, kind string
		get        func(resilience) uint64
	}{
		{"weft_cluster_outlier_ejections_active", "gauge", func(r resilience) uint64 { return r.active }},
		{"weft_cluster_outlier_ejection_overflow_total", "counter", func(r resilience) uint64 { return r.overflow }},
		{"weft_cluster_health_probes_total", "counter", func(r resilience) uint64 { return r.probes }},
		{"weft_cluster_health_probe_failures_total", "counter", func(r resilience) uint64 { return r.probeFailures }},
		{"weft_cluster_health_probing", "gauge", func(r resilience) uint64 { return r.probing }},
	} {
		fmt.Fprintf(w, "# TYPE %s %s\n", g.name, g.kind)
		for _, n := range names {
			fmt.Fprintf(w, "%s{cluster=%q} %d\n", g.name, n, g.get(res[n]))
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	fmt.Fprintf(w, "# TYPE weft_cluster_responses_total counter\n")
	for _, n := range names {
		for i := 1; i <= 5; i++ {
			if v := classes[n][i]; v > 0 {
				fmt.Fprintf(w, "weft_cluster_responses_total{cluster=%q,code_class=\"%dxx\"} %d\n", n, i, v)
			}
		}
	}
	fmt.Fprintf(w, "# TYPE weft_local_replies_total counter\n")
	keys := make([][2]string, 0, len(m.replies))
	for k := range m.replies {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"\x00"+keys[i][1] < keys[j][0]+"\x00"+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(w, "weft_local_replies_total{listener=%q,reason=%q} %d\n", k[0], k[1], m.replies[k].Load())
	}
	rk := make([][3]string, 0, len(m.rbac))
	for k := range m.rbac {
		rk = append(rk, k)
	}
	sort.Slice(rk, func(i, j int) bool { return strings.Join(rk[i][:], "\x00") < strings.Join(rk[j][:], "\x00") })
	fmt.Fprintf(w, "# TYPE weft_rbac_allowed_total counter\n")
	for _, k := range rk {
		if k[1] == "allowed" {
			fmt.Fprintf(w, "weft_rbac_allowed_total{listener=%q} %d\n", k[0], m.rbac[k].Load())
		}
	}
	fmt.Fprintf(w, "# TYPE weft_rbac_denied_total counter\n")
	for _, k := range rk {
		if k[1] == "denied" {
			fmt.Fprintf(w, "weft_rbac_denied_total{listener=%q,policy=%q} %d\n", k[0], k[2], m.rbac[k].Load())
		}
	}
	jk := make([][2]string, 0, len(m.jwt))
	for k := range m.jwt {
		jk = append(jk, k)
	}
	sort.Slice(jk, func(i, j int) bool { return jk[i][0]+"\x00"+jk[i][1] < jk[j][0]+"\x00"+jk[j][1] })
	fmt.Fprintf(w, "# TYPE weft_jwt_failures_total counter\n")
	for _, k := range jk {
		fmt.Fprintf(w, "weft_jwt_failures_total{listener=%q,reason=%q} %d\n", k[0], k[1], m.jwt[k].Load())
	}
	fmt.Fprintf(w, "# TYPE weft_tcp_bytes_total counter\n")
	for _, n := range sortedNames(m.tcp) {
		fmt.Fprintf(w, "weft_tcp_bytes_total{cluster=%q,direction=\"sent\"} %d\n", n, m.tcp[n][0].Load())
		fmt.Fprintf(w, "weft_tcp_bytes_total{cluster=%q,direction=\"received\"} %d\n", n, m.tcp[n][1].Load())
	}
	p.tel.writeGolden(w)
	p.mu.Lock()
	open := make(map[string]int64, len(p.live))
	for name, ll := range p.live {
		open[name] = ll.open.Load()
	}
	p.mu.Unlock()
	fmt.Fprintf(w, "# TYPE weft_downstream_connections_active gauge\n")
	for _, n := range sortedNames(open) {
		fmt.Fprintf(w, "weft_downstream_connections_active{listener=%q} %d\n", n, open[n])
	}
	if pw, ok := p.opts.Telemetry.(interface{ WritePrometheus(io.Writer) error }); ok {
		return pw.WritePrometheus(w)
	}
	return nil
}
