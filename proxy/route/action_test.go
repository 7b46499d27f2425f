package route

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func route1(t *testing.T, r string) *Route {
	t.Helper()
	tbl := mustBuild(t, oneRoute(r))
	return tbl.vhosts[0].routes[0]
}

func TestPickClusterWeighted(t *testing.T) {
	rt := route1(t, `{match: {prefix: "/"}, route: {weighted_clusters: {clusters: [{name: a, weight: 1}, {name: zero, weight: 0}, {name: b, weight: 3}]}}}`)
	tests := []struct {
		rnd  uint64
		want string
	}{
		{0, "a"}, {1, "b"}, {2, "b"}, {3, "b"}, {4, "a"}, {5, "b"}, {1<<64 - 1, "b"}, // (2^64-1) % 4 == 3
	}
	for _, tc := range tests {
		if got := rt.PickCluster(tc.rnd); got != tc.want {
			t.Errorf("PickCluster(%d) = %s, want %s", tc.rnd, got, tc.want)
		}
	}
	counts := map[string]int{}
	for rnd := range uint64(4000) {
		counts[rt.PickCluster(rnd*7919)]++
	}
	if counts["a"] != 1000 || counts["b"] != 3000 || counts["zero"] != 0 {
		t.Errorf("distribution %v, want a:1000 b:3000", counts)
	}
	if got := rt.Weighted; !reflect.DeepEqual(got, []WeightedCluster{{"a", 1}, {"zero", 0}, {"b", 3}}) {
		t.Errorf("Weighted = %v", got)
	}
}

func TestPickClusterSingle(t *testing.T) {
	rt := route1(t, `{match: {prefix: "/"}, route: {cluster: only}}`)
	if got := rt.PickCluster(12345); got != "only" {
		t.Fatalf("got %s", got)
	}
}

func TestTableClusters(t *testing.T) {
	tbl := mustBuild(t, `
name: t
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - {match: {prefix: "/a"}, route: {cluster: c2}}
  - {match: {prefix: "/b"}, route: {weighted_clusters: {clusters: [{name: c1, weight: 1}, {name: c2, weight: 1}]}}}
  - {match: {prefix: "/c"}, direct_response: {status: 200}}
`)
	if got := tbl.Clusters(); !slices.Equal(got, []string{"c1", "c2"}) {
		t.Fatalf("Clusters = %v", got)
	}
	if tbl.Name() != "t" {
		t.Fatalf("Name = %q", tbl.Name())
	}
}

