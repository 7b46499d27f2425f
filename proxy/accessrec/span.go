package accessrec

import (
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// The span attributes a record is made of. Every span of a proxy hop has
// the first group (docs/observability.md); a span that carries its
// request's access record (AttrCarries true) has the second group as
// well, so that FromSpan gets back every field.
const (
	AttrMethod     = "http.request.method" // present: an HTTP record
	AttrPath       = "url.path"
	AttrRoute      = "http.route" // "unknown" when no route matched
	AttrAuthority  = "server.address"
	AttrStatus     = "http.response.status_code" // int, when > 0
	AttrPeer       = "network.peer.address"
	AttrReporter   = "weft.reporter"
	AttrCluster    = "weft.cluster"
	AttrUpstream   = "weft.upstream"
	AttrFlags      = "weft.response_flags"
	AttrReason     = "weft.reason"
	AttrSrcWL      = "weft.source_workload"
	AttrSrcNS      = "weft.source_namespace"
	AttrSrcP       = "weft.source_principal"
	AttrDstWL      = "weft.destination_workload"
	AttrDstNS      = "weft.destination_namespace"
	AttrDstSvc     = "weft.destination_service"
	AttrDstP       = "weft.destination_principal"
	AttrGRPCStatus = "rpc.grpc.status_code" // int

	// AttrCarries (bool true) marks a span that carries its request's
	// access record: the proxy sent no log record for the request.
	AttrCarries    = "weft.access_record"
	AttrListener   = "weft.listener"
	AttrRawRoute   = "weft.route" // the route as it is, when AttrRoute does not say it
	AttrRequestID  = "weft.request_id"
	AttrProtocol   = "weft.protocol"
	AttrRawGRPC    = "weft.grpc_status" // the grpc-status as it came
	AttrAttempts   = "weft.attempts"
	AttrUpstreamNS = "weft.upstream_duration_ns"
	AttrBytesIn    = "weft.bytes_in"
	AttrBytesOut   = "weft.bytes_out"
	AttrUserAgent  = "user_agent.original"
)

// Field numbers of opentelemetry.proto.trace.v1.Span and
// opentelemetry.proto.common.v1.{KeyValue,AnyValue} that FromSpan reads.
const (
	spanTraceID protowire.Number = 1
	spanSpanID  protowire.Number = 2
	spanStart   protowire.Number = 7
	spanEnd     protowire.Number = 8
	spanAttrs   protowire.Number = 9

	kvKey   protowire.Number = 1
	kvValue protowire.Number = 2

	anyString protowire.Number = 1
	anyBool   protowire.Number = 2
	anyInt    protowire.Number = 3
)

// FromSpan reads the record a span carries from the span's wire bytes
// (an opentelemetry.proto.trace.v1.Span); the record's strings view b,
// which must not change while they are used. ok is false when b is malformed
// or does not carry a record (AttrCarries is not true). Where a field
// repeats, its last occurrence counts, as in proto.Unmarshal.
func FromSpan(b []byte) (r Record, ok bool) {
	r.TCP = true
	var end int64
	var rawRoute, route string
	var hasRawRoute, carries bool
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, false
		}
		b = b[n:]
		switch {
		case typ == protowire.BytesType && (num == spanTraceID || num == spanSpanID || num == spanAttrs):
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return r, false
			}
			b = b[m:]
			switch num {
			case spanTraceID:
				r.TraceID, r.TraceValid = [16]byte{}, false
				if len(v) == len(r.TraceID) {
					copy(r.TraceID[:], v)
					r.TraceValid = r.TraceID != [16]byte{}
				}
			case spanSpanID:
				r.SpanID = [8]byte{}
				if len(v) == len(r.SpanID) {
					copy(r.SpanID[:], v)
				}
			default:
				key, s, i, isBool, ok := keyValue(v)
				if !ok {
					return r, false
				}
				switch key {
				case AttrCarries:
					carries = isBool && i != 0
				case AttrRawRoute:
					rawRoute, hasRawRoute = s, true
				case AttrRoute:
					route = s
				default:
					r.set(key, s, i)
				}
			}
		case typ == protowire.Fixed64Type && (num == spanStart || num == spanEnd):
			v, m := protowire.ConsumeFixed64(b)
			if m < 0 {
				return r, false
			}
			b = b[m:]
			if num == spanStart {
				r.Start = int64(v)
			} else {
				end = int64(v)
			}
		default:
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return r, false
			}
			b = b[m:]
		}
	}
	if !carries {
		return r, false
	}
	r.Route = route
	if hasRawRoute {
		r.Route = rawRoute
	}
	r.Duration = time.Duration(max(end-r.Start, 0))
	return r, true
}

