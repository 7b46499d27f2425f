package resource

import (
	"context"
	"os"
	"strings"
	"testing"
)

// sliceLister is a Lister over fixed objects.
type sliceLister []Object

func (l sliceLister) List(_ context.Context, kind Kind, ns string) ([]Object, error) {
	var out []Object
	for _, o := range l {
		if o.Kind == kind && (ns == "" || o.Namespace == ns) {
			out = append(out, o)
		}
	}
	return out, nil
}

func mustDecode(t testing.TB, source, in string) []Object {
	t.Helper()
	objs, err := Decode(source, []byte(in))
	if err != nil {
		t.Fatalf("decode %s: %v", source, err)
	}
	return objs
}

const (
	svcA       = "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80}]}\n"
	svcB       = "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: b}\nspec: {ports: [{port: 80}]}\n"
	gwEdge     = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec: {gatewayClassName: weft, listeners: [{name: http, port: 8080, protocol: HTTP}]}\n"
	routeHead  = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{name: edge}]\n"
	grpcHead   = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: g}\nspec:\n  parentRefs: [{kind: Service, name: a}]\n"
	policyHead = "apiVersion: weft.dev/v1alpha1\nkind: BackendPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {name: a}\n"
	wlHead     = "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\nspec:\n"
	faultHead  = "apiVersion: weft.dev/v1alpha1\nkind: FaultInjection\nmetadata: {name: f}\nspec:\n"
)

// validateCase is one Validate table case: in is validated against
// existing; every wantErr (wantWarn) must appear in the error (warnings),
// and the number of errors must match.
type validateCase struct {
	name     string
	existing string
	in       string
	wantErr  []string
	wantWarn []string
}

