//go:build !linux

package proxy

// TrimBinaryPages is a no-op outside Linux.
func TrimBinaryPages() int { return 0 }
