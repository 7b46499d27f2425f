// Package http1 is a lean HTTP/1.1 codec for the sidecar's hot path: it
// parses request and response heads into reusable structs whose fields are
// slices into a pooled read buffer, copies message bodies with exact framing
// (Content-Length, chunked, until-EOF), and writes heads back out with
// allocation-free header edits.
//
// It follows RFC 9112 strictly, as HAProxy does, and rejects rather than
// repairs anything that could make two parsers disagree about where a
// message ends:
//
//   - Line endings must be CRLF. A bare LF or a bare CR anywhere in a head
//     is ErrMalformed (RFC 9112 §2.2 allows accepting a bare LF; we do not).
//   - Empty lines (CRLF) before a request line are skipped (RFC 9112 §2.2).
//   - Method and field names must be tokens; whitespace before the colon,
//     obs-fold, control characters in values, '#' or bytes outside visible
//     ASCII in the request target are ErrMalformed.
//   - Only HTTP/1.0 and HTTP/1.1 are accepted.
//   - An HTTP/1.1 request must carry exactly one Host field.
//   - Transfer-Encoding must be exactly one field with the value "chunked";
//     Transfer-Encoding together with Content-Length, on an HTTP/1.0
//     message, or differing Content-Length fields are ErrMalformed in a
//     request. In a response, Transfer-Encoding wins over Content-Length and
//     the connection is marked Close (RFC 9112 §6.3).
//
// Known differences from net/http's http.ReadRequest (the fuzz targets
// check that net/http accepts every head we accept): we reject bare-LF line
// endings, '#' and non-ASCII bytes in targets, "*" with a method other than
// OPTIONS, userinfo and IPv6 zones in absolute-form targets, IPv4 or zone
// literals in brackets in Host, any Transfer-Encoding other than a single
// "chunked" (net/http ignores it on HTTP/1.0), and HTTP/1.1 requests with no
// or several Host fields (net/http's server rejects those later, ReadRequest
// does not). We accept empty lines before a request line, which net/http
// rejects. Chunked bodies: we accept any ratio of framing to data, where
// net/http's reader gives up on "too much non-data".
//
// Framing lives in the head's fields, not in Headers: ContentLength and
// Chunked are derived while parsing and the Append* functions write the
// framing fields from them, skipping any Content-Length or
// Transfer-Encoding left in Headers. 1xx and 204 responses have neither.
//
// Buffers and slices: a Reader owns one pooled buffer. Everything a
// Read*Head call returns (method, target, header names and values) points
// into that buffer and stays valid until the next ReadRequestHead,
// ReadResponseHead or Release on the same Reader. CopyBody and Read do not
// invalidate it.
package http1
