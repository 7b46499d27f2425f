//go:build linux

package proxy

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// madvPageout is MADV_PAGEOUT (Linux 5.4+).
const madvPageout = 21

// TrimBinaryPages asks the kernel to drop the read-only data of this
// process's own executable from its page tables (MADV_PAGEOUT). Start-up
// touches far more of it than serving does (type and descriptor data of
// every package initialiser in the single binary, config decoding); the
// pages stay in the page cache, shared by every weft process, and the ones
// needed later fault back in. Executable text is left alone: paging it out
// too takes an idle sidecar from ~25 to ~18 MB but measured about 8% less
// throughput afterwards (text faulted back in small pages). It returns the
// bytes advised. Errors (older kernels) are ignored: this only lowers the
// reported RSS.
func TrimBinaryPages() int {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0
	}
	defer f.Close()
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") || strings.Contains(fields[1], "x") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		// A raw syscall: the range is not Go memory, so no []byte over it.
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvPageout); errno == 0 {
			total += int(end - start)
		}
	}
	return total
}
