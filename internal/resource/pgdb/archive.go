package pgdb

import (
	"bytes"
	"fmt"
	"io"
)

// pg_dump's custom-format archives start with a header holding the time
// the dump was made. normalizeArchive rewrites that time to a fixed one
// (2000-01-01 00:00:00) so that an unchanged schema dumps to identical
// bytes and deduplicates; nothing reads the time but pg_restore's listing.
// The header layout is pg_backup_archiver.c's WriteHead: "PGDMP", the
// archive version (major, minor, revision bytes), int size, offset size,
// format byte, the compression (a byte from archive version 1.15, an int
// before), then seven ints of the creation time (sec, min, hour, mday,
// mon, year, isdst). An int is a sign byte and intSize little-endian
// bytes. Archives of other versions pass through unchanged.
func normalizeArchive(rd io.Reader) (io.Reader, error) {
	head := make([]byte, 11)
	n, err := io.ReadFull(rd, head)
	if err != nil {
		if n == 0 {
			return nil, fmt.Errorf("empty archive: %w", io.ErrUnexpectedEOF)
		}
		return io.MultiReader(bytes.NewReader(head[:n]), rd), nil
	}
	if string(head[:5]) != "PGDMP" {
		return nil, fmt.Errorf("not a custom-format archive")
	}
	vmaj, vmin, intSize := int(head[5]), int(head[6]), int(head[8])
	if vmaj != 1 || vmin < 12 || vmin > 16 || intSize < 4 || intSize > 8 {
		return io.MultiReader(bytes.NewReader(head), rd), nil
	}
	comp := 1 + intSize
	if vmin >= 15 {
		comp = 1
	}
	rest := make([]byte, comp+7*(1+intSize))
	if _, err := io.ReadFull(rd, rest); err != nil {
		return nil, fmt.Errorf("archive header: %w", err)
	}
	fixed := []int{0, 0, 0, 1, 0, 100, 0} // 2000-01-01 00:00:00, no DST
	for i, v := range fixed {
		b := rest[comp+i*(1+intSize):]
		b[0] = 0
		for k := 0; k < intSize; k++ {
			b[1+k] = byte(v >> (8 * k))
		}
	}
	return io.MultiReader(bytes.NewReader(head), bytes.NewReader(rest), rd), nil
}
