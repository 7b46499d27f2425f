package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/alert"
	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/ca"
	"github.com/weft-mesh/weft/control/dashboard"
	"github.com/weft-mesh/weft/control/jointoken"
	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/store"
	"github.com/weft-mesh/weft/control/telemetry"
	"github.com/weft-mesh/weft/control/translate"
	"github.com/weft-mesh/weft/control/xds"
)

// Mesh is the xDS side of the control plane: the registry, the translator
// fed from the store, and the ADS server. Build it with MeshComponent.
type Mesh struct {
	Registry *registry.Registry
	XDS      *xds.Server
	XDSAddr  net.Addr
	// JoinToken is the operator's token: bound to no identity, it lets a
	// proxy claim any identity and authorises privileged API calls
	// (issuing join tokens, rotating the CA).
	JoinToken string
	// Tokens issues the join tokens bound to one namespace and service
	// account that proxies present.
	Tokens *jointoken.Issuer
	// CA signs the proxies' certificates; nil when mTLS is off.
	CA *ca.CA
	// Source holds what the translator reads (resources, mesh settings).
	Source *translate.Source
	// Telemetry is the hub that receives the proxies' spans and logs,
	// scrapes their metrics and serves /api/v1/{top,traces,logs,...}.
	Telemetry *telemetry.Hub
	// Alerts evaluates the AlertRules against the hub's metrics.
	Alerts *alert.Evaluator
	// OTLPSocket is the Unix socket on which the hub also takes OTLP/HTTP
	// exports ("" when it does not): proxies on the same machine send
	// over it at less CPU per byte than over loopback TCP.
	OTLPSocket string

	log *slog.Logger
}

// MeshOptions configure MeshComponent.
type MeshOptions struct {
	// JoinToken proxies must present. Empty: read <state-dir>/join-token,
	// creating it with a random token (file mode 0600) on first start.
	JoinToken string
	// Registry options (grace period, clock).
	Registry registry.Options
	// Started, if set, is called with the running mesh before the API
	// serves (from Run's goroutine; it must not block).
	Started func(*Mesh)
	// TrustDomain of the mesh's SPIFFE identities; default
	// "cluster.local".
	TrustDomain string
	// MTLSMode is the mesh default where no PeerAuthentication applies;
	// default PERMISSIVE.
	MTLSMode v1alpha1.MTLSMode
	// NoCA runs the mesh without a certificate authority: every hop is
	// plaintext and no certificates are issued.
	NoCA bool
	// CA tunes the certificate authority (kept in <state-dir>/ca);
	// TrustDomain above overrides CA.TrustDomain.
	CA ca.Options
	// TraceSampling is the share (0 to 1) of requests without a sampling
	// decision that proxies trace; 0 leaves it to the proxies. weft
	// control: --trace-sampling (default 0.01); weft up: 1.
	TraceSampling float64
	// Telemetry bounds the telemetry hub's stores (MaxSpans, MaxLogs,
	// Retention) and tunes its scrapes; Auth, Proxies and Logger are set
	// by MeshComponent.
	Telemetry telemetry.Options
	// OTLPSocket is the path of a Unix socket (mode 0600) on which the
	// hub takes OTLP/HTTP exports, as on the API port; default
	// <state-dir>/otlp.sock, "off" for none. A socket that cannot be
	// opened is logged and left out.
	OTLPSocket string
}

