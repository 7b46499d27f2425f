package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/store"
	"github.com/weft-mesh/weft/control/translate"
	"github.com/weft-mesh/weft/control/xds"
)

// Mesh is the xDS side of the control plane: the registry, the translator
// fed from the store, and the ADS server. Build it with MeshComponent.
type Mesh struct {
	Registry *registry.Registry
	XDS      *xds.Server
	XDSAddr  net.Addr
	// JoinToken is the token proxies present (--token / WEFT_JOIN_TOKEN).
	JoinToken string
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
}

// MeshComponent returns the Component that runs the registry and the xDS
// server on cfg.XDSAddr, keeps the translator's view of the store current,
// and serves GET /api/v1/proxies and GET /metrics on the API.
func MeshComponent(opts MeshOptions) Component {
	return func(p *Plane) (func(context.Context) error, error) {
		token := opts.JoinToken
		if token == "" {
			var err error
			if token, err = joinToken(p.Config.StateDir); err != nil {
				return nil, err
			}
		}
		metrics := prometheus.NewRegistry()
		metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg := registry.New(opts.Registry)
		src := &translate.Source{}
		srv, err := xds.New(xds.Options{
			Translator: src.Translator(reg),
			Registry:   reg,
			Auth:       xds.StaticTokens{token: {Subject: "join-token"}},
			Metrics:    metrics,
			Logger:     p.Logger,
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
		m := &Mesh{Registry: reg, XDS: srv, XDSAddr: lis.Addr(), JoinToken: token}
		if opts.Started != nil {
			opts.Started(m)
		}
		run := func(ctx context.Context) error {
			defer reg.Close()
			errc := make(chan error, 2)
			go func() { errc <- srv.Serve(lis) }()
			go func() { errc <- feedTranslator(ctx, p.Store, src, srv) }()
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
func feedTranslator(ctx context.Context, st store.Store, src *translate.Source, srv *xds.Server) error {
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
