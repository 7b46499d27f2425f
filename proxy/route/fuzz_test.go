package route

import (
	"strconv"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"
)

// fuzzSeedConfigs are valid configurations whose encodings seed FuzzBuild.
var fuzzSeedConfigs = []string{
	domainsConfig,
	oneRoute(`{match: {safe_regex: {regex: "/v[0-9]+/.*"}, headers: [{name: x, string_match: {prefix: a, ignore_case: true}}], query_parameters: [{name: q, present_match: true}]}, route: {weighted_clusters: {clusters: [{name: a, weight: 1}, {name: b, weight: 2}]}, regex_rewrite: {pattern: {regex: "^/v([0-9]+)"}, substitution: "/version/\\1"}, timeout: 1s, hash_policy: [{header: {header_name: x}, terminal: true}, {connection_properties: {source_ip: true}}], retry_policy: {retry_on: "5xx,reset", retriable_status_codes: [409]}}}`),
	oneRoute(`{match: {prefix: "/r", case_sensitive: false}, redirect: {https_redirect: true, prefix_rewrite: "/s", strip_query: true}}`),
	oneRoute(`{match: {path_separated_prefix: "/d"}, direct_response: {status: 503, body: {inline_string: "down"}}, request_headers_to_add: [{header: {key: x-a, value: "1%%"}, append_action: OVERWRITE_IF_EXISTS}]}`),
}

func FuzzBuild(f *testing.F) {
	for _, y := range fuzzSeedConfigs {
		b, err := proto.Marshal(parseRC(f, y))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("\x12\x03\x0a\x01a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rc := &routev3.RouteConfiguration{}
		if proto.Unmarshal(data, rc) != nil {
			return
		}
		tbl, err := Build(rc)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "route config ") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		// Exercise the compiled table: nothing may panic.
		reqs := []Request{
			{Authority: "a.example.com:80", Method: "GET", Path: "/v1/x?q=1", Header: hdrs("x", "abc", "cookie", "s=1")},
			{Authority: "", Path: ""},
			{Authority: "[::1]:8080", Path: "/r?x#y", Scheme: "https", SourceIP: "10.0.0.1"},
		}
		for _, vh := range tbl.vhosts {
			for _, rt := range vh.routes {
				for i := range reqs {
					rt.match.matches(&reqs[i])
					rt.Rewrite(reqs[i].Path)
					rt.RedirectLocation(&reqs[i])
					rt.RequestHash(&reqs[i])
					rt.RequestHeaders.Apply(hdrs("x", "1"))
					rt.ResponseHeaders.Apply(hdrs())
				}
				for rnd := range uint64(3) {
					if rt.Action == ActionForward && rt.PickCluster(rnd*0x9e3779b97f4a7c15) == "" {
						t.Fatalf("route %q picked no cluster", rt.Name)
					}
				}
			}
		}
		for i := range reqs {
			tbl.Match(&reqs[i])
		}
	})
}

// fuzzMatchConfig has prefix routes only, so that a simple reference can
// predict every match.
const fuzzMatchConfig = `
name: fuzz
virtual_hosts:
- name: exact
  domains: ["a.example.com", "a.example.com:8080", "B.example.com", EXTRA]
  routes:
  - {name: "0", match: {prefix: "/api/", headers: [{name: x-v, string_match: {exact: "2"}}]}}
  - {name: "1", match: {prefix: "/API", case_sensitive: false}}
  - {name: "2", match: {prefix: "/a"}}
  - {name: "3", match: {prefix: "/", headers: [{name: x-v, present_match: true, invert_match: true}]}}
- name: suffix
  domains: ["*.example.com", "*.b.example.com", "*-x.net"]
  routes:
  - {name: "0", match: {prefix: "/s"}}
  - {name: "1", match: {prefix: "/S", case_sensitive: false, headers: [{name: x-v, string_match: {prefix: "1"}}]}}
- name: prefix
  domains: ["api.*", "api.v2*"]
  routes:
  - {name: "0", match: {prefix: ""}}
- name: star
  domains: ["*"]
  routes:
  - {name: "0", match: {prefix: "/x", headers: [{name: ":method", string_match: {exact: "POST"}}]}}
`

// refRoute is the reference for fuzzMatchConfig: name and prefix rules of
// each route, with header conditions as functions.
type refRoute struct {
	prefix string
	fold   bool
	hdr    func(v string, ok bool, method string) bool
}

