package proxy

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite generated files (docs/xds-subset.md)")

const (
	subsetDoc   = "../docs/xds-subset.md"
	beginMarker = "<!-- BEGIN GENERATED: go test ./proxy -run TestSubsetDoc -update -->"
	endMarker   = "<!-- END GENERATED -->"
)

// TestSubsetDoc keeps docs/xds-subset.md in step with the table the proxy
// enforces: the generated section must equal supported.Markdown().
func TestSubsetDoc(t *testing.T) {
	b, err := os.ReadFile(subsetDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, beginMarker), strings.Index(doc, endMarker)
	if i < 0 || j < i {
		t.Fatalf("%s: generated-section markers missing", subsetDoc)
	}
	want := beginMarker + "\n\n" + supported.Markdown() + endMarker
	got := doc[i : j+len(endMarker)]
	if got == want {
		return
	}
	if !*update {
		t.Fatalf("%s is out of date with proxy/subset_tables.go; run go test ./proxy -run TestSubsetDoc -update", subsetDoc)
	}
	if err := os.WriteFile(subsetDoc, []byte(doc[:i]+want+doc[j+len(endMarker):]), 0o644); err != nil {
		t.Fatal(err)
	}
}