func TestRouteActionSettings(t *testing.T) {
	tests := []struct {
		name  string
		route string
		check func(t *testing.T, r *Route)
	}{
		{"default timeout", `{match: {prefix: "/"}, route: {cluster: c}}`, func(t *testing.T, r *Route) {
			if r.Timeout != 15*time.Second || r.HasIdleTimeout || r.Retry != nil || r.ClusterNotFound != 503 || r.Action != ActionForward {
				t.Errorf("got %+v", r)
			}
		}},
		{"timeout zero disables", `{match: {prefix: "/"}, route: {cluster: c, timeout: 0s}}`, func(t *testing.T, r *Route) {
			if r.Timeout != 0 {
				t.Errorf("Timeout = %v", r.Timeout)
			}
		}},
		{"timeouts", `{match: {prefix: "/"}, route: {cluster: c, timeout: 2.5s, idle_timeout: 0s}}`, func(t *testing.T, r *Route) {
			if r.Timeout != 2500*time.Millisecond || !r.HasIdleTimeout || r.IdleTimeout != 0 {
				t.Errorf("got %v %v %v", r.Timeout, r.HasIdleTimeout, r.IdleTimeout)
			}
		}},
		{"host rewrite and not-found code", `{match: {prefix: "/"}, route: {cluster: c, host_rewrite_literal: up.internal, cluster_not_found_response_code: NOT_FOUND}}`, func(t *testing.T, r *Route) {
			if r.HostRewrite != "up.internal" || r.ClusterNotFound != 404 {
				t.Errorf("got %q %d", r.HostRewrite, r.ClusterNotFound)
			}
		}},
		{"decorator", `{match: {prefix: "/"}, decorator: {operation: getUser}, route: {cluster: c}}`, func(t *testing.T, r *Route) {
			if r.Decorator != "getUser" {
				t.Errorf("Decorator = %q", r.Decorator)
			}
		}},
		{"retry defaults", `{match: {prefix: "/"}, route: {cluster: c, retry_policy: {retry_on: "5xx"}}}`, func(t *testing.T, r *Route) {
			want := &RetryPolicy{On: Retry5xx, NumRetries: 1, BackoffBase: 25 * time.Millisecond, BackoffMax: 250 * time.Millisecond}
			if !reflect.DeepEqual(r.Retry, want) {
				t.Errorf("Retry = %+v, want %+v", r.Retry, want)
			}
		}},
		{"retry full", `{match: {prefix: "/"}, route: {cluster: c, retry_policy: {
			retry_on: "gateway-error, reset,reset-before-request,connect-failure,retriable-4xx,refused-stream,retriable-status-codes,cancelled,deadline-exceeded,internal,resource-exhausted,unavailable",
			num_retries: 0, per_try_timeout: 1s, retry_back_off: {base_interval: 0.1s},
			retriable_status_codes: [503, 418, 418],
			retry_host_predicate: [{name: envoy.retry_host_predicates.previous_hosts, typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}}],
			host_selection_retry_max_attempts: 5}}}`, func(t *testing.T, r *Route) {
			p := r.Retry
			if p.On != RetryOn(1<<13-1)&^Retry5xx {
				t.Errorf("On = %v", p.On)
			}
			if p.NumRetries != 0 || p.PerTryTimeout != time.Second || p.BackoffBase != 100*time.Millisecond || p.BackoffMax != time.Second {
				t.Errorf("got %+v", p)
			}
			if !slices.Equal(p.RetriableStatusCodes, []int{418, 503}) || !p.AvoidPreviousHosts || p.HostSelectionMaxAttempts != 5 {
				t.Errorf("got %+v", p)
			}
		}},
		{"retry back-off max", `{match: {prefix: "/"}, route: {cluster: c, retry_policy: {retry_on: reset, retry_back_off: {base_interval: 0.01s, max_interval: 0.05s}}}}`, func(t *testing.T, r *Route) {
			if r.Retry.BackoffBase != 10*time.Millisecond || r.Retry.BackoffMax != 50*time.Millisecond {
				t.Errorf("got %+v", r.Retry)
			}
		}},
		{"hash policies", `{match: {prefix: "/"}, route: {cluster: c, hash_policy: [
			{header: {header_name: X-User}}, {cookie: {name: sid, ttl: 0s}, terminal: true}, {connection_properties: {source_ip: true}}, {query_parameter: {name: q}}]}}`, func(t *testing.T, r *Route) {
			want := []HashPolicy{{Kind: HashHeader, Name: "x-user"}, {Kind: HashCookie, Name: "sid", Terminal: true}, {Kind: HashSourceIP}, {Kind: HashQueryParameter, Name: "q"}}
			if !reflect.DeepEqual(r.Hash, want) {
				t.Errorf("Hash = %+v", r.Hash)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, route1(t, tc.route)) })
	}
}

func TestVirtualHostRetryPolicy(t *testing.T) {
	tbl := mustBuild(t, `
name: t
virtual_hosts:
- name: vh
  domains: ["*"]
  retry_policy: {retry_on: "5xx", num_retries: 3}
  routes:
  - {match: {prefix: "/own"}, route: {cluster: c, retry_policy: {retry_on: "reset"}}}
  - {match: {prefix: "/"}, route: {cluster: c}}
`)
	own := tbl.Match(&Request{Path: "/own"})
	inherited := tbl.Match(&Request{Path: "/x"})
	if own.Retry.On != RetryReset || own.Retry.NumRetries != 1 {
		t.Errorf("route policy should replace vhost's whole: %+v", own.Retry)
	}
	if inherited.Retry.On != Retry5xx || inherited.Retry.NumRetries != 3 {
		t.Errorf("inherited: %+v", inherited.Retry)
	}
}

