// Package xdsclient is the sidecar's xDS v3 client. It holds one Aggregated
// Discovery Service stream to the control plane, incremental (delta) first and
// state of the world (SotW) when the server answers Unimplemented to
// DeltaAggregatedResources. It keeps the current set of resources per type,
// hands the complete set of a type to a Handler after every change, and ACKs
// or NACKs the response according to the handler's answer. The last accepted
// sets survive disconnections, so the proxy keeps serving while the control
// plane is away and resyncs when it returns.
package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Handler receives the resources of the client.
type Handler interface {
	// Update is called on the client's goroutine with the complete current
	// set of resources of one type (after merging a delta or replacing with
	// a SotW response), keyed by resource name. The client never modifies
	// the map after the call, so the handler may keep it. Returning an error
	// NACKs the response with that error's text (error_detail) and the client
	// keeps its previous set for that type. It may block for the time it
	// takes to build a config; it must not call back into the Client.
	Update(typeURL string, resources map[string]*anypb.Any) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(typeURL string, resources map[string]*anypb.Any) error

// Update calls f.
func (f HandlerFunc) Update(typeURL string, resources map[string]*anypb.Any) error {
	return f(typeURL, resources)
}

// Config configures a Client. Only Addr and Node are required.
type Config struct {
	// Addr is the host:port of the control plane.
	Addr string
	// Node identifies the proxy: id (required), cluster and metadata (see
	// docs/architecture.md for the metadata keys). It is sent on the first
	// request of every stream. The client keeps a copy.
	Node *corev3.Node
	// Token is the join token, sent as gRPC metadata
	// "authorization: Bearer <token>" on every stream; none when empty.
	Token string
	// Types are the type URLs to subscribe to, in order; default
	// DefaultTypes() (SDS, CDS, EDS, LDS, RDS).
	Types []string
	// DialOptions are appended to the defaults (insecure transport
	// credentials, a receive limit of MaxResponseSize), so an option of the
	// same kind here replaces the default. Dead connections are detected by
	// the dialer's TCP keepalive; gRPC keepalive pings would need a server
	// policy that allows them.
	DialOptions []grpc.DialOption
	// Backoff returns how long to wait before reconnection attempt n
	// (0-based; reset after a stream that received a response); default
	// ExponentialBackoff(250ms, 30s).
	Backoff func(attempt int) time.Duration
	// Logger receives the client's logs; default slog.Default(). The client
	// adds the attribute component=xdsclient.
	Logger *slog.Logger
	// Now stamps NACKs in Status; default time.Now.
	Now func() time.Time
}

// DefaultTypes returns the type URLs subscribed to by default, in order:
// Cluster, ClusterLoadAssignment, Listener, RouteConfiguration.
func DefaultTypes() []string {
	return []string{resourcev3.SecretType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType}
}

// ExponentialBackoff returns a backoff that waits a random duration (full
// jitter) up to base·2^attempt, capped at limit.
func ExponentialBackoff(base, limit time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		ceil := limit
		if attempt >= 0 && attempt < 32 {
			if d := base << attempt; d > 0 && d < limit {
				ceil = d
			}
		}
		if ceil <= 0 {
			return 0
		}
		return rand.N(ceil)
	}
}

// MaxResponseSize is the default limit on the size of one xDS response,
// above gRPC's 4 MiB default so that a large mesh fits in one response.
const MaxResponseSize = 64 << 20

// Mode names the xDS protocol variant of a stream.
const (
	ModeDelta = "delta"
	ModeSotW  = "sotw"
)

// Status is a point-in-time view of a Client.
type Status struct {
	// Connected reports that a stream is open and its subscriptions sent.
	Connected bool
	// Mode is ModeDelta, or ModeSotW after the server refused delta.
	Mode string
	// Types holds one entry per subscribed type, in subscription order.
	Types []TypeStatus
}

// TypeStatus is the state of one subscribed type.
type TypeStatus struct {
	TypeURL string
	// Version is the version_info (SotW) or system_version_info (delta) of
	// the last ACKed response, and Nonce its nonce.
	Version string
	Nonce   string
	// Resources is the size of the current (last accepted) set.
	Resources int
	// Received reports that the handler accepted a set of this type since
	// New; the set is kept across reconnections.
	Received bool
	// ACKs and NACKs count the responses accepted and refused.
	ACKs, NACKs uint64
	// LastNACK is the error text of the most recent NACK, sent at LastNACKAt.
	LastNACK   string
	LastNACKAt time.Time
}

// Client is an ADS client. Run drives it; Status is safe for concurrent use.
type Client struct {
	cfg     Config
	h       Handler
	log     *slog.Logger
	state   *resourceState
	running atomic.Bool

	mu        sync.Mutex
	connected bool
	sotw      bool
	changed   chan struct{} // closed and replaced when connected or sotw changes
}

