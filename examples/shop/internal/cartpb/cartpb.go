// Package cartpb is the API of the shop's cart service, gRPC without code
// generation: a hand-written grpc.ServiceDesc whose methods take and return
// well-known protobuf types (google.protobuf.Struct and Empty), the
// conversions between those messages and Go values, and the client stubs.
//
//	rpc AddItem(Struct{user, sku, qty}) returns (Struct cart)
//	rpc GetCart(Struct{user})           returns (Struct cart)
//	rpc Clear(Struct{user})             returns (Empty)
//
// A cart is Struct{user: string, items: [{sku: string, qty: number}]},
// items sorted by SKU.
package cartpb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/examples/shop/internal/tracectx"
)

// ServiceName is the gRPC service name.
const ServiceName = "shop.cart.v1.Cart"

// Full method names.
const (
	AddItemMethod = "/" + ServiceName + "/AddItem"
	GetCartMethod = "/" + ServiceName + "/GetCart"
	ClearMethod   = "/" + ServiceName + "/Clear"
)

// MaxQty is the largest quantity of one item in a cart.
const MaxQty = 99

// Item is one line of a cart; plain data.
type Item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// Cart is a user's cart; plain data, not synchronised.
type Cart struct {
	User  string `json:"user"`
	Items []Item `json:"items"`
}

// Server is the cart service. Implementations must be safe for concurrent
// use; errors should be gRPC status errors (others become Unknown).
type Server interface {
	AddItem(ctx context.Context, user, sku string, qty int) (Cart, error)
	GetCart(ctx context.Context, user string) (Cart, error)
	Clear(ctx context.Context, user string) error
}

// Register registers srv on s under ServiceName.
func Register(s grpc.ServiceRegistrar, srv Server) { s.RegisterService(&ServiceDesc, srv) }

// ServiceDesc describes the cart service to grpc. Requests are validated
// (user, sku, qty) before they reach the Server; invalid ones fail with
// InvalidArgument.
var ServiceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "AddItem", Handler: unary(AddItemMethod, func(ctx context.Context, srv Server, in *structpb.Struct) (any, error) {
			user, sku, qty, err := DecodeAddItem(in)
			if err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			c, err := srv.AddItem(ctx, user, sku, qty)
			if err != nil {
				return nil, err
			}
			return c.Struct(), nil
		})},
		{MethodName: "GetCart", Handler: unary(GetCartMethod, func(ctx context.Context, srv Server, in *structpb.Struct) (any, error) {
			user, err := DecodeUser(in)
			if err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			c, err := srv.GetCart(ctx, user)
			if err != nil {
				return nil, err
			}
			return c.Struct(), nil
		})},
		{MethodName: "Clear", Handler: unary(ClearMethod, func(ctx context.Context, srv Server, in *structpb.Struct) (any, error) {
			user, err := DecodeUser(in)
			if err != nil {
				return nil, status.Error(codes.InvalidArgument, err.Error())
			}
			if err := srv.Clear(ctx, user); err != nil {
				return nil, err
			}
			return &emptypb.Empty{}, nil
		})},
	},
	Metadata: "shop/cart/v1/cart.proto (hand-written, no .proto file)",
}

// unary adapts a typed method to grpc's handler signature, running the
// server's interceptor if there is one.
func unary(method string, call func(context.Context, Server, *structpb.Struct) (any, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(structpb.Struct)
		if err := dec(in); err != nil {
			return nil, err
		}
		run := func(ctx context.Context, req any) (any, error) {
			return call(ctx, srv.(Server), req.(*structpb.Struct))
		}
		if interceptor == nil {
			return run(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: method}, run)
	}
}

// Client calls the cart service. It is safe for concurrent use.
type Client struct {
	cc grpc.ClientConnInterface
}

// NewClient returns a client calling the cart over cc.
func NewClient(cc grpc.ClientConnInterface) *Client { return &Client{cc: cc} }

// AddItem adds qty of sku to user's cart and returns the cart.
func (c *Client) AddItem(ctx context.Context, user, sku string, qty int) (Cart, error) {
	out := new(structpb.Struct)
	if err := c.cc.Invoke(ctx, AddItemMethod, AddItemRequest(user, sku, qty), out); err != nil {
		return Cart{}, fmt.Errorf("cart: add item: %w", err)
	}
	cart, err := DecodeCart(out)
	if err != nil {
		return Cart{}, fmt.Errorf("cart: add item: %w", err)
	}
	return cart, nil
}

// GetCart returns user's cart (empty if the user has none).
func (c *Client) GetCart(ctx context.Context, user string) (Cart, error) {
	out := new(structpb.Struct)
	if err := c.cc.Invoke(ctx, GetCartMethod, UserRequest(user), out); err != nil {
		return Cart{}, fmt.Errorf("cart: get cart: %w", err)
	}
	cart, err := DecodeCart(out)
	if err != nil {
		return Cart{}, fmt.Errorf("cart: get cart: %w", err)
	}
	return cart, nil
}

// Clear empties user's cart.
func (c *Client) Clear(ctx context.Context, user string) error {
	if err := c.cc.Invoke(ctx, ClearMethod, UserRequest(user), new(emptypb.Empty)); err != nil {
		return fmt.Errorf("cart: clear: %w", err)
	}
	return nil
}

