package cluster

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestRetryBudget: retries in flight are bounded by
// max(min_retry_concurrency, budget_percent of active requests).
func TestRetryBudget(t *testing.T) {
	b, err := decodeRetryBudget(&clusterv3.CircuitBreakers_Thresholds_RetryBudget{
		BudgetPercent: &typev3.Percent{Value: 10}, MinRetryConcurrency: wrapperspb.UInt32(2),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Spec: &Spec{Limits: Limits{MaxRequests: 1000, MaxRetries: 3, Budget: b}}, Stats: &Stats{}}
	admit := func(n int) int {
		got := 0
		for i := 0; i < n; i++ {
			if c.AdmitRetry() == OverflowNone {
				got++
			}
		}
		return got
	}
	// 5 active requests: 10% is 0.5, so the minimum concurrency (2) holds.
	c.Stats.Active.Store(5)
	if got := admit(5); got != 2 {
		t.Fatalf("5 active: admitted %d retries, want 2", got)
	}
	for i := 0; i < 2; i++ {
		c.ReleaseRetry()
	}
	// 100 active: 10 retries.
	c.Stats.Active.Store(100)
	if got := admit(20); got != 10 {
		t.Fatalf("100 active: admitted %d retries, want 10", got)
	}
	if c.Stats.RetryOverflows.Load() != 13 {
		t.Fatalf("retry overflows %d, want 13", c.Stats.RetryOverflows.Load())
	}
	if _, err := decodeRetryBudget(&clusterv3.CircuitBreakers_Thresholds_RetryBudget{BudgetPercent: &typev3.Percent{Value: 120}}); err == nil || err.Error() != "budget_percent: must be 0-100, got 120" {
		t.Fatalf("err = %v", err)
	}
}
