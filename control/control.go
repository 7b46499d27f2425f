// Package control wires the control plane together: it opens the store,
// serves the resource API and runs the attached components (the xDS server,
// the registry, `weft up`'s runtime) until its context is cancelled.
package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/weft-mesh/weft/control/api"
	"github.com/weft-mesh/weft/control/store"
)

// Defaults of Config.
const (
	DefaultStateDir = "./.weft"
	DefaultAPIAddr  = api.DefaultAddr
	DefaultXDSAddr  = "127.0.0.1:15010"
)

// Config configures Run.
type Config struct {
	// StateDir holds the state file (weft.db). Default "./.weft".
	StateDir string
	// APIAddr is the HTTP resource API's listen address. Default
	// "127.0.0.1:7070"; port 0 picks a free port (see Plane.APIAddr).
	APIAddr string
	// XDSAddr is the gRPC xDS listen address. Default "127.0.0.1:15010".
	// Used by the xDS component.
	XDSAddr string
	// Version is reported by the API.
	Version string
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Store tunes the embedded store.
	Store store.Options
	// OnReady, if set, is called once the API is listening and every
	// component is set up (from Run's goroutine; it must not block).
	OnReady func(*Plane)
}

func (c *Config) setDefaults() {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.APIAddr == "" {
		c.APIAddr = DefaultAPIAddr
	}
	if c.XDSAddr == "" {
		c.XDSAddr = DefaultXDSAddr
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Store.Logger == nil {
		c.Store.Logger = c.Logger
	}
}

// Plane is the running control plane as components see it. Its fields are
// set before the first component is called and do not change; it is safe
// for concurrent use (Store and API are).
type Plane struct {
	Config  Config
	Store   store.Store
	API     *api.Server
	APIAddr net.Addr // the address the API listens on
	Logger  *slog.Logger
}

// A Component is attached to the control plane by Run. Run calls each
// component in order, before the API serves, so that it can register
// endpoints with p.API.Handle. The returned run function (nil if there is
// nothing to run) is started in its own goroutine and must return when its
// context is done; an error from it (or from setup) stops the whole plane.
type Component func(p *Plane) (run func(ctx context.Context) error, err error)

// Run opens the store, serves the API and runs the components until ctx is
// cancelled or one of them fails. It returns nil after a clean shutdown.
func Run(ctx context.Context, cfg Config, components ...Component) (err error) {
	cfg.setDefaults()
	log := cfg.Logger.With("component", "control")
	st, err := store.Open(cfg.StateDir, cfg.Store)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("control: api listen on %s: %w", cfg.APIAddr, err)
	}
	p := &Plane{
		Config:  cfg,
		Store:   st,
		API:     api.New(st, api.Options{Version: cfg.Version, Logger: cfg.Logger}),
		APIAddr: ln.Addr(),
		Logger:  cfg.Logger,
	}

	// ---- xDS server ----------------------------------------------------
	// The xDS server (control/xds) is started here: it is passed to Run as
	// a Component (built by cli/control.go and `weft up`) that listens on
	// cfg.XDSAddr, watches p.Store (Watch(ctx, 0)), registers its proxies
	// endpoint with p.API.Handle and serves until ctx is done.
	// ---------------------------------------------------------------------

	var runs []func(context.Context) error
	for i, c := range components {
		run, err := c(p)
		if err != nil {
			ln.Close()
			return fmt.Errorf("control: component %d: %w", i, err)
		}
		if run != nil {
			runs = append(runs, run)
		}
	}
	runs = append(runs, func(ctx context.Context) error { return p.API.Serve(ctx, ln) })

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, run := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	log.Info("control plane running", "api", ln.Addr().String(), "stateDir", cfg.StateDir, "revision", st.Revision())
	if cfg.OnReady != nil {
		cfg.OnReady(p)
	}
	<-ctx.Done()
	wg.Wait()
	log.Info("control plane stopped")
	return firstErr
}
