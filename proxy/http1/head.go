package http1

// Header is one header field. Parsed fields are slices into the Reader's
// buffer, valid until the next ReadRequestHead, ReadResponseHead or Release
// on that Reader; fields added with Set and Add point into the head's own
// arena. Append* write Name and Value exactly as they are.
type Header struct{ Name, Value []byte }

// RequestHead is a parsed request line and header section. A RequestHead is
// reused across requests (its slices keep their capacity). It is not safe
// for concurrent use.
//
// Framing lives in the fields, not in Headers: AppendRequestHead skips any
// Content-Length and Transfer-Encoding entries in Headers and writes them
// from ContentLength and Chunked.
type RequestHead struct {
	Method []byte
	Target []byte // request-target exactly as received
	Minor  int    // 0 for HTTP/1.0, 1 for HTTP/1.1

	// Headers holds the fields in wire order. A proxy may edit it in place:
	// delete by index, or append Header values whose slices it owns.
	Headers []Header

	ContentLength int64 // declared Content-Length, -1 when absent
	Chunked       bool  // Transfer-Encoding: chunked
	Close         bool  // Connection: close, or HTTP/1.0 without keep-alive
	Expect100     bool  // HTTP/1.1 with Expect: 100-continue
	Upgrade       bool  // HTTP/1.1 with Connection: upgrade and an Upgrade field

	// Host is the authority of an absolute-form or authority-form target,
	// else the Host field's value; empty for HTTP/1.0 without Host.
	Host []byte

	pathStart  int      // index of the path in an absolute-form Target, -1 otherwise
	connTokens [][]byte // tokens of the Connection fields
	arena      []byte   // storage for Set/Add, reset per request
}

// ResponseHead is a parsed status line and header section, reused across
// responses. It is not safe for concurrent use. As with RequestHead, framing
// is taken from ContentLength and Chunked when writing.
type ResponseHead struct {
	Minor   int
	Status  int
	Reason  []byte
	Headers []Header

	ContentLength int64 // declared Content-Length, -1 when absent
	Chunked       bool  // Transfer-Encoding: chunked
	// Close is set by Connection: close, HTTP/1.0 without keep-alive, a
	// body delimited by the end of the connection, and a response that had
	// both Transfer-Encoding and Content-Length.
	Close bool
	// NoBody is set when the response cannot have a body whatever its
	// fields say: the request was HEAD, a 2xx answer to CONNECT, or the
	// status is 1xx, 204 or 304.
	NoBody bool

	connTokens [][]byte
	arena      []byte
}

// Get returns the value of the first field with the given name (case
// insensitive).
func (h *RequestHead) Get(name string) ([]byte, bool) { return getHeader(h.Headers, name) }

// Del removes every field with the given name, keeping the order of the
// others.
func (h *RequestHead) Del(name string) { h.Headers = delHeader(h.Headers, name) }

// Set replaces the value of the first field named name, keeping its
// position, and removes the other fields with that name; without such a
// field it appends one. Name and value are copied into the head's arena, so
// steady-state use does not allocate. Bytes not allowed in a field name are
// replaced by '_', and CR, LF and NUL in the value by a space, so an edit can
// never split the message.
func (h *RequestHead) Set(name, value string) {
	h.Headers = setHeader(h.Headers, &h.arena, name, value)
}

// SetBytes is Set with a byte-slice value.
func (h *RequestHead) SetBytes(name string, value []byte) {
	h.Headers = setHeader(h.Headers, &h.arena, name, value)
}

// Add appends a field, copying name and value as Set does.
func (h *RequestHead) Add(name, value string) {
	h.Headers = addHeader(h.Headers, &h.arena, name, value)
}

// AddBytes is Add with a byte-slice value.
func (h *RequestHead) AddBytes(name string, value []byte) {
	h.Headers = addHeader(h.Headers, &h.arena, name, value)
}

// AppendList appends value to the last field named name as a further list
// element ("old, value"), or adds the field; X-Forwarded-For uses this.
func (h *RequestHead) AppendList(name string, value []byte) {
	h.Headers = appendList(h.Headers, &h.arena, name, value)
}

