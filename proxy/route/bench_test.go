package route

import (
	"fmt"
	"net/http"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// benchConfig builds nVH virtual hosts with nRoutes routes each, as a mesh
// control plane would: three domains per service, and routes that either
// use prefixes (every other one with a header matcher) or regexes.
func benchConfig(nVH, nRoutes int, regex bool) *routev3.RouteConfiguration {
	rc := &routev3.RouteConfiguration{Name: "outbound|80"}
	for i := range nVH {
		host := fmt.Sprintf("svc%d.ns%d.svc.cluster.local", i, i%7)
		vh := &routev3.VirtualHost{
			Name:    host,
			Domains: []string{host, host + ":80", fmt.Sprintf("svc%d", i)},
		}
		for j := range nRoutes {
			m := &routev3.RouteMatch{}
			if regex {
				m.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{
					Regex: fmt.Sprintf("/api/v%d/users/[0-9]+(/.*)?", j)}}
			} else {
				m.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: fmt.Sprintf("/api/v%d/", j)}
				if j%2 == 1 {
					m.Headers = []*routev3.HeaderMatcher{{
						Name: "x-tenant",
						HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
							MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "t1"}}},
					}}
				}
			}
			vh.Routes = append(vh.Routes, &routev3.Route{
				Match: m,
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: fmt.Sprintf("outbound|80||%s", host)},
				}},
				RequestHeadersToAdd: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-route", Value: "r"}}},
			})
		}
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	return rc
}

func benchMatch(b *testing.B, regex bool, req Request) {
	tbl, err := Build(benchConfig(100, 20, regex))
	if err != nil {
		b.Fatal(err)
	}
	if tbl.Match(&req) == nil {
		b.Fatal("no match")
	}
	b.ReportAllocs()
	for b.Loop() {
		tbl.Match(&req)
	}
}

// The requests hit virtual host 73 and route 19 (the last) so that every
// route before it is tried.
func BenchmarkMatchPrefix(b *testing.B) {
	benchMatch(b, false, Request{Authority: "svc73.ns3.svc.cluster.local:80", Method: "GET", Path: "/api/v19/users/42",
		Header: hdrs("x-tenant", "t1", "accept", "*/*", "user-agent", "bench")})
}

func BenchmarkMatchPrefixFirstRoute(b *testing.B) {
	benchMatch(b, false, Request{Authority: "svc73", Method: "GET", Path: "/api/v0/users/42", Header: hdrs()})
}

func BenchmarkMatchPrefixHTTPHeader(b *testing.B) {
	benchMatch(b, false, Request{Authority: "svc73.ns3.svc.cluster.local:80", Method: "GET", Path: "/api/v19/users/42",
		Header: HTTPHeader(http.Header{"X-Tenant": {"t1"}, "Accept": {"*/*"}, "User-Agent": {"bench"}})})
}

func BenchmarkMatchRegex(b *testing.B) {
	benchMatch(b, true, Request{Authority: "svc73.ns3.svc.cluster.local:80", Method: "GET", Path: "/api/v19/users/42/orders",
		Header: hdrs()})
}

func BenchmarkMatchNoRoute(b *testing.B) {
	tbl, err := Build(benchConfig(100, 20, false))
	if err != nil {
		b.Fatal(err)
	}
	req := Request{Authority: "unknown.example.com", Path: "/"}
	b.ReportAllocs()
	for b.Loop() {
		if tbl.Match(&req) != nil {
			b.Fatal("unexpected match")
		}
	}
}

func BenchmarkPickCluster(b *testing.B) {
	rt := &Route{}
	for i := range 5 {
		rt.Weighted = append(rt.Weighted, WeightedCluster{Name: fmt.Sprintf("c%d", i), Weight: uint32(10 * (i + 1))})
		rt.totalWeight += uint64(10 * (i + 1))
	}
	b.ReportAllocs()
	var rnd uint64
	for b.Loop() {
		rnd += 0x9e3779b97f4a7c15
		rt.PickCluster(rnd)
	}
}

func BenchmarkHeaderMutationApply(b *testing.B) {
	tbl := mustBuild(b, oneRoute(`{match: {prefix: "/"}, route: {cluster: c}, request_headers_to_remove: [x-internal],
		request_headers_to_add: [{header: {key: x-a, value: "1"}, append_action: OVERWRITE_IF_EXISTS_OR_ADD}, {header: {key: x-b, value: "2"}, append_action: ADD_IF_ABSENT}]}`))
	rt := tbl.Match(&Request{Path: "/"})
	base := HeaderList{{"x-internal", "1"}, {"accept", "*/*"}, {"x-b", "0"}}
	h := make(HeaderList, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		h = append(h[:0], base...)
		rt.RequestHeaders.Apply(&h)
	}
}

func BenchmarkBuild(b *testing.B) {
	rc := benchConfig(100, 20, false)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(rc); err != nil {
			b.Fatal(err)
		}
	}
}
