package http1

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
)

const (
	// maxChunkLine bounds a chunk-size line including extensions, as
	// net/http does.
	maxChunkLine = 4096
	// spliceMin is the body size from which a TCP-to-TCP copy hands over
	// to the kernel (splice) instead of copying through user space.
	spliceMin = 64 << 10
)

// CopyBody copies exactly one message body from the connection to w and
// returns the number of bytes written. The body is delimited by chunked
// framing when chunked is set (the framing, extensions and trailers are
// passed through unchanged after validation), else by contentLength when it
// is >= 0, else by the end of the connection when untilEOF is set; otherwise
// there is no body. BodyFraming on the heads gives the arguments.
//
// Bytes after the body stay buffered for the next head. CopyBody never
// buffers a whole body and does not invalidate the last head. Errors
// from w wrap ErrBodyWrite; a body cut short wraps io.ErrUnexpectedEOF;
// invalid chunked framing is a *ParseError.
func (r *Reader) CopyBody(w io.Writer, contentLength int64, chunked, untilEOF bool) (n int64, err error) {
	switch {
	case chunked:
		n, err = r.copyChunked(w)
	case contentLength >= 0:
		n, err = r.copyN(w, contentLength, false)
	case untilEOF:
		n, err = r.copyN(w, math.MaxInt64, true)
	default:
		return 0, nil
	}
	if r.copyBufp != nil {
		putBuf(r.copyBufp)
		r.copyBufp = nil
	}
	return n, err
}

// TakeBufferedBody returns the whole body (raw, with chunk framing) when it
// is already buffered, and consumes it, so that a proxy can send a small
// body in the same write as the head. Otherwise it consumes nothing and
// returns false; the body must then be copied with CopyBody. A body up to
// the end of the connection is never complete. The slice is valid as long
// as the last head is.
func (r *Reader) TakeBufferedBody(contentLength int64, chunked, untilEOF bool) ([]byte, bool) {
	avail := r.buf[r.r:r.w]
	switch {
	case chunked:
		var p chunkParser
		p.init(r.maxBytes, r.maxHeaders)
		n, done, err := p.feed(avail)
		if err != nil || !done {
			return nil, false
		}
		r.r += n
		return avail[:n:n], true
	case contentLength >= 0:
		if int64(len(avail)) < contentLength {
			return nil, false
		}
		r.r += int(contentLength)
		return avail[:contentLength:contentLength], true
	case untilEOF:
		return nil, false
	}
	return avail[:0:0], true
}

// prepareBody makes sure that at least minBodyTail bytes are free after the
// head, exchanging the buffer for a larger one if not. The old buffer is
// kept until the next head because the current head points into it.
func (r *Reader) prepareBody() {
	if r.bufp == nil {
		r.bufp = getBuf(1 << minBufShift)
		r.buf = *r.bufp
		r.r, r.w, r.headEnd = 0, 0, 0
	}
	if len(r.buf)-r.headEnd >= minBodyTail {
		return
	}
	nb := getBuf(r.w - r.r + minBodyTail)
	copy(*nb, r.buf[r.r:r.w])
	if r.retired == nil {
		r.retired = r.bufp
	} else {
		putBuf(r.bufp) // only the retired buffer holds the head
	}
	r.bufp, r.buf = nb, *nb
	r.r, r.w, r.headEnd = 0, r.w-r.r, 0
}

func (r *Reader) copyBuf() []byte {
	if r.copyBufp == nil {
		r.copyBufp = getBuf(copyBufSize)
	}
	return *r.copyBufp
}

func write(w io.Writer, p []byte) error {
	n, err := w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBodyWrite, err)
	}
	return nil
}

// readErr turns a read error inside a body into the returned error.
func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("http1: read body: %w", err)
}

