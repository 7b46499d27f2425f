// Package route compiles an Envoy v3 RouteConfiguration into an immutable
// route Table for the sidecar's hot path, and matches requests against it.
//
// Build validates the whole configuration and either returns a Table or an
// error naming the field path, for example
//
//	route config "outbound|80": virtual_hosts[0].routes[2].match.safe_regex.regex: invalid RE2: ...
//	route config "outbound|80": virtual_hosts[1].routes[0].route.cluster_header: unsupported
//
// Every populated field outside the subset below is rejected (errors.Is(err,
// ErrUnsupported)); nothing is silently ignored. Unknown (unparsed) proto
// fields are ignored, as Envoy does.
//
// # Supported subset
//
// RouteConfiguration: name; virtual_hosts; request_headers_to_add/remove and
// response_headers_to_add/remove; most_specific_header_mutations_wins;
// ignore_port_in_host_matching; max_direct_response_body_size_bytes (default
// 4096); validate_clusters and metadata (accepted, no effect).
//
// VirtualHost: name (required); domains (at least one); routes;
// request/response headers to add/remove; retry_policy (a route's own
// retry_policy replaces it whole); metadata (no effect).
//
// Domains, with Envoy semantics: exact ("a.example.com"), suffix wildcard
// ("*.example.com", "*-bar.example.com"), prefix wildcard ("api.*",
// "api-*"), and "*". A wildcard never matches the empty string. The most
// specific wins: exact, then the longest suffix wildcard, then the longest
// prefix wildcard, then "*". Hosts match case-insensitively; the lookup
// (exact, suffix, prefix) runs first with the Host as received (port
// included), then with the port stripped ("[::1]:80" → "[::1]"), and only
// then falls back to "*". With ignore_port_in_host_matching the port is
// stripped before the first lookup. A domain may appear only once in the
// whole configuration (compared case-insensitively); a '*' anywhere but the
// first or last character is rejected.
//
// Route: name; match; one of route, redirect, direct_response; request and
// response headers to add/remove; decorator.operation (exposed as
// Route.Decorator); metadata (no effect). Routes are evaluated in order and
// the first match wins.
//
// RouteMatch: prefix (against the whole :path, query included, as Envoy);
// path (exact, query and fragment excluded); safe_regex (RE2 syntax via Go's
// regexp, which must match the whole path without the query);
// path_separated_prefix (the prefix followed by '/' or the end of the path);
// case_sensitive (default true; applies to prefix, path and
// path_separated_prefix, not to safe_regex); grpc (content-type starts with
// application/grpc); headers; query_parameters.
//
// HeaderMatcher: name (lower-cased; the pseudo-headers :authority, :method,
// :path and :scheme read the Request fields); string_match (exact, prefix,
// suffix, contains, safe_regex; ignore_case folds ASCII); present_match;
// invert_match; treat_missing_header_as_empty; the deprecated exact_match,
// prefix_match, suffix_match, contains_match and safe_regex_match (case
// sensitive). A matcher without specifier is a presence match. A header that
// is absent never matches a value matcher, inverted or not, unless
// treat_missing_header_as_empty. A repeated header is matched against its
// values joined with ",". range_match is unsupported.
//
// QueryParameterMatcher: name; string_match; present_match. The first
// occurrence of the parameter is used; keys and values are percent-decoded
// ('+' is not a space), as Envoy.
//
// RouteAction: cluster; weighted_clusters (clusters with name and weight;
// total_weight, if set, must equal the sum; a zero sum is an error; per-cluster
// headers, host rewrites and runtime keys are unsupported);
// cluster_not_found_response_code; timeout (default 15s, 0 disables);
// idle_timeout (0 disables; unset leaves the listener's stream idle timeout);
// retry_policy; prefix_rewrite or regex_rewrite (RE2 substitution syntax
// \0-\9, \\); host_rewrite_literal; hash_policy (header, cookie with name, ttl
// and path accepted but no cookie is generated, connection_properties
// source_ip, query_parameter; terminal).
//
// RetryPolicy: retry_on (5xx, gateway-error, reset, reset-before-request,
// connect-failure, retriable-4xx, refused-stream, retriable-status-codes,
// and the gRPC classes cancelled, deadline-exceeded, internal,
// resource-exhausted, unavailable; envoy-ratelimited, retriable-headers and
// http3-post-connect-failure are unsupported; unknown tokens are errors);
// num_retries (default 1); per_try_timeout; retry_back_off base_interval
// (default 25ms, at least 1ms) and max_interval (default 10 × base);
// retriable_status_codes; retry_host_predicate previous_hosts only;
// host_selection_retry_max_attempts.
//
// RedirectAction: https_redirect, scheme_redirect, host_redirect,
// port_redirect, path_redirect, prefix_rewrite, regex_rewrite, strip_query,
// response_code (301 default, 302, 303, 307, 308). See Route.RedirectLocation.
//
// DirectResponseAction: status (200-599) and body as inline_string or
// inline_bytes (filename and environment_variable are unsupported).
//
// Header mutations: HeaderValueOption header (key, value or raw_value),
// append_action (APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT,
// OVERWRITE_IF_EXISTS_OR_ADD, OVERWRITE_IF_EXISTS), the deprecated append
// (not together with append_action), keep_empty_value (empty values are
// dropped otherwise). Values are literal: "%%" stands for "%", any other
// %FORMAT% is unsupported. Pseudo-headers may not be added or removed, nor
// the host request header. Each route gets one precomputed list per direction
// (Route.RequestHeaders, Route.ResponseHeaders) in Envoy's order: route level,
// then virtual host, then route configuration (reversed with
// most_specific_header_mutations_wins); within a level the removals come
// first, then the additions in configuration order.
package route
