package proxy

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestParseTraceparent(t *testing.T) {
	tests := []struct {
		name, in    string
		ok, sampled bool
		trace, span string
	}{
		{"sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, true, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, false, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		{"upper case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", true, true, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		{"future version with more fields", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true, true, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		{"version 00 with trailing data", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false, false, "", ""},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false, "", ""},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, false, "", ""},
		{"zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, false, "", ""},
		{"short", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false, false, "", ""},
		{"bad hex", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false, false, "", ""},
		{"bad separator", "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc, ok := parseTraceparent(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if got := hex.EncodeToString(tc.traceID[:]); got != tt.trace {
				t.Errorf("trace = %s, want %s", got, tt.trace)
			}
			if got := hex.EncodeToString(tc.spanID[:]); got != tt.span {
				t.Errorf("span = %s, want %s", got, tt.span)
			}
			if tc.sampled != tt.sampled || !tc.decided {
				t.Errorf("sampled %v decided %v, want %v true", tc.sampled, tc.decided, tt.sampled)
			}
		})
	}
}

func TestParseB3(t *testing.T) {
	tests := []struct {
		name             string
		single           string
		multi            [3]string
		ok               bool
		trace, span      string
		sampled, decided bool
	}{
		{name: "single 128-bit sampled", single: "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", ok: true,
			trace: "80f198ee56343ba864fe8b2a57d3eff7", span: "e457b5a2e4d86bd1", sampled: true, decided: true},
		{name: "single 64-bit undecided", single: "64fe8b2a57d3eff7-e457b5a2e4d86bd1", ok: true,
			trace: "000000000000000064fe8b2a57d3eff7", span: "e457b5a2e4d86bd1"},
		{name: "single debug", single: "64fe8b2a57d3eff7-e457b5a2e4d86bd1-d", ok: true,
			trace: "000000000000000064fe8b2a57d3eff7", span: "e457b5a2e4d86bd1", sampled: true, decided: true},
		{name: "single decision only", single: "0"},
		{name: "single bad sampled", single: "64fe8b2a57d3eff7-e457b5a2e4d86bd1-x"},
		{name: "single short span", single: "64fe8b2a57d3eff7-e457b5a2"},
		{name: "multi", multi: [3]string{"80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", "0"}, ok: true,
			trace: "80f198ee56343ba864fe8b2a57d3eff7", span: "e457b5a2e4d86bd1", decided: true},
		{name: "multi zero trace", multi: [3]string{"0000000000000000", "e457b5a2e4d86bd1", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tc traceContext
			var ok bool
			if tt.single != "" {
				tc, ok = parseB3Single(tt.single)
			} else {
				tc, ok = parseB3Multi(tt.multi[0], tt.multi[1], tt.multi[2])
			}
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if got := hex.EncodeToString(tc.traceID[:]); got != tt.trace {
				t.Errorf("trace = %s, want %s", got, tt.trace)
			}
			if got := hex.EncodeToString(tc.spanID[:]); got != tt.span {
				t.Errorf("span = %s, want %s", got, tt.span)
			}
			if tc.sampled != tt.sampled || tc.decided != tt.decided {
				t.Errorf("sampled %v decided %v, want %v %v", tc.sampled, tc.decided, tt.sampled, tt.decided)
			}
		})
	}
}

func FuzzParseTraceparent(f *testing.F) {
	for _, s := range []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x", "", "00-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tc, ok := parseTraceparent(s)
		if !ok {
			return
		}
		ts := traceState{traceID: tc.traceID, spanID: tc.spanID, sampled: tc.sampled}
		again, ok := parseTraceparent(string(ts.appendTraceparent(nil)))
		if !ok || again != tc {
			t.Fatalf("%q: re-encoded context parses as %+v (%v), want %+v", s, again, ok, tc)
		}
	})
}

