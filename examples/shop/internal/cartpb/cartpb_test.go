package cartpb

import (
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

func mustStruct(t testing.TB, js string) *structpb.Struct {
	t.Helper()
	s := new(structpb.Struct)
	if err := protojson.Unmarshal([]byte(js), s); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return s
}

func TestDecodeAddItem(t *testing.T) {
	tests := []struct {
		name, in  string
		user, sku string
		qty       int
		err       string
	}{
		{name: "ok", in: `{"user":"alice","sku":"mug","qty":2}`, user: "alice", sku: "mug", qty: 2},
		{name: "max qty", in: `{"user":"a","sku":"b.c_d-e","qty":99}`, user: "a", sku: "b.c_d-e", qty: 99},
		{name: "missing qty", in: `{"user":"alice","sku":"mug"}`, err: "qty: required"},
		{name: "zero qty", in: `{"user":"alice","sku":"mug","qty":0}`, err: "qty 0: want a whole number 1-99"},
		{name: "fractional qty", in: `{"user":"alice","sku":"mug","qty":1.5}`, err: "qty 1.5: want a whole number 1-99"},
		{name: "too many", in: `{"user":"alice","sku":"mug","qty":100}`, err: "qty 100: want a whole number 1-99"},
		{name: "qty as string", in: `{"user":"alice","sku":"mug","qty":"2"}`, err: "qty: want a number"},
		{name: "missing user", in: `{"sku":"mug","qty":1}`, err: "user: required"},
		{name: "user not a string", in: `{"user":1,"sku":"mug","qty":1}`, err: "user: want a string"},
		{name: "bad sku", in: `{"user":"alice","sku":"../etc","qty":1}`, err: `sku "../etc": want 1-64 letters, digits, '.', '_' or '-'`},
		{name: "empty sku", in: `{"user":"alice","sku":"","qty":1}`, err: `sku "": want 1-64`},
		{name: "unknown field", in: `{"user":"alice","sku":"mug","qty":1,"price":3}`, err: `unknown field "price"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			user, sku, qty, err := DecodeAddItem(mustStruct(t, tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || user != tc.user || sku != tc.sku || qty != tc.qty {
				t.Fatalf("= %q %q %d %v; want %q %q %d", user, sku, qty, err, tc.user, tc.sku, tc.qty)
			}
		})
	}
}

func TestDecodeUser(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: `{"user":"bob"}`, want: "bob"},
		{in: `{}`, err: "user: required"},
		{in: `{"user":"bob","x":1}`, err: `unknown field "x"`},
		{in: `{"user":"` + strings.Repeat("a", 65) + `"}`, err: "want 1-64 letters"},
		{in: `{"user":"-bob"}`, err: `user "-bob": want`},
	} {
		got, err := DecodeUser(mustStruct(t, tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: = %q, %v", tc.in, got, err)
		}
	}
}

func TestDecodeCart(t *testing.T) {
	for _, tc := range []struct{ name, in, err string }{
		{name: "items not a list", in: `{"user":"bob","items":3}`, err: "items: want a list"},
		{name: "item not an object", in: `{"user":"bob","items":[3]}`, err: "items[0]: want an object"},
		{name: "item without qty", in: `{"user":"bob","items":[{"sku":"mug"}]}`, err: "items[0]: qty: required"},
		{name: "item unknown field", in: `{"user":"bob","items":[{"sku":"mug","qty":1,"x":true}]}`, err: `items[0]: unknown field "x"`},
		{name: "second item bad sku", in: `{"user":"bob","items":[{"sku":"mug","qty":1},{"sku":"","qty":1}]}`, err: `items[1]: sku "": want`},
		{name: "no user", in: `{"items":[]}`, err: "user: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCart(mustStruct(t, tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
		})
	}
	t.Run("no items is an empty cart", func(t *testing.T) {
		c, err := DecodeCart(mustStruct(t, `{"user":"bob"}`))
		if err != nil || c.User != "bob" || c.Items == nil || len(c.Items) != 0 {
			t.Fatalf("= %+v, %v; want an empty, non-nil item list", c, err)
		}
	})
}

func TestCartRoundTrip(t *testing.T) {
	in := Cart{User: "alice", Items: []Item{{SKU: "mug", Qty: 2}, {SKU: "tee", Qty: 99}}}
	js, err := protojson.Marshal(in.Struct())
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeCart(mustStruct(t, string(js)))
	if err != nil {
		t.Fatal(err)
	}
	if out.User != in.User || len(out.Items) != 2 || out.Items[0] != in.Items[0] || out.Items[1] != in.Items[1] {
		t.Errorf("round trip %+v -> %s -> %+v", in, js, out)
	}
}

func TestRequests(t *testing.T) {
	user, sku, qty, err := DecodeAddItem(AddItemRequest("bob", "mug", 3))
	if err != nil || user != "bob" || sku != "mug" || qty != 3 {
		t.Errorf("AddItemRequest round trip = %q %q %d %v", user, sku, qty, err)
	}
	if u, err := DecodeUser(UserRequest("bob")); err != nil || u != "bob" {
		t.Errorf("UserRequest round trip = %q %v", u, err)
	}
	if _, _, _, err := DecodeAddItem(AddItemRequest("bob", "mug", 0)); err == nil {
		t.Error("qty 0 accepted")
	}
	nan := AddItemRequest("bob", "mug", 1)
	nan.Fields["qty"] = structpb.NewNumberValue(math.NaN())
	if _, _, _, err := DecodeAddItem(nan); err == nil {
		t.Error("NaN qty accepted")
	}
}

func TestDial(t *testing.T) {
	for _, tc := range []struct{ addr, err string }{
		{"", "cart address is empty (set CART_ADDR to host:port)"},
		{"cart.shop", `cart address "cart.shop": address cart.shop: missing port in address`},
	} {
		if _, err := Dial(tc.addr); err == nil || err.Error() != tc.err {
			t.Errorf("Dial(%q) = %v, want %q", tc.addr, err, tc.err)
		}
	}
	conn, err := Dial("127.0.0.1:9002")
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close()
}

// FuzzDecode feeds arbitrary JSON messages to the request and cart
// decoders: they must not panic, and what they accept must be valid and
// survive a round trip.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"user":"alice","sku":"mug","qty":2}`,
		`{"user":"alice","items":[{"sku":"mug","qty":1},{"sku":"tee","qty":99}]}`,
		`{"user":"bob"}`,
		`{"user":"bob","items":[{"sku":"mug","qty":1e300}]}`,
		`{"user":"","sku":null,"qty":-0}`,
		`{"items":[[],{},"x"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := new(structpb.Struct)
		if protojson.Unmarshal(b, s) != nil {
			return
		}
		if user, sku, qty, err := DecodeAddItem(s); err == nil {
			if !ValidName(user) || !ValidName(sku) || qty < 1 || qty > MaxQty {
				t.Fatalf("accepted invalid request %q %q %d", user, sku, qty)
			}
		}
		if user, err := DecodeUser(s); err == nil && !ValidName(user) {
			t.Fatalf("accepted invalid user %q", user)
		}
		c, err := DecodeCart(s)
		if err != nil {
			return
		}
		again, err := DecodeCart(c.Struct())
		if err != nil || again.User != c.User || len(again.Items) != len(c.Items) {
			t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
		}
		for i := range c.Items {
			if again.Items[i] != c.Items[i] {
				t.Fatalf("round trip item %d: %+v != %+v", i, again.Items[i], c.Items[i])
			}
		}
	})
}
