package translate

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/weft-mesh/weft/apis/weft/v1alpha1"
	"github.com/weft-mesh/weft/control/registry"
	"github.com/weft-mesh/weft/control/resource"
	"github.com/weft-mesh/weft/control/xds"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// goldenCase is the format of testdata/*.yaml.
type goldenCase struct {
	// Proxy is the xDS node of the proxy being translated.
	Proxy struct {
		ID       string         `json:"id"`
		Cluster  string         `json:"cluster"`
		Metadata map[string]any `json:"metadata"`
	} `json:"proxy"`
	// Registry lists the instances.
	Registry []struct {
		Service  string            `json:"service"` // namespace/name
		Addr     string            `json:"addr"`
		Labels   map[string]string `json:"labels"`
		Locality string            `json:"locality"`
		Unready  bool              `json:"unready"`
		Weight   uint32            `json:"weight"`
		// Session, when set, registers the instance as a sidecar's
		// (session id), with Identity as its service account.
		Session  string `json:"session"`
		Identity string `json:"identity"`
		Workload string `json:"workload"`
	} `json:"registry"`
	// Mesh holds the mesh settings; a trustBundle turns mTLS on.
	Mesh struct {
		MTLSMode      string  `json:"mtlsMode"`
		TrustBundle   string  `json:"trustBundle"`
		TraceSampling float64 `json:"traceSampling"`
	} `json:"mesh"`
	// Resources is a multi-document YAML file, or the name of one in
	// testdata (resources: "@shop.yaml").
	Resources string `json:"resources"`
}

func loadCase(t testing.TB, path string) Input {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c goldenCase
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	meta, err := structpb.NewStruct(c.Proxy.Metadata)
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := xds.ParseNode(&corev3.Node{Id: c.Proxy.ID, Cluster: c.Proxy.Cluster, Metadata: meta})
	if err != nil {
		t.Fatalf("%s: proxy: %v", path, err)
	}
	reg := registry.New(registry.Options{})
	t.Cleanup(reg.Close)
	var ins []registry.Instance
	for _, r := range c.Registry {
		ns, name, _ := strings.Cut(r.Service, "/")
		loc, err := registry.ParseLocality(r.Locality)
		if err != nil {
			t.Fatal(err)
		}
		in := registry.Instance{
			Service: registry.ServiceKey{Namespace: ns, Name: name}, Addr: netip.MustParseAddrPort(r.Addr),
			Labels: r.Labels, Locality: loc, Unready: r.Unready, Weight: r.Weight, Identity: r.Identity, Workload: r.Workload,
		}
		if r.Session != "" {
			if err := reg.OpenSession(r.Session, []registry.Instance{in}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		ins = append(ins, in)
	}
	if err := reg.SetStatic("fixture", ins); err != nil {
		t.Fatal(err)
	}
	src, data := path, []byte(c.Resources)
	if name, ok := strings.CutPrefix(strings.TrimSpace(c.Resources), "@"); ok {
		src = filepath.Join("testdata", name)
		if data, err = os.ReadFile(src); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := resource.Decode(src, data)
	if err != nil {
		t.Fatalf("decode resources: %v", err)
	}
	if _, err := resource.Validate(context.Background(), objs, nil); err != nil {
		t.Fatalf("resources do not validate: %v", err)
	}
	mesh := MeshConfig{MTLSMode: v1alpha1.MTLSMode(c.Mesh.MTLSMode), TrustBundle: []byte(c.Mesh.TrustBundle), TraceSampling: c.Mesh.TraceSampling}
	return Input{Proxy: proxy, Resources: Index(objs), Registry: reg, Mesh: mesh}
}

// render writes out as stable JSON: protojson per resource, re-indented
// (protojson's own whitespace is deliberately unstable).
func render(t *testing.T, out Output) []byte {
	t.Helper()
	enc := func(ms ...proto.Message) []json.RawMessage {
		list := make([]json.RawMessage, 0, len(ms))
		for _, m := range ms {
			b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, b)
		}
		return list
	}
	var ls, rs, cs, es []proto.Message
	for _, m := range out.Listeners {
		ls = append(ls, m)
	}
	for _, m := range out.Routes {
		rs = append(rs, m)
	}
	for _, m := range out.Clusters {
		cs = append(cs, m)
	}
	for _, m := range out.Endpoints {
		es = append(es, m)
	}
	deps := make([]string, len(out.Services))
	for i, k := range out.Services {
		deps[i] = k.String()
	}
	doc := struct {
		Listeners []json.RawMessage `json:"listeners"`
		Routes    []json.RawMessage `json:"routes"`
		Clusters  []json.RawMessage `json:"clusters"`
		Endpoints []json.RawMessage `json:"endpoints"`
		DependsOn []string          `json:"depends_on"`
	}{enc(ls...), enc(rs...), enc(cs...), enc(es...), deps}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, path := range cases {
		if strings.HasPrefix(filepath.Base(path), "_") {
			continue // shared resource files
		}
		ran++
		name := strings.TrimSuffix(filepath.Base(path), ".yaml")
		t.Run(name, func(t *testing.T) {
			in := loadCase(t, path)
			out, err := Translate(in)
			if err != nil {
				t.Fatal(err)
			}
			got := render(t, out)
			again, err := Translate(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, render(t, again)) {
				t.Fatal("two translations of the same input differ")
			}
			golden := strings.TrimSuffix(path, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./control/translate -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run with -update and review the diff):\n%s", golden, firstDiff(want, got))
			}
		})
	}
	if ran < 3 {
		t.Fatalf("only %d golden cases", ran)
	}
}

// firstDiff shows the first differing line with context.
func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g
		}
	}
	return ""
}