func FuzzParseB3(f *testing.F) {
	for _, s := range []string{"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", "64fe8b2a57d3eff7-e457b5a2e4d86bd1", "1", "--"} {
		f.Add(s, "e457b5a2e4d86bd1", "1")
	}
	f.Fuzz(func(t *testing.T, single, span, sampled string) {
		for _, r := range []func() (traceContext, bool){
			func() (traceContext, bool) { return parseB3Single(single) },
			func() (traceContext, bool) { return parseB3Multi(single, span, sampled) },
		} {
			if tc, ok := r(); ok && (isZero(tc.traceID[:]) || isZero(tc.spanID[:])) {
				t.Fatalf("accepted a zero id: %+v", tc)
			}
		}
	})
}

func TestDecodeHCMTracing(t *testing.T) {
	router, _ := anypb.New(&routerv3.Router{})
	mk := func(pct float64) *hcmv3.HttpConnectionManager {
		return &hcmv3.HttpConnectionManager{
			RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "r"}},
			HttpFilters:    []*hcmv3.HttpFilter{{Name: routerFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router}}},
			Tracing:        &hcmv3.HttpConnectionManager_Tracing{RandomSampling: &typev3.Percent{Value: pct}},
		}
	}
	s, err := decodeHCM(mk(25))
	if err != nil || s.sampling != 0.25 {
		t.Fatalf("random_sampling 25: %v %v, want 0.25", s, err)
	}
	if _, err := decodeHCM(mk(150)); err == nil || err.Error() != "tracing.random_sampling.value: must be 0-100, got 150" {
		t.Fatalf("random_sampling 150: err = %v", err)
	}
	h := mk(0)
	h.Tracing = nil
	if s, err := decodeHCM(h); err != nil || s.sampling != -1 {
		t.Fatalf("no tracing: %v %v, want -1", s, err)
	}
}

// spanSink passes exported spans to a channel.
type spanSink struct{ ch chan *tracepb.Span }

func newSpanSink() *spanSink { return &spanSink{ch: make(chan *tracepb.Span, 16)} }

func (s *spanSink) ExportSpans(enc []byte, n int, _ bool) error {
	spans, err := decodeSpans(enc, n)
	if err != nil {
		panic(err)
	}
	for _, sp := range spans {
		s.ch <- sp
	}
	return nil
}
func (s *spanSink) ExportLogs([]byte, int) error { return nil }
func (s *spanSink) SpansCarryRecords() bool      { return false }
func (s *spanSink) DropRecords(int, int)         {}
func (s *spanSink) next(t *testing.T) *tracepb.Span {
	t.Helper()
	select {
	case sp := <-s.ch:
		return sp
	case <-time.After(5 * time.Second):
		t.Fatal("no span within 5s")
		return nil
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// attr returns a span attribute as text.
func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() != key {
			continue
		}
		if v, ok := kv.GetValue().GetValue().(*commonpb.AnyValue_IntValue); ok {
			return strconv.FormatInt(v.IntValue, 10)
		}
		return kv.GetValue().GetStringValue()
	}
	return ""
}