// nameRE is what user names and SKUs look like.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether s is a valid user name or SKU: 1-64 letters,
// digits, '.', '_' or '-', starting with a letter or digit.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// AddItemRequest is the AddItem request message.
func AddItemRequest(user, sku string, qty int) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		"user": structpb.NewStringValue(user),
		"sku":  structpb.NewStringValue(sku),
		"qty":  structpb.NewNumberValue(float64(qty)),
	}}
}

// UserRequest is the GetCart and Clear request message.
func UserRequest(user string) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{"user": structpb.NewStringValue(user)}}
}

// Struct returns the cart as a message.
func (c Cart) Struct() *structpb.Struct {
	items := make([]*structpb.Value, len(c.Items))
	for i, it := range c.Items {
		items[i] = structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			"sku": structpb.NewStringValue(it.SKU),
			"qty": structpb.NewNumberValue(float64(it.Qty)),
		}})
	}
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		"user":  structpb.NewStringValue(c.User),
		"items": structpb.NewListValue(&structpb.ListValue{Values: items}),
	}}
}

// DecodeUser reads the "user" field of a GetCart or Clear request.
func DecodeUser(s *structpb.Struct) (string, error) {
	if err := onlyFields(s, "user"); err != nil {
		return "", err
	}
	return name(s, "user")
}

// DecodeAddItem reads an AddItem request.
func DecodeAddItem(s *structpb.Struct) (user, sku string, qty int, err error) {
	if err := onlyFields(s, "user", "sku", "qty"); err != nil {
		return "", "", 0, err
	}
	if user, err = name(s, "user"); err != nil {
		return "", "", 0, err
	}
	if sku, err = name(s, "sku"); err != nil {
		return "", "", 0, err
	}
	if qty, err = quantity(s.GetFields()["qty"], "qty"); err != nil {
		return "", "", 0, err
	}
	return user, sku, qty, nil
}

// DecodeCart reads a cart message.
func DecodeCart(s *structpb.Struct) (Cart, error) {
	if err := onlyFields(s, "user", "items"); err != nil {
		return Cart{}, err
	}
	user, err := name(s, "user")
	if err != nil {
		return Cart{}, err
	}
	c := Cart{User: user, Items: []Item{}}
	v, ok := s.GetFields()["items"]
	if !ok {
		return c, nil
	}
	l, ok := v.GetKind().(*structpb.Value_ListValue)
	if !ok {
		return Cart{}, errors.New("items: want a list")
	}
	for i, iv := range l.ListValue.GetValues() {
		it, ok := iv.GetKind().(*structpb.Value_StructValue)
		if !ok {
			return Cart{}, fmt.Errorf("items[%d]: want an object", i)
		}
		if err := onlyFields(it.StructValue, "sku", "qty"); err != nil {
			return Cart{}, fmt.Errorf("items[%d]: %w", i, err)
		}
		sku, err := name(it.StructValue, "sku")
		if err != nil {
			return Cart{}, fmt.Errorf("items[%d]: %w", i, err)
		}
		qty, err := quantity(it.StructValue.GetFields()["qty"], "qty")
		if err != nil {
			return Cart{}, fmt.Errorf("items[%d]: %w", i, err)
		}
		c.Items = append(c.Items, Item{SKU: sku, Qty: qty})
	}
	return c, nil
}

func onlyFields(s *structpb.Struct, allowed ...string) error {
	for k := range s.GetFields() {
		known := false
		for _, a := range allowed {
			known = known || k == a
		}
		if !known {
			return fmt.Errorf("unknown field %q", k)
		}
	}
	return nil
}

func name(s *structpb.Struct, field string) (string, error) {
	v, ok := s.GetFields()[field]
	if !ok {
		return "", fmt.Errorf("%s: required", field)
	}
	str, ok := v.GetKind().(*structpb.Value_StringValue)
	if !ok {
		return "", fmt.Errorf("%s: want a string", field)
	}
	if !ValidName(str.StringValue) {
		return "", fmt.Errorf("%s %q: want 1-64 letters, digits, '.', '_' or '-'", field, str.StringValue)
	}
	return str.StringValue, nil
}

func quantity(v *structpb.Value, field string) (int, error) {
	if v == nil {
		return 0, fmt.Errorf("%s: required", field)
	}
	n, ok := v.GetKind().(*structpb.Value_NumberValue)
	if !ok {
		return 0, fmt.Errorf("%s: want a number", field)
	}
	f := n.NumberValue
	if f != math.Trunc(f) || f < 1 || f > MaxQty {
		return 0, fmt.Errorf("%s %v: want a whole number 1-%d", field, f, MaxQty)
	}
	return int(f), nil
}

// Dial returns a client connection to the cart at addr (host:port), in
// plaintext: under weft up addr is an upstream port of the local sidecar,
// which carries the call through the mesh. Proxy environment variables are
// ignored for the same reason. Calls copy the trace context of their
// context (tracectx.UnaryClientInterceptor), so that they join the trace of
// the request being handled. The connection is made lazily, on the first
// call.
func Dial(addr string) (*grpc.ClientConn, error) {
	if addr == "" {
		return nil, errors.New("cart address is empty (set CART_ADDR to host:port)")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("cart address %q: %w", addr, err)
	}
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithNoProxy(),
		grpc.WithUnaryInterceptor(tracectx.UnaryClientInterceptor))
	if err != nil {
		return nil, fmt.Errorf("cart address %q: %w", addr, err)
	}
	return conn, nil
}
