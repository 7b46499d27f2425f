package resource

import "testing"

const alertHead = "apiVersion: weft.dev/v1alpha1\nkind: AlertRule\nmetadata: {name: ar, namespace: shop}\nspec:\n"

func TestValidateAlertRule(t *testing.T) {
	runValidateCases(t, []validateCase{
		{name: "success rate of a service", in: alertHead + "  target: {service: catalog}\n  metric: successRate\n  threshold: 0.99\n"},
		{name: "p99 of an edge with a webhook", in: alertHead + "  target: {edge: {from: frontend, to: catalog}}\n  metric: latencyP99\n  threshold: 250\n  window: 30s\n  for: 10s\n  severity: critical\n  webhook: {url: \"http://127.0.0.1:9/hook\"}\n"},
		{
			name: "errors",
			in: alertHead + "  target: {service: catalog, workload: catalog-v1}\n  metric: errorRate\n  op: \"<=\"\n  threshold: -1\n" +
				"  window: 5s\n  for: -1s\n  minRequests: -1\n  severity: page\n  webhook: {url: \"ftp://x\"}\n",
			wantErr: []string{
				`f.yaml: document 1 (AlertRule shop/ar): spec.target: set exactly one of service, workload and edge, got 2`,
				`spec.metric: must be one of [successRate requestRate latencyP50 latencyP90 latencyP99], got "errorRate"`,
				`spec.op: must be "<" or ">", got "<="`,
				`spec.threshold: must be a finite number >= 0, got -1`,
				`spec.window: must be at least 10s (two scrapes), got 5s`,
				`spec.for: must not be negative, got -1s`,
				`spec.minRequests: must be >= 0, got -1`,
				`spec.severity: must be "warning" or "critical", got "page"`,
				`spec.webhook.url: must be an absolute http or https URL, got "ftp://x"`,
			},
		},
		{
			name:    "success rate above one",
			in:      alertHead + "  target: {edge: {from: Front, to: catalog}}\n  metric: successRate\n  threshold: 99\n",
			wantErr: []string{`spec.target.edge.from: must be a DNS-1123 label`, `spec.threshold: successRate is a ratio in 0-1 (0.99 for 99%), got 99`},
		},
	})
}