func TestRetryPredicates(t *testing.T) {
	p := &RetryPolicy{On: RetryGatewayError | RetryRetriable4xx | RetryRetriableStatusCodes | RetryGRPCUnavailable, RetriableStatusCodes: []int{418}}
	for code, want := range map[int]bool{500: false, 502: true, 503: true, 504: true, 409: true, 418: true, 404: false} {
		if got := p.RetriableStatus(code); got != want {
			t.Errorf("RetriableStatus(%d) = %v", code, got)
		}
	}
	if !(&RetryPolicy{On: Retry5xx}).RetriableStatus(500) || (&RetryPolicy{On: Retry5xx}).RetriableStatus(499) {
		t.Error("5xx")
	}
	if !p.RetriableReset(false, false, true) {
		t.Error("gateway-error retries resets")
	}
	cf := &RetryPolicy{On: RetryConnectFailure | RetryResetBeforeRequest}
	if !cf.RetriableReset(true, false, true) || cf.RetriableReset(false, true, true) || !cf.RetriableReset(false, false, false) {
		t.Error("connect-failure / reset-before-request")
	}
	if !(&RetryPolicy{On: RetryRefusedStream}).RetriableReset(false, true, true) {
		t.Error("refused-stream")
	}
	if !p.RetriableGRPC(14) || p.RetriableGRPC(13) {
		t.Error("grpc")
	}
	var none *RetryPolicy
	if none.RetriableStatus(503) || none.RetriableReset(true, true, false) || none.RetriableGRPC(14) {
		t.Error("nil policy retries")
	}
	if s := (Retry5xx | RetryGRPCInternal).String(); s != "5xx,internal" {
		t.Errorf("String = %q", s)
	}
}

