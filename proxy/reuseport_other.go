//go:build !linux

package proxy

func setReusePort(uintptr) error { return nil }
