package route

import (
	"net/http"
	"net/textproto"
	"strings"
)

// Headers is read access to request headers for matching. Names passed to Get
// are lower-case. When a header occurs several times, Get returns the values
// joined with "," (as Envoy does for matching); ok reports whether the header
// is present at all.
type Headers interface {
	Get(name string) (value string, ok bool)
}

// MutableHeaders is the target of a HeaderMutation. Names are lower-case.
// Set replaces every value of a header, Add appends one more value, Del
// removes every value.
type MutableHeaders interface {
	Headers
	Set(name, value string)
	Add(name, value string)
	Del(name string)
}

// HTTPHeader adapts a net/http header map to Headers and MutableHeaders.
// Get does not allocate unless the header has several values. It is as safe
// for concurrent use as the underlying map (not for concurrent writes).
type HTTPHeader http.Header

// maxStackKey is the longest header name canonicalised on the stack.
const maxStackKey = 128

// Get returns the header's values joined with ",".
func (h HTTPHeader) Get(name string) (string, bool) {
	var vs []string
	if len(name) <= maxStackKey {
		var buf [maxStackKey]byte
		n := canonicalInto(buf[:], name)
		vs = h[string(buf[:n])] // map index with string(bytes) does not allocate
	} else {
		vs = h[textproto.CanonicalMIMEHeaderKey(name)]
	}
	switch len(vs) {
	case 0:
		return "", false
	case 1:
		return vs[0], true
	default:
		return strings.Join(vs, ","), true
	}
}

// Set replaces the header's values with value.
func (h HTTPHeader) Set(name, value string) { http.Header(h).Set(name, value) }

// Add appends value to the header.
func (h HTTPHeader) Add(name, value string) { http.Header(h).Add(name, value) }

// Del removes the header.
func (h HTTPHeader) Del(name string) { http.Header(h).Del(name) }

// canonicalInto writes the canonical MIME form of name ("x-foo" → "X-Foo")
// into dst, which must be at least len(name) long, and returns its length.
func canonicalInto(dst []byte, name string) int {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst[i] = c
		upper = c == '-'
	}
	return len(name)
}

// HeaderField is one header line of a HeaderList; a plain value.
type HeaderField struct {
	Name  string // lower-case
	Value string
}

// HeaderList is a simple ordered header list (HTTP/2 style, lower-case names)
// implementing Headers and MutableHeaders. It is not safe for concurrent
// mutation.
type HeaderList []HeaderField

// Get returns the values of name joined with ",". Names compare
// case-insensitively.
func (l *HeaderList) Get(name string) (string, bool) {
	first := -1
	for i := range *l {
		if strings.EqualFold((*l)[i].Name, name) {
			if first >= 0 {
				return l.join(name, first), true
			}
			first = i
		}
	}
	if first < 0 {
		return "", false
	}
	return (*l)[first].Value, true
}

func (l *HeaderList) join(name string, first int) string {
	var b strings.Builder
	b.WriteString((*l)[first].Value)
	for _, f := range (*l)[first+1:] {
		if strings.EqualFold(f.Name, name) {
			b.WriteByte(',')
			b.WriteString(f.Value)
		}
	}
	return b.String()
}

// Set replaces every value of name with value.
func (l *HeaderList) Set(name, value string) {
	l.Del(name)
	l.Add(name, value)
}

// Add appends a header line.
func (l *HeaderList) Add(name, value string) {
	*l = append(*l, HeaderField{Name: name, Value: value})
}

// Del removes every line of name.
func (l *HeaderList) Del(name string) {
	out := (*l)[:0]
	for _, f := range *l {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	clear((*l)[len(out):])
	*l = out
}

// AppendAction says how a header value is added, as Envoy's
// HeaderValueOption.HeaderAppendAction.
type AppendAction uint8

// Append actions, plus Remove for headers_to_remove entries.
const (
	AppendIfExistsOrAdd    AppendAction = iota // add another value
	AddIfAbsent                                // add only if the header is absent
	OverwriteIfExistsOrAdd                     // replace every value, or add
	OverwriteIfExists                          // replace every value only if present
	Remove                                     // remove the header
)

func (a AppendAction) String() string {
	switch a {
	case AppendIfExistsOrAdd:
		return "APPEND_IF_EXISTS_OR_ADD"
	case AddIfAbsent:
		return "ADD_IF_ABSENT"
	case OverwriteIfExistsOrAdd:
		return "OVERWRITE_IF_EXISTS_OR_ADD"
	case OverwriteIfExists:
		return "OVERWRITE_IF_EXISTS"
	case Remove:
		return "REMOVE"
	}
	return "UNKNOWN"
}

// HeaderOp is one step of a HeaderMutation; a plain value.
type HeaderOp struct {
	Action AppendAction
	Name   string // lower-case
	Value  string // literal; empty for Remove
}

// HeaderMutation is the precomputed, ordered list of header edits of one
// route (route level, then virtual host, then route configuration; within a
// level removals before additions, as Envoy). It is immutable and safe for
// concurrent use; a nil *HeaderMutation is a valid empty mutation.
type HeaderMutation struct {
	ops []HeaderOp
}

// Ops returns the steps in order. The slice must not be modified.
func (m *HeaderMutation) Ops() []HeaderOp {
	if m == nil {
		return nil
	}
	return m.ops
}

// Empty reports whether applying m changes nothing.
func (m *HeaderMutation) Empty() bool { return m == nil || len(m.ops) == 0 }

// Apply performs the edits on h in one pass.
func (m *HeaderMutation) Apply(h MutableHeaders) {
	if m == nil {
		return
	}
	for i := range m.ops {
		op := &m.ops[i]
		switch op.Action {
		case Remove:
			h.Del(op.Name)
		case AppendIfExistsOrAdd:
			h.Add(op.Name, op.Value)
		case AddIfAbsent:
			if _, ok := h.Get(op.Name); !ok {
				h.Add(op.Name, op.Value)
			}
		case OverwriteIfExistsOrAdd:
			h.Set(op.Name, op.Value)
		case OverwriteIfExists:
			if _, ok := h.Get(op.Name); ok {
				h.Set(op.Name, op.Value)
			}
		}
	}
}
