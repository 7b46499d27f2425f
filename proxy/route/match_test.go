package route

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

const domainsConfig = `
name: domains
virtual_hosts:
- {name: exact, domains: ["api.example.com"], routes: [{match: {prefix: "/"}, route: {cluster: exact}}]}
- {name: exact-port, domains: ["api.example.com:8080"], routes: [{match: {prefix: "/"}, route: {cluster: exact-port}}]}
- {name: suffix, domains: ["*.example.com"], routes: [{match: {prefix: "/"}, route: {cluster: suffix}}]}
- {name: suffix-long, domains: ["*.b.example.com"], routes: [{match: {prefix: "/"}, route: {cluster: suffix-long}}]}
- {name: suffix-dash, domains: ["*-bar.example.com"], routes: [{match: {prefix: "/"}, route: {cluster: suffix-dash}}]}
- {name: prefix, domains: ["web.*"], routes: [{match: {prefix: "/"}, route: {cluster: prefix}}]}
- {name: prefix-long, domains: ["web.ex*"], routes: [{match: {prefix: "/"}, route: {cluster: prefix-long}}]}
- {name: mixed, domains: ["MiXeD.Example.ORG", "other.org"], routes: [{match: {prefix: "/"}, route: {cluster: mixed}}]}
- {name: one-char, domains: ["x"], routes: [{match: {prefix: "/"}, route: {cluster: one-char}}]}
- {name: v6, domains: ["[::1]"], routes: [{match: {prefix: "/"}, route: {cluster: v6}}]}
- {name: star, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: star}}]}
`

func TestDomainSelection(t *testing.T) {
	tbl := mustBuild(t, domainsConfig)
	tests := []struct {
		name, host, want string
	}{
		{"exact", "api.example.com", "exact"},
		{"exact case-insensitive", "API.Example.COM", "exact"},
		{"exact with port as given", "api.example.com:8080", "exact-port"},
		{"exact after stripping port", "api.example.com:9090", "exact"},
		{"suffix", "x.example.com", "suffix"},
		{"longest suffix wins", "x.b.example.com", "suffix-long"},
		{"suffix with dash", "foo-bar.example.com", "suffix-dash"},
		{"wildcard does not match empty", "-bar.example.com", "suffix"},
		{"suffix needs one char", ".example.com", "star"},
		{"exact beats suffix", "api.example.com:1", "exact"},
		{"suffix beats prefix", "web.b.example.com", "suffix-long"},
		{"prefix", "web.local", "prefix"},
		{"longest prefix", "web.exotic", "prefix-long"},
		{"prefix matches port as given", "web.ex:80", "prefix-long"},
		{"suffix after stripping port", "x.example.com:8080", "suffix"},
		{"mixed-case domain", "mixed.example.org", "mixed"},
		{"second domain", "OTHER.org:443", "mixed"},
		{"ipv6 with port", "[::1]:8080", "v6"},
		{"one-character domain", "X:1", "one-char"},
		{"ipv6 bare", "[::1]", "v6"},
		{"unbracketed ipv6 untouched", "::1", "star"},
		{"default", "unknown.net", "star"},
		{"empty host", "", "star"},
		{"non-numeric port not stripped", "api.example.com:http", "star"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := tbl.Match(&Request{Authority: tc.host, Path: "/"})
			if rt == nil {
				t.Fatalf("no route for %q", tc.host)
			}
			if rt.Cluster != tc.want {
				t.Errorf("host %q: got %s, want %s", tc.host, rt.Cluster, tc.want)
			}
			if got := tbl.VirtualHostName(tc.host); got != tc.want {
				t.Errorf("VirtualHostName(%q) = %q", tc.host, got)
			}
		})
	}
}

func TestNoDefaultVirtualHost(t *testing.T) {
	tbl := mustBuild(t, `
name: t
virtual_hosts:
- {name: a, domains: ["a.com"], routes: [{match: {prefix: "/"}, route: {cluster: a}}]}
`)
	if rt := tbl.Match(&Request{Authority: "b.com", Path: "/"}); rt != nil {
		t.Fatalf("want nil, got %+v", rt)
	}
	if got := tbl.VirtualHostName("b.com"); got != "" {
		t.Fatalf("VirtualHostName = %q", got)
	}
}