// ConnectionTokens returns the tokens listed in the Connection fields. The
// slices are valid as long as the head's fields are.
func (h *RequestHead) ConnectionTokens() [][]byte { return h.connTokens }

// RemoveHopByHop deletes the hop-by-hop fields (see IsHopByHop) and the
// fields named in Connection. A TE field listing "trailers" is replaced by
// "TE: trailers". When keepUpgrade is true and the request is an Upgrade,
// the Upgrade field is kept and "Connection: Upgrade" is added. Close and
// the framing fields are left alone.
func (h *RequestHead) RemoveHopByHop(keepUpgrade bool) {
	h.Headers = removeHopByHop(h.Headers, &h.arena, h.connTokens, keepUpgrade && h.Upgrade, true)
}

// OriginForm returns the target in origin form: the path and query of an
// absolute-form target ("/" when the path is empty), or Target unchanged.
// The result may point into the head's arena.
func (h *RequestHead) OriginForm() []byte {
	if h.pathStart < 0 {
		return h.Target
	}
	rest := h.Target[h.pathStart:]
	if len(rest) > 0 && rest[0] == '/' {
		return rest
	}
	start := len(h.arena)
	h.arena = append(h.arena, '/')
	h.arena = append(h.arena, rest...)
	return h.arena[start:len(h.arena):len(h.arena)]
}

// BodyFraming reports how the request body is delimited: chunked, or
// contentLength bytes (0 when no Content-Length was sent). The results can
// be passed to CopyBody with untilEOF false.
func (h *RequestHead) BodyFraming() (contentLength int64, chunked bool) {
	if h.Chunked {
		return -1, true
	}
	if h.ContentLength < 0 {
		return 0, false
	}
	return h.ContentLength, false
}

func (h *RequestHead) reset() {
	h.Method, h.Target, h.Host = nil, nil, nil
	h.Minor = 0
	h.Headers = h.Headers[:0]
	h.ContentLength = -1
	h.Chunked, h.Close, h.Expect100, h.Upgrade = false, false, false, false
	h.pathStart = -1
	h.connTokens = h.connTokens[:0]
	h.arena = h.arena[:0]
}

// Get returns the value of the first field with the given name.
func (h *ResponseHead) Get(name string) ([]byte, bool) { return getHeader(h.Headers, name) }

// Del removes every field with the given name.
func (h *ResponseHead) Del(name string) { h.Headers = delHeader(h.Headers, name) }

// Set works as RequestHead.Set.
func (h *ResponseHead) Set(name, value string) {
	h.Headers = setHeader(h.Headers, &h.arena, name, value)
}

// SetBytes is Set with a byte-slice value.
func (h *ResponseHead) SetBytes(name string, value []byte) {
	h.Headers = setHeader(h.Headers, &h.arena, name, value)
}

// Add works as RequestHead.Add.
func (h *ResponseHead) Add(name, value string) {
	h.Headers = addHeader(h.Headers, &h.arena, name, value)
}

// AddBytes is Add with a byte-slice value.
func (h *ResponseHead) AddBytes(name string, value []byte) {
	h.Headers = addHeader(h.Headers, &h.arena, name, value)
}

// ConnectionTokens returns the tokens listed in the Connection fields.
func (h *ResponseHead) ConnectionTokens() [][]byte { return h.connTokens }

// RemoveHopByHop works as RequestHead.RemoveHopByHop; keepUpgrade applies
// to a 101 response.
func (h *ResponseHead) RemoveHopByHop(keepUpgrade bool) {
	h.Headers = removeHopByHop(h.Headers, &h.arena, h.connTokens, keepUpgrade && h.Status == 101, false)
}

// BodyFraming reports how the response body is delimited, ready for
// CopyBody: nothing (all zero) for a response without body, chunked,
// contentLength bytes, or until the upstream closes the connection.
func (h *ResponseHead) BodyFraming() (contentLength int64, chunked, untilEOF bool) {
	switch {
	case h.NoBody:
		return 0, false, false
	case h.Chunked:
		return -1, true, false
	case h.ContentLength >= 0:
		return h.ContentLength, false, false
	}
	return -1, false, true
}

