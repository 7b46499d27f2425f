package route

import (
	"regexp"
	"strings"
)

// Request is what route matching looks at. Match only reads it (it may live
// on the caller's stack); it is not shared, so needs no synchronisation.
type Request struct {
	Authority string // :authority / Host, as received (port included if sent)
	Method    string // :method
	Path      string // :path, with query string
	Scheme    string // :scheme ("http" when empty); used by :scheme matchers and redirects
	Header    Headers
	SourceIP  string // downstream IP as text; used by hash_policy connection_properties
}

// Table is a compiled RouteConfiguration. It is immutable and safe for
// concurrent use.
type Table struct {
	name       string
	ignorePort bool
	onlyStar   bool                    // the only domain is "*": skip host parsing
	exact      []domainEntry           // sorted by domain
	exactMap   map[string]*virtualHost // the same, when there are many
	suffix     []domainEntry           // "*.x": domain holds ".x"; longest first
	prefix     []domainEntry           // "x.*": domain holds "x."; longest first
	star       *virtualHost            // "*", or nil
	vhosts     []*virtualHost          // in configuration order
	clusters   []string
}

type domainEntry struct {
	domain string // lower-case, without the wildcard
	vh     *virtualHost
}

type virtualHost struct {
	name   string
	routes []*Route
}

// Name returns the RouteConfiguration's name.
func (t *Table) Name() string { return t.name }

// Clusters returns every cluster name the table can route to, sorted and
// unique. The slice must not be modified.
func (t *Table) Clusters() []string { return t.clusters }

// Match returns the first route of the selected virtual host that matches r,
// or nil when no virtual host or route matches (the caller answers 404).
// It does not allocate for prefix, path and path_separated_prefix matches,
// with or without header matchers.
func (t *Table) Match(r *Request) *Route {
	vh := t.virtualHost(r.Authority)
	if vh == nil {
		return nil
	}
	for _, rt := range vh.routes {
		if rt.match.matches(r) {
			return rt
		}
	}
	return nil
}

// VirtualHostName returns the name of the virtual host that serves authority,
// or "" when none does.
func (t *Table) VirtualHostName(authority string) string {
	if vh := t.virtualHost(authority); vh != nil {
		return vh.name
	}
	return ""
}

// virtualHost selects the virtual host for a Host/:authority value: exact,
// then suffix wildcard (longest first), then prefix wildcard (longest first),
// first with the port as given and then with the port stripped; finally "*".
func (t *Table) virtualHost(authority string) *virtualHost {
	if t.onlyStar {
		return t.star
	}
	host := authority
	if t.ignorePort {
		host = stripPort(host)
	}
	if vh := t.lookupHost(host); vh != nil {
		return vh
	}
	if h := stripPort(host); len(h) != len(host) {
		if vh := t.lookupHost(h); vh != nil {
			return vh
		}
	}
	return t.star
}

// mapThreshold is the number of exact domains from which a map lookup beats
// a binary search with case folding.
const mapThreshold = 16

// maxMapHost is the longest host lowered on the stack for a map lookup.
const maxMapHost = 256

func (t *Table) lookupHost(host string) *virtualHost {
	if vh := t.lookupExact(host); vh != nil {
		return vh
	}
	// Wildcards never match the empty string: the host must be longer.
	for i := range t.suffix {
		d := t.suffix[i].domain
		if len(host) > len(d) && equalFoldLower(host[len(host)-len(d):], d) {
			return t.suffix[i].vh
		}
	}
	for i := range t.prefix {
		d := t.prefix[i].domain
		if len(host) > len(d) && equalFoldLower(host[:len(d)], d) {
			return t.prefix[i].vh
		}
	}
	return nil
}

func (t *Table) lookupExact(host string) *virtualHost {
	if t.exactMap != nil && len(host) <= maxMapHost {
		var buf [maxMapHost]byte
		for i := 0; i < len(host); i++ {
			buf[i] = lower(host[i])
		}
		return t.exactMap[string(buf[:len(host)])] // no allocation for the key
	}
	// Binary search over lower-case domains, comparing host folded.
	lo, hi := 0, len(t.exact)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if c := compareFold(t.exact[m].domain, host); c < 0 {
			lo = m + 1
		} else if c > 0 {
			hi = m
		} else {
			return t.exact[m].vh
		}
	}
	return nil
}

