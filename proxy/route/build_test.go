package route

import (
	"errors"
	"strings"
	"testing"
)

// r wraps a route (flow YAML) in a config named "t" with one "*" vhost.
func r(route string) string { return oneRoute(route) }

// act wraps a RouteAction body (flow YAML, without braces).
func act(body string) string { return r(`{match: {prefix: "/"}, route: {` + body + `}}`) }

// mt wraps a RouteMatch body.
func mt(body string) string { return r(`{match: {` + body + `}, route: {cluster: c}}`) }

func TestBuildErrors(t *testing.T) {
	const p = `route config "t": virtual_hosts[0].routes[0].`
	const rp = p + "route.retry_policy."
	tests := []struct {
		name, cfg, want string
		unsupported     bool
	}{
		// Route configuration and virtual hosts.
		{"config field", "name: t\nvhds: {}", `route config "t": vhds: unsupported`, true},
		{"internal only headers", "name: t\ninternal_only_headers: [x]", `route config "t": internal_only_headers: unsupported`, true},
		{"vhost field", "name: t\nvirtual_hosts: [{name: a, domains: ['*'], cors: {}}]", `route config "t": virtual_hosts[0].cors: unsupported`, true},
		{"vhost require_tls", "name: t\nvirtual_hosts: [{name: a, domains: ['*'], require_tls: ALL}]", `route config "t": virtual_hosts[0].require_tls: unsupported`, true},
		{"vhost name", "name: t\nvirtual_hosts: [{domains: ['*']}]", `route config "t": virtual_hosts[0].name: required`, false},
		{"vhost domains", "name: t\nvirtual_hosts: [{name: a}]", `route config "t": virtual_hosts[0].domains: at least one domain required`, false},
		{"duplicate domain", "name: t\nvirtual_hosts: [{name: a, domains: [a.com]}, {name: b, domains: [x.com, A.COM]}]",
			`route config "t": virtual_hosts[1].domains[1]: duplicate domain "A.COM" (also virtual_hosts[0].domains[0])`, false},
		{"duplicate star", "name: t\nvirtual_hosts: [{name: a, domains: ['*']}, {name: b, domains: ['*']}]",
			`route config "t": virtual_hosts[1].domains[0]: duplicate domain "*" (also virtual_hosts[0].domains[0])`, false},
		{"empty domain", "name: t\nvirtual_hosts: [{name: a, domains: ['']}]", `route config "t": virtual_hosts[0].domains[0]: empty domain`, false},
		{"domain control char", "name: t\nvirtual_hosts: [{name: a, domains: [\"a b\"]}]", `route config "t": virtual_hosts[0].domains[0]: invalid character ' ' in domain`, false},
		{"domain inner wildcard", "name: t\nvirtual_hosts: [{name: a, domains: ['a.*.com']}]", `route config "t": virtual_hosts[0].domains[0]: domain "a.*.com": a wildcard is allowed only at the start or the end`, false},
		{"domain both wildcards", "name: t\nvirtual_hosts: [{name: a, domains: ['*a*']}]", `route config "t": virtual_hosts[0].domains[0]: domain "*a*": a wildcard is allowed only at the start or the end`, false},

		// Route.
		{"route field", r(`{match: {prefix: "/"}, route: {cluster: c}, typed_per_filter_config: {x: {"@type": type.googleapis.com/google.protobuf.Empty}}}`), p + `typed_per_filter_config["x"]: unsupported`, true},
		{"route tracing", r(`{match: {prefix: "/"}, route: {cluster: c}, tracing: {}}`), p + "tracing: unsupported", true},
		{"match required", r(`{route: {cluster: c}}`), p + "match: required", false},
		{"action required", r(`{match: {prefix: "/"}}`), `route config "t": virtual_hosts[0].routes[0]: action required: route, redirect or direct_response`, false},
		{"non forwarding", r(`{match: {prefix: "/"}, non_forwarding_action: {}}`), p + "non_forwarding_action: unsupported", true},

		// RouteMatch.
		{"match field", mt(`prefix: "/", runtime_fraction: {default_value: {numerator: 1}}`), p + "match.runtime_fraction: unsupported", true},
		{"match path specifier", mt(`case_sensitive: true`), p + "match: one of prefix, path, safe_regex or path_separated_prefix required", false},
		{"connect matcher", mt(`connect_matcher: {}`), p + "match.connect_matcher: unsupported", true},
		{"separated prefix slash", mt(`path_separated_prefix: "/a/"`), p + `match.path_separated_prefix: "/a/" must be non-empty, without '?' or '#', and not end with '/'`, false},
		{"separated prefix query", mt(`path_separated_prefix: "/a?b"`), p + `match.path_separated_prefix: "/a?b" must be non-empty, without '?' or '#', and not end with '/'`, false},
		{"regex invalid", mt(`safe_regex: {regex: "(a"}`), p + "match.safe_regex.regex: invalid RE2: error parsing regexp: missing closing ): `(a`", false},
		{"regex unbalanced hidden by anchor", mt(`safe_regex: {regex: "a)(b"}`), p + "match.safe_regex.regex: invalid RE2: error parsing regexp: unexpected ): `a)(b`", false},
		{"regex backreference", mt(`safe_regex: {regex: "(a)\\1"}`), p + "match.safe_regex.regex: invalid RE2: error parsing regexp: invalid escape sequence: `\\1`", false},
		{"regex empty", mt(`safe_regex: {}`), p + "match.safe_regex.regex: required", false},
		{"regex too long", mt(`safe_regex: {regex: "` + strings.Repeat("a", 4097) + `"}`), p + "match.safe_regex.regex: longer than 4096 bytes", false},
		{"header range", mt(`prefix: "/", headers: [{name: x, range_match: {start: 1, end: 2}}]`), p + "match.headers[0].range_match: unsupported", true},
		{"header name", mt(`prefix: "/", headers: [{name: "a b", present_match: true}]`), p + `match.headers[0].name: invalid header name "a b"`, false},
		{"header name empty", mt(`prefix: "/", headers: [{present_match: true}]`), p + `match.headers[0].name: empty header name`, false},
		{"header pseudo", mt(`prefix: "/", headers: [{name: ":protocol", present_match: true}]`), p + `match.headers[0].name: pseudo-header ":protocol": unsupported`, true},
		{"header regex", mt(`prefix: "/", headers: [{name: x, string_match: {safe_regex: {regex: "["}}}]`), p + "match.headers[0].string_match.safe_regex.regex: invalid RE2: error parsing regexp: missing closing ]: `[`", false},
		{"header deprecated regex", mt(`prefix: "/", headers: [{name: x, safe_regex_match: {regex: "*"}}]`), p + "match.headers[0].safe_regex_match.regex: invalid RE2: error parsing regexp: missing argument to repetition operator: `*`", false},
		{"string custom", mt(`prefix: "/", headers: [{name: x, string_match: {custom: {name: c}}}]`), p + "match.headers[0].string_match.custom: unsupported", true},
		{"string empty prefix", mt(`prefix: "/", headers: [{name: x, string_match: {prefix: ""}}]`), p + "match.headers[0].string_match.prefix: must not be empty", false},
		{"string empty suffix", mt(`prefix: "/", headers: [{name: x, string_match: {suffix: ""}}]`), p + "match.headers[0].string_match.suffix: must not be empty", false},
		{"string empty contains", mt(`prefix: "/", headers: [{name: x, string_match: {contains: ""}}]`), p + "match.headers[0].string_match.contains: must not be empty", false},
		{"string no pattern", mt(`prefix: "/", headers: [{name: x, string_match: {ignore_case: true}}]`), p + "match.headers[0].string_match: one of exact, prefix, suffix, contains or safe_regex required", false},
		{"query name", mt(`prefix: "/", query_parameters: [{present_match: true}]`), p + "match.query_parameters[0].name: required", false},
		{"query regex", mt(`prefix: "/", query_parameters: [{name: q, string_match: {safe_regex: {regex: "+"}}}]`), p + "match.query_parameters[0].string_match.safe_regex.regex: invalid RE2: error parsing regexp: missing argument to repetition operator: `+`", false},
		{"cookies", mt(`prefix: "/", cookies: [{name: a}]`), p + "match.cookies: unsupported", true},

		// RouteAction.
		{"cluster header", act(`cluster_header: x-cluster`), p + "route.cluster_header: unsupported", true},
		{"cluster empty", act(`cluster: ""`), p + "route.cluster: must not be empty", false},
		{"no cluster", act(`timeout: 1s`), p + "route: cluster or weighted_clusters required", false},
		{"mirror without cluster", act(`cluster: c, request_mirror_policies: [{runtime_fraction: {default_value: {numerator: 5}}}]`), p + "route.request_mirror_policies[0].cluster: required", false},
		{"bad fault config", r(`{match: {prefix: "/"}, route: {cluster: c}, typed_per_filter_config: {envoy.filters.http.fault: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault, abort: {http_status: 700}}}}`), p + `typed_per_filter_config["envoy.filters.http.fault"]: abort.http_status: must be 200-599, got 700`, false},
		{"upgrade configs", act(`cluster: c, upgrade_configs: [{upgrade_type: websocket}]`), p + "route.upgrade_configs: unsupported", true},
		{"auto host rewrite", act(`cluster: c, auto_host_rewrite: true`), p + "route.auto_host_rewrite: unsupported", true},
		{"not found code", act(`cluster: c, cluster_not_found_response_code: 9`), p + "route.cluster_not_found_response_code: unknown value 9", false},
		{"two rewrites", act(`cluster: c, prefix_rewrite: "/", regex_rewrite: {pattern: {regex: a}, substitution: b}`), p + "route.regex_rewrite: only one of prefix_rewrite and regex_rewrite may be set", false},
		{"rewrite group", act(`cluster: c, regex_rewrite: {pattern: {regex: "(a)"}, substitution: "\\2"}`), p + `route.regex_rewrite.substitution: \2 refers to a missing capture group (the pattern has 1)`, false},
		{"rewrite escape", act(`cluster: c, regex_rewrite: {pattern: {regex: "a"}, substitution: "\\n"}`), p + `route.regex_rewrite.substitution: invalid escape at offset 0: use \0-\9 or \\`, false},
		{"rewrite trailing backslash", act(`cluster: c, regex_rewrite: {pattern: {regex: "a"}, substitution: "x\\"}`), p + `route.regex_rewrite.substitution: invalid escape at offset 1: use \0-\9 or \\`, false},
		{"rewrite pattern", act(`cluster: c, regex_rewrite: {pattern: {regex: "("}, substitution: ""}`), p + "route.regex_rewrite.pattern.regex: invalid RE2: error parsing regexp: missing closing ): `(`", false},
		{"rewrite no pattern", act(`cluster: c, regex_rewrite: {substitution: "x"}`), p + "route.regex_rewrite.pattern: required", false},
		{"host rewrite", act(`cluster: c, host_rewrite_literal: "a/b"`), p + `route.host_rewrite_literal: invalid host "a/b"`, false},
		{"timeout negative", act(`cluster: c, timeout: -1s`), p + "route.timeout: must not be negative", false},
		{"idle timeout huge", act(`cluster: c, idle_timeout: 315576000000s`), p + "route.idle_timeout: too large", false},
		{"max stream duration", act(`cluster: c, max_stream_duration: {}`), p + "route.max_stream_duration: unsupported", true},

		// Weighted clusters.
		{"weighted zero", act(`weighted_clusters: {clusters: [{name: a, weight: 0}, {name: b}]}`), p + "route.weighted_clusters.clusters: total weight is zero", false},
		{"weighted none", act(`weighted_clusters: {}`), p + "route.weighted_clusters.clusters: at least one cluster required", false},
		{"weighted overflow", act(`weighted_clusters: {clusters: [{name: a, weight: 4294967295}, {name: b, weight: 1}]}`), p + "route.weighted_clusters.clusters: total weight 4294967296 exceeds 4294967295", false},
		{"weighted total", act(`weighted_clusters: {clusters: [{name: a, weight: 1}], total_weight: 100}`), p + "route.weighted_clusters.total_weight: 100 differs from the sum of the weights 1", false},
		{"weighted name", act(`weighted_clusters: {clusters: [{weight: 1}]}`), p + "route.weighted_clusters.clusters[0].name: required", false},
		{"weighted cluster header", act(`weighted_clusters: {clusters: [{name: a, weight: 1}, {cluster_header: x, weight: 1}]}`), p + "route.weighted_clusters.clusters[1].cluster_header: unsupported", true},
		{"weighted headers", act(`weighted_clusters: {clusters: [{name: a, weight: 1, request_headers_to_add: [{header: {key: a, value: b}}]}]}`), p + "route.weighted_clusters.clusters[0].request_headers_to_add: unsupported", true},
		{"weighted runtime", act(`weighted_clusters: {clusters: [{name: a, weight: 1}], runtime_key_prefix: r}`), p + "route.weighted_clusters.runtime_key_prefix: unsupported", true},

		// Retry policy.
		{"retry priority", act(`cluster: c, retry_policy: {retry_priority: {name: x}}`), rp + "retry_priority: unsupported", true},
		{"retry on unsupported", act(`cluster: c, retry_policy: {retry_on: "5xx,envoy-ratelimited"}`), rp + `retry_on: "envoy-ratelimited": unsupported`, true},
		{"retry on unknown", act(`cluster: c, retry_policy: {retry_on: "5xx,sometimes"}`), rp + `retry_on: unknown condition "sometimes"`, false},
		{"backoff base", act(`cluster: c, retry_policy: {retry_back_off: {max_interval: 1s}}`), rp + "retry_back_off.base_interval: required", false},
		{"backoff small", act(`cluster: c, retry_policy: {retry_back_off: {base_interval: 0.0001s}}`), rp + "retry_back_off.base_interval: must be at least 1ms", false},
		{"backoff max", act(`cluster: c, retry_policy: {retry_back_off: {base_interval: 1s, max_interval: 0.5s}}`), rp + "retry_back_off.max_interval: 500ms is less than base_interval 1s", false},
		{"per try timeout", act(`cluster: c, retry_policy: {per_try_timeout: -2s}`), rp + "per_try_timeout: must not be negative", false},
		{"per try idle", act(`cluster: c, retry_policy: {per_try_idle_timeout: 1s}`), rp + "per_try_idle_timeout: unsupported", true},
		{"status code", act(`cluster: c, retry_policy: {retriable_status_codes: [503, 99]}`), rp + "retriable_status_codes[1]: 99 is not an HTTP status", false},
		{"host predicate name", act(`cluster: c, retry_policy: {retry_host_predicate: [{name: envoy.retry_host_predicates.omit_canary_hosts}]}`), rp + `retry_host_predicate[0].name: "envoy.retry_host_predicates.omit_canary_hosts": unsupported`, true},
		{"host predicate type", act(`cluster: c, retry_policy: {retry_host_predicate: [{name: x, typed_config: {"@type": type.googleapis.com/google.protobuf.Empty}}]}`), rp + "retry_host_predicate[0].typed_config: type.googleapis.com/google.protobuf.Empty: unsupported", true},
		{"host selection", act(`cluster: c, retry_policy: {host_selection_retry_max_attempts: -1}`), rp + "host_selection_retry_max_attempts: must not be negative", false},
		{"vhost retry", "name: t\nvirtual_hosts: [{name: a, domains: ['*'], retry_policy: {retry_on: nope}}]", `route config "t": virtual_hosts[0].retry_policy.retry_on: unknown condition "nope"`, false},

		// Hash policy.
		{"hash filter state", act(`cluster: c, hash_policy: [{filter_state: {key: k}}]`), p + "route.hash_policy[0].filter_state: unsupported", true},
		{"hash none", act(`cluster: c, hash_policy: [{terminal: true}]`), p + "route.hash_policy[0]: one of header, cookie, connection_properties or query_parameter required", false},
		{"hash header name", act(`cluster: c, hash_policy: [{header: {header_name: ""}}]`), p + "route.hash_policy[0].header.header_name: empty header name", false},
		{"hash header rewrite", act(`cluster: c, hash_policy: [{header: {header_name: a, regex_rewrite: {}}}]`), p + "route.hash_policy[0].header.regex_rewrite: unsupported", true},
		{"hash cookie name", act(`cluster: c, hash_policy: [{cookie: {ttl: 1s}}]`), p + "route.hash_policy[0].cookie.name: required", false},
		{"hash cookie attributes", act(`cluster: c, hash_policy: [{cookie: {name: a, attributes: [{name: x}]}}]`), p + "route.hash_policy[0].cookie.attributes: unsupported", true},
		{"hash source ip false", act(`cluster: c, hash_policy: [{connection_properties: {}}]`), p + "route.hash_policy[0].connection_properties.source_ip: must be true", false},
		{"hash query name", act(`cluster: c, hash_policy: [{query_parameter: {}}]`), p + "route.hash_policy[0].query_parameter.name: required", false},

		// Redirect.
		{"redirect path rewrite", r(`{match: {prefix: "/"}, redirect: {path_rewrite: "/x"}}`), p + "redirect.path_rewrite: unsupported", true},
		{"redirect scheme", r(`{match: {prefix: "/"}, redirect: {scheme_redirect: "ht tp"}}`), p + `redirect.scheme_redirect: invalid scheme "ht tp"`, false},
		{"redirect host", r(`{match: {prefix: "/"}, redirect: {host_redirect: "a/b"}}`), p + `redirect.host_redirect: invalid host "a/b"`, false},
		{"redirect port", r(`{match: {prefix: "/"}, redirect: {port_redirect: 70000}}`), p + "redirect.port_redirect: 70000 out of range", false},
		{"redirect path", r(`{match: {prefix: "/"}, redirect: {path_redirect: "x"}}`), p + `redirect.path_redirect: invalid path "x"`, false},
		{"redirect prefix", r(`{match: {prefix: "/"}, redirect: {prefix_rewrite: "/a b"}}`), p + `redirect.prefix_rewrite: invalid prefix "/a b"`, false},
		{"redirect regex", r(`{match: {prefix: "/"}, redirect: {regex_rewrite: {pattern: {regex: "a"}, substitution: "\\1"}}}`), p + `redirect.regex_rewrite.substitution: \1 refers to a missing capture group (the pattern has 0)`, false},
		{"redirect code", r(`{match: {prefix: "/"}, redirect: {response_code: 7}}`), p + "redirect.response_code: unknown value 7", false},

		// Direct response.
		{"direct status", r(`{match: {prefix: "/"}, direct_response: {status: 100}}`), p + "direct_response.status: 100 not in [200, 599]", false},
		{"direct file", r(`{match: {prefix: "/"}, direct_response: {status: 200, body: {filename: /etc/passwd}}}`), p + "direct_response.body.filename: unsupported", true},
		{"direct format", r(`{match: {prefix: "/"}, direct_response: {status: 200, body_format: {}}}`), p + "direct_response.body_format: unsupported", true},
		{"direct size", "name: t\nmax_direct_response_body_size_bytes: 3\nvirtual_hosts: [{name: a, domains: ['*'], routes: [{match: {prefix: '/'}, direct_response: {status: 200, body: {inline_string: abcd}}}]}]",
			p + "direct_response.body: 4 bytes exceed max_direct_response_body_size_bytes 3", false},

		// Header mutations.
		{"remove pseudo", "name: t\nrequest_headers_to_remove: [':path']", `route config "t": request_headers_to_remove[0]: pseudo-header ":path" may not be modified`, false},
		{"remove host", "name: t\nrequest_headers_to_remove: [Host]", `route config "t": request_headers_to_remove[0]: the host header may not be removed`, false},
		{"remove invalid", "name: t\nvirtual_hosts: [{name: a, domains: ['*'], response_headers_to_remove: ['a b']}]", `route config "t": virtual_hosts[0].response_headers_to_remove[0]: invalid header name "a b"`, false},
		{"add no header", r(`{match: {prefix: "/"}, route: {cluster: c}, request_headers_to_add: [{append_action: ADD_IF_ABSENT}]}`), p + "request_headers_to_add[0].header: required", false},
		{"add host", r(`{match: {prefix: "/"}, route: {cluster: c}, request_headers_to_add: [{header: {key: host, value: x}}]}`), p + "request_headers_to_add[0].header.key: the host header may not be modified", false},
		{"add pseudo", r(`{match: {prefix: "/"}, route: {cluster: c}, response_headers_to_add: [{header: {key: ":status", value: "200"}}]}`), p + `response_headers_to_add[0].header.key: pseudo-header ":status" may not be modified`, false},
		{"add format", r(`{match: {prefix: "/"}, route: {cluster: c}, request_headers_to_add: [{header: {key: x, value: "%DOWNSTREAM_REMOTE_ADDRESS%"}}]}`),
			p + `request_headers_to_add[0].header.value: format string "%DOWNSTREAM_REMOTE_ADDRESS%": unsupported (only literal values; write %% for %)`, true},
		{"add raw format", r(`{match: {prefix: "/"}, route: {cluster: c}, request_headers_to_add: [{header: {key: x, raw_value: "JQ=="}}]}`),
			p + `request_headers_to_add[0].header.raw_value: format string "%": unsupported (only literal values; write %% for %)`, true},
		{"add newline", r(`{match: {prefix: "/"}, route: {cluster: c}, request_headers_to_add: [{header: {key: x, value: "a\nb"}}]}`), p + `request_headers_to_add[0].header.value: control character '\n' in value`, false},
		{"add both appends", r(`{match: {prefix: "/"}, route: {cluster: c}, request_headers_to_add: [{header: {key: x, value: v}, append: true, append_action: ADD_IF_ABSENT}]}`),
			p + "request_headers_to_add[0].append: append and append_action are mutually exclusive", false},
		{"add action", r(`{match: {prefix: "/"}, route: {cluster: c}, request_headers_to_add: [{header: {key: x, value: v}, append_action: 9}]}`), p + "request_headers_to_add[0].append_action: unknown value 9", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(parseRC(t, tc.cfg))
			if err == nil {
				t.Fatalf("Build succeeded, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
			if got := errors.Is(err, ErrUnsupported); got != tc.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v", got)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error is not a *FieldError")
			}
		})
	}
}

func TestBuildNil(t *testing.T) {
	if _, err := Build(nil); err == nil || err.Error() != "route config: nil" {
		t.Fatalf("got %v", err)
	}
}

func TestBuildAcceptsNoEffectFields(t *testing.T) {
	mustBuild(t, `
name: t
validate_clusters: true
metadata: {filter_metadata: {x: {a: 1}}}
virtual_hosts:
- name: a
  domains: ["*"]
  metadata: {filter_metadata: {x: {a: 1}}}
  routes:
  - match: {prefix: "/", grpc: {}}
    metadata: {filter_metadata: {x: {a: 1}}}
    decorator: {operation: op, propagate: false}
    route:
      cluster: c
      hash_policy: [{cookie: {name: s, ttl: 10s, path: /}}]
      retry_policy: {retry_on: "5xx", retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts}]}
  - match: {safe_regex: {regex: "x", google_re2: {max_program_size: 100}}}
    route: {cluster: c}
`)
}
