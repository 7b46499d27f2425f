package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/control/ca/spiffeid"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/admin"
	"github.com/weft-mesh/weft/proxy/bootstrap"
	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/otlpexport"
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
	accessLog      string
	telemetryAddr  string
	traceSampling  float64
	// adminBound is the admin listener's bound address (node metadata
	// admin_addr); set by runProxy.
	adminBound string
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
	fl.StringVar(&f.accessLog, "access-log", "off", "JSON access log: stdout, a file path, or off")
	fl.StringVar(&f.telemetryAddr, "telemetry-addr", "", "OTLP address for spans and access records: host:port for OTLP/gRPC, an http(s):// URL for OTLP/HTTP (weft control serves it on its API address), or unix:///path for OTLP/HTTP over a Unix socket (weft control's <state-dir>/otlp.sock, on the same machine) (default: --xds-addr; none in file mode)")
	fl.Float64Var(&f.traceSampling, "trace-sampling", proxy.DefaultTraceSampling, "ratio (0-1) of requests without a sampling decision that are traced, unless the listener sets tracing.random_sampling")
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
	if f.traceSampling < 0 || f.traceSampling > 1 {
		return fmt.Errorf("--trace-sampling: must be 0-1, got %v", f.traceSampling)
	}
	var boot *bootstrap.Config
	if f.config != "" {
		var err error
		if boot, err = bootstrap.Load(f.config); err != nil {
			return err
		}
		if boot.AdminAddr != "" {
			f.adminAddr = boot.AdminAddr
		}
	}
	// The admin listener is bound first: its address goes into the node
	// metadata (admin_addr) for scrapes and taps.
	var adminLn net.Listener
	if f.adminAddr != "" {
		var err error
		if adminLn, err = admin.Listen(f.adminAddr); err != nil {
			return err
		}
		defer adminLn.Close()
		f.adminBound = adminLn.Addr().String()
	}
	if f.workload == "" {
		f.workload = f.service
	}
	var node *corev3.Node
	if f.xdsAddr != "" || boot != nil && boot.ADSCluster != "" {
		// dynamic_resources.ads_config names a static cluster: its first
		// endpoint is the control plane, and the bootstrap's node is
		// used, as Envoy does.
		var bootNode *corev3.Node
		if f.xdsAddr == "" {
			addr, err := adsAddress(boot)
			if err != nil {
				return fmt.Errorf("%s: %w", f.config, err)
			}
			f.xdsAddr, bootNode = addr, boot.Node
		}
		var err error
		if node, err = proxyNode(f); err != nil && bootNode == nil {
			return err
		}
		if bootNode != nil {
			node = withAdminAddr(bootNode, f.adminBound)
		}
	}
	accessLog, closeLog, err := openAccessLog(f.accessLog, s.out)
	if err != nil {
		return err
	}
	defer closeLog()
	popts := proxy.Options{
		Logger: log, Workload: f.workload, Namespace: f.namespace, Service: f.service, Role: f.role,
		AccessLog: accessLog, TraceSampling: f.traceSampling,
	}
	if f.traceSampling == 0 {
		popts.TraceSampling = -1 // none
	}
	if id != nil {
		popts.Identity = id
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if f.telemetryAddr == "" {
		f.telemetryAddr = f.xdsAddr
	}
	var exp *otlpexport.Exporter
	if f.telemetryAddr != "" {
		res := otlpexport.Resource{ServiceName: f.workload, Namespace: f.namespace, Role: f.role}
		if node != nil {
			res.InstanceID = node.GetId()
		}
		cfg := otlpexport.Config{Token: f.token, Resource: res, Logger: log}
		if strings.HasPrefix(f.telemetryAddr, "http://") || strings.HasPrefix(f.telemetryAddr, "https://") || strings.HasPrefix(f.telemetryAddr, "unix://") {
			cfg.URL = f.telemetryAddr // OTLP/HTTP
		} else {
			cc, err := grpc.NewClient(f.telemetryAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return fmt.Errorf("--telemetry-addr: %w", err)
			}
			defer cc.Close()
			cfg.Conn = cc
		}
		var err error
		if exp, err = otlpexport.New(cfg); err != nil {
			return fmt.Errorf("--telemetry-addr: %w", err)
		}
		popts.Telemetry = exp
	}
	p := proxy.New(popts)
	if exp != nil {
		// The exporter outlives the proxy: it sends what the last
		// requests recorded once the proxy has drained.
		expCtx, expCancel := context.WithCancel(context.WithoutCancel(ctx))
		expDone := make(chan struct{})
		go func() { exp.Run(expCtx); close(expDone) }()
		defer func() { expCancel(); <-expDone }()
	}
	if boot != nil {
		if err := p.ApplyStatic(proxy.StaticResources{Listeners: boot.Listeners, Clusters: boot.Clusters}); err != nil {
			return fmt.Errorf("%s: %w", f.config, err)
		}
		boot = nil
		settleMemory()
	}
	errc := make(chan error, 2)
	running := 0
	if adminLn != nil {
		running++
		log.Info("admin listening", "component", "admin", "addr", f.adminBound)
		go func() { errc <- admin.ServeListener(ctx, adminLn, p) }()
	}
	if f.xdsAddr != "" {
		go func() {
			select {
			case <-p.Configured():
				settleMemory()
			case <-ctx.Done():
			}
		}()
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
	err = nil
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

// withAdminAddr returns a copy of n whose metadata carries admin_addr.
func withAdminAddr(n *corev3.Node, addr string) *corev3.Node {
	if addr == "" {
		return n
	}
	n = proto.Clone(n).(*corev3.Node)
	if n.Metadata == nil {
		n.Metadata = &structpb.Struct{}
	}
	if n.Metadata.Fields == nil {
		n.Metadata.Fields = map[string]*structpb.Value{}
	}
	n.Metadata.Fields["admin_addr"] = structpb.NewStringValue(addr)
	return n
}

// openAccessLog opens the --access-log destination: "off" (or empty) for
// none, "stdout" for out, else a file opened for appending. The returned
// function closes what was opened.
func openAccessLog(dest string, out io.Writer) (io.Writer, func(), error) {
	switch dest {
	case "", "off":
		return nil, func() {}, nil
	case "stdout":
		return out, func() {}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("--access-log: %w", err)
	}
	return f, func() { f.Close() }, nil
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
	if f.adminBound != "" {
		meta["admin_addr"] = f.adminBound
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
