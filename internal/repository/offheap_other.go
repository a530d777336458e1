//go:build !unix

package repository

// mapBig returns nil: the buffers are allocated on the Go heap.
func mapBig(int) []byte { return nil }

func unmapBig([]byte) {}
