package http1

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

const (
	// DefaultMaxHeaderBytes bounds a head (request or status line plus
	// fields), as Envoy's default of 60 KiB.
	DefaultMaxHeaderBytes = 60 << 10
	// DefaultMaxHeaders bounds the number of fields in a head.
	DefaultMaxHeaders = 100

	// maxHeaderBytesLimit is the largest accepted maxHeaderBytes.
	maxHeaderBytesLimit = 1 << 20

	minBufShift = 12 // smallest pooled buffer: 4 KiB
	numClasses  = 10 // 4 KiB .. 2 MiB
	// minBodyTail is the free space after a head that body reads need; a
	// buffer with less is exchanged for a larger one before copying a body.
	minBodyTail   = 2 << 10
	copyBufSize   = 32 << 10
	maxEmptyReads = 100
)

var bufPools [numClasses]sync.Pool

// getBuf returns a pooled buffer of at least size bytes.
func getBuf(size int) *[]byte {
	c := 0
	for (1<<(minBufShift+c)) < size && c < numClasses-1 {
		c++
	}
	if p, _ := bufPools[c].Get().(*[]byte); p != nil {
		return p
	}
	b := make([]byte, 1<<(minBufShift+c))
	return &b
}

func putBuf(p *[]byte) {
	n := len(*p)
	for c := 0; c < numClasses; c++ {
		if n == 1<<(minBufShift+c) {
			bufPools[c].Put(p)
			return
		}
	}
}

// Reader reads HTTP/1 heads and bodies from a connection through a pooled
// buffer. It starts with a 4 KiB buffer and moves to larger pooled buffers
// only for heads that need them. A Reader is not safe for concurrent use.
type Reader struct {
	rd         io.Reader
	bufp       *[]byte
	buf        []byte
	r, w       int     // unread bytes are buf[r:w]
	headEnd    int     // body reads never write below this offset
	retired    *[]byte // previous buffer still referenced by the last head
	maxBytes   int
	maxHeaders int
	copyBufp   *[]byte
	lr         io.LimitedReader // splice source, kept here so it does not escape per body
}

// NewReader returns a Reader on rd whose heads may be at most
// maxHeaderBytes long (DefaultMaxHeaderBytes when maxHeaderBytes <= 0,
// capped at 1 MiB). The buffer is taken from a pool on first use.
func NewReader(rd io.Reader, maxHeaderBytes int) *Reader {
	r := &Reader{}
	r.Reset(rd)
	r.SetMaxHeaderBytes(maxHeaderBytes)
	r.maxHeaders = DefaultMaxHeaders
	return r
}

// Reset makes the Reader read from rd, dropping buffered data. Limits are
// kept.
func (r *Reader) Reset(rd io.Reader) {
	r.rd = rd
	r.r, r.w, r.headEnd = 0, 0, 0
}

// SetMaxHeaderBytes sets the head size limit (see NewReader).
func (r *Reader) SetMaxHeaderBytes(n int) {
	if n <= 0 {
		n = DefaultMaxHeaderBytes
	}
	r.maxBytes = min(n, maxHeaderBytesLimit)
}

// SetMaxHeaders sets the limit on the number of fields in a head, and on the
// number of trailer fields of a chunked body (DefaultMaxHeaders when n <= 0).
func (r *Reader) SetMaxHeaders(n int) {
	if n <= 0 {
		n = DefaultMaxHeaders
	}
	r.maxHeaders = n
}

// Buffered returns the number of bytes read from the connection and not yet
// consumed.
func (r *Reader) Buffered() int { return r.w - r.r }

// Release returns the buffers to their pools and drops buffered data. Heads
// read before become invalid. The Reader may be used again: it takes a new
// buffer on the next read.
func (r *Reader) Release() {
	if r.retired != nil {
		putBuf(r.retired)
		r.retired = nil
	}
	if r.bufp != nil {
		putBuf(r.bufp)
		r.bufp, r.buf = nil, nil
	}
	if r.copyBufp != nil {
		putBuf(r.copyBufp)
		r.copyBufp = nil
	}
	r.r, r.w, r.headEnd = 0, 0, 0
}

// Read reads body or tunnel bytes: buffered bytes first, then directly from
// the connection. It does not invalidate the last head.
func (r *Reader) Read(p []byte) (int, error) {
	if r.r < r.w {
		n := copy(p, r.buf[r.r:r.w])
		r.r += n
		return n, nil
	}
	return r.rd.Read(p)
}