func TestValidate(t *testing.T) {
	tests := []validateCase{
		{name: "service ok", in: svcA},
		{
			name: "service field errors",
			in: "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: Bad_Name, labels: {\"x/\": v}}\nspec:\n  visibility: world\n" +
				"  ports:\n  - {name: http, port: 0, protocol: udp}\n  - {name: http, port: 70000, targetPort: -1}\n  - {port: 81}\n",
			wantErr: []string{
				`f.yaml: document 1 (Service default/Bad_Name): metadata.name: must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit), got "Bad_Name"`,
				`metadata.labels["x/"]: invalid label key "x/"`,
				`spec.ports[0].port: must be a port number in 1-65535, got 0`,
				`spec.ports[0].protocol: must be one of http, http2, grpc, tcp, got "udp"`,
				`spec.ports[1].name: duplicate port name "http" (also spec.ports[0])`,
				`spec.ports[1].port: must be a port number in 1-65535, got 70000`,
				`spec.ports[1].targetPort: must be a port number in 1-65535, got -1`,
				`spec.ports[2].name: required when the Service has more than one port`,
				`spec.visibility: must be one of namespace, mesh, intranet, internet, got "world"`,
			},
		},
		{name: "service without ports", in: "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a}\nspec: {}\n", wantErr: []string{`spec.ports: at least one port is required`}},
		{name: "missing name", in: "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {}\nspec: {ports: [{port: 80}]}\n", wantErr: []string{`document 1 (Service): metadata.name: required`}},
		{
			name: "workload ok with upstream",
			in:   svcA + "---\n" + svcB + "---\n" + wlHead + "  command: [app]\n  upstreams: [{service: b, port: 9001, servicePort: 80}]\n  readiness: {httpPath: /ready}\n",
		},
		{
			name: "workload errors",
			in: svcA + "---\n" + wlHead + "  command: [\"\"]\n  replicas: -1\n  protocol: quic\n  port: Web\n  env: [{name: \"A=B\", value: x}, {name: C, value: c}, {name: C, value: z}]\n" +
				"  readiness: {httpPath: ready, period: -1s, failureThreshold: -2}\n  upstreams: [{service: a, port: 9001}, {service: a, port: 9001}]\n",
			wantErr: []string{
				`document 2 (Workload default/a): spec.command[0]: the program must not be empty`,
				`spec.replicas: must be in 0-10000, got -1`,
				`spec.protocol: must be one of http, http2, grpc, tcp, got "quic"`,
				`spec.port: must be a DNS-1123 label`,
				`spec.env[0].name: must not contain '=' or NUL, got "A=B"`,
				`spec.env[2].name: duplicate variable "C" (also spec.env[1])`,
				`spec.readiness.httpPath: must start with '/', got "ready"`,
				`spec.readiness.period: must be > 0, got -1s`,
				`spec.readiness.failureThreshold: must be >= 1, got -2`,
				`spec.upstreams[1].port: local port 9001 is already used by spec.upstreams[0]`,
			},
		},
		{name: "workload build ok", in: svcA + "---\n" + wlHead + "  build: {go: ./cmd/a}\n  args: [--v]\n"},
		{
			name: "workload build errors",
			in:   svcA + "---\n" + wlHead + "  build: {go: \"\"}\n  command: [app]\n",
			wantErr: []string{
				`spec.build.go: required: the Go package to build (e.g. "./cmd/app")`,
				`spec.command: set either command or build, not both`,
			},
		},
		{name: "workload build flag", in: svcA + "---\n" + wlHead + "  build: {go: -toolexec}\n", wantErr: []string{`spec.build.go: must be a Go package path, got "-toolexec"`}},
		{name: "workload args without program", in: svcA + "---\n" + wlHead + "  args: [x]\n", wantErr: []string{`spec.args: needs command or build`}},
		{name: "readiness needs one probe", in: svcA + "---\n" + wlHead + "  readiness: {period: 1s}\n", wantErr: []string{`spec.readiness: set httpPath or tcp: true`}},
		{name: "readiness not both", in: svcA + "---\n" + wlHead + "  readiness: {tcp: true, httpPath: /x}\n", wantErr: []string{`spec.readiness: set either httpPath or tcp, not both`}},
		{
			name:     "workload dangling upstream and service",
			in:       wlHead + "  upstreams: [{service: nope, port: 9001}]\n",
			wantWarn: []string{`f.yaml: document 1 (Workload default/a): spec.upstreams[0].service: Service default/nope not found`, `spec.service: Service default/a not found`},
		},
		{name: "upstream port missing on service", in: svcA + "---\n" + wlHead + "  upstreams: [{service: a, port: 9001, servicePort: 8080}]\n", wantWarn: []string{`spec.upstreams[0].service: Service default/a has no port 8080 (ports: 80)`}},
		{
			name: "backend policy ok",
			in:   svcA + "---\n" + policyHead + "  loadBalancer: {policy: ring_hash, hash: {header: x-user}}\n  retries: {attempts: 3, retryOn: [5xx, unavailable]}\n  connectionLimits: {maxRetries: 0}\n",
		},
		{
			name: "backend policy errors",
			in: svcA + "---\n" + "apiVersion: weft.dev/v1alpha1\nkind: BackendPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {kind: Deployment, name: a}\n" +
				"  loadBalancer: {policy: fastest}\n  connectTimeout: -1s\n  retries: {attempts: 11, retryOn: [5xx, sometimes], backoff: {base: 1s, max: 100ms}}\n  connectionLimits: {maxConnections: 0}\n",
			wantErr: []string{
				`spec.targetRef.kind: must be one of Service, got "Deployment"`,
				`spec.loadBalancer.policy: must be one of peak_ewma, round_robin, least_request, random, ring_hash, maglev, got "fastest"`,
				`spec.connectTimeout: must be > 0, got -1s`,
				`spec.retries.attempts: must be in 0-10, got 11`,
				`spec.retries.retryOn[1]: must be one of 5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream, unavailable, cancelled, deadline-exceeded, resource-exhausted, got "sometimes"`,
				`spec.retries.backoff.max: must be >= base (1s), got 100ms`,
				`spec.connectionLimits.maxConnections: must be >= 1, got 0`,
			},
		},
		{
			name: "resilience policy ok",
			in: svcA + "---\n" + policyHead + "  connectionLimits: {maxConnections: 10}\n  retryBudget: {percent: 0, minRetryConcurrency: 0}\n" +
				"  outlierDetection:\n    consecutive5xx: 0\n    consecutiveGatewayErrors: 3\n    consecutiveLocalOriginFailures: 2\n    interval: 1s\n    baseEjectionTime: 10m\n" +
				"    maxEjectionPercent: 100\n    panicThreshold: 0\n    successRate: {minimumHosts: 1, requestVolume: 1, stdevFactor: 1}\n    failurePercentage: {threshold: 100}\n" +
				"  healthCheck: {http: {path: /healthz, expectedStatuses: [200, 204]}, interval: 2s, timeout: 2s, unhealthyThreshold: 1, healthyThreshold: 3}\n",
		},
		{name: "outlier detection defaults ok", in: svcA + "---\n" + policyHead + "  outlierDetection: {}\n  healthCheck: {tcp: true}\n"},
		{name: "slow start ok", in: svcA + "---\n" + policyHead + "  loadBalancer: {slowStart: {window: 30s, aggression: 2, minWeightPercent: 0}}\n"},
		{
			name: "slow start errors",
			in:   svcA + "---\n" + policyHead + "  loadBalancer: {policy: maglev, hash: {sourceIP: true}, slowStart: {aggression: -1, minWeightPercent: 101}}\n",
			wantErr: []string{
				`(BackendPolicy default/p): spec.loadBalancer.slowStart: only with policy peak_ewma, round_robin or least_request, not maglev`,
				`spec.loadBalancer.slowStart.window: required: how long an instance ramps up, e.g. "30s"`,
				`spec.loadBalancer.slowStart.aggression: must be a number > 0, got -1`,
				`spec.loadBalancer.slowStart.minWeightPercent: must be in 0-100, got 101`,
			},
		},
		{name: "grpc health check ok", in: svcA + "---\n" + policyHead + "  healthCheck: {grpc: {service: shop.Cart}}\n"},
		{
			name: "outlier detection errors",
			in: svcA + "---\n" + policyHead + "  outlierDetection:\n    consecutive5xx: -1\n    consecutiveGatewayErrors: -2\n    consecutiveLocalOriginFailures: -3\n" +
				"    interval: -1s\n    baseEjectionTime: 1m\n    maxEjectionTime: 10s\n    maxEjectionPercent: 0\n    panicThreshold: 101\n" +
				"    successRate: {minimumHosts: 0, requestVolume: 0, stdevFactor: 0}\n    failurePercentage: {threshold: 0, minimumHosts: 0, requestVolume: -1}\n",
			wantErr: []string{
				`(BackendPolicy default/p): spec.outlierDetection.consecutive5xx: must be >= 0, got -1`,
				`spec.outlierDetection.consecutiveGatewayErrors: must be >= 0, got -2`,
				`spec.outlierDetection.consecutiveLocalOriginFailures: must be >= 0, got -3`,
				`spec.outlierDetection.interval: must be > 0, got -1s`,
				`spec.outlierDetection.maxEjectionTime: must be >= baseEjectionTime (1m0s), got 10s`,
				`spec.outlierDetection.maxEjectionPercent: must be in 1-100, got 0`,
				`spec.outlierDetection.panicThreshold: must be in 0-100, got 101`,
				`spec.outlierDetection.successRate.minimumHosts: must be >= 1, got 0`,
				`spec.outlierDetection.successRate.requestVolume: must be >= 1, got 0`,
				`spec.outlierDetection.successRate.stdevFactor: must be >= 1, got 0`,
				`spec.outlierDetection.failurePercentage.threshold: must be in 1-100, got 0`,
				`spec.outlierDetection.failurePercentage.minimumHosts: must be >= 1, got 0`,
				`spec.outlierDetection.failurePercentage.requestVolume: must be >= 1, got -1`,
			},
		},
		{
			name:    "outlier detection without detector",
			in:      svcA + "---\n" + policyHead + "  outlierDetection: {consecutive5xx: 0, consecutiveGatewayErrors: 0}\n",
			wantErr: []string{`spec.outlierDetection: no detector is on: set consecutive5xx, consecutiveGatewayErrors or consecutiveLocalOriginFailures above 0, or successRate or failurePercentage`},
		},
		{
			name: "health check errors",
			in: svcA + "---\n" + policyHead + "  healthCheck:\n    http: {path: healthz, expectedStatuses: [200, 700, 200]}\n    tcp: true\n" +
				"    interval: 1s\n    timeout: 2s\n    unhealthyThreshold: 0\n    healthyThreshold: -1\n",
			wantErr: []string{
				`spec.healthCheck.http.path: must be a path starting with '/' without spaces or '#', got "healthz"`,
				`spec.healthCheck.http.expectedStatuses[1]: must be an HTTP status in 100-599, got 700`,
				`spec.healthCheck.http.expectedStatuses[2]: duplicate status 200 (also expectedStatuses[0])`,
				`spec.healthCheck: set exactly one of http, grpc, tcp (got 2)`,
				`spec.healthCheck.timeout: must not be longer than interval (1s), got 2s`,
				`spec.healthCheck.unhealthyThreshold: must be >= 1, got 0`,
				`spec.healthCheck.healthyThreshold: must be >= 1, got -1`,
			},
		},
		{name: "health check needs a probe", in: svcA + "---\n" + policyHead + "  healthCheck: {interval: 1s}\n", wantErr: []string{`spec.healthCheck: set one of http, grpc, tcp: true`}},
		{name: "health check http path required", in: svcA + "---\n" + policyHead + "  healthCheck: {http: {}}\n", wantErr: []string{`spec.healthCheck.http.path: required, e.g. "/healthz"`}},
		{
			name:    "health check grpc service",
			in:      svcA + "---\n" + policyHead + "  healthCheck: {grpc: {service: \"shop cart\"}, timeout: -1s}\n",
			wantErr: []string{`spec.healthCheck.grpc.service: must be a fully qualified gRPC service name (letters, digits, '_', '.'), got "shop cart"`, `spec.healthCheck.timeout: must be > 0, got -1s`},
		},
		{
			name: "retry budget errors",
			in:   svcA + "---\n" + policyHead + "  connectionLimits: {maxRetries: 3}\n  retryBudget: {percent: 101, minRetryConcurrency: -1}\n",
			wantErr: []string{
				`spec.retryBudget.percent: must be in 0-100, got 101`,
				`spec.retryBudget.minRetryConcurrency: must be >= 0, got -1`,
				`spec.retryBudget: set either retryBudget or connectionLimits.maxRetries, not both: the budget replaces the fixed limit`,
			},
		},
		{name: "fault injection ok", in: faultHead + "  delay: {fixedDelay: 100ms, percent: 0}\n  abort: {grpcStatus: 14, percent: 100}\n  headers: [{name: x-fault, value: \"on\"}, {name: X-Test, present: true}]\n"},
		{
			name: "fault injection errors",
			in: faultHead + "  delay: {fixedDelay: -1s, percent: 101}\n  abort: {httpStatus: 100, grpcStatus: 17, percent: -1}\n" +
				"  headers: [{name: \"bad header\", value: x}, {name: x-a}, {name: X-A, value: v, present: true}, {value: v}]\n",
			wantErr: []string{
				`(FaultInjection default/f): spec.delay.fixedDelay: must be > 0, got -1s`,
				`spec.delay.percent: must be in 0-100, got 101`,
				`spec.abort: set either httpStatus or grpcStatus, not both`,
				`spec.abort.httpStatus: must be in 200-599, got 100`,
				`spec.abort.grpcStatus: must be in 1-16, got 17`,
				`spec.abort.percent: must be in 0-100, got -1`,
				`spec.headers[0].name: must be a valid HTTP header name, got "bad header"`,
				`spec.headers[1]: set value (an exact match) or present: true`,
				`spec.headers[2].name: duplicate header "X-A" (also headers[1])`,
				`spec.headers[2]: set either value or present: true, not both`,
				`spec.headers[3].name: required`,
			},
		},
		{name: "fault injection empty", in: faultHead + "  headers: []\n", wantErr: []string{`(FaultInjection default/f): spec: set delay, abort or both`}},
		{
			name:    "fault injection parts required",
			in:      faultHead + "  delay: {percent: 5}\n  abort: {percent: 5}\n",
			wantErr: []string{`spec.delay.fixedDelay: required: how long to hold requests, e.g. "500ms"`, `spec.abort: set httpStatus or grpcStatus`},
		},
		{
			name: "fault and mirror filters ok",
			in: gwEdge + "---\n" + svcA + "---\n" + svcB + "---\n" + faultHead + "  abort: {httpStatus: 503}\n---\n" + routeHead +
				"  rules:\n  - filters:\n    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}\n" +
				"    - {type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}, percent: 10}}\n" +
				"    - {type: RequestMirror, requestMirror: {backendRef: {name: b, port: 80}, fraction: {numerator: 1, denominator: 1000}}}\n" +
				"    backendRefs: [{name: a, port: 80}]\n",
		},
		{
			name:     "fault resolved from the store",
			existing: gwEdge + "---\n" + svcA + "---\n" + faultHead + "  abort: {httpStatus: 503}\n",
			in:       routeHead + "  rules:\n  - filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}]\n    backendRefs: [{name: a, port: 80}]\n",
		},
		{
			name: "extensionRef errors",
			in: gwEdge + "---\n" + svcA + "---\n" + faultHead + "  abort: {httpStatus: 503}\n---\n" + routeHead +
				"  rules:\n  - filters:\n    - {type: ExtensionRef, extensionRef: {group: example.com, kind: RateLimit, name: f}}\n" +
				"    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: gone}}\n" +
				"    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}\n" +
				"    backendRefs:\n    - name: a\n      port: 80\n      filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: f}}]\n",
			wantErr: []string{
				`(HTTPRoute default/r): spec.rules[0].filters[0].extensionRef.group: must be one of weft.dev, got "example.com"`,
				`spec.rules[0].filters[0].extensionRef.kind: must be one of FaultInjection, got "RateLimit"`,
				`spec.rules[0].filters[1].extensionRef: FaultInjection default/gone not found`,
				`spec.rules[0].filters[2].extensionRef: only one FaultInjection per rule (also filters[1])`,
				`spec.rules[0].backendRefs[0].filters[0].extensionRef: a FaultInjection applies to a whole rule: reference it from the rule's filters, not a backendRef's`,
			},
		},
		{
			name: "mirror errors",
			in: gwEdge + "---\n" + svcA + "---\n" + routeHead + "  rules:\n  - filters:\n" +
				"    - {type: RequestMirror, requestMirror: {backendRef: {name: gone, port: 80}, percent: 101}}\n" +
				"    - {type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, percent: 5, fraction: {numerator: 1}}}\n" +
				"    - {type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, fraction: {numerator: 3, denominator: 2}}}\n" +
				"    - {type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, fraction: {numerator: -1, denominator: 0}}}\n" +
				"    - {type: RequestMirror, requestMirror: {backendRef: {name: a}}}\n" +
				"    backendRefs: [{name: a, port: 80}]\n",
			wantErr: []string{
				`spec.rules[0].filters[0].requestMirror.percent: must be in 0-100, got 101`,
				`spec.rules[0].filters[1].requestMirror: set either percent or fraction, not both`,
				`spec.rules[0].filters[2].requestMirror.fraction.numerator: must not be above the denominator (2), got 3`,
				`spec.rules[0].filters[3].requestMirror.fraction.denominator: must be >= 1, got 0`,
				`spec.rules[0].filters[3].requestMirror.fraction.numerator: must be >= 0, got -1`,
				`spec.rules[0].filters[4].requestMirror.backendRef.port: required for a Service backend`,
			},
			wantWarn: []string{`spec.rules[0].filters[0].requestMirror.backendRef: Service default/gone not found`},
		},
		{
			name: "grpcroute fault and mirror",
			in: svcA + "---\n" + faultHead + "  abort: {grpcStatus: 14}\n---\n" + grpcHead + "  rules:\n  - filters:\n" +
				"    - {type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: nope}}\n" +
				"    - {type: RequestMirror, requestMirror: {backendRef: {name: a, port: 80}, percent: 200}}\n    backendRefs: [{name: a, port: 80}]\n",
			wantErr: []string{
				`(GRPCRoute default/g): spec.rules[0].filters[0].extensionRef: FaultInjection default/nope not found`,
				`spec.rules[0].filters[1].requestMirror.percent: must be in 0-100, got 200`,
			},
		},
		{name: "hash needed", in: svcA + "---\n" + policyHead + "  loadBalancer: {policy: maglev}\n", wantErr: []string{`spec.loadBalancer.hash: required for policy maglev`}},
		{name: "hash not allowed", in: svcA + "---\n" + policyHead + "  loadBalancer: {policy: random, hash: {sourceIP: true}}\n", wantErr: []string{`spec.loadBalancer.hash: only allowed with policy ring_hash or maglev`}},
		{name: "hash exactly one", in: svcA + "---\n" + policyHead + "  loadBalancer: {policy: maglev, hash: {sourceIP: true, cookie: s}}\n", wantErr: []string{`spec.loadBalancer.hash: set exactly one of header, cookie, sourceIP (got 2)`}},
		{name: "policy dangling target", in: policyHead, wantWarn: []string{`(BackendPolicy default/p): spec.targetRef: Service default/a not found`}},
		{
			name: "gateway errors",
			in: "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: edge}\nspec:\n  listeners:\n  - {name: http, port: 8080, protocol: HTTP, hostname: \"*.Example.com\"}\n" +
				"  - {name: http, port: 8080, protocol: TCP}\n  - {name: web, port: 8443, protocol: HTTPS}\n  - {name: q, port: 53, protocol: QUIC}\n",
			wantErr: []string{
				`spec.gatewayClassName: required`,
				`spec.listeners[0].hostname: must be a lower-case DNS name, optionally starting with "*.", got "*.Example.com"`,
				`spec.listeners[1].name: duplicate listener name "http" (also spec.listeners[0])`,
				`spec.listeners[1].protocol: port 8080 is already used with protocol HTTP by spec.listeners[0]`,
				`spec.listeners[2].tls.certificateRefs: required for protocol HTTPS`,
				`spec.listeners[3].protocol: must be one of HTTP, HTTPS, TLS, TCP, UDP, got "QUIC"`,
			},
		},
		{
			name: "httproute ok",
			in: gwEdge + "---\n" + svcA + "---\n" + routeHead + "  hostnames: [shop.example.com, \"*.example.org\"]\n  rules:\n  - matches:\n    - path: {type: Exact, value: /a}\n      headers: [{name: x-user, value: bob}, {type: RegularExpression, name: x-v, value: \"^v[0-9]+$\"}]\n" +
				"      queryParams: [{name: q, value: \"1\"}]\n      method: GET\n    filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: b}], remove: [x-b]}}]\n" +
				"    backendRefs: [{name: a, port: 80, weight: 0}]\n    timeouts: {request: 10s, backendRequest: 2s}\n",
		},
		{
			name: "httproute errors",
			in: gwEdge + "---\n" + svcA + "---\n" + routeHead + "  hostnames: [\"10.0.0.1\", \"bad host\"]\n  rules:\n  - matches:\n    - path: {type: Exact, value: a}\n    - path: {type: PathPrefix, value: /a//b}\n" +
				"    - path: {type: RegularExpression, value: \"(a\"}\n    - path: {type: Glob, value: /x}\n    - headers: [{name: \"bad header\", value: x}, {name: X-A, value: \"1\"}, {name: x-a, value: \"2\"}, {type: RegularExpression, name: yy, value: \"[\"}]\n" +
				"      method: FETCH\n    backendRefs:\n    - {name: a, port: 80, weight: 1}\n    - {name: a, port: 80, weight: -5}\n    - {name: a, weight: 2000000}\n    - {name: a, port: 80, kind: Pod}\n    timeouts: {request: 1s, backendRequest: 5s}\n" +
				"  - filters: [{type: RequestRedirect}, {type: Teleport}]\n    backendRefs: [{name: a, port: 80}]\n",
			wantErr: []string{
				`f.yaml: document 3 (HTTPRoute default/r): spec.hostnames[0]: must be a DNS name, not an IP address, got "10.0.0.1"`,
				`spec.hostnames[1]: must be a lower-case DNS name`,
				`spec.rules[0].matches[0].path.value: must be an absolute path starting with '/' for type Exact, got "a"`,
				`spec.rules[0].matches[1].path.value: must be a normalized path without '//'`,
				`spec.rules[0].matches[2].path.value: invalid regular expression (RE2 syntax): missing closing ): ` + "`(a`",
				`spec.rules[0].matches[3].path.type: must be one of Exact, PathPrefix, RegularExpression, got "Glob"`,
				`spec.rules[0].matches[4].headers[0].name: must be a valid HTTP header name, got "bad header"`,
				`spec.rules[0].matches[4].headers[2].name: duplicate header "x-a" (also headers[1])`,
				`spec.rules[0].matches[4].headers[3].value: invalid regular expression (RE2 syntax): missing closing ]`,
				`spec.rules[0].matches[4].method: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, got "FETCH"`,
				`f.yaml: document 3 (HTTPRoute default/r): spec.rules[0].backendRefs[1].weight: must be >= 0, got -5`,
				`spec.rules[0].backendRefs[2].port: required for a Service backend`,
				`spec.rules[0].backendRefs[2].weight: must be <= 1000000, got 2000000`,
				`spec.rules[0].backendRefs[3].kind: only Service backends are supported, got "Pod"`,
				`spec.rules[0].timeouts.backendRequest: must not be longer than the request timeout (1s), got 5s`,
				`spec.rules[1].filters[0].requestRedirect: required for filter type RequestRedirect`,
				`spec.rules[1].filters[0]: a RequestRedirect filter must not be used together with backendRefs`,
				`spec.rules[1].filters[1].type: must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite, ExtensionRef, CORS, got "Teleport"`,
			},
		},
		{name: "httproute bad timeout", in: gwEdge + "---\n" + svcA + "---\n" + routeHead + "  rules:\n  - backendRefs: [{name: a, port: 80}]\n    timeouts: {request: 1.5s}\n", wantErr: []string{`spec.rules[0].timeouts.request: invalid duration "1.5s": want up to four number-unit pairs`}},
		{name: "filter field mismatch", in: gwEdge + "---\n" + routeHead + "  rules:\n  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {}, urlRewrite: {}}]\n", wantErr: []string{`spec.rules[0].filters[0].urlRewrite: must not be set for filter type RequestHeaderModifier`}},
		{name: "route needs parentRefs", in: "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {rules: [{}]}\n", wantErr: []string{`spec.parentRefs: at least one parentRef is required (a Gateway, or a Service for mesh routes)`}},
		{
			name: "parentRef errors",
			in:   "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{kind: Deployment, name: x}, {group: example.com, name: edge}, {kind: Service, name: a, port: 0}]\n",
			wantErr: []string{
				`spec.parentRefs[0].kind: must be Gateway or Service, got "Deployment"`,
				`spec.parentRefs[1].group: must be "gateway.networking.k8s.io" for kind Gateway, got "example.com"`,
				`spec.parentRefs[2].port: must be a port number in 1-65535, got 0`,
			},
			wantWarn: []string{`spec.parentRefs[1]: Gateway default/edge not found`},
		},
		{
			name:     "dangling references are warnings",
			in:       routeHead + "  rules:\n  - backendRefs: [{name: gone, port: 80}]\n",
			wantWarn: []string{`f.yaml: document 1 (HTTPRoute default/r): spec.parentRefs[0]: Gateway default/edge not found`, `spec.rules[0].backendRefs[0]: Service default/gone not found`},
		},
		{name: "missing listener section", in: gwEdge + "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec: {parentRefs: [{name: edge, sectionName: https}]}\n", wantWarn: []string{`spec.parentRefs[0].sectionName: Gateway default/edge has no listener "https"`}},
		{name: "references resolved from the store", existing: svcA + "---\n" + gwEdge, in: routeHead + "  rules:\n  - backendRefs: [{name: a, port: 80}]\n"},
		{
			name: "conflicting routes in one apply",
			in: gwEdge + "---\n" + svcA + "---\n" + routeHead + "  rules:\n  - matches: [{path: {value: /shop/}, headers: [{name: X-A, value: \"1\"}, {name: b, value: \"2\"}]}]\n    backendRefs: [{name: a, port: 80}]\n" +
				"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: s}\nspec:\n  parentRefs: [{name: edge}]\n  rules:\n  - matches: [{path: {type: PathPrefix, value: /shop}, headers: [{name: b, value: \"2\"}, {name: x-a, value: \"1\"}]}]\n    backendRefs: [{name: a, port: 80}]\n",
			wantErr: []string{`f.yaml: document 3 (HTTPRoute default/r): spec.rules[0].matches[0]: conflicts with HTTPRoute default/s (spec.rules[0].matches[0]): both attach to Gateway default/edge with the identical match PathPrefix "/shop" header=b Exact 2 header=x-a Exact 1`},
		},
		{
			name:     "conflict with a stored route",
			existing: gwEdge + "---\n" + svcA + "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: old}\nspec:\n  parentRefs: [{name: edge}]\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n",
			in:       routeHead + "  rules:\n  - matches: [{path: {type: PathPrefix, value: /}}]\n    backendRefs: [{name: a, port: 80}]\n",
			wantErr:  []string{`f.yaml: document 1 (HTTPRoute default/r): spec.rules[0].matches[0]: conflicts with HTTPRoute default/old (spec.rules[0]): both attach to Gateway default/edge with the identical match PathPrefix "/"`},
		},
		{
			name:     "re-applying a stored route is no conflict",
			existing: gwEdge + "---\n" + svcA + "---\n" + routeHead + "  rules: [{backendRefs: [{name: a, port: 80}]}]\n",
			in:       routeHead + "  rules: [{backendRefs: [{name: a, port: 80}]}]\n",
		},
		{
			name: "different hostnames do not conflict",
			in: gwEdge + "---\n" + svcA + "---\n" + routeHead + "  hostnames: [a.example.com]\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n" +
				"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: s}\nspec:\n  parentRefs: [{name: edge}]\n  hostnames: [b.example.com]\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n",
		},
		{
			name: "wildcard hostname overlaps",
			in: gwEdge + "---\n" + svcA + "---\n" + routeHead + "  hostnames: [\"*.example.com\"]\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n" +
				"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: s}\nspec:\n  parentRefs: [{name: edge}]\n  hostnames: [b.example.com]\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n",
			wantErr: []string{`conflicts with HTTPRoute default/s (spec.rules[0])`},
		},
		{name: "duplicate objects", in: svcA + "---\n" + svcA, wantErr: []string{`f.yaml: document 2 (Service default/a): duplicate object: Service default/a is also defined in f.yaml document 1`}},
		{
			name: "grpcroute errors",
			in: svcA + "---\n" + grpcHead + "  rules:\n  - matches:\n    - method: {}\n    - method: {service: \"shop cart\", method: \"Add-Item\"}\n    - method: {type: RegularExpression, service: \"(\"}\n" +
				"    - headers: [{name: \"a:b\", value: x}]\n    filters: [{type: RequestRedirect}]\n    backendRefs: [{name: a, port: 8080}]\n",
			wantErr: []string{
				`(GRPCRoute default/g): spec.rules[0].matches[0].method: set service, method or both`,
				`spec.rules[0].matches[1].method.service: must be a fully qualified gRPC service name (letters, digits, '_', '.'), got "shop cart"`,
				`spec.rules[0].matches[1].method.method: must be a gRPC method name (letters, digits, '_'), got "Add-Item"`,
				`spec.rules[0].matches[2].method.service: invalid regular expression (RE2 syntax)`,
				`spec.rules[0].matches[3].headers[0].name: must be a valid HTTP header name, got "a:b"`,
				`spec.rules[0].filters[0].type: must be one of RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef, got "RequestRedirect"`,
			},
			wantWarn: []string{`spec.rules[0].backendRefs[0]: Service default/a has no port 8080 (ports: 80)`},
		},
		{
			name:    "tcproute needs backends",
			in:      svcA + "---\napiVersion: gateway.networking.k8s.io/v1alpha2\nkind: TCPRoute\nmetadata: {name: t}\nspec:\n  parentRefs: [{kind: Service, name: a}]\n  rules: [{}]\n",
			wantErr: []string{`(TCPRoute default/t): spec.rules[0].backendRefs: at least one backendRef is required`},
		},
		{name: "bad resourceVersion", in: "apiVersion: weft.dev/v1alpha1\nkind: Service\nmetadata: {name: a, resourceVersion: abc}\nspec: {ports: [{port: 80}]}\n", wantErr: []string{`metadata.resourceVersion: must be a decimal number, got "abc"`}},
	}
	runValidateCases(t, tests)
}