// copyN copies remaining bytes; with untilEOF the end of the connection
// ends the body.
func (r *Reader) copyN(w io.Writer, remaining int64, untilEOF bool) (int64, error) {
	r.prepareBody()
	var written int64
	if k := min(int64(r.w-r.r), remaining); k > 0 {
		if err := write(w, r.buf[r.r:r.r+int(k)]); err != nil {
			return 0, err
		}
		r.r += int(k)
		written, remaining = k, remaining-k
	}
	if remaining > 0 {
		r.r, r.w = r.headEnd, r.headEnd
	}
	for remaining > 0 {
		if remaining >= spliceMin {
			if n, ok, err := r.splice(w, remaining); ok {
				written += n
				if err == nil && !untilEOF && n < remaining {
					err = io.ErrUnexpectedEOF
				}
				if err != nil {
					return written, fmt.Errorf("http1: copy body: %w", err)
				}
				return written, nil
			}
		}
		dst := r.buf[r.headEnd:]
		if int64(len(dst)) < remaining && len(dst) < copyBufSize {
			dst = r.copyBuf()
		}
		dst = dst[:min(int64(len(dst)), remaining)]
		n, err := r.rd.Read(dst)
		if n > 0 {
			if werr := write(w, dst[:n]); werr != nil {
				return written, werr
			}
			written += int64(n)
			remaining -= int64(n)
		}
		if err != nil {
			if untilEOF && errors.Is(err, io.EOF) {
				return written, nil
			}
			if remaining > 0 {
				return written, readErr(err)
			}
		}
	}
	return written, nil
}

// splice lets the kernel move bytes between two TCP connections. ok is
// false when w or the source is not a *net.TCPConn.
func (r *Reader) splice(w io.Writer, n int64) (written int64, ok bool, err error) {
	dst, ok1 := w.(*net.TCPConn)
	src, ok2 := r.rd.(*net.TCPConn)
	if !ok1 || !ok2 {
		return 0, false, nil
	}
	r.lr = io.LimitedReader{R: src, N: n}
	written, err = dst.ReadFrom(&r.lr)
	r.lr.R = nil
	return written, true, err
}

func (r *Reader) copyChunked(w io.Writer) (int64, error) {
	r.prepareBody()
	var p chunkParser
	p.init(r.maxBytes, r.maxHeaders)
	var written int64
	for {
		if r.r < r.w {
			n, done, perr := p.feed(r.buf[r.r:r.w])
			if perr != nil {
				return written, perr
			}
			if n > 0 {
				if err := write(w, r.buf[r.r:r.r+n]); err != nil {
					return written, err
				}
				r.r += n
				written += int64(n)
			}
			if done {
				return written, nil
			}
		}
		// Everything buffered is consumed. Chunk data that is known to
		// belong to the body may be read into the large copy buffer; reads
		// that can cross the end of the body go after the head, so that
		// the bytes after it stay buffered.
		r.r, r.w = r.headEnd, r.headEnd
		if p.state == stData && p.size > int64(len(r.buf)-r.headEnd) {
			dst := r.copyBuf()
			dst = dst[:min(int64(len(dst)), p.size)]
			n, err := r.rd.Read(dst)
			if n > 0 {
				if werr := write(w, dst[:n]); werr != nil {
					return written, werr
				}
				p.size -= int64(n)
				written += int64(n)
				if p.size == 0 {
					p.state = stDataCR
				}
			}
			if err != nil {
				return written, readErr(err)
			}
			continue
		}
		n, err := r.rd.Read(r.buf[r.headEnd:])
		r.w += n
		if err != nil && n == 0 {
			return written, readErr(err)
		}
	}
}

// Chunked framing states (RFC 9112 §7.1).
const (
	stSize         = iota // hex digits of chunk-size
	stSizeWS              // whitespace after the size, before ';'
	stExt                 // chunk extension up to CR
	stSizeLF              // LF ending the size line
	stData                // chunk data, size bytes left
	stDataCR              // CR after chunk data
	stDataLF              // LF after chunk data
	stTrailerStart        // start of a trailer line or of the final empty line
	stTrailerName         // trailer field name
	stTrailerValue        // trailer field value up to CR
	stTrailerLF           // LF ending a trailer line
	stEndLF               // LF of the final empty line
	stDone
)

// chunkParser validates chunked framing incrementally, byte by byte in the
// framing and in bulk over chunk data, so chunks may be split across reads
// anywhere.
type chunkParser struct {
	state       int
	size        int64 // chunk-size being parsed, then data bytes left
	digits      int
	lineLen     int // bytes of the current size line
	trailerLen  int // bytes of the trailer section
	trailers    int // trailer fields
	maxTrailer  int
	maxTrailers int
}