// ReadRequestHead reads and validates one request head into h. At a clean
// end of the connection before any byte of a request it returns io.EOF; at
// an end inside a head, io.ErrUnexpectedEOF. Syntax and framing errors are
// *ParseError wrapping ErrMalformed or ErrHeaderTooLarge.
func (r *Reader) ReadRequestHead(h *RequestHead) error {
	h.reset()
	start, end, err := r.readHead(true)
	if err != nil {
		return err
	}
	if err := parseRequest(r.buf[start:end], h, r.maxHeaders); err != nil {
		return err
	}
	r.r, r.headEnd = end, end
	return nil
}

// ReadResponseHead reads one response head into h. requestMethod is the
// method of the request it answers: a HEAD or a successful CONNECT has no
// body. Errors are as for ReadRequestHead. A 1xx response is returned like
// any other; the caller reads again for the final response.
func (r *Reader) ReadResponseHead(h *ResponseHead, requestMethod []byte) error {
	h.reset()
	start, end, err := r.readHead(false)
	if err != nil {
		return err
	}
	if err := parseResponse(r.buf[start:end], h, requestMethod); err != nil {
		return err
	}
	r.r, r.headEnd = end, end
	return nil
}

// beginHead invalidates the previous head: it returns a retired buffer,
// moves unread bytes to the start and shrinks an oversized buffer.
func (r *Reader) beginHead() {
	if r.retired != nil {
		putBuf(r.retired)
		r.retired = nil
	}
	n := r.w - r.r
	if r.bufp == nil || len(r.buf) > 1<<minBufShift && n <= 1<<(minBufShift-1) {
		nb := getBuf(1 << minBufShift)
		if r.bufp != nil {
			copy(*nb, r.buf[r.r:r.w])
			putBuf(r.bufp)
		}
		r.bufp, r.buf = nb, *nb
	} else if r.r > 0 {
		copy(r.buf, r.buf[r.r:r.w])
	}
	r.r, r.w, r.headEnd = 0, n, 0
}

// readHead buffers a complete head and returns its bounds in r.buf, the end
// including the empty line. Leading empty lines are skipped when
// skipEmpty is set. Every line must end in CRLF.
func (r *Reader) readHead(skipEmpty bool) (start, end int, err error) {
	r.beginHead()
	lineStart, scan, lines := 0, 0, 0
	for {
		for scan < r.w {
			i := bytes.IndexByte(r.buf[scan:r.w], '\n')
			if i < 0 {
				scan = r.w
				break
			}
			nl := scan + i
			if nl == lineStart || r.buf[nl-1] != '\r' {
				return 0, 0, malformed("bare LF line ending", lines+1)
			}
			scan = nl + 1
			if nl-1 > lineStart {
				lines++
				if lines > r.maxHeaders+1 {
					return 0, 0, tooLarge(fmt.Sprintf("more than %d header fields", r.maxHeaders))
				}
				lineStart = scan
				continue
			}
			if lines > 0 {
				if scan-r.r > r.maxBytes {
					return 0, 0, tooLarge(fmt.Sprintf("head larger than %d bytes", r.maxBytes))
				}
				return r.r, scan, nil
			}
			if !skipEmpty {
				return 0, 0, malformed("empty status line", 1)
			}
			lineStart = scan
			if scan > r.maxBytes { // leading empty lines count towards the limit
				return 0, 0, tooLarge(fmt.Sprintf("head larger than %d bytes", r.maxBytes))
			}
		}
		if r.w-r.r >= r.maxBytes {
			return 0, 0, tooLarge(fmt.Sprintf("head larger than %d bytes", r.maxBytes))
		}
		if err := r.fill(); err != nil {
			if errors.Is(err, io.EOF) {
				if r.w == lineStart && lines == 0 {
					r.r = r.w
					return 0, 0, io.EOF
				}
				return 0, 0, fmt.Errorf("http1: read head: %w", io.ErrUnexpectedEOF)
			}
			return 0, 0, fmt.Errorf("http1: read head: %w", err)
		}
	}
}