// MeshComponent returns the Component that runs the registry and the xDS
// server on cfg.XDSAddr, keeps the translator's view of the store current,
// and serves GET /api/v1/proxies, GET /metrics and the dashboard (GET /)
// on the API.
func MeshComponent(opts MeshOptions) Component {
	return func(p *Plane) (func(context.Context) error, error) {
		token := opts.JoinToken
		if token == "" {
			var err error
			if token, err = joinToken(p.Config.StateDir); err != nil {
				return nil, err
			}
		}
		if !loopbackAddr(p.Config.APIAddr) {
			p.API.RequireWriteToken(token)
		}
		issuer, err := jointoken.Open(p.Config.StateDir, nil)
		if err != nil {
			return nil, err
		}
		td := opts.TrustDomain
		if td == "" {
			td = ca.DefaultTrustDomain
		}
		mode := opts.MTLSMode
		if mode == "" || mode == v1alpha1.MTLSUnset {
			mode = v1alpha1.MTLSPermissive
		}
		src := &translate.Source{}
		if opts.TraceSampling < 0 || opts.TraceSampling > 1 {
			return nil, fmt.Errorf("trace sampling %v: want a share from 0 to 1", opts.TraceSampling)
		}
		mesh := translate.MeshConfig{TrustDomain: td, MTLSMode: mode, TraceSampling: opts.TraceSampling}
		var authority *ca.CA
		var signer xds.Signer
		if !opts.NoCA {
			caOpts := opts.CA
			caOpts.TrustDomain = td
			if authority, err = ca.Open(filepath.Join(p.Config.StateDir, "ca"), caOpts); err != nil {
				return nil, fmt.Errorf("certificate authority: %w", err)
			}
			signer = authority
			mesh.TrustBundle = authority.BundlePEM()
		}
		src.SetMesh(mesh)
		metrics := prometheus.NewRegistry()
		metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg := registry.New(opts.Registry)
		// The hub authenticates exports and lists proxies through the xDS
		// server, which registers the hub's receivers as it is built: srv
		// is set before anything is served.
		var srv *xds.Server
		hubOpts := opts.Telemetry
		hubOpts.Auth = telemetry.AuthFunc(func(ctx context.Context) (xds.Identity, error) { return srv.Authenticate(ctx) })
		hubOpts.Proxies = telemetry.ProxiesFunc(func() []xds.ProxyStatus { return srv.Proxies() })
		hubOpts.Logger = p.Logger
		hub := telemetry.New(hubOpts)
		srv, err = xds.New(xds.Options{
			Translator:  src.Translator(reg),
			Registry:    reg,
			Auth:        xds.Tokens{Join: issuer, Static: xds.StaticTokens{token: {Subject: "operator-token"}}},
			Metrics:     metrics,
			Logger:      p.Logger,
			CA:          signer,
			TrustDomain: td,
			Register:    hub.Register,
			GRPCOptions: []grpc.ServerOption{grpc.ForceServerCodecV2(telemetry.ServerCodec{})},
		})
		if err != nil {
			reg.Close()
			return nil, err
		}
		lis, err := net.Listen("tcp", p.Config.XDSAddr)
		if err != nil {
			reg.Close()
			return nil, fmt.Errorf("xds listen on %s: %w", p.Config.XDSAddr, err)
		}
		p.API.Handle("GET /api/v1/proxies", srv.ProxiesHandler())
		p.API.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
		hub.RegisterAPI(p.API.Handle)
		hub.RegisterOTLPHTTP(p.API.HandleOwnAuth)
		var backends atomic.Pointer[map[string][]string]
		alerts := alert.New(alert.Options{Query: alertQuery(hub, func() map[string][]string {
			if b := backends.Load(); b != nil {
				return *b
			}
			return nil
		}), Logger: p.Logger})
		p.API.Handle("GET /api/v1/alerts", alerts.Handler())
		dashboard.Register(p.API.Handle)
		m := &Mesh{Registry: reg, XDS: srv, XDSAddr: lis.Addr(), JoinToken: token, Tokens: issuer, CA: authority, Source: src, Telemetry: hub, Alerts: alerts, log: p.Logger.With("component", "ca")}
		otlpLis := listenOTLPSocket(opts.OTLPSocket, p.Config.StateDir, p.Logger)
		if otlpLis != nil {
			m.OTLPSocket = otlpLis.Addr().String()
		}
		p.API.Handle("POST /api/v1/join-tokens", api.OperatorOnly(token, joinTokensHandler(issuer)))
		if authority != nil {
			p.API.Handle("POST /api/v1/ca/rotate", api.OperatorOnly(token, m.rotateHandler()))
		}
		// Profiles show what the hub and the xDS server spend, as istiod's
		// /debug/pprof does; they need the operator token.
		p.API.Handle("GET /debug/pprof/", api.OperatorOnly(token, http.HandlerFunc(pprof.Index)))
		p.API.Handle("GET /debug/pprof/profile", api.OperatorOnly(token, http.HandlerFunc(pprof.Profile)))
		if opts.Started != nil {
			opts.Started(m)
		}
		run := func(ctx context.Context) error {
			defer reg.Close()
			errc := make(chan error, 3)
			go func() { errc <- srv.Serve(lis) }()
			go func() {
				errc <- feedTranslator(ctx, p.Store, src, srv, func(objs []resource.Object) {
					b := translate.RouteBackends(objs)
					backends.Store(&b)
					alerts.SetRules(objs)
				})
			}()
			go alerts.Run(ctx, alertPeriod)
			go func() { errc <- hub.Run(ctx) }()
			if otlpLis != nil {
				otlpSrv := serveOTLPSocket(otlpLis, hub)
				defer otlpSrv.Close()
			}
			if authority != nil {
				go m.pruneBundle(ctx, time.Minute)
			}
			var err error
			select {
			case <-ctx.Done():
			case err = <-errc:
			}
			srv.Stop()
			return err
		}
		return run, nil
	}
}

