package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/control/ca/spiffeid"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/admin"
	"github.com/weft-mesh/weft/proxy/bootstrap"
	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/xdsclient"
)

// proxyFlags are the flags of `weft proxy`.
type proxyFlags struct {
	config         string
	xdsAddr        string
	nodeID         string
	service        string
	namespace      string
	serviceAccount string
	workload       string
	token          string
	adminAddr      string
	instanceIP     string
	instancePort   int
	inboundPort    int
	httpProxyPort  int
	protocol       string
	role           string
	locality       string
	labels         map[string]string
	logLevel       string
	trustDomain    string
}

// addProxyCommands attaches `weft proxy`.
func addProxyCommands(root *cobra.Command, s streams) {
	var f proxyFlags
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Run the weft sidecar (or gateway) proxy",
		Long: `Run the weft data plane. Configuration comes from a control plane over
xDS (--xds-addr) or from an Envoy v3 bootstrap file (--config).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProxy(cmd.Context(), s, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "Envoy v3 bootstrap file (YAML or JSON) with static_resources")
	fl.StringVar(&f.xdsAddr, "xds-addr", "", "control plane xDS address host:port")
	fl.StringVar(&f.nodeID, "node-id", "", "unique proxy id (default <workload>-<pid>.<namespace>)")
	fl.StringVar(&f.service, "service", "", "service this proxy's instance belongs to")
	fl.StringVar(&f.namespace, "namespace", "default", "namespace of the workload")
	fl.StringVar(&f.serviceAccount, "service-account", "default", "service account (identity) of the workload")
	fl.StringVar(&f.workload, "workload", "", "workload name")
	fl.StringVar(&f.token, "token", os.Getenv("WEFT_JOIN_TOKEN"), "join token (default $WEFT_JOIN_TOKEN)")
	fl.StringVar(&f.adminAddr, "admin-addr", "127.0.0.1:15000", "admin listener (loopback only); empty disables")
	fl.StringVar(&f.instanceIP, "instance-ip", "127.0.0.1", "address other sidecars reach this instance's inbound listener on")
	fl.IntVar(&f.instancePort, "app-port", 0, "port of the local application")
	fl.IntVar(&f.inboundPort, "inbound-port", 0, "port of the inbound listener (registered as the instance's port)")
	fl.IntVar(&f.httpProxyPort, "http-proxy-port", 0, "port of the HTTP proxy listener for the app's HTTP_PROXY (0: none)")
	fl.StringVar(&f.protocol, "protocol", "http", "protocol of the application: http, http2, grpc, tcp")
	fl.StringVar(&f.role, "role", "sidecar", "sidecar or gateway")
	fl.StringVar(&f.locality, "locality", "", "region/zone/subzone of this instance")
	fl.StringToStringVar(&f.labels, "labels", nil, "labels of this instance (k=v,k=v)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn, error")
	fl.StringVar(&f.trustDomain, "trust-domain", "cluster.local", "trust domain of the identity asked for when the token binds none")
	root.AddCommand(cmd)
}

func runProxy(ctx context.Context, s streams, f proxyFlags) error {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(s.err, &slog.HandlerOptions{Level: lvl}))
	if f.config == "" && f.xdsAddr == "" {
		return errors.New("--config or --xds-addr is required")
	}
	var id *identity.Source
	if f.xdsAddr != "" {
		// The workload certificate comes from the control plane's CA;
		// its key never leaves this process.
		want, err := spiffeid.New(f.trustDomain, f.namespace, f.serviceAccount)
		if err != nil {
			return fmt.Errorf("identity: %w", err)
		}
		if id, err = identity.New(identity.Config{Addr: f.xdsAddr, Token: f.token, ID: want, Logger: log.With("component", "identity")}); err != nil {
			return err
		}
	}
	popts := proxy.Options{Logger: log}
	if id != nil {
		popts.Identity = id
	}
	p := proxy.New(popts)
	var boot *bootstrap.Config
	if f.config != "" {
		var err error
		if boot, err = bootstrap.Load(f.config); err != nil {
			return err
		}
		if err := p.ApplyStatic(proxy.StaticResources{Listeners: boot.Listeners, Clusters: boot.Clusters}); err != nil {
			return fmt.Errorf("%s: %w", f.config, err)
		}
		// dynamic_resources.ads_config names a static cluster: its first
		// endpoint is the control plane, as Envoy's bootstrap says.
		var bootNode *corev3.Node
		if boot.ADSCluster != "" && f.xdsAddr == "" {
			addr, err := adsAddress(boot)
			if err != nil {
				return fmt.Errorf("%s: %w", f.config, err)
			}
			f.xdsAddr, bootNode = addr, boot.Node
		}
		boot = &bootstrap.Config{AdminAddr: boot.AdminAddr, Node: bootNode}
		settleMemory()
		if boot.AdminAddr != "" {
			f.adminAddr = boot.AdminAddr
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	running := 0
	if f.adminAddr != "" {
		running++
		go func() {
			errc <- admin.Serve(ctx, f.adminAddr, p, func(a net.Addr) {
				log.Info("admin listening", "component", "admin", "addr", a.String())
			})
		}()
	}
	if f.xdsAddr != "" {
		go func() {
			select {
			case <-p.Configured():
				settleMemory()
			case <-ctx.Done():
			}
		}()
		node, err := proxyNode(f)
		if boot != nil && boot.Node != nil {
			node, err = boot.Node, nil // the bootstrap's node, as Envoy
		}
		if err != nil {
			return err
		}
		c, err := xdsclient.New(xdsclient.Config{Addr: f.xdsAddr, Node: node, Token: f.token, Logger: log}, p)
		if err != nil {
			return err
		}
		running++
		go func() { errc <- c.Run(ctx) }()
		if id != nil {
			// Run returns when ctx ends, or at once when the mesh has no
			// CA (the proxy then serves plaintext only).
			go id.Run(ctx)
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		running--
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	p.Shutdown(sctx)
	for ; running > 0; running-- {
		if e := <-errc; e != nil && !errors.Is(e, context.Canceled) && err == nil {
			err = e
		}
	}
	return err
}

// settleMemory runs once the first configuration is built: decoding leaves
// garbage many times the size of the result, and start-up touched much of
// the binary's read-only data; give both back (a sidecar's RSS is what
// operators see).
func settleMemory() {
	debug.FreeOSMemory()
	proxy.TrimBinaryPages()
}

// adsAddress returns the address of the bootstrap's ADS cluster: the first
// endpoint of the static cluster named by dynamic_resources.ads_config.
func adsAddress(b *bootstrap.Config) (string, error) {
	for _, c := range b.Clusters {
		if c.GetName() != b.ADSCluster {
			continue
		}
		for _, le := range c.GetLoadAssignment().GetEndpoints() {
			for _, e := range le.GetLbEndpoints() {
				if sa := e.GetEndpoint().GetAddress().GetSocketAddress(); sa != nil {
					return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))), nil
				}
			}
		}
		return "", fmt.Errorf("dynamic_resources.ads_config: cluster %q has no endpoint", b.ADSCluster)
	}
	return "", fmt.Errorf("dynamic_resources.ads_config: no static cluster named %q", b.ADSCluster)
}

// proxyNode builds the xDS node with the metadata keys of docs/architecture.md.
func proxyNode(f proxyFlags) (*corev3.Node, error) {
	if f.workload == "" {
		f.workload = f.service
	}
	id := f.nodeID
	if id == "" {
		if f.workload == "" {
			return nil, errors.New("--node-id or --workload is required with --xds-addr")
		}
		id = fmt.Sprintf("%s-%d.%s", f.workload, os.Getpid(), f.namespace)
	}
	// Unset values are left out: the control plane reads absence as "none".
	meta := map[string]any{"namespace": f.namespace, "service_account": f.serviceAccount, "role": f.role}
	for k, v := range map[string]string{"workload": f.workload, "protocol": f.protocol, "locality": f.locality} {
		if v != "" {
			meta[k] = v
		}
	}
	if f.inboundPort > 0 {
		meta["instance_ip"] = f.instanceIP
		meta["instance_port"] = float64(f.inboundPort)
	}
	for k, v := range map[string]int{"app_port": f.instancePort, "http_proxy_port": f.httpProxyPort} {
		if v > 0 {
			meta[k] = float64(v)
		}
	}
	if len(f.labels) > 0 {
		labels := make(map[string]any, len(f.labels))
		for k, v := range f.labels {
			labels[k] = v
		}
		meta["labels"] = labels
	}
	md, err := structpb.NewStruct(meta)
	if err != nil {
		return nil, err
	}
	return &corev3.Node{Id: id, Cluster: f.service, Metadata: md, UserAgentName: "weft", UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: Version}}, nil
}