func (p *chunkParser) init(maxTrailerBytes, maxTrailers int) {
	*p = chunkParser{maxTrailer: maxTrailerBytes, maxTrailers: maxTrailers}
}

func chunkErr(reason string) error { return malformed("chunked body: "+reason, 0) }

// feed consumes body bytes from b and returns how many belong to the body,
// whether the body ended, and a framing error.
func (p *chunkParser) feed(b []byte) (n int, done bool, err error) {
	i := 0
	for i < len(b) {
		if p.state == stData {
			k := min(p.size, int64(len(b)-i))
			i += int(k)
			p.size -= k
			if p.size == 0 {
				p.state = stDataCR
			}
			continue
		}
		c := b[i]
		i++
		switch p.state {
		case stSize:
			p.lineLen++
			switch {
			case isHex(c):
				if p.size > math.MaxInt64>>4 {
					return i, false, chunkErr("chunk size overflows")
				}
				p.size = p.size<<4 | int64(unhex(c))
				p.digits++
			case p.digits == 0:
				return i, false, chunkErr("invalid chunk size")
			case c == ';':
				p.state = stExt
			case c == ' ' || c == '\t':
				p.state = stSizeWS
			case c == '\r':
				p.state = stSizeLF
			default:
				return i, false, chunkErr("invalid chunk size")
			}
		case stSizeWS:
			p.lineLen++
			switch c {
			case ' ', '\t':
			case ';':
				p.state = stExt
			default:
				return i, false, chunkErr("invalid chunk extension")
			}
		case stExt:
			p.lineLen++
			switch {
			case c == '\r':
				p.state = stSizeLF
			case !valueTable[c]:
				return i, false, chunkErr("invalid chunk extension")
			}
		case stSizeLF:
			if c != '\n' {
				return i, false, chunkErr("bare CR in chunk size line")
			}
			if p.size == 0 {
				p.state = stTrailerStart
			} else {
				p.state = stData
			}
		case stDataCR:
			if c != '\r' {
				return i, false, chunkErr("missing CRLF after chunk data")
			}
			p.state = stDataLF
		case stDataLF:
			if c != '\n' {
				return i, false, chunkErr("missing CRLF after chunk data")
			}
			p.state, p.size, p.digits, p.lineLen = stSize, 0, 0, 0
		case stTrailerStart:
			p.trailerLen++
			switch {
			case c == '\r':
				p.state = stEndLF
			case tokenTable[c]:
				p.trailers++
				if p.trailers > p.maxTrailers {
					return i, false, &ParseError{Kind: ErrHeaderTooLarge, Reason: "chunked body: too many trailer fields"}
				}
				p.state = stTrailerName
			case c == ' ' || c == '\t':
				return i, false, chunkErr("obs-fold or leading whitespace in trailer")
			default:
				return i, false, chunkErr("invalid trailer field name")
			}
		case stTrailerName:
			p.trailerLen++
			switch {
			case c == ':':
				p.state = stTrailerValue
			case !tokenTable[c]:
				return i, false, chunkErr("invalid trailer field name")
			}
		case stTrailerValue:
			p.trailerLen++
			switch {
			case c == '\r':
				p.state = stTrailerLF
			case !valueTable[c]:
				return i, false, chunkErr("invalid character in trailer value")
			}
		case stTrailerLF:
			p.trailerLen++
			if c != '\n' {
				return i, false, chunkErr("bare CR in trailer")
			}
			p.state = stTrailerStart
		case stEndLF:
			if c != '\n' {
				return i, false, chunkErr("bare CR after trailers")
			}
			p.state = stDone
			return i, true, nil
		}
		if p.lineLen > maxChunkLine {
			return i, false, chunkErr("chunk size line too long")
		}
		if p.trailerLen > p.maxTrailer {
			return i, false, &ParseError{Kind: ErrHeaderTooLarge, Reason: "chunked body: trailer section too large"}
		}
	}
	return i, false, nil
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