// TestTracePropagation: client → A (frontend outbound) → B (catalog
// inbound) → app1, which calls onward with the traceparent it got through
// C (catalog's outbound) → app2. Every hop joins the caller's trace with
// the previous hop's span as its parent.
func TestTracePropagation(t *testing.T) {
	seen2 := make(chan string, 1)
	app2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen2 <- r.Header.Get("Traceparent")
		io.WriteString(w, "stock")
	}))
	defer app2.Close()
	sa, sb, sc := newSpanSink(), newSpanSink(), newSpanSink()
	_, cAddrs := startProxyOpts(t, withDirection(httpBootstrap(`              - name: stock
                match: {prefix: "/"}
                route: {cluster: "outbound|80||stock.shop"}`, meshCluster("outbound|80||stock.shop", app2.Listener.Addr().String(), "stock", "shop")), "OUTBOUND"),
		Options{Telemetry: sc, TraceSampling: -1, Workload: "catalog", Namespace: "shop"})
	seen1 := make(chan string, 1)
	app1 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp := r.Header.Get("Traceparent")
		seen1 <- tp
		req, _ := http.NewRequest("GET", "http://"+cAddrs["in"]+"/stock", nil)
		req.Header.Set("Traceparent", tp) // what an instrumented app does
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		io.Copy(w, resp.Body)
		resp.Body.Close()
	}))
	defer app1.Close()
	_, bAddrs := startProxyOpts(t, withDirection(httpBootstrap(`              - name: default
                match: {prefix: "/"}
                route: {cluster: "inbound|8080||"}`, staticCluster(`"inbound|8080||"`, "", app1.Listener.Addr().String())), "INBOUND"),
		Options{Telemetry: sb, TraceSampling: -1, Workload: "catalog", Namespace: "shop", Service: "catalog"})
	_, aAddrs := startProxyOpts(t, withDirection(httpBootstrap(`              - name: catalog-route
                match: {prefix: "/"}
                route: {cluster: "outbound|80||catalog.shop"}`, meshCluster("outbound|80||catalog.shop", bAddrs["in"], "catalog", "shop")), "OUTBOUND"),
		Options{Telemetry: sa, TraceSampling: -1, Workload: "frontend", Namespace: "shop"})

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for proto, c := range clients(t) {
		t.Run(proto, func(t *testing.T) {
			r := get(t, c, "http://"+aAddrs["in"]+"/items", map[string]string{"Traceparent": "00-" + traceID + "-" + callerSpan + "-01"})
			if r.status != 200 || r.body != "stock" {
				t.Fatalf("call: %d %q", r.status, r.body)
			}
			tp1, tp2 := <-seen1, <-seen2
			spC, spB, spA := sc.next(t), sb.next(t), sa.next(t)
			for _, s := range []struct {
				name     string
				span     *tracepb.Span
				parent   string
				kind     tracepb.Span_SpanKind
				reporter string
			}{
				{"A", spA, callerSpan, tracepb.Span_SPAN_KIND_CLIENT, "source"},
				{"B", spB, hexOf(spA.GetSpanId()), tracepb.Span_SPAN_KIND_SERVER, "destination"},
				{"C", spC, hexOf(spB.GetSpanId()), tracepb.Span_SPAN_KIND_CLIENT, "source"},
			} {
				if got := hexOf(s.span.GetTraceId()); got != traceID {
					t.Errorf("%s: trace %s, want %s", s.name, got, traceID)
				}
				if got := hexOf(s.span.GetParentSpanId()); got != s.parent {
					t.Errorf("%s: parent %s, want %s", s.name, got, s.parent)
				}
				if s.span.GetKind() != s.kind || attr(s.span, "weft.reporter") != s.reporter {
					t.Errorf("%s: kind %v reporter %s, want %v %s", s.name, s.span.GetKind(), attr(s.span, "weft.reporter"), s.kind, s.reporter)
				}
				if s.span.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
					t.Errorf("%s: status ERROR for a 200", s.name)
				}
			}
			if spA.GetName() != "GET catalog-route" || attr(spA, "http.response.status_code") != "200" || attr(spA, "url.path") != "/items" ||
				attr(spA, "weft.destination_workload") != "catalog" || attr(spA, "weft.cluster") != "outbound|80||catalog.shop" {
				t.Errorf("A span: %s %v", spA.GetName(), spA.GetAttributes())
			}
			if want := "00-" + traceID + "-" + hexOf(spB.GetSpanId()) + "-01"; tp1 != want {
				t.Errorf("app1 got traceparent %s, want %s", tp1, want)
			}
			if want := "00-" + traceID + "-" + hexOf(spC.GetSpanId()) + "-01"; tp2 != want {
				t.Errorf("app2 got traceparent %s, want %s", tp2, want)
			}
		})
	}
}

