package route

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	// Registers the typed configs used in test YAML.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
)

// parseRC decodes a RouteConfiguration written as YAML (protojson field names).
func parseRC(t testing.TB, y string) *routev3.RouteConfiguration {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("yaml: %v", err)
	}
	rc := &routev3.RouteConfiguration{}
	if err := protojson.Unmarshal(j, rc); err != nil {
		t.Fatalf("protojson: %v\n%s", err, j)
	}
	return rc
}

func mustBuild(t testing.TB, y string) *Table {
	t.Helper()
	tbl, err := Build(parseRC(t, y))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return tbl
}

// hdrs builds a HeaderList from name, value pairs.
func hdrs(kv ...string) *HeaderList {
	l := HeaderList{}
	for i := 0; i+1 < len(kv); i += 2 {
		l = append(l, HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return &l
}

// oneRoute wraps a route (YAML, indented as a list item body) in a config
// with a single "*" virtual host.
func oneRoute(route string) string {
	return `
name: t
virtual_hosts:
- name: vh
  domains: ["*"]
  routes:
  - ` + route
}