func TestIgnorePortInHostMatching(t *testing.T) {
	tbl := mustBuild(t, `
name: t
ignore_port_in_host_matching: true
virtual_hosts:
- {name: a, domains: ["a.com"], routes: [{match: {prefix: "/"}, route: {cluster: a}}]}
- {name: aport, domains: ["a.com:80"], routes: [{match: {prefix: "/"}, route: {cluster: aport}}]}
`)
	if rt := tbl.Match(&Request{Authority: "a.com:80", Path: "/"}); rt == nil || rt.Cluster != "a" {
		t.Fatalf("got %+v, want cluster a", rt)
	}
}

func TestPathMatch(t *testing.T) {
	tests := []struct {
		name  string
		match string
		path  string
		want  bool
	}{
		{"prefix", `{prefix: "/api"}`, "/api/v1", true},
		{"prefix exact length", `{prefix: "/api"}`, "/api", true},
		{"prefix not slash-separated", `{prefix: "/api"}`, "/apix", true},
		{"prefix miss", `{prefix: "/api"}`, "/ap", false},
		{"prefix case", `{prefix: "/api"}`, "/API", false},
		{"prefix case-insensitive", `{prefix: "/api", case_sensitive: false}`, "/API/x", true},
		{"prefix explicit case-sensitive", `{prefix: "/api", case_sensitive: true}`, "/API/x", false},
		{"prefix includes query", `{prefix: "/a?x=1"}`, "/a?x=1&y", true},
		{"empty prefix", `{prefix: ""}`, "/anything", true},
		{"path", `{path: "/exact"}`, "/exact", true},
		{"path ignores query", `{path: "/exact"}`, "/exact?q=1", true},
		{"path ignores fragment", `{path: "/exact"}`, "/exact#frag", true},
		{"path longer", `{path: "/exact"}`, "/exact/", false},
		{"path case-insensitive", `{path: "/Exact", case_sensitive: false}`, "/eXACT", true},
		{"regex full match", `{safe_regex: {regex: "/v[0-9]+/.*"}}`, "/v12/users", true},
		{"regex must match whole path", `{safe_regex: {regex: "/v[0-9]+"}}`, "/v12/users", false},
		{"regex without query", `{safe_regex: {regex: "/v[0-9]+"}}`, "/v12?x", true},
		{"regex alternation anchored", `{safe_regex: {regex: "/a|/b"}}`, "/bc", false},
		{"regex (?i) flag", `{safe_regex: {regex: "(?i)/api/x"}}`, "/API/X", true},
		{"regex literal prefix miss", `{safe_regex: {regex: "/api/v[0-9]"}}`, "/apx/v1", false},
		{"regex alternation shares no literal", `{safe_regex: {regex: "/a/.*|/b/.*"}}`, "/b/c", true},
		{"regex ignores case_sensitive", `{safe_regex: {regex: "/a"}, case_sensitive: false}`, "/A", false},
		{"separated prefix exact", `{path_separated_prefix: "/api"}`, "/api", true},
		{"separated prefix slash", `{path_separated_prefix: "/api"}`, "/api/x", true},
		{"separated prefix query", `{path_separated_prefix: "/api"}`, "/api?x", true},
		{"separated prefix not segment", `{path_separated_prefix: "/api"}`, "/apix", false},
		{"separated prefix case-insensitive", `{path_separated_prefix: "/api", case_sensitive: false}`, "/API/x", true},
		{"query exact", `{prefix: "/", query_parameters: [{name: "v", string_match: {exact: "2"}}]}`, "/x?a=1&v=2", true},
		{"query first value", `{prefix: "/", query_parameters: [{name: "v", string_match: {exact: "2"}}]}`, "/x?v=1&v=2", false},
		{"query decoded", `{prefix: "/", query_parameters: [{name: "k y", string_match: {exact: "a/b"}}]}`, "/x?k%20y=a%2Fb", true},
		{"query plus stays", `{prefix: "/", query_parameters: [{name: "k", string_match: {exact: "a+b"}}]}`, "/x?k=a+b", true},
		{"query ignore case", `{prefix: "/", query_parameters: [{name: "k", string_match: {prefix: "AB", ignore_case: true}}]}`, "/x?k=abc", true},
		{"query missing", `{prefix: "/", query_parameters: [{name: "k", string_match: {exact: ""}}]}`, "/x?j=1", false},
		{"query present", `{prefix: "/", query_parameters: [{name: "k", present_match: true}]}`, "/x?k", true},
		{"query present empty value", `{prefix: "/", query_parameters: [{name: "k", present_match: true}]}`, "/x?a&k=", true},
		{"query name only is presence", `{prefix: "/", query_parameters: [{name: "k"}]}`, "/x?k=1", true},
		{"query absent", `{prefix: "/", query_parameters: [{name: "k", present_match: true}]}`, "/x", false},
		{"query ends at fragment", `{prefix: "/", query_parameters: [{name: "k", string_match: {exact: "1"}}]}`, "/x?k=1#f", true},
		{"query malformed escape kept", `{prefix: "/", query_parameters: [{name: "k", string_match: {exact: "%zz"}}]}`, "/x?k=%zz", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := mustBuild(t, oneRoute(`{match: `+tc.match+`, route: {cluster: c}}`))
			got := tbl.Match(&Request{Authority: "h", Path: tc.path}) != nil
			if got != tc.want {
				t.Errorf("match %s path %q: got %v, want %v", tc.match, tc.path, got, tc.want)
			}
		})
	}
}

