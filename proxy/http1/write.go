package http1

import "strconv"

// AppendRequestHead appends h in wire form to dst: the request line with
// h.Method, h.Target and HTTP/1.<h.Minor> (a proxy normally forwards with
// Minor 1), every field of h.Headers in order except Content-Length and
// Transfer-Encoding, then the framing taken from h.Chunked or
// h.ContentLength (none when it is -1). Edits are made on h beforehand (Set,
// Del, RemoveHopByHop, or the Headers slice directly).
func AppendRequestHead(dst []byte, h *RequestHead) []byte {
	dst = append(dst, h.Method...)
	dst = append(dst, ' ')
	dst = append(dst, h.Target...)
	dst = append(dst, " HTTP/1."...)
	dst = append(dst, byte('0'+h.Minor), '\r', '\n')
	dst = appendFields(dst, h.Headers)
	dst = appendFraming(dst, h.Chunked, h.ContentLength)
	return append(dst, '\r', '\n')
}

// AppendResponseHead appends h in wire form to dst, as AppendRequestHead
// does. An empty Reason is written as an empty reason phrase. 1xx and 204
// responses get no framing fields (RFC 9110 §8.6).
func AppendResponseHead(dst []byte, h *ResponseHead) []byte {
	dst = append(dst, "HTTP/1."...)
	dst = append(dst, byte('0'+h.Minor), ' ')
	dst = strconv.AppendInt(dst, int64(h.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, h.Reason...)
	dst = append(dst, '\r', '\n')
	dst = appendFields(dst, h.Headers)
	if h.Status >= 200 && h.Status != 204 {
		dst = appendFraming(dst, h.Chunked, h.ContentLength)
	}
	return append(dst, '\r', '\n')
}

func appendFields(dst []byte, hs []Header) []byte {
	for i := range hs {
		f := &hs[i]
		if isFraming(f.Name) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ':', ' ')
		dst = append(dst, f.Value...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

func appendFraming(dst []byte, chunked bool, contentLength int64) []byte {
	switch {
	case chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case contentLength >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, contentLength, 10)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

func isFraming(name []byte) bool {
	switch len(name) {
	case 14:
		return equalFold(name, "content-length")
	case 17:
		return equalFold(name, "transfer-encoding")
	}
	return false
}