func runValidateCases(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := mustDecode(t, "f.yaml", tc.in)
			var lister Lister
			if tc.existing != "" {
				lister = sliceLister(mustDecode(t, "stored", tc.existing))
			}
			warns, err := Validate(context.Background(), objs, lister)
			if len(tc.wantErr) == 0 && err != nil {
				t.Fatalf("unexpected error:\n%v", err)
			}
			if len(tc.wantErr) > 0 && err == nil {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain\n  %s\ngot:\n%v", w, err)
				}
			}
			if len(tc.wantErr) > 0 && len(Errors(err)) != len(tc.wantErr) {
				t.Errorf("got %d errors, want %d:\n%v", len(Errors(err)), len(tc.wantErr), err)
			}
			all := strings.Join(warns, "\n")
			for _, w := range tc.wantWarn {
				if !strings.Contains(all, w) {
					t.Errorf("warnings do not contain\n  %s\ngot:\n%s", w, all)
				}
			}
			if len(tc.wantWarn) == 0 && len(warns) > 0 {
				t.Errorf("unexpected warnings:\n%s", all)
			}
		})
	}
}

func TestValidateShopHasNoWarnings(t *testing.T) {
	b, err := os.ReadFile("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := mustDecode(t, "shop.yaml", string(b))
	warns, err := Validate(context.Background(), objs, nil)
	if err != nil || len(warns) > 0 {
		t.Fatalf("err %v, warnings %q", err, warns)
	}
}
