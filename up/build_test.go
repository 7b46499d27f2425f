package up

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/control/resource"
)

func TestBuildWorkload(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module buildtest\n\ngo 1.22\n")
	writeFile(t, filepath.Join(dir, "hello", "main.go"), "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Print(\"hello\") }\n")
	writeFile(t, filepath.Join(dir, "broken", "main.go"), "package main\n\nfunc main() { undefinedThing() }\n")
	writeFile(t, filepath.Join(dir, "mesh.yaml"), `apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: hello, namespace: t}
spec: {build: {go: ./hello}}
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: broken, namespace: t}
spec: {build: {go: ./broken}}
`)
	objs, _, err := Load(context.Background(), []string{filepath.Join(dir, "mesh.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	env := &unitEnv{stateDir: filepath.Join(dir, "state")}
	byName := map[string]*resource.Object{}
	for i := range objs {
		byName[objs[i].Name] = &objs[i]
	}
	if err := env.buildWorkload(context.Background(), byName["hello"]); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(dir, "state", "bin", "t-hello")).Output()
	if err != nil || string(out) != "hello" {
		t.Errorf("built program: %q %v", out, err)
	}
	err = env.buildWorkload(context.Background(), byName["broken"])
	if err == nil || !strings.Contains(err.Error(), "build t/broken: go build ./broken (in "+dir+") failed:\n") || !strings.Contains(err.Error(), "undefined: undefinedThing") {
		t.Errorf("broken build: %v", err)
	}
}
