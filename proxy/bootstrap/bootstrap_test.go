package bootstrap

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, doc, err string
		listeners      int
		admin          string
	}{
		{name: "yaml", doc: `
admin: {address: {socket_address: {address: 127.0.0.1, port_value: 9901}}}
static_resources:
  listeners: [{name: l, address: {socket_address: {address: 127.0.0.1, port_value: 1}}}]
  clusters: [{name: c, type: STATIC}]`, listeners: 1, admin: "127.0.0.1:9901"},
		{name: "json", doc: `{"static_resources": {"listeners": [{"name": "a"}, {"name": "b"}]}}`, listeners: 2},
		{name: "unknown field", doc: `static_resources: {listenerz: []}`, err: `unknown field "listenerz"`},
		{name: "unsupported section", doc: `tracing: {}`, err: "tracing: unsupported by weft"},
		{name: "secrets", doc: `static_resources: {secrets: [{name: s}]}`, err: "static_resources.secrets: unsupported"},
		{name: "admin without address", doc: `admin: {}`, err: "admin.address.socket_address: required"},
		{name: "two ads services", doc: `dynamic_resources: {ads_config: {api_type: GRPC, grpc_services: [{envoy_grpc: {cluster_name: a}}, {envoy_grpc: {cluster_name: b}}]}}`, err: "exactly one envoy_grpc"},
		{name: "bad yaml", doc: "a: [", err: "yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.doc))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Listeners) != tc.listeners || c.AdminAddr != tc.admin {
				t.Fatalf("got %d listeners, admin %q", len(c.Listeners), c.AdminAddr)
			}
		})
	}
}

// FuzzParse: no bootstrap document makes the parser panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`static_resources: {listeners: [{name: l}]}`))
	f.Add([]byte(`{"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}}}}`))
	f.Add([]byte("static_resources:\n  clusters:\n  - name: c\n    load_assignment: {cluster_name: c}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Parse(b)
	})
}