// fill reads once into the free space at the end of the buffer, growing the
// buffer (keeping offsets) when it is full.
func (r *Reader) fill() error {
	if r.w == len(r.buf) {
		nb := getBuf(2 * len(r.buf))
		copy(*nb, r.buf[:r.w])
		putBuf(r.bufp)
		r.bufp, r.buf = nb, *nb
	}
	for range maxEmptyReads {
		n, err := r.rd.Read(r.buf[r.w:])
		r.w += n
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// nextLine returns the line starting at p in head (without CRLF) and the
// start of the next one. readHead guaranteed that every line ends in CRLF.
func nextLine(head []byte, p int) (line []byte, next int) {
	i := bytes.IndexByte(head[p:], '\n')
	return head[p : p+i-1], p + i + 1
}

func parseVersion(b []byte) (minor int, ok bool) {
	if len(b) != 8 || string(b[:7]) != "HTTP/1." {
		return 0, false
	}
	switch b[7] {
	case '0':
		return 0, true
	case '1':
		return 1, true
	}
	return 0, false
}

func parseRequest(head []byte, h *RequestHead, maxHeaders int) error {
	p := 0
	for head[p] == '\r' && head[p+1] == '\n' { // skipped empty lines
		p += 2
	}
	line, p := nextLine(head, p)
	if err := parseRequestLine(line, h); err != nil {
		return err
	}
	var f fieldState
	hostFromTarget := h.Host != nil
	lineNo := 1
	for {
		line, p = nextLine(head, p)
		lineNo++
		if len(line) == 0 {
			break
		}
		name, value, err := parseField(line, lineNo)
		if err != nil {
			return err
		}
		h.Headers = append(h.Headers, Header{Name: name, Value: value})
		switch len(name) {
		case 4:
			if equalFold(name, "host") {
				f.hosts++
				if len(value) > 0 && !validHost(value) {
					return malformed("invalid host header", lineNo)
				}
				if !hostFromTarget {
					h.Host = value
				}
			}
		case 6:
			if equalFold(name, "expect") && equalFold(value, "100-continue") {
				h.Expect100 = h.Minor == 1
			}
		case 7:
			if equalFold(name, "upgrade") {
				f.upgradeField = true
			}
		default:
			if err := f.framing(name, value, lineNo, &h.connTokens); err != nil {
				return err
			}
		}
	}
	if f.hosts > 1 {
		return malformed("multiple host headers", 0)
	}
	if f.hosts == 0 && h.Minor == 1 {
		return malformed("missing host header", 0)
	}
	if f.te {
		if h.Minor == 0 {
			return malformed("transfer-encoding in http/1.0 message", 0)
		}
		if f.clValue != nil {
			return malformed("both transfer-encoding and content-length", 0)
		}
		h.Chunked = true
	}
	if f.clValue != nil {
		h.ContentLength = f.cl
	}
	h.Close = f.close || h.Minor == 0 && !f.keepAlive
	h.Upgrade = h.Minor == 1 && f.upgradeToken && f.upgradeField
	return nil
}

// fieldState collects what the framing fields say while a head is parsed.
type fieldState struct {
	hosts            int
	cl               int64
	clValue          []byte
	te               bool
	close, keepAlive bool
	upgradeToken     bool
	upgradeField     bool
}

// framing handles Content-Length, Transfer-Encoding and Connection, shared
// by requests and responses.
func (f *fieldState) framing(name, value []byte, lineNo int, tokens *[][]byte) error {
	switch len(name) {
	case 10:
		if !equalFold(name, "connection") {
			return nil
		}
		for list := value; len(list) > 0; {
			var t []byte
			t, list = nextToken(list)
			if len(t) == 0 {
				continue
			}
			switch {
			case equalFold(t, "close"):
				f.close = true
			case equalFold(t, "keep-alive"):
				f.keepAlive = true
			case equalFold(t, "upgrade"):
				f.upgradeToken = true
			}
			*tokens = append(*tokens, t)
		}
	case 14:
		if !equalFold(name, "content-length") {
			return nil
		}
		n, ok := parseContentLength(value)
		if !ok {
			return malformed("invalid content-length", lineNo)
		}
		if f.clValue != nil && !bytes.Equal(f.clValue, value) {
			return malformed("conflicting content-length headers", lineNo)
		}
		f.cl, f.clValue = n, value
	case 17:
		if !equalFold(name, "transfer-encoding") {
			return nil
		}
		if f.te {
			return malformed("multiple transfer-encoding headers", lineNo)
		}
		if !equalFold(value, "chunked") {
			return malformed("unsupported transfer-encoding", lineNo)
		}
		f.te = true
	}
	return nil
}

func parseContentLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func parseRequestLine(line []byte, h *RequestHead) error {
	i := 0
	for i < len(line) && tokenTable[line[i]] {
		i++
	}
	if i == 0 || i == len(line) || line[i] != ' ' {
		return malformed("invalid method", 1)
	}
	h.Method = line[:i:i]
	i++
	j := i
	for j < len(line) && targetTable[line[j]] {
		j++
	}
	if j == i || j == len(line) || line[j] != ' ' {
		return malformed("invalid request target", 1)
	}
	h.Target = line[i:j:j]
	minor, ok := parseVersion(line[j+1:])
	if !ok {
		return malformed("unsupported http version", 1)
	}
	h.Minor = minor
	return checkTarget(h)
}

// checkTarget validates the four forms of request-target (RFC 9112 §3.2).
func checkTarget(h *RequestHead) error {
	t := h.Target
	switch {
	case t[0] == '/':
		if !validPath(t) {
			return malformed("invalid percent-encoding in target", 1)
		}
		return nil
	case string(h.Method) == "CONNECT":
		if !validHost(t) {
			return malformed("invalid authority-form target", 1)
		}
		h.Host = t
		return nil
	case len(t) == 1 && t[0] == '*':
		if string(h.Method) != "OPTIONS" {
			return malformed("asterisk-form target with a method other than OPTIONS", 1)
		}
		return nil
	}
	// absolute-form: scheme "://" authority [ path-abempty ] [ "?" query ]
	i := 0
	for i < len(t) && (lowerTable[t[i]] >= 'a' && lowerTable[t[i]] <= 'z' ||
		i > 0 && ('0' <= t[i] && t[i] <= '9' || t[i] == '+' || t[i] == '-' || t[i] == '.')) {
		i++
	}
	if i == 0 || len(t) < i+3 || string(t[i:i+3]) != "://" {
		return malformed("invalid request target", 1)
	}
	a := i + 3
	e := a
	for e < len(t) && t[e] != '/' && t[e] != '?' {
		e++
	}
	if !validHost(t[a:e]) {
		return malformed("invalid authority in target", 1)
	}
	if !validPath(t[e:]) {
		return malformed("invalid percent-encoding in target", 1)
	}
	h.Host = t[a:e:e]
	h.pathStart = e
	return nil
}

// validPath checks the percent-encoding of the path part (before any '?').
func validPath(t []byte) bool {
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '?':
			return true
		case '%':
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

// parseField splits "name: value", validating both and trimming OWS around
// the value.
func parseField(line []byte, lineNo int) (name, value []byte, err error) {
	i := 0
	for i < len(line) && tokenTable[line[i]] {
		i++
	}
	if i == len(line) || line[i] != ':' {
		switch {
		case line[0] == ' ' || line[0] == '\t':
			return nil, nil, malformed("obs-fold or leading whitespace in header", lineNo)
		case i < len(line) && (line[i] == ' ' || line[i] == '\t'):
			return nil, nil, malformed("whitespace before colon", lineNo)
		case i == len(line):
			return nil, nil, malformed("missing colon in header", lineNo)
		}
		return nil, nil, malformed("invalid header name", lineNo)
	}
	if i == 0 {
		return nil, nil, malformed("empty header name", lineNo)
	}
	v := line[i+1:]
	for _, c := range v {
		if !valueTable[c] {
			if c == '\r' {
				return nil, nil, malformed("bare CR in header value", lineNo)
			}
			return nil, nil, malformed("invalid character in header value", lineNo)
		}
	}
	v = trimOWS(v)
	return line[:i:i], v[:len(v):len(v)], nil
}

func parseResponse(head []byte, h *ResponseHead, method []byte) error {
	line, p := nextLine(head, 0)
	if len(line) < 12 || line[8] != ' ' {
		return malformed("invalid status line", 1)
	}
	minor, ok := parseVersion(line[:8])
	if !ok {
		return malformed("unsupported http version", 1)
	}
	h.Minor = minor
	s := line[9:12]
	if s[0] < '1' || s[0] > '9' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return malformed("invalid status code", 1)
	}
	h.Status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if len(line) > 12 {
		if line[12] != ' ' {
			return malformed("invalid status code", 1)
		}
		h.Reason = line[13:len(line):len(line)]
		for _, c := range h.Reason {
			if !valueTable[c] {
				return malformed("invalid character in reason phrase", 1)
			}
		}
	}
	var f fieldState
	lineNo := 1
	for {
		line, p = nextLine(head, p)
		lineNo++
		if len(line) == 0 {
			break
		}
		name, value, err := parseField(line, lineNo)
		if err != nil {
			return err
		}
		h.Headers = append(h.Headers, Header{Name: name, Value: value})
		if err := f.framing(name, value, lineNo, &h.connTokens); err != nil {
			return err
		}
	}
	h.NoBody = h.Status < 200 || h.Status == 204 || h.Status == 304 ||
		string(method) == "HEAD" || string(method) == "CONNECT" && h.Status < 300
	h.Close = f.close || h.Minor == 0 && !f.keepAlive
	if f.clValue != nil {
		h.ContentLength = f.cl
	}
	if f.te {
		if h.Minor == 0 {
			return malformed("transfer-encoding in http/1.0 message", 0)
		}
		h.Chunked = true
		if f.clValue != nil { // RFC 9112 §6.3: drop Content-Length, do not reuse the connection
			h.ContentLength = -1
			h.Close = true
		}
	}
	if h.Status < 200 || h.Status == 204 { // framing fields are meaningless here (RFC 9110 §8.6)
		h.Chunked, h.ContentLength = false, -1
	}
	if !h.NoBody && !h.Chunked && h.ContentLength < 0 {
		h.Close = true
	}
	return nil
}