// stripPort removes a trailing ":port" from a host, handling "[v6]:port".
// An unbracketed IPv6 literal is returned unchanged.
func stripPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host
	}
	for j := i + 1; j < len(host); j++ {
		if host[j] < '0' || host[j] > '9' {
			return host
		}
	}
	if host[0] == '[' {
		if i > 0 && host[i-1] == ']' {
			return host[:i]
		}
		return host
	}
	if strings.IndexByte(host[:i], ':') >= 0 { // bare IPv6 literal
		return host
	}
	return host[:i]
}

// lower folds an ASCII letter to lower case.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// compareFold compares the lower-case string l with s folded to lower case.
func compareFold(l, s string) int {
	n := min(len(l), len(s))
	for i := 0; i < n; i++ {
		a, b := l[i], lower(s[i])
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(l) < len(s):
		return -1
	case len(l) > len(s):
		return 1
	}
	return 0
}

// equalFoldLower reports whether s folded to lower case equals the
// lower-case string l.
func equalFoldLower(s, l string) bool {
	if len(s) != len(l) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != l[i] {
			return false
		}
	}
	return true
}

func hasPrefixFold(s, lowerPrefix string) bool {
	return len(s) >= len(lowerPrefix) && equalFoldLower(s[:len(lowerPrefix)], lowerPrefix)
}

func hasSuffixFold(s, lowerSuffix string) bool {
	return len(s) >= len(lowerSuffix) && equalFoldLower(s[len(s)-len(lowerSuffix):], lowerSuffix)
}

func containsFold(s, lowerSub string) bool {
	for i := 0; i+len(lowerSub) <= len(s); i++ {
		if equalFoldLower(s[i:i+len(lowerSub)], lowerSub) {
			return true
		}
	}
	return false
}

// pathOnly returns p without its query string and fragment.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

type pathKind uint8

const (
	pathPrefix pathKind = iota
	pathExact
	pathRegex
	pathSeparatedPrefix
)

// routeMatch is a compiled RouteMatch.
type routeMatch struct {
	kind          pathKind
	value         string // prefix or path; lower-case when !caseSensitive
	caseSensitive bool
	re            *regexp.Regexp
	reLit         string // literal prefix every match of re starts with
	grpc          bool
	headers       []headerMatcher
	query         []queryMatcher
}

func (m *routeMatch) matches(r *Request) bool {
	if !m.matchPath(r.Path) {
		return false
	}
	if m.grpc {
		ct, _ := getHeader(r, "content-type", pseudoNone)
		if !strings.HasPrefix(ct, "application/grpc") {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].matches(r) {
			return false
		}
	}
	if len(m.query) > 0 {
		q := queryOf(r.Path)
		for i := range m.query {
			if !m.query[i].matches(q) {
				return false
			}
		}
	}
	return true
}

func (m *routeMatch) matchPath(p string) bool {
	switch m.kind {
	case pathPrefix: // against the whole :path, query included, as Envoy
		if m.caseSensitive {
			return strings.HasPrefix(p, m.value)
		}
		return hasPrefixFold(p, m.value)
	case pathExact:
		p = pathOnly(p)
		if m.caseSensitive {
			return p == m.value
		}
		return equalFoldLower(p, m.value)
	case pathSeparatedPrefix:
		p = pathOnly(p)
		if m.caseSensitive {
			if !strings.HasPrefix(p, m.value) {
				return false
			}
		} else if !hasPrefixFold(p, m.value) {
			return false
		}
		return len(p) == len(m.value) || p[len(m.value)] == '/'
	case pathRegex:
		p = pathOnly(p)
		return strings.HasPrefix(p, m.reLit) && m.re.MatchString(p)
	}
	return false
}

