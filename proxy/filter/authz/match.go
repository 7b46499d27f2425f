package authz

import (
	"regexp"
	"strings"
)

// kind is the type of a matcher node.
type kind uint8

const (
	kAny           kind = iota
	kAnd                // all kids
	kOr                 // any kid
	kNot                // not kids[0]
	kHeader             // hdr
	kPath               // str against the path without query
	kTemplate           // tmpl against the path without query
	kPort               // lo <= port < hi
	kAuthenticated      // a peer identity; str against it unless str.op == opNone
	kClaim              // claim against Request.Claims
)

// node is one compiled permission or principal. Immutable.
type node struct {
	kind   kind
	kids   []node
	str    strMatch
	hdr    *headerMatch
	tmpl   []segment
	lo, hi uint32
	claim  *claimMatch
}

func (n *node) match(r *Request) bool {
	switch n.kind {
	case kAny:
		return true
	case kAnd:
		for i := range n.kids {
			if !n.kids[i].match(r) {
				return false
			}
		}
		return true
	case kOr:
		for i := range n.kids {
			if n.kids[i].match(r) {
				return true
			}
		}
		return false
	case kNot:
		return !n.kids[0].match(r)
	case kHeader:
		return n.hdr.match(r)
	case kPath:
		return r.Path != "" && n.str.match(r.urlPath)
	case kTemplate:
		return r.Path != "" && matchTemplate(n.tmpl, r.urlPath)
	case kPort:
		return r.DestinationPort >= n.lo && r.DestinationPort < n.hi
	case kAuthenticated:
		return r.PeerPrincipal != "" && (n.str.op == opNone || n.str.match(r.PeerPrincipal))
	case kClaim:
		return n.claim.match(r.Claims)
	}
	return false
}

// pathOnly drops the query and fragment of a :path.
func pathOnly(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

type strOp uint8

const (
	opNone strOp = iota
	opExact
	opPrefix
	opSuffix
	opContains
	opRegex
)

// strMatch is a compiled envoy.type.matcher.v3.StringMatcher.
type strMatch struct {
	op         strOp
	s          string
	re         *regexp.Regexp // anchored: the whole value must match
	ignoreCase bool
}

func (m *strMatch) match(v string) bool {
	switch m.op {
	case opExact:
		if m.ignoreCase {
			return strings.EqualFold(v, m.s)
		}
		return v == m.s
	case opPrefix:
		if m.ignoreCase {
			return len(v) >= len(m.s) && strings.EqualFold(v[:len(m.s)], m.s)
		}
		return strings.HasPrefix(v, m.s)
	case opSuffix:
		if m.ignoreCase {
			return len(v) >= len(m.s) && strings.EqualFold(v[len(v)-len(m.s):], m.s)
		}
		return strings.HasSuffix(v, m.s)
	case opContains:
		if m.ignoreCase {
			for i := 0; i+len(m.s) <= len(v); i++ {
				if strings.EqualFold(v[i:i+len(m.s)], m.s) {
					return true
				}
			}
			return false
		}
		return strings.Contains(v, m.s)
	case opRegex:
		return m.re.MatchString(v)
	}
	return false
}

// headerMatch is a compiled envoy.config.route.v3.HeaderMatcher. The
// pseudo-headers :method and :path come from the Request's fields.
type headerMatch struct {
	name         string
	present      bool // a present_match
	presentValue bool // ... for presence (true) or absence (false)
	str          strMatch
	invert       bool
	missingEmpty bool // treat_missing_header_as_empty
}

func (m *headerMatch) match(r *Request) bool {
	var v string
	var ok bool
	switch m.name {
	case ":method":
		v, ok = r.Method, r.Method != ""
	case ":path":
		v, ok = r.Path, r.Path != ""
	default:
		if r.Headers != nil {
			v, ok = r.Headers.Get(m.name)
		}
	}
	if m.present {
		return (ok == m.presentValue) != m.invert
	}
	if !ok {
		if !m.missingEmpty {
			return false // an absent header never matches a value matcher
		}
		v = ""
	}
	return m.str.match(v) != m.invert
}

// segment is one segment of a uri_template path template.
type segment struct {
	lit  string
	kind uint8 // segLit, segOne ("*", "{x}"), segRest ("**", "{x=**}")
}

const (
	segLit uint8 = iota
	segOne
	segRest
)

// matchTemplate matches path against a template split at "/"; a trailing
// "**" matches zero or more segments.
func matchTemplate(tmpl []segment, path string) bool {
	rest := path
	for i, s := range tmpl {
		if s.kind == segRest {
			return true
		}
		if i > 0 {
			if rest == "" {
				return false // the path has fewer segments
			}
			rest = rest[1:] // the "/" left by the previous segment
		}
		seg := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j:]
		} else {
			rest = ""
		}
		switch s.kind {
		case segLit:
			if seg != s.lit {
				return false
			}
		case segOne:
			if seg == "" {
				return false
			}
		}
	}
	return rest == ""
}

// claimMatch is a compiled metadata matcher over the JWT claims: path is
// the claim path below the payload key, value the matcher.
type claimMatch struct {
	path   []string
	value  valueMatch
	invert bool
}

func (m *claimMatch) match(claims map[string]any) bool {
	var v any = claims
	found := claims != nil
	for _, k := range m.path {
		obj, ok := v.(map[string]any)
		if !ok {
			found = false
			break
		}
		if v, ok = obj[k]; !ok {
			found = false
			break
		}
	}
	if !found {
		return m.invert
	}
	return m.value.match(v) != m.invert
}

type valueOp uint8

const (
	vNull valueOp = iota
	vDouble
	vString
	vBool
	vPresent
	vList // any element matches kids[0]
	vOr   // any of kids
)

// valueMatch is a compiled envoy.type.matcher.v3.ValueMatcher over a JSON
// value as encoding/json decodes it.
type valueMatch struct {
	op          valueOp
	str         strMatch
	b           bool
	exact       bool // vDouble: exact (x) rather than range [lo, hi)
	x, dlo, dhi float64
	kids        []valueMatch
}

func (m *valueMatch) match(v any) bool {
	switch m.op {
	case vNull:
		return v == nil
	case vDouble:
		f, ok := v.(float64)
		if !ok {
			return false
		}
		if m.exact {
			return f == m.x
		}
		return f >= m.dlo && f < m.dhi
	case vString:
		s, ok := v.(string)
		return ok && m.str.match(s)
	case vBool:
		b, ok := v.(bool)
		return ok && b == m.b
	case vPresent:
		return true // reached only when the path resolved
	case vList:
		l, ok := v.([]any)
		if !ok {
			return false
		}
		for _, e := range l {
			if m.kids[0].match(e) {
				return true
			}
		}
		return false
	case vOr:
		for i := range m.kids {
			if m.kids[i].match(v) {
				return true
			}
		}
		return false
	}
	return false
}