// TestSampling: the caller's decision wins; without one the listener's
// random_sampling (else the proxy's ratio) decides; 5xx and local
// replies are always recorded; B3 is accepted on ingress.
func TestSampling(t *testing.T) {
	seen := make(chan string, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("Traceparent")
		if r.URL.Path == "/fail" {
			w.WriteHeader(502)
		}
	}))
	defer app.Close()
	routes := `              - name: app
                match: {prefix: "/"}
                route: {cluster: app}`
	cl := staticCluster("app", "", app.Listener.Addr().String())
	never, always := newSpanSink(), newSpanSink()
	_, nAddrs := startProxyOpts(t, httpBootstrap(routes, cl), Options{Telemetry: never, TraceSampling: -1})
	_, aAddrs := startProxyOpts(t, strings.Replace(httpBootstrap(routes, cl), "          stat_prefix: in\n",
		"          stat_prefix: in\n          tracing: {random_sampling: {value: 100}}\n", 1), Options{Telemetry: always, TraceSampling: -1})
	c := clients(t)["http1"]
	const tid = "80f198ee56343ba864fe8b2a57d3eff7"
	tests := []struct {
		name     string
		addr     string
		sink     *spanSink
		path     string
		hdr      map[string]string
		recorded bool
		trace    string // "" any
		upFlags  string // flags of the forwarded traceparent
	}{
		{"unsampled 200 not recorded", nAddrs["in"], never, "/ok", nil, false, "", "-00"},
		{"unsampled 5xx recorded", nAddrs["in"], never, "/fail", nil, true, "", "-00"},
		{"caller sampled", nAddrs["in"], never, "/ok", map[string]string{"Traceparent": "00-" + tid + "-e457b5a2e4d86bd1-01"}, true, tid, "-01"},
		{"b3 single sampled", nAddrs["in"], never, "/ok", map[string]string{"B3": tid + "-e457b5a2e4d86bd1-1"}, true, tid, "-01"},
		{"b3 multi sampled", nAddrs["in"], never, "/ok", map[string]string{"X-B3-Traceid": tid, "X-B3-Spanid": "e457b5a2e4d86bd1", "X-B3-Sampled": "1"}, true, tid, "-01"},
		{"listener samples all", aAddrs["in"], always, "/ok", nil, true, "", "-01"},
		{"caller's no beats the listener", aAddrs["in"], always, "/ok", map[string]string{"Traceparent": "00-" + tid + "-e457b5a2e4d86bd1-00"}, false, tid, "-00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get(t, c, "http://"+tt.addr+tt.path, tt.hdr)
			up := <-seen
			if !strings.HasSuffix(up, tt.upFlags) || (tt.trace != "" && !strings.HasPrefix(up, "00-"+tt.trace+"-")) {
				t.Errorf("forwarded traceparent %q, want trace %q flags %s", up, tt.trace, tt.upFlags)
			}
			// A local reply is always recorded: it marks the end of this
			// case in the sink's order.
			get(t, c, "http://"+tt.addr+"/x", map[string]string{"Connection": "upgrade", "Upgrade": "h2c-nope"})
			first := tt.sink.next(t)
			if tt.recorded {
				if tt.trace != "" && hexOf(first.GetTraceId()) != tt.trace {
					t.Errorf("span trace %s, want %s", hexOf(first.GetTraceId()), tt.trace)
				}
				if tt.path == "/fail" && first.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR {
					t.Errorf("5xx span status %v, want ERROR", first.GetStatus())
				}
				first = tt.sink.next(t)
			}
			if attr(first, "weft.reason") != reasonUpgradeDenied {
				t.Errorf("unexpected span %s %v", first.GetName(), first.GetAttributes())
			}
		})
	}
}

// Without an exporter the trace headers pass through unchanged.
func TestTraceHeadersPassThrough(t *testing.T) {
	seen := make(chan string, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Get("Traceparent") }))
	defer app.Close()
	_, addrs := startProxy(t, httpBootstrap(`              - match: {prefix: "/"}
                route: {cluster: app}`, staticCluster("app", "", app.Listener.Addr().String())))
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for proto, c := range clients(t) {
		get(t, c, "http://"+addrs["in"]+"/", map[string]string{"Traceparent": tp})
		if got := <-seen; got != tp {
			t.Errorf("%s: app got %q, want %q", proto, got, tp)
		}
	}
}