var refTable = map[string][]refRoute{
	"exact": {
		{"/api/", false, func(v string, ok bool, _ string) bool { return ok && v == "2" }},
		{"/api", true, nil},
		{"/a", false, nil},
		{"/", false, func(_ string, ok bool, _ string) bool { return !ok }},
	},
	"suffix": {
		{"/s", false, nil},
		{"/s", true, func(v string, ok bool, _ string) bool { return ok && strings.HasPrefix(v, "1") }},
	},
	"prefix": {{"", false, nil}},
	"star":   {{"/x", false, func(_ string, _ bool, m string) bool { return m == "POST" }}},
}

// extraExact pushes the exact domain count past mapThreshold, so that the
// map lookup is what the reference checks.
var extraExact = func() []string {
	var ds []string
	for i := range mapThreshold {
		ds = append(ds, "e"+strconv.Itoa(i)+".example.com")
	}
	return ds
}()

var refDomains = map[string][]string{
	"exact":  append([]string{"a.example.com", "a.example.com:8080", "b.example.com"}, extraExact...),
	"suffix": {"*.example.com", "*.b.example.com", "*-x.net"},
	"prefix": {"api.*", "api.v2*"},
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// refVHost selects a virtual host by brute force.
func refVHost(authority string) string {
	hosts := []string{asciiLower(authority)}
	if s := stripPort(authority); s != authority {
		hosts = append(hosts, asciiLower(s))
	}
	for _, h := range hosts {
		best, bestLen := "", -1
		for vh, ds := range refDomains { // exact
			for _, d := range ds {
				if d == h {
					return vh
				}
			}
		}
		for vh, ds := range refDomains { // suffix
			for _, d := range ds {
				if d[0] == '*' && len(h) > len(d)-1 && strings.HasSuffix(h, d[1:]) && len(d) > bestLen {
					best, bestLen = vh, len(d)
				}
			}
		}
		if best != "" {
			return best
		}
		for vh, ds := range refDomains { // prefix
			for _, d := range ds {
				if d[len(d)-1] == '*' && len(h) > len(d)-1 && strings.HasPrefix(h, d[:len(d)-1]) && len(d) > bestLen {
					best, bestLen = vh, len(d)
				}
			}
		}
		if best != "" {
			return best
		}
	}
	return "star"
}

func FuzzMatch(f *testing.F) {
	cfg := strings.ReplaceAll(fuzzMatchConfig, "}}\n", "}, route: {cluster: c}}\n")
	cfg = strings.Replace(cfg, "EXTRA", `"`+strings.Join(extraExact, `", "`)+`"`, 1)
	tbl := mustBuild(f, cfg)
	if tbl.exactMap == nil {
		f.Fatal("fuzz table should use the exact-domain map")
	}
	f.Add("a.example.com", "/api/x", "2", "GET")
	f.Add("A.EXAMPLE.COM:8080", "/Apix", "", "GET")
	f.Add("x.b.example.com:1", "/S", "1x", "GET")
	f.Add("api.v2.local", "", "", "")
	f.Add("foo-x.net", "/s?q", "3", "PUT")
	f.Add("-x.net", "/x", "", "POST")
	f.Add("[::1]:80", "/x/y", "", "POST")
	f.Add("E15.example.COM:99", "/apI", "2", "GET")
	f.Fuzz(func(t *testing.T, authority, path, xv, method string) {
		var h HeaderList
		if xv != "" {
			h = HeaderList{{Name: "x-v", Value: xv}}
		}
		req := &Request{Authority: authority, Path: path, Method: method, Header: &h}
		got := tbl.Match(req)

		vh := refVHost(authority)
		if tv := tbl.VirtualHostName(authority); tv != vh {
			t.Fatalf("authority %q: virtual host %q, reference %q", authority, tv, vh)
		}
		want := ""
		for i, rr := range refTable[vh] {
			p := path
			if rr.fold {
				p = asciiLower(p)
			}
			if !strings.HasPrefix(p, rr.prefix) {
				continue
			}
			if rr.hdr != nil && !rr.hdr(xv, xv != "", method) {
				continue
			}
			want = strconv.Itoa(i)
			break
		}
		switch {
		case got == nil && want != "":
			t.Fatalf("%q %q: no route, reference %s/%s", authority, path, vh, want)
		case got != nil && (got.VirtualHost != vh || got.Name != want):
			t.Fatalf("%q %q: route %s/%s, reference %s/%q", authority, path, got.VirtualHost, got.Name, vh, want)
		}
		if got != nil {
			if rw := got.Rewrite(path); rw != path {
				t.Fatalf("no rewrite configured, got %q", rw)
			}
		}
	})
}