func TestHeaderMatch(t *testing.T) {
	tests := []struct {
		name    string
		matcher string
		req     Request
		want    bool
	}{
		{"exact", `{name: x-v, string_match: {exact: "2"}}`, Request{Header: hdrs("x-v", "2")}, true},
		{"exact miss", `{name: x-v, string_match: {exact: "2"}}`, Request{Header: hdrs("x-v", "3")}, false},
		{"name case folded", `{name: X-V, string_match: {exact: "2"}}`, Request{Header: hdrs("x-v", "2")}, true},
		{"repeated joined", `{name: x-v, string_match: {exact: "1,2"}}`, Request{Header: hdrs("x-v", "1", "x-v", "2")}, true},
		{"prefix", `{name: x-v, string_match: {prefix: "ab"}}`, Request{Header: hdrs("x-v", "abc")}, true},
		{"suffix", `{name: x-v, string_match: {suffix: "bc"}}`, Request{Header: hdrs("x-v", "abc")}, true},
		{"contains", `{name: x-v, string_match: {contains: "b"}}`, Request{Header: hdrs("x-v", "abc")}, true},
		{"contains ignore case", `{name: x-v, string_match: {contains: "B", ignore_case: true}}`, Request{Header: hdrs("x-v", "abc")}, true},
		{"contains case", `{name: x-v, string_match: {contains: "B"}}`, Request{Header: hdrs("x-v", "abc")}, false},
		{"exact ignore case", `{name: x-v, string_match: {exact: "ABC", ignore_case: true}}`, Request{Header: hdrs("x-v", "abc")}, true},
		{"suffix ignore case", `{name: x-v, string_match: {suffix: "BC", ignore_case: true}}`, Request{Header: hdrs("x-v", "abc")}, true},
		{"regex full", `{name: x-v, string_match: {safe_regex: {regex: "[0-9]+"}}}`, Request{Header: hdrs("x-v", "123")}, true},
		{"regex literal then class", `{name: x-v, string_match: {safe_regex: {regex: "v1\\.[0-9]+"}}}`, Request{Header: hdrs("x-v", "v1.12")}, true},
		{"regex literal miss", `{name: x-v, string_match: {safe_regex: {regex: "v1\\.[0-9]+"}}}`, Request{Header: hdrs("x-v", "v2.12")}, false},
		{"regex partial", `{name: x-v, string_match: {safe_regex: {regex: "[0-9]+"}}}`, Request{Header: hdrs("x-v", "123a")}, false},
		{"deprecated exact", `{name: x-v, exact_match: "2"}`, Request{Header: hdrs("x-v", "2")}, true},
		{"deprecated prefix", `{name: x-v, prefix_match: "a"}`, Request{Header: hdrs("x-v", "ab")}, true},
		{"deprecated suffix", `{name: x-v, suffix_match: "b"}`, Request{Header: hdrs("x-v", "ab")}, true},
		{"deprecated contains", `{name: x-v, contains_match: "b"}`, Request{Header: hdrs("x-v", "abc")}, true},
		{"deprecated regex", `{name: x-v, safe_regex_match: {regex: "a.c"}}`, Request{Header: hdrs("x-v", "abc")}, true},
		{"present", `{name: x-v, present_match: true}`, Request{Header: hdrs("x-v", "")}, true},
		{"present missing", `{name: x-v, present_match: true}`, Request{Header: hdrs()}, false},
		{"absent", `{name: x-v, present_match: false}`, Request{Header: hdrs()}, true},
		{"absent but present", `{name: x-v, present_match: false}`, Request{Header: hdrs("x-v", "1")}, false},
		{"present inverted", `{name: x-v, present_match: true, invert_match: true}`, Request{Header: hdrs()}, true},
		{"no specifier is presence", `{name: x-v}`, Request{Header: hdrs("x-v", "1")}, true},
		{"no specifier missing", `{name: x-v}`, Request{}, false},
		{"inverted exact", `{name: x-v, string_match: {exact: "2"}, invert_match: true}`, Request{Header: hdrs("x-v", "3")}, true},
		{"inverted exact matching", `{name: x-v, string_match: {exact: "2"}, invert_match: true}`, Request{Header: hdrs("x-v", "2")}, false},
		{"inverted missing never matches", `{name: x-v, string_match: {exact: "2"}, invert_match: true}`, Request{Header: hdrs()}, false},
		{"missing as empty", `{name: x-v, string_match: {exact: ""}, treat_missing_header_as_empty: true}`, Request{}, true},
		{"missing as empty inverted", `{name: x-v, string_match: {exact: "2"}, invert_match: true, treat_missing_header_as_empty: true}`, Request{}, true},
		{"method", `{name: ":method", string_match: {exact: "POST"}}`, Request{Method: "POST"}, true},
		{"method miss", `{name: ":method", string_match: {exact: "POST"}}`, Request{Method: "GET"}, false},
		{"authority", `{name: ":authority", string_match: {suffix: ".svc"}}`, Request{Authority: "a.svc"}, true},
		{"path pseudo", `{name: ":path", string_match: {contains: "?debug"}}`, Request{Path: "/x?debug"}, true},
		{"scheme default", `{name: ":scheme", string_match: {exact: "http"}}`, Request{}, true},
		{"scheme https", `{name: ":scheme", string_match: {exact: "https"}}`, Request{Scheme: "https"}, true},
		{"net/http header", `{name: x-user-id, string_match: {exact: "7"}}`, Request{Header: HTTPHeader(http.Header{"X-User-Id": {"7"}})}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tbl := mustBuild(t, oneRoute(`{match: {prefix: "/", headers: [`+tc.matcher+`]}, route: {cluster: c}}`))
			req := tc.req
			if req.Path == "" {
				req.Path = "/"
			}
			got := tbl.Match(&req) != nil
			if got != tc.want {
				t.Errorf("matcher %s: got %v, want %v", tc.matcher, got, tc.want)
			}
		})
	}
}

