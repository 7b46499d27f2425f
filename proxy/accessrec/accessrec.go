// Package accessrec is the access record of docs/observability.md: one
// JSON object per HTTP request or TCP connection. The proxy writes it to
// its access log and ships it as the body of an OTLP log record; when its
// collector is weft control, the span of a traced request carries the
// record instead (its attributes hold every field, see the Attr
// constants), and the control plane renders the same JSON from the span
// (FromSpan, AppendJSON). One package owns the format, so both renderings
// are the same bytes.
package accessrec

import (
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"
)

// Record is one access record's fields, as AppendJSON writes them.
type Record struct {
	Start      int64 // Unix ns
	TCP        bool  // a TCP connection (no HTTP fields)
	TraceValid bool  // TraceID holds an id
	TraceID    [16]byte
	SpanID     [8]byte // all zero: none
	Reporter   string

	RequestID, Listener, Route        string
	Method, Authority, Path, Protocol string // HTTP only
	Status                            int64  // HTTP only
	GRPCStatus                        string // HTTP only
	Flags, Reason                     string
	Attempts                          int64
	Cluster, Upstream                 string
	Duration, UpstreamDuration        time.Duration
	BytesIn, BytesOut                 int64
	SourceWorkload, SourceNamespace   string
	SourcePrincipal                   string
	DestinationWorkload               string
	DestinationNamespace              string
	DestinationService                string
	DestinationPrincipal              string
	UserAgent                         string // HTTP only
}

// AppendJSON appends r as one JSON object, its fields in the documented
// order.
func AppendJSON(b []byte, r *Record) []byte {
	b = append(b, `{"time":"`...)
	b = AppendTimeMicros(b, r.Start)
	if r.TCP {
		b = append(b, `","kind":"tcp"`...)
	} else {
		b = append(b, `","kind":"http"`...)
	}
	b = field(b, "reporter", r.Reporter)
	b = append(b, `,"trace_id":"`...)
	if r.TraceValid {
		b = hex.AppendEncode(b, r.TraceID[:])
		b = append(b, `","span_id":"`...)
		if r.SpanID != [8]byte{} {
			b = hex.AppendEncode(b, r.SpanID[:])
		}
	} else {
		b = append(b, `","span_id":"`...)
	}
	b = append(b, '"')
	b = field(b, "request_id", r.RequestID)
	b = field(b, "listener", r.Listener)
	b = field(b, "route", r.Route)
	if !r.TCP {
		b = field(b, "method", r.Method)
		b = field(b, "authority", r.Authority)
		b = field(b, "path", r.Path)
		b = field(b, "protocol", r.Protocol)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, r.Status, 10)
		b = field(b, "grpc_status", r.GRPCStatus)
	}
	b = field(b, "flags", r.Flags)
	b = field(b, "reason", r.Reason)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, r.Attempts, 10)
	b = field(b, "cluster", r.Cluster)
	b = field(b, "upstream", r.Upstream)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(r.Duration)/1e6, 'f', 3, 64)
	b = append(b, `,"upstream_ms":`...)
	b = strconv.AppendFloat(b, float64(r.UpstreamDuration)/1e6, 'f', 3, 64)
	b = append(b, `,"bytes_in":`...)
	b = strconv.AppendInt(b, r.BytesIn, 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, r.BytesOut, 10)
	b = field(b, "source_workload", r.SourceWorkload)
	b = field(b, "source_namespace", r.SourceNamespace)
	b = field(b, "source_principal", r.SourcePrincipal)
	b = field(b, "destination_workload", r.DestinationWorkload)
	b = field(b, "destination_namespace", r.DestinationNamespace)
	b = field(b, "destination_service", r.DestinationService)
	b = field(b, "destination_principal", r.DestinationPrincipal)
	if !r.TCP {
		b = field(b, "user_agent", r.UserAgent)
	}
	return append(b, '}')
}

// field appends ,"name":"value" with value escaped as a JSON string.
func field(b []byte, name, value string) []byte {
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return AppendJSONString(b, value)
}

const hexDigits = "0123456789abcdef"

// safeJSON marks the bytes a JSON string holds as they are: printable
// ASCII other than '"' and '\\'.
var safeJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendJSONString appends s as a JSON string. Each byte of s that is not
// part of valid UTF-8, and U+FFFD itself, is written as \ufffd: a string
// whose invalid bytes were replaced one by one with U+FFFD (as ValidUTF8
// does for protobuf strings) is written as the same bytes as the
// original.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		// Copy the run of bytes that need no escaping at once.
		j := i
		for j < len(s) && safeJSON[s[j]] {
			j++
		}
		b = append(b, s[i:j]...)
		if i = j; i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		rn, size := utf8.DecodeRuneInString(s[i:])
		if rn == utf8.RuneError {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// ValidUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD: a protobuf string must be valid UTF-8, and
// AppendJSONString writes the result as it writes s.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		rn, size := utf8.DecodeRuneInString(s[i:])
		if rn == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// AppendTimeMicros appends the UTC time ns (Unix) as
// time.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00") does, without
// parsing the layout.
func AppendTimeMicros(b []byte, ns int64) []byte {
	t := time.Unix(0, ns).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	}
	two := func(b []byte, v int) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
	b = two(two(b, y/100), y%100)
	b = two(append(b, '-'), int(mo))
	b = two(append(b, '-'), d)
	b = two(append(b, 'T'), h)
	b = two(append(b, ':'), mi)
	b = two(append(b, ':'), s)
	us := t.Nanosecond() / 1000
	b = two(two(two(append(b, '.'), us/10000), us/100%100), us%100)
	return append(b, 'Z')
}