// matchedLen returns how much of p the path matcher consumed, for
// prefix_rewrite: the prefix, or the whole path without query.
func (m *routeMatch) matchedLen(p string) int {
	switch m.kind {
	case pathPrefix, pathSeparatedPrefix:
		if len(m.value) <= len(p) {
			return len(m.value)
		}
	}
	return len(pathOnly(p))
}

type pseudo uint8

const (
	pseudoNone pseudo = iota
	pseudoAuthority
	pseudoMethod
	pseudoPath
	pseudoScheme
)

func pseudoOf(name string) pseudo {
	switch name {
	case ":authority":
		return pseudoAuthority
	case ":method":
		return pseudoMethod
	case ":path":
		return pseudoPath
	case ":scheme":
		return pseudoScheme
	}
	return pseudoNone
}

// getHeader reads a header or pseudo-header of r.
func getHeader(r *Request, name string, ps pseudo) (string, bool) {
	switch ps {
	case pseudoAuthority:
		return r.Authority, r.Authority != ""
	case pseudoMethod:
		return r.Method, r.Method != ""
	case pseudoPath:
		return r.Path, r.Path != ""
	case pseudoScheme:
		if r.Scheme == "" {
			return "http", true
		}
		return r.Scheme, true
	}
	if r.Header == nil {
		return "", false
	}
	return r.Header.Get(name)
}

type strKind uint8

const (
	strExact strKind = iota
	strPrefix
	strSuffix
	strContains
	strRegex
)

// stringMatcher is a compiled envoy.type.matcher.v3.StringMatcher.
type stringMatcher struct {
	kind       strKind
	value      string // lower-case when ignoreCase
	ignoreCase bool
	re         *regexp.Regexp
	reLit      string // literal prefix every match of re starts with
}

func (m *stringMatcher) match(v string) bool {
	switch m.kind {
	case strExact:
		if m.ignoreCase {
			return equalFoldLower(v, m.value)
		}
		return v == m.value
	case strPrefix:
		if m.ignoreCase {
			return hasPrefixFold(v, m.value)
		}
		return strings.HasPrefix(v, m.value)
	case strSuffix:
		if m.ignoreCase {
			return hasSuffixFold(v, m.value)
		}
		return strings.HasSuffix(v, m.value)
	case strContains:
		if m.ignoreCase {
			return containsFold(v, m.value)
		}
		return strings.Contains(v, m.value)
	case strRegex:
		return strings.HasPrefix(v, m.reLit) && m.re.MatchString(v)
	}
	return false
}

// headerMatcher is a compiled HeaderMatcher.
type headerMatcher struct {
	name           string // lower-case
	pseudo         pseudo
	presence       bool // present_match
	present        bool // its value
	sm             stringMatcher
	invert         bool
	missingAsEmpty bool
}

func (h *headerMatcher) matches(r *Request) bool {
	v, ok := getHeader(r, h.name, h.pseudo)
	if h.presence {
		return (ok == h.present) != h.invert
	}
	if !ok {
		if !h.missingAsEmpty {
			return false // a missing header never matches, inverted or not
		}
		v = ""
	}
	return h.sm.match(v) != h.invert
}

// queryMatcher is a compiled QueryParameterMatcher.
type queryMatcher struct {
	name     string
	presence bool // present_match, or no matcher
	sm       stringMatcher
}

func (q *queryMatcher) matches(query string) bool {
	v, ok := queryParam(query, q.name)
	if !ok {
		return false
	}
	return q.presence || q.sm.match(v)
}

// queryOf returns the query string of a :path (without '?' and fragment).
func queryOf(p string) string {
	i := strings.IndexByte(p, '?')
	if i < 0 {
		return ""
	}
	q := p[i+1:]
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	return q
}

// queryParam returns the percent-decoded value of the first parameter called
// name. Keys and values are decoded as Envoy does ('+' stays '+'); decoding
// allocates only when a '%' is present.
func queryParam(query, name string) (string, bool) {
	for query != "" {
		var kv string
		kv, query, _ = strings.Cut(query, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if percentDecode(k) == name {
			return percentDecode(v), true
		}
	}
	return "", false
}

// percentDecode decodes %XX escapes, leaving malformed ones as they are.
func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
