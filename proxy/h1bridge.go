package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/weft-mesh/weft/proxy/route"
)

// bridge serves the current request of hc through the general net/http
// forwarder: used when the routed cluster speaks HTTP/2, so that an
// HTTP/1.1 client can reach it. The request head is converted once; the
// response is written back as HTTP/1.1 (chunked when its length is unknown,
// with trailers). It returns whether the client connection may be reused.
func (hc *h1Conn) bridge(spec *hcmSpec, g *graph, rt *route.Route, origin string) bool {
	req := &hc.req
	u, err := url.ParseRequestURI(origin)
	if err != nil {
		return hc.reply(http.StatusBadRequest, "bad_request", false)
	}
	hdr := make(http.Header, len(req.Headers))
	for _, f := range req.Headers {
		hdr.Add(string(f.Name), string(f.Value))
	}
	hdr.Del("Content-Length")
	hdr.Del("Transfer-Encoding")
	r := &http.Request{
		Method:     string(req.Method),
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: req.Minor,
		Header:     hdr,
		Host:       string(req.Host),
		RemoteAddr: hc.conn.RemoteAddr().String(),
		RequestURI: origin,
		Body:       http.NoBody,
	}
	keep := !req.Close
	cl, chunked := req.BodyFraming()
	switch {
	case chunked:
		// The codec passes chunk framing through; decode it for the
		// transport. The decoder may read past the body, so the
		// connection is not reused.
		r.Body = io.NopCloser(httputil.NewChunkedReader(hc.rd))
		r.ContentLength = -1
		keep = false
	case cl > 0:
		r.Body = io.NopCloser(io.LimitReader(hc.rd, cl))
		r.ContentLength = cl
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r = r.WithContext(ctx)
	w := &h1ResponseWriter{bw: bufio.NewWriterSize(hc.conn, 16<<10), h: make(http.Header), close: !keep, head: string(req.Method) == http.MethodHead, http10: req.Minor == 0}
	f := forwarder{h: &httpHandler{ll: hc.ll}, spec: spec, g: g, rt: rt, rec: &hc.rec}
	hc.rec.rw = recWriter{ResponseWriter: w, rec: &hc.rec}
	defer func() {
		if hc.rec.grpcStatus == "" {
			hc.rec.grpcStatus = grpcStatusOf(w.h)
		}
		hc.rec.rw = recWriter{}
	}()
	aborted := false
	func() {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					panic(v)
				}
				aborted = true
			}
		}()
		f.serve(&hc.rec.rw, r)
	}()
	if aborted {
		w.bw.Flush()
		return false
	}
	if err := w.finish(); err != nil {
		return false
	}
	return keep && !w.close
}

// h1ResponseWriter writes a net/http handler's response as HTTP/1.1 on a
// raw connection. Not safe for concurrent use.
type h1ResponseWriter struct {
	bw      *bufio.Writer
	h       http.Header
	wrote   bool
	chunked bool
	close   bool
	head    bool
	http10  bool // the client speaks HTTP/1.0: no chunking; unknown lengths end with the connection
	err     error
}

func (w *h1ResponseWriter) Header() http.Header { return w.h }

func (w *h1ResponseWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	if code >= 100 && code < 200 {
		return // interim responses are not relayed on this path
	}
	w.wrote = true
	bw := w.bw
	if w.http10 {
		bw.WriteString("HTTP/1.0 ")
	} else {
		bw.WriteString("HTTP/1.1 ")
	}
	bw.WriteString(strconv.Itoa(code))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	noBody := w.head || code == http.StatusNoContent || code == http.StatusNotModified
	if w.h.Get("Content-Length") == "" && !noBody {
		if w.http10 {
			w.close = true
		} else {
			w.chunked = true
		}
	}
	for k, vv := range w.h {
		if strings.HasPrefix(k, http.TrailerPrefix) || (k == "Trailer" && !w.chunked) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.close:
		bw.WriteString("Connection: close\r\n")
	case w.http10:
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

func (w *h1ResponseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if len(b) == 0 || w.head {
		return len(b), nil
	}
	if w.chunked {
		w.bw.WriteString(strconv.FormatInt(int64(len(b)), 16))
		w.bw.WriteString("\r\n")
	}
	n, err := w.bw.Write(b)
	if w.chunked && err == nil {
		_, err = w.bw.WriteString("\r\n")
	}
	w.err = err
	return n, err
}

// Flush sends what is buffered (streaming responses).
func (w *h1ResponseWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.err == nil {
		w.err = w.bw.Flush()
	}
}

// finish ends a chunked body with its trailers and flushes.
func (w *h1ResponseWriter) finish() error {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.chunked && !w.head {
		w.bw.WriteString("0\r\n")
		announced := map[string]bool{}
		for _, v := range w.h["Trailer"] {
			for k := range strings.SplitSeq(v, ",") {
				announced[http.CanonicalHeaderKey(strings.TrimSpace(k))] = true
			}
		}
		for k, vv := range w.h {
			name, ok := strings.CutPrefix(k, http.TrailerPrefix)
			if !ok && !announced[k] {
				continue
			}
			for _, v := range vv {
				w.bw.WriteString(name + ": " + v + "\r\n")
			}
		}
		w.bw.WriteString("\r\n")
	}
	if w.err != nil {
		return w.err
	}
	return w.bw.Flush()
}