// set assigns the field attribute key stands for: s for strings, i for
// ints.
func (r *Record) set(key, s string, i int64) {
	switch key {
	case AttrMethod:
		r.TCP, r.Method = false, s
	case AttrPath:
		r.Path = s
	case AttrAuthority:
		r.Authority = s
	case AttrStatus:
		r.Status = i
	case AttrReporter:
		r.Reporter = s
	case AttrCluster:
		r.Cluster = s
	case AttrUpstream:
		r.Upstream = s
	case AttrFlags:
		r.Flags = s
	case AttrReason:
		r.Reason = s
	case AttrSrcWL:
		r.SourceWorkload = s
	case AttrSrcNS:
		r.SourceNamespace = s
	case AttrSrcP:
		r.SourcePrincipal = s
	case AttrDstWL:
		r.DestinationWorkload = s
	case AttrDstNS:
		r.DestinationNamespace = s
	case AttrDstSvc:
		r.DestinationService = s
	case AttrDstP:
		r.DestinationPrincipal = s
	case AttrListener:
		r.Listener = s
	case AttrRequestID:
		r.RequestID = s
	case AttrProtocol:
		r.Protocol = s
	case AttrRawGRPC:
		r.GRPCStatus = s
	case AttrAttempts:
		r.Attempts = i
	case AttrUpstreamNS:
		r.UpstreamDuration = time.Duration(i)
	case AttrBytesIn:
		r.BytesIn = i
	case AttrBytesOut:
		r.BytesOut = i
	case AttrUserAgent:
		r.UserAgent = s
	}
}

// keyValue reads a KeyValue whose value is a string, an int or a bool
// (i is 1 for true); other values read as zero.
func keyValue(b []byte) (key, s string, i int64, isBool, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", "", 0, false, false
		}
		b = b[n:]
		if typ != protowire.BytesType || (num != kvKey && num != kvValue) {
			m := protowire.ConsumeFieldValue(num, typ, b)
			if m < 0 {
				return "", "", 0, false, false
			}
			b = b[m:]
			continue
		}
		v, m := protowire.ConsumeBytes(b)
		if m < 0 {
			return "", "", 0, false, false
		}
		b = b[m:]
		if num == kvKey {
			key = view(v)
			continue
		}
		// AnyValue: a oneof, the last member present wins.
		for len(v) > 0 {
			vn, vt, k := protowire.ConsumeTag(v)
			if k < 0 {
				return "", "", 0, false, false
			}
			v = v[k:]
			switch {
			case vn == anyString && vt == protowire.BytesType:
				x, m := protowire.ConsumeBytes(v)
				if m < 0 {
					return "", "", 0, false, false
				}
				v = v[m:]
				s, i, isBool = view(x), 0, false
			case (vn == anyInt || vn == anyBool) && vt == protowire.VarintType:
				x, m := protowire.ConsumeVarint(v)
				if m < 0 {
					return "", "", 0, false, false
				}
				v = v[m:]
				s, i, isBool = "", int64(x), vn == anyBool
				if isBool && x != 0 {
					i = 1
				}
			default:
				m := protowire.ConsumeFieldValue(vn, vt, v)
				if m < 0 {
					return "", "", 0, false, false
				}
				v = v[m:]
				s, i, isBool = "", 0, false
			}
		}
	}
	return key, s, i, isBool, true
}

// view views b as a string.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// A collector that takes spans carrying access records (AttrCarries) in
// place of log records says so in its answers to OTLP exports: the
// OTLP/HTTP response header Header, or the gRPC response header metadata
// of the same name in lower case, with the value HeaderSpans.
const (
	Header      = "Weft-Access-Records"
	HeaderSpans = "spans"
)
