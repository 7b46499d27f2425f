package proxy

import "syscall"

// soReusePort is SO_REUSEPORT on Linux (not exported by package syscall).
const soReusePort = 0xf

func setReusePort(fd uintptr) error {
	return syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReusePort, 1)
}