func TestGRPCMatch(t *testing.T) {
	tbl := mustBuild(t, oneRoute(`{match: {prefix: "/", grpc: {}}, route: {cluster: c}}`))
	for ct, want := range map[string]bool{"application/grpc": true, "application/grpc+proto": true, "application/json": false, "": false} {
		if got := tbl.Match(&Request{Path: "/", Header: hdrs("content-type", ct)}) != nil; got != want {
			t.Errorf("content-type %q: got %v, want %v", ct, got, want)
		}
	}
}

func TestRouteOrderFirstMatchWins(t *testing.T) {
	tbl := mustBuild(t, `
name: t
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - {name: hdr, match: {prefix: "/api", headers: [{name: x-canary, present_match: true}]}, route: {cluster: canary}}
  - {name: api, match: {prefix: "/api"}, route: {cluster: api}}
  - {name: api-v2, match: {prefix: "/api/v2"}, route: {cluster: never}}
  - {name: root, match: {prefix: "/"}, route: {cluster: root}}
`)
	tests := []struct {
		name, path string
		h          *HeaderList
		want       string
	}{
		{"header route first", "/api/v2", hdrs("x-canary", "1"), "hdr"},
		{"earlier prefix shadows later", "/api/v2", hdrs(), "api"},
		{"fallback", "/other", hdrs(), "root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := tbl.Match(&Request{Authority: "x", Path: tc.path, Header: tc.h})
			if rt == nil || rt.Name != tc.want {
				t.Fatalf("got %+v, want route %s", rt, tc.want)
			}
			if rt.VirtualHost != "vh" {
				t.Errorf("VirtualHost = %q", rt.VirtualHost)
			}
		})
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	tbl := mustBuild(t, `
name: t
virtual_hosts:
- name: a
  domains: ["a.example.com", "a.example.com:80", "*.b.example.com", "c.*"]
  routes:
  - {match: {path: "/health"}, route: {cluster: h}}
  - {match: {path_separated_prefix: "/v1", headers: [{name: x-v, string_match: {exact: "1"}}, {name: ":method", string_match: {exact: "GET"}}]}, route: {cluster: v1}}
  - {match: {prefix: "/API", case_sensitive: false, headers: [{name: x-tenant, string_match: {prefix: "T", ignore_case: true}}]}, route: {cluster: api}}
  - {match: {prefix: "/"}, route: {cluster: root}}
- {name: star, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: star}}]}
`)
	hl := hdrs("x-v", "1", "x-tenant", "t-9")
	hh := HTTPHeader(http.Header{"X-V": {"1"}, "X-Tenant": {"t-9"}})
	reqs := []Request{
		{Authority: "A.example.com:80", Method: "GET", Path: "/v1/users?x=1", Header: hl},
		{Authority: "x.b.example.com:8443", Method: "GET", Path: "/api/users", Header: hh},
		{Authority: "c.local", Method: "GET", Path: "/health", Header: hh},
		{Authority: "zzz", Method: "GET", Path: "/nothing", Header: hl},
	}
	wants := []string{"v1", "api", "h", "star"}
	for i := range reqs {
		if rt := tbl.Match(&reqs[i]); rt == nil || rt.Cluster != wants[i] {
			t.Fatalf("request %d: got %+v, want %s", i, rt, wants[i])
		}
		allocs := testing.AllocsPerRun(100, func() { tbl.Match(&reqs[i]) })
		if allocs != 0 {
			t.Errorf("request %d: %v allocs per Match, want 0", i, allocs)
		}
	}
}