// feedTranslator keeps src equal to the store's contents: it watches the
// store, and after the initial sync and every change it publishes the
// objects and tells the xDS server (which debounces). A watcher that falls
// behind re-lists.
func feedTranslator(ctx context.Context, st store.Store, src *translate.Source, srv *xds.Server, also func([]resource.Object)) error {
	for {
		ch, err := st.Watch(ctx, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch store: %w", err)
		}
		objs := map[resource.Key]resource.Object{}
		synced := false
		publish := func() {
			list := make([]resource.Object, 0, len(objs))
			for _, o := range objs {
				list = append(list, o)
			}
			src.Set(list)
			if also != nil {
				also(list)
			}
			srv.ConfigChanged()
		}
		for ev := range ch {
			switch ev.Type {
			case store.Added, store.Modified:
				objs[ev.Object.Key()] = ev.Object
			case store.Deleted:
				delete(objs, ev.Object.Key())
			case store.Synced:
				synced = true
			case store.Resync:
				// The channel closes after this; the outer loop re-lists.
			}
			if synced && ev.Type != store.Resync {
				publish()
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// joinToken reads the state directory's join token, creating it on first
// use.
func joinToken(dir string) (string, error) {
	path := filepath.Join(dir, "join-token")
	b, err := os.ReadFile(path)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("%s is empty: delete it to generate a new token", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [24]byte
	rand.Read(raw[:])
	t := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write join token: %w", err)
	}
	return t, nil
}

// joinTokensHandler issues join tokens bound to an identity.
func joinTokensHandler(iss *jointoken.Issuer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.JoinTokenRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
			api.WriteError(w, http.StatusBadRequest, "body: "+err.Error())
			return
		}
		var ttl time.Duration
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil || d < 0 {
				api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("ttl: %q is not a non-negative duration", req.TTL))
				return
			}
			ttl = d
		}
		for _, f := range []struct{ path, v string }{{"namespace", req.Namespace}, {"serviceAccount", req.ServiceAccount}} {
			if errs := validation.IsDNS1123Label(f.v); len(errs) > 0 {
				api.WriteError(w, http.StatusBadRequest, fmt.Sprintf("%s: %q: %s", f.path, f.v, strings.Join(errs, "; ")))
				return
			}
		}
		tok, err := iss.Issue(req.Namespace, req.ServiceAccount, ttl)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.JoinTokenResponse{Token: tok})
	})
}

