//go:build !unix

package offheap

// mapBig returns nil: the buffers are allocated on the Go heap.
func mapBig(int) []byte { return nil }

func unmapBig([]byte) {}
