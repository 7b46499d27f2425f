//go:build linux

package proxy

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func rssFileKB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssFile:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestTrimBinaryPages: the executable's pages leave this process's RSS
// and the process keeps running (they fault back in as needed).
func TestTrimBinaryPages(t *testing.T) {
	before := rssFileKB(t)
	n := TrimBinaryPages()
	if n == 0 {
		t.Skip("MADV_PAGEOUT not available on this kernel")
	}
	after := rssFileKB(t)
	t.Logf("advised %d KiB; RssFile %d → %d KiB", n>>10, before, after)
	if after >= before {
		t.Fatalf("RssFile did not drop: %d → %d KiB", before, after)
	}
}
