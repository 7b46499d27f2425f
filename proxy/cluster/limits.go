package cluster

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// RetryBudget is Envoy's retry budget: the retries in flight of a cluster
// may be at most max(MinRetryConcurrency, BudgetPercent% of its active
// requests). Immutable.
type RetryBudget struct {
	BudgetPercent       float64 // default 20
	MinRetryConcurrency uint32  // default 3
}

func decodeRetryBudget(rb *clusterv3.CircuitBreakers_Thresholds_RetryBudget) (*RetryBudget, error) {
	b := &RetryBudget{BudgetPercent: 20, MinRetryConcurrency: 3}
	if p := rb.GetBudgetPercent(); p != nil {
		if p.GetValue() < 0 || p.GetValue() > 100 {
			return nil, fmt.Errorf("budget_percent: must be 0-100, got %v", p.GetValue())
		}
		b.BudgetPercent = p.GetValue()
	}
	if m := rb.GetMinRetryConcurrency(); m != nil {
		b.MinRetryConcurrency = m.GetValue()
	}
	return b, nil
}

// Overflow names the circuit-breaker limit a request ran into; empty when
// none did.
type Overflow string

// Limits that can overflow.
const (
	OverflowNone        Overflow = ""
	OverflowRequests    Overflow = "max_requests"
	OverflowConnections Overflow = "max_connections"
	OverflowPending     Overflow = "max_pending_requests"
	OverflowRetries     Overflow = "max_retries"
)

// AdmitRequest reserves a request slot; it fails with OverflowRequests when
// the cluster already has MaxRequests in flight. On success the caller must
// call ReleaseRequest once the request ends.
func (c *Cluster) AdmitRequest() Overflow {
	if n := c.Stats.Active.Add(1); n > int64(c.Limits.MaxRequests) {
		c.Stats.Active.Add(-1)
		c.Stats.Overflows.Add(1)
		return OverflowRequests
	}
	return OverflowNone
}

// ReleaseRequest frees a slot taken by AdmitRequest.
func (c *Cluster) ReleaseRequest() { c.Stats.Active.Add(-1) }

// AdmitRetry reserves a retry: within the retry budget when the cluster
// has one, else within MaxRetries concurrent retries. On success the caller
// must call ReleaseRetry when the retry attempt ends.
func (c *Cluster) AdmitRetry() Overflow {
	limit := int64(c.Limits.MaxRetries)
	if b := c.Limits.Budget; b != nil {
		limit = max(int64(b.MinRetryConcurrency), int64(b.BudgetPercent*float64(c.Stats.Active.Load())/100))
	}
	if n := c.Stats.ActiveRetries.Add(1); n > limit {
		c.Stats.ActiveRetries.Add(-1)
		c.Stats.RetryOverflows.Add(1)
		return OverflowRetries
	}
	return OverflowNone
}

// ReleaseRetry frees a retry taken by AdmitRetry.
func (c *Cluster) ReleaseRetry() { c.Stats.ActiveRetries.Add(-1) }

// AdmitConnection reserves an upstream connection; the caller calls
// ReleaseConnection when it closes.
func (c *Cluster) AdmitConnection() Overflow {
	if n := c.Stats.Connections.Add(1); n > int64(c.Limits.MaxConnections) {
		c.Stats.Connections.Add(-1)
		c.Stats.Overflows.Add(1)
		return OverflowConnections
	}
	return OverflowNone
}

// ReleaseConnection frees a connection slot.
func (c *Cluster) ReleaseConnection() { c.Stats.Connections.Add(-1) }