func (h *ResponseHead) reset() {
	h.Minor, h.Status = 0, 0
	h.Reason = nil
	h.Headers = h.Headers[:0]
	h.ContentLength = -1
	h.Chunked, h.Close, h.NoBody = false, false, false
	h.connTokens = h.connTokens[:0]
	h.arena = h.arena[:0]
}

// hopByHop lists the fields a proxy never forwards (RFC 9110 §7.6.1, plus
// the de-facto Keep-Alive, Proxy-Connection and the proxy authentication
// fields, which belong to the hop).
var hopByHop = [...]string{
	"connection", "keep-alive", "proxy-connection", "te",
	"transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate",
}

// IsHopByHop reports whether the field name is hop-by-hop: one of
// Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade,
// Proxy-Authorization, Proxy-Authenticate, or a name listed in
// connectionTokens (the tokens of the message's Connection fields).
func IsHopByHop(name []byte, connectionTokens ...[]byte) bool {
	for _, s := range hopByHop {
		if equalFold(name, s) {
			return true
		}
	}
	for _, t := range connectionTokens {
		if equalFoldBytes(name, t) {
			return true
		}
	}
	return false
}

func getHeader(hs []Header, name string) ([]byte, bool) {
	for i := range hs {
		if equalFoldString(hs[i].Name, name) {
			return hs[i].Value, true
		}
	}
	return nil, false
}

func delHeader(hs []Header, name string) []Header {
	j := 0
	for i := range hs {
		if !equalFoldString(hs[i].Name, name) {
			hs[j] = hs[i]
			j++
		}
	}
	clear(hs[j:])
	return hs[:j]
}

// copyField copies name and value into the arena, sanitised, and returns
// the two slices.
func copyField[V string | []byte](arena *[]byte, name string, value V) Header {
	a := *arena
	start := len(a)
	a = append(a, name...)
	mid := len(a)
	a = append(a, value...)
	end := len(a)
	for i := start; i < mid; i++ {
		if !tokenTable[a[i]] {
			a[i] = '_'
		}
	}
	for i := mid; i < end; i++ {
		if c := a[i]; c == '\r' || c == '\n' || c == 0 {
			a[i] = ' '
		}
	}
	*arena = a
	return Header{Name: a[start:mid:mid], Value: a[mid:end:end]}
}

func setHeader[V string | []byte](hs []Header, arena *[]byte, name string, value V) []Header {
	for i := range hs {
		if equalFoldString(hs[i].Name, name) {
			hs[i].Value = copyField(arena, "", value).Value
			rest := delHeader(hs[i+1:], name)
			return hs[:i+1+len(rest)]
		}
	}
	return append(hs, copyField(arena, name, value))
}

func addHeader[V string | []byte](hs []Header, arena *[]byte, name string, value V) []Header {
	return append(hs, copyField(arena, name, value))
}

func appendList(hs []Header, arena *[]byte, name string, value []byte) []Header {
	for i := len(hs) - 1; i >= 0; i-- {
		if equalFoldString(hs[i].Name, name) {
			a := *arena
			start := len(a)
			a = append(a, hs[i].Value...)
			a = append(a, ", "...)
			*arena = a
			v := copyField(arena, "", value).Value
			a = *arena
			hs[i].Value = a[start : start+len(hs[i].Value)+2+len(v) : start+len(hs[i].Value)+2+len(v)]
			return hs
		}
	}
	return append(hs, copyField(arena, name, value))
}

func removeHopByHop(hs []Header, arena *[]byte, connTokens [][]byte, keepUpgrade, request bool) []Header {
	teTrailers := false
	j := 0
	for i := range hs {
		name := hs[i].Name
		if request && equalFold(name, "te") {
			teTrailers = teTrailers || hasToken(hs[i].Value, "trailers")
			continue
		}
		if keepUpgrade && equalFold(name, "upgrade") {
			hs[j] = hs[i]
			j++
			continue
		}
		if IsHopByHop(name, connTokens...) {
			continue
		}
		hs[j] = hs[i]
		j++
	}
	clear(hs[j:])
	hs = hs[:j]
	if teTrailers {
		hs = addHeader(hs, arena, "TE", "trailers")
	}
	if keepUpgrade {
		hs = addHeader(hs, arena, "Connection", "Upgrade")
	}
	return hs
}