func TestRequestHash(t *testing.T) {
	rt := route1(t, `{match: {prefix: "/"}, route: {cluster: c, hash_policy: [
		{header: {header_name: x-user}}, {cookie: {name: sid}, terminal: true}, {connection_properties: {source_ip: true}}]}}`)
	rot := func(h uint64) uint64 { return h<<1 | h>>63 }
	tests := []struct {
		name   string
		req    Request
		want   uint64
		wantOK bool
	}{
		{"nothing", Request{Header: hdrs()}, 0, false},
		{"source ip only", Request{SourceIP: "10.0.0.1"}, xxhash.Sum64String("10.0.0.1"), true},
		{"terminal stops once any hash exists", Request{Header: hdrs("x-user", "u1"), SourceIP: "10.0.0.1"}, xxhash.Sum64String("u1"), true},
		{"terminal cookie stops", Request{Header: hdrs("cookie", `a=1; sid="abc"`), SourceIP: "10.0.0.1"}, xxhash.Sum64String("abc"), true},
		{"cookie missing goes on", Request{Header: hdrs("cookie", "a=1"), SourceIP: "ip"}, xxhash.Sum64String("ip"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := rt.RequestHash(&tc.req)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("got %x %v, want %x %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
	q := route1(t, `{match: {prefix: "/"}, route: {cluster: c, hash_policy: [{query_parameter: {name: k}}, {header: {header_name: ":authority"}}]}}`)
	want := rot(xxhash.Sum64String("v")) ^ xxhash.Sum64String("a.com")
	if h, ok := q.RequestHash(&Request{Authority: "a.com", Path: "/x?k=v"}); !ok || h != want {
		t.Errorf("combined hash %x %v, want %x", h, ok, want)
	}
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		name, route, path, want string
	}{
		{"none", `{match: {prefix: "/a"}, route: {cluster: c}}`, "/a/b?q", "/a/b?q"},
		{"prefix", `{match: {prefix: "/api/"}, route: {cluster: c, prefix_rewrite: "/"}}`, "/api/users?x=1", "/users?x=1"},
		{"prefix to longer", `{match: {prefix: "/v1"}, route: {cluster: c, prefix_rewrite: "/internal/v1"}}`, "/v1/x", "/internal/v1/x"},
		{"prefix case-insensitive", `{match: {prefix: "/API", case_sensitive: false}, route: {cluster: c, prefix_rewrite: "/x"}}`, "/api/y", "/x/y"},
		{"path rewrites whole path keeps query", `{match: {path: "/old"}, route: {cluster: c, prefix_rewrite: "/new"}}`, "/old?a=b", "/new?a=b"},
		{"separated prefix", `{match: {path_separated_prefix: "/svc"}, route: {cluster: c, prefix_rewrite: "/"}}`, "/svc/x", "//x"},
		{"regex match with prefix rewrite", `{match: {safe_regex: {regex: "/u/[0-9]+"}}, route: {cluster: c, prefix_rewrite: "/user"}}`, "/u/42?v", "/user?v"},
		{"regex rewrite groups", `{match: {prefix: "/"}, route: {cluster: c, regex_rewrite: {pattern: {regex: "^/service/([^/]+)(/.*)$"}, substitution: "\\2/instance/\\1"}}}`, "/service/foo/v1/api?x", "/v1/api/instance/foo?x"},
		{"regex rewrite all occurrences", `{match: {prefix: "/"}, route: {cluster: c, regex_rewrite: {pattern: {regex: "one"}, substitution: "two"}}}`, "/xxx/one/yyy/one/zzz", "/xxx/two/yyy/two/zzz"},
		{"regex rewrite literal dollar and backslash", `{match: {prefix: "/"}, route: {cluster: c, regex_rewrite: {pattern: {regex: "a"}, substitution: "$1\\\\"}}}`, "/a", "/$1\\"},
		{"regex rewrite whole match", `{match: {prefix: "/"}, route: {cluster: c, regex_rewrite: {pattern: {regex: "[0-9]+"}, substitution: "<\\0>"}}}`, "/a1/b22", "/a<1>/b<22>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := route1(t, tc.route)
			if !rt.match.matchPath(tc.path) {
				t.Fatalf("route does not match %q", tc.path)
			}
			if got := rt.Rewrite(tc.path); got != tc.want {
				t.Errorf("Rewrite(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}

func TestRewriteNoAllocWithoutRewrite(t *testing.T) {
	rt := route1(t, `{match: {prefix: "/a"}, route: {cluster: c}}`)
	if a := testing.AllocsPerRun(100, func() { rt.Rewrite("/a/b") }); a != 0 {
		t.Fatalf("%v allocs", a)
	}
}

func TestRedirectLocation(t *testing.T) {
	tests := []struct {
		name, route string
		req         Request
		want        string
		code        int
	}{
		{"https keeps path and query", `{match: {prefix: "/"}, redirect: {https_redirect: true}}`,
			Request{Authority: "a.com", Path: "/x?y=1"}, "https://a.com/x?y=1", 301},
		{"https drops default port", `{match: {prefix: "/"}, redirect: {https_redirect: true}}`,
			Request{Authority: "a.com:80", Path: "/"}, "https://a.com/", 301},
		{"https keeps other port", `{match: {prefix: "/"}, redirect: {https_redirect: true}}`,
			Request{Authority: "a.com:8080", Path: "/"}, "https://a.com:8080/", 301},
		{"scheme redirect from https", `{match: {prefix: "/"}, redirect: {scheme_redirect: HTTP, response_code: FOUND}}`,
			Request{Authority: "a.com:443", Path: "/", Scheme: "https"}, "http://a.com/", 302},
		{"host and port", `{match: {prefix: "/"}, redirect: {host_redirect: b.com, port_redirect: 8443, response_code: SEE_OTHER}}`,
			Request{Authority: "a.com:80", Path: "/p"}, "http://b.com:8443/p", 303},
		{"port only", `{match: {prefix: "/"}, redirect: {port_redirect: 9000, response_code: TEMPORARY_REDIRECT}}`,
			Request{Authority: "a.com:80", Path: "/p"}, "http://a.com:9000/p", 307},
		{"path redirect keeps query", `{match: {prefix: "/"}, redirect: {path_redirect: "/new", response_code: PERMANENT_REDIRECT}}`,
			Request{Authority: "a.com", Path: "/old?q=1"}, "http://a.com/new?q=1", 308},
		{"path redirect with own query", `{match: {prefix: "/"}, redirect: {path_redirect: "/new?z=2", strip_query: true}}`,
			Request{Authority: "a.com", Path: "/old?q=1"}, "http://a.com/new?z=2", 301},
		{"strip query", `{match: {prefix: "/"}, redirect: {host_redirect: b.com, strip_query: true}}`,
			Request{Authority: "a.com", Path: "/p?q=1"}, "http://b.com/p", 301},
		{"prefix rewrite", `{match: {prefix: "/old/"}, redirect: {prefix_rewrite: "/new/"}}`,
			Request{Authority: "a.com", Path: "/old/x?q"}, "http://a.com/new/x?q", 301},
		{"regex rewrite", `{match: {prefix: "/"}, redirect: {regex_rewrite: {pattern: {regex: "^/v1/(.*)$"}, substitution: "/v2/\\1"}}}`,
			Request{Authority: "a.com", Path: "/v1/x?q"}, "http://a.com/v2/x?q", 301},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := mustBuild(t, oneRoute(tc.route))
			rt := tbl.Match(&tc.req)
			if rt == nil || rt.Action != ActionRedirect {
				t.Fatalf("got %+v", rt)
			}
			if got := rt.RedirectLocation(&tc.req); got != tc.want {
				t.Errorf("Location = %q, want %q", got, tc.want)
			}
			if rt.Redirect.Code != tc.code {
				t.Errorf("Code = %d, want %d", rt.Redirect.Code, tc.code)
			}
		})
	}
}

func TestDirectResponse(t *testing.T) {
	rt := route1(t, `{match: {prefix: "/"}, direct_response: {status: 418, body: {inline_string: "teapot"}}}`)
	if rt.Action != ActionDirect || rt.DirectResponse.Status != 418 || rt.DirectResponse.Body != "teapot" {
		t.Fatalf("got %+v %+v", rt, rt.DirectResponse)
	}
	rt = route1(t, `{match: {prefix: "/"}, direct_response: {status: 200, body: {inline_bytes: "aGk="}}}`)
	if rt.DirectResponse.Body != "hi" {
		t.Fatalf("Body = %q", rt.DirectResponse.Body)
	}
}

func TestHeaderMutationOrder(t *testing.T) {
	const cfg = `
name: t
%s
request_headers_to_add:
- {header: {key: x-level, value: config}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
- {header: {key: x-config, value: "100%%"}}
request_headers_to_remove: [x-remove-config]
response_headers_to_add:
- {header: {key: x-resp, value: config}, append_action: ADD_IF_ABSENT}
virtual_hosts:
- name: vh
  domains: ["*"]
  request_headers_to_add:
  - {header: {key: x-level, value: vhost}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
  request_headers_to_remove: [x-remove-vhost]
  response_headers_to_add:
  - {header: {key: x-resp, value: vhost}, append: false}
  routes:
  - match: {prefix: "/"}
    route: {cluster: c}
    request_headers_to_add:
    - {header: {key: X-Level, value: route}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}
    - {header: {key: x-multi, value: "1"}}
    - {header: {key: x-multi, value: "2"}, append: true}
    - {header: {key: x-absent, value: a}, append_action: ADD_IF_ABSENT}
    - {header: {key: x-present, value: new}, append_action: ADD_IF_ABSENT}
    - {header: {key: x-only-if, value: set}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-only-if-present, value: set}, append_action: OVERWRITE_IF_EXISTS}
    - {header: {key: x-empty, value: ""}}
    - {header: {key: x-keep-empty, value: ""}, keep_empty_value: true}
    - {header: {key: x-route-removed, value: "re-added"}}
    request_headers_to_remove: [x-route-removed, X-Remove-Route]
    response_headers_to_add:
    - {header: {key: x-resp, value: route}}
`
	t.Run("least specific wins", func(t *testing.T) {
		rt := mustBuild(t, fmtCfg(cfg, "")).Match(&Request{Path: "/"})
		h := HTTPHeader(http.Header{
			"X-Present": {"old"}, "X-Only-If-Present": {"old"}, "X-Route-Removed": {"old"},
			"X-Remove-Route": {"1"}, "X-Remove-Vhost": {"1"}, "X-Remove-Config": {"1"},
		})
		rt.RequestHeaders.Apply(h)
		want := http.Header{
			"X-Level": {"config"}, "X-Config": {"100%"}, "X-Multi": {"1", "2"}, "X-Absent": {"a"},
			"X-Present": {"old"}, "X-Only-If-Present": {"set"}, "X-Keep-Empty": {""}, "X-Route-Removed": {"re-added"},
		}
		if !reflect.DeepEqual(http.Header(h), want) {
			t.Errorf("request headers\n got %v\nwant %v", http.Header(h), want)
		}
		resp := hdrs("x-resp", "upstream")
		rt.ResponseHeaders.Apply(resp)
		// route appends, vhost overwrites (append: false), config adds only if absent.
		if !reflect.DeepEqual(*resp, HeaderList{{"x-resp", "vhost"}}) {
			t.Errorf("response headers %v", *resp)
		}
		ops := rt.RequestHeaders.Ops()
		if ops[0] != (HeaderOp{Action: Remove, Name: "x-route-removed"}) || ops[2] != (HeaderOp{Action: OverwriteIfExistsOrAdd, Name: "x-level", Value: "route"}) {
			t.Errorf("ops start %v", ops[:3])
		}
	})
	t.Run("most specific wins", func(t *testing.T) {
		rt := mustBuild(t, fmtCfg(cfg, "most_specific_header_mutations_wins: true")).Match(&Request{Path: "/"})
		h := hdrs()
		rt.RequestHeaders.Apply(h)
		if v, _ := h.Get("x-level"); v != "route" {
			t.Errorf("x-level = %q, want route", v)
		}
		resp := hdrs()
		rt.ResponseHeaders.Apply(resp)
		if v, _ := resp.Get("x-resp"); v != "vhost,route" {
			t.Errorf("x-resp = %q, want vhost,route", v)
		}
	})
	t.Run("nil mutation", func(t *testing.T) {
		rt := route1(t, `{match: {prefix: "/"}, route: {cluster: c}}`)
		if !rt.RequestHeaders.Empty() || rt.RequestHeaders.Ops() != nil {
			t.Fatal("want empty")
		}
		rt.RequestHeaders.Apply(hdrs()) // must not panic
	})
}

func fmtCfg(cfg, extra string) string {
	out := []byte{}
	for i := 0; i < len(cfg); i++ {
		switch {
		case cfg[i] == '%' && i+1 < len(cfg) && cfg[i+1] == 's':
			out = append(out, extra...)
			i++
		case cfg[i] == '%' && i+1 < len(cfg) && cfg[i+1] == '%':
			out = append(out, "%%"...)
			i++
		default:
			out = append(out, cfg[i])
		}
	}
	return string(out)
}

func TestHeaderAdapters(t *testing.T) {
	h := HTTPHeader(http.Header{})
	h.Add("x-a", "1")
	h.Add("x-a", "2")
	if v, ok := h.Get("x-a"); !ok || v != "1,2" {
		t.Errorf("Get = %q %v", v, ok)
	}
	h.Set("x-a", "3")
	if v, _ := h.Get("X-A"); v != "3" {
		t.Errorf("Get after Set = %q", v)
	}
	h.Del("x-a")
	if _, ok := h.Get("x-a"); ok {
		t.Error("present after Del")
	}
	longName := "x-" + strings.Repeat("y", 200)
	h.Set(longName, "v")
	if v, ok := h.Get(longName); !ok || v != "v" {
		t.Errorf("long name Get = %q %v", v, ok)
	}

	l := hdrs("a", "1", "b", "2", "A", "3")
	if v, _ := l.Get("a"); v != "1,3" {
		t.Errorf("HeaderList Get = %q", v)
	}
	l.Set("a", "9")
	if !reflect.DeepEqual(*l, HeaderList{{"b", "2"}, {"a", "9"}}) {
		t.Errorf("after Set %v", *l)
	}
	l.Del("b")
	if !reflect.DeepEqual(*l, HeaderList{{"a", "9"}}) {
		t.Errorf("after Del %v", *l)
	}
}