// New validates cfg and returns a client that has not connected yet.
func New(cfg Config, h Handler) (*Client, error) {
	if h == nil {
		return nil, errors.New("xdsclient: handler is nil")
	}
	if cfg.Addr == "" {
		return nil, errors.New("xdsclient: address is empty")
	}
	if cfg.Node.GetId() == "" {
		return nil, errors.New("xdsclient: node id is empty")
	}
	cfg.Node = proto.Clone(cfg.Node).(*corev3.Node)
	if len(cfg.Types) == 0 {
		cfg.Types = DefaultTypes()
	}
	seen := make(map[string]bool, len(cfg.Types))
	for i, t := range cfg.Types {
		if t == "" {
			return nil, fmt.Errorf("xdsclient: types[%d]: empty type URL", i)
		}
		if seen[t] {
			return nil, fmt.Errorf("xdsclient: types[%d]: %q listed twice", i, t)
		}
		seen[t] = true
	}
	cfg.Types = append([]string(nil), cfg.Types...)
	if cfg.Backoff == nil {
		cfg.Backoff = ExponentialBackoff(250*time.Millisecond, 30*time.Second)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{
		cfg:     cfg,
		h:       h,
		log:     cfg.Logger.With("component", "xdsclient"),
		state:   newResourceState(cfg.Types, cfg.Now),
		changed: make(chan struct{}),
	}, nil
}

// Status returns the client's current state. It is safe for concurrent use.
func (c *Client) Status() Status {
	c.mu.Lock()
	st := Status{Connected: c.connected, Mode: ModeDelta}
	if c.sotw {
		st.Mode = ModeSotW
	}
	c.mu.Unlock()
	st.Types = c.state.snapshot()
	return st
}

// statusChanged returns a channel closed at the next change of Connected or
// Mode.
func (c *Client) statusChanged() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *Client) setConnected(v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.connected != v {
		c.connected = v
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

func (c *Client) useSotW() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sotw
}

func (c *Client) fallBackToSotW() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sotw = true
	close(c.changed)
	c.changed = make(chan struct{})
}

// Run connects to the control plane and keeps a stream open until ctx is
// done, reconnecting with backoff after every failure. It calls the handler
// on its own goroutine, returns nil once ctx is done and every goroutine it
// started has stopped, and may be called only once.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("xdsclient: run called more than once")
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxResponseSize)),
	}, c.cfg.DialOptions...)
	conn, err := grpc.NewClient(c.cfg.Addr, opts...)
	if err != nil {
		return fmt.Errorf("xdsclient: dial %q: %w", c.cfg.Addr, err)
	}
	defer conn.Close()
	ads := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	if c.cfg.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.cfg.Token)
	}

	attempt := 0
	for {
		sotw := c.useSotW()
		var healthy bool
		if sotw {
			healthy, err = c.runSotW(ctx, ads)
		} else {
			healthy, err = c.runDelta(ctx, ads)
		}
		c.setConnected(false)
		if ctx.Err() != nil {
			return nil
		}
		if !sotw && status.Code(err) == codes.Unimplemented {
			c.log.Warn("control plane does not implement delta xDS; using state of the world", "addr", c.cfg.Addr)
			c.fallBackToSotW()
			continue
		}
		if healthy {
			attempt = 0
		}
		wait := c.cfg.Backoff(attempt)
		attempt++
		c.log.Warn("xds stream ended; reconnecting", "addr", c.cfg.Addr, "error", err, "backoff", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// runDelta runs one incremental stream until it fails. healthy reports that
// the stream received at least one response.
func (c *Client) runDelta(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (healthy bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ads.DeltaAggregatedResources(ctx)
	if err != nil {
		return false, fmt.Errorf("open delta stream: %w", err)
	}
	newResp := func() any { return new(discoveryv3.DeltaDiscoveryResponse) }
	for i, req := range c.state.deltaSubscriptions() {
		if i == 0 {
			req.Node = c.cfg.Node
		}
		if err := stream.Send(req); err != nil {
			return false, fmt.Errorf("delta stream: subscribe %s: %w", req.GetTypeUrl(), streamError(stream, newResp, err))
		}
	}
	c.setConnected(true)
	for {
		resp, err := stream.Recv()
		if err != nil {
			return healthy, fmt.Errorf("delta stream: receive: %w", err)
		}
		healthy = true
		req := c.state.applyDelta(resp, c.h)
		c.logNACK(req.GetTypeUrl(), resp.GetNonce(), req.GetErrorDetail().GetMessage())
		if err := stream.Send(req); err != nil {
			return healthy, fmt.Errorf("delta stream: send ack: %w", streamError(stream, newResp, err))
		}
	}
}

// runSotW runs one state-of-the-world stream until it fails.
func (c *Client) runSotW(ctx context.Context, ads discoveryv3.AggregatedDiscoveryServiceClient) (healthy bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := ads.StreamAggregatedResources(ctx)
	if err != nil {
		return false, fmt.Errorf("open sotw stream: %w", err)
	}
	newResp := func() any { return new(discoveryv3.DiscoveryResponse) }
	for i, req := range c.state.sotwSubscriptions() {
		if i == 0 {
			req.Node = c.cfg.Node
		}
		if err := stream.Send(req); err != nil {
			return false, fmt.Errorf("sotw stream: subscribe %s: %w", req.GetTypeUrl(), streamError(stream, newResp, err))
		}
	}
	c.setConnected(true)
	for {
		resp, err := stream.Recv()
		if err != nil {
			return healthy, fmt.Errorf("sotw stream: receive: %w", err)
		}
		healthy = true
		req := c.state.applySotW(resp, c.h)
		c.logNACK(req.GetTypeUrl(), resp.GetNonce(), req.GetErrorDetail().GetMessage())
		if err := stream.Send(req); err != nil {
			return healthy, fmt.Errorf("sotw stream: send ack: %w", streamError(stream, newResp, err))
		}
	}
}

func (c *Client) logNACK(typeURL, nonce, detail string) {
	if detail != "" {
		c.log.Warn("rejected xds response", "type", typeURL, "nonce", nonce, "error", detail)
	}
}

// streamError returns the stream's status when a Send failed with io.EOF
// (the server closed the stream; gRPC reports why only to Recv).
func streamError(s grpc.ClientStream, newMsg func() any, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if rerr := s.RecvMsg(newMsg()); rerr != nil {
			return rerr
		}
	}
}
