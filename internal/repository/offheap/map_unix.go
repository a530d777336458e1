//go:build unix

package offheap

import "golang.org/x/sys/unix"

// mapBig maps n bytes of anonymous memory, or returns nil if it cannot.
func mapBig(n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return nil
	}
	return b
}

func unmapBig(b []byte) { _ = unix.Munmap(b) }