func TestConcurrentMatch(t *testing.T) {
	tbl := mustBuild(t, domainsConfig)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				host := fmt.Sprintf("h%d.example.com", (g+i)%5)
				if rt := tbl.Match(&Request{Authority: host, Path: "/"}); rt == nil || rt.Cluster != "suffix" {
					t.Errorf("%s: got %+v", host, rt)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestStripPort(t *testing.T) {
	tests := map[string]string{
		"a.com:80": "a.com", "a.com": "a.com", "a.com:": "a.com", "[::1]:80": "[::1]", "[::1]": "[::1]",
		"::1": "::1", "a:b": "a:b", ":80": "", "[::1:80": "[::1:80",
	}
	for in, want := range tests {
		if got := stripPort(in); got != want {
			t.Errorf("stripPort(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDomainSelectionLargeTable(t *testing.T) {
	rc := benchConfig(40, 2, false) // 120 exact domains: the map path
	long := strings.Repeat("l", 300) + ".example.com"
	rc.VirtualHosts[5].Domains = append(rc.VirtualHosts[5].Domains, long)
	rc.VirtualHosts = append(rc.VirtualHosts, &routev3.VirtualHost{Name: "star", Domains: []string{"*"},
		Routes: []*routev3.Route{{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "star"}}}}}})
	tbl, err := Build(rc)
	if err != nil {
		t.Fatal(err)
	}
	if tbl.exactMap == nil {
		t.Fatal("expected the map lookup for a large table")
	}
	tests := []struct{ host, want string }{
		{"svc7.ns0.svc.cluster.local", "svc7.ns0.svc.cluster.local"},
		{"SVC7.NS0.svc.cluster.local:80", "svc7.ns0.svc.cluster.local"},
		{"svc39:9090", "svc39.ns4.svc.cluster.local"},
		{"svc40", "star"},
		{strings.ToUpper(long), "svc5.ns5.svc.cluster.local"},
		{strings.ToUpper(long) + ":80", "svc5.ns5.svc.cluster.local"},
		{long + "x", "star"},
	}
	for _, tc := range tests {
		if got := tbl.VirtualHostName(tc.host); got != tc.want {
			t.Errorf("%.40q: got %q, want %q", tc.host, got, tc.want)
		}
	}
	req := Request{Authority: "SVC7.NS0.svc.cluster.local:80", Path: "/api/v0/x"}
	if a := testing.AllocsPerRun(100, func() { tbl.Match(&req) }); a != 0 {
		t.Errorf("%v allocs per Match", a)
	}
}