// rotateHandler rotates the CA's root and pushes the new bundle (old and
// new roots) to every proxy at once.
func (m *Mesh) rotateHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.CA.Rotate(); err != nil {
			api.WriteError(w, http.StatusConflict, "rotate: "+err.Error())
			return
		}
		m.publishBundle()
		m.log.Info("root rotated; the bundle holds the old and the new root", "root", m.CA.RootFingerprint())
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(api.RotateResponse{Root: m.CA.RootFingerprint()})
	})
}

// publishBundle sends the CA's current trust bundle to every proxy.
func (m *Mesh) publishBundle() {
	mc := m.Source.Mesh()
	mc.TrustBundle = m.CA.BundlePEM()
	m.Source.SetMesh(mc)
	m.XDS.ConfigChanged()
}

// loopbackAddr reports whether host:port names a loopback address only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// pruneBundle drops retired roots whose overlap has ended, every period,
// and pushes the smaller bundle.
func (m *Mesh) pruneBundle(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := m.CA.Prune(now)
			if err != nil {
				m.log.Warn("prune the trust bundle", "err", err)
				continue
			}
			if n > 0 {
				m.log.Info("retired roots left the trust bundle", "count", n)
				m.publishBundle()
			}
		}
	}
}

// alertPeriod is how often AlertRules are evaluated (the scrape interval).
const alertPeriod = 5 * time.Second

// alertQuery reads an AlertRule's metric from the hub's history.
// alertQuery answers the alert evaluator from the hub's metric history;
// backends returns translate.RouteBackends of the current resources, so
// that a rule on a Service that is a route parent watches the calls to the
// route's backends.
func alertQuery(hub *telemetry.Hub, backends func() map[string][]string) alert.Query {
	return func(ns string, t v1alpha1.AlertTarget, m v1alpha1.AlertMetric, window time.Duration, now time.Time) (float64, float64, bool) {
		q := telemetry.WindowQuery{Namespace: ns, Workload: t.Workload, Service: t.Service}
		if t.Edge != nil {
			q.SourceWorkload, q.Service = t.Edge.From, t.Edge.To
		}
		if q.Service != "" {
			q.Backends = backends()[ns+"/"+q.Service]
		}
		g, ok := hub.Window(q, window, now)
		if !ok {
			return 0, 0, false
		}
		var v *float64
		switch m {
		case v1alpha1.AlertRequestRate:
			return g.RPS, g.Requests, true
		case v1alpha1.AlertSuccessRate:
			v = g.SuccessRate
		case v1alpha1.AlertLatencyP50:
			v = g.P50MS
		case v1alpha1.AlertLatencyP90:
			v = g.P90MS
		case v1alpha1.AlertLatencyP99:
			v = g.P99MS
		}
		if v == nil {
			return 0, g.Requests, false
		}
		return *v, g.Requests, true
	}
}

// listenOTLPSocket opens the hub's OTLP Unix socket (MeshOptions.OTLPSocket)
// in place of a stale one; nil when it is off or cannot be opened.
func listenOTLPSocket(path, stateDir string, log *slog.Logger) net.Listener {
	switch path {
	case "off":
		return nil
	case "":
		path = filepath.Join(stateDir, "otlp.sock")
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	// A socket left by a process that is gone refuses connections: take
	// its place. One that answers belongs to a running control plane.
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		log.Warn("OTLP socket in use by another process; proxies here send over the API port", "path", path)
		return nil
	}
	os.Remove(path)
	lis, err := net.Listen("unix", path)
	if err != nil {
		log.Warn("no OTLP socket; proxies send over the API port", "path", path, "err", err)
		return nil
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		log.Warn("no OTLP socket; proxies send over the API port", "path", path, "err", err)
		return nil
	}
	return lis
}

// serveOTLPSocket serves the hub's OTLP/HTTP receivers, and nothing else,
// on lis. Closing the server closes lis and removes the socket file.
func serveOTLPSocket(lis net.Listener, hub *telemetry.Hub) *http.Server {
	mux := http.NewServeMux()
	hub.RegisterOTLPHTTP(func(pattern string, h http.Handler) { mux.Handle(pattern, h) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(lis)
	return srv
}
