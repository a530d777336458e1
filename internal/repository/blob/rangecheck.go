package blob

import "fmt"

// CheckRange validates a Get range against an object of the given size and
// returns the number of bytes to read. A negative length means "to the end";
// a negative offset, or a range reaching past size, is ErrInvalidRange.
func CheckRange(size, offset, length int64) (int64, error) {
	if offset < 0 || offset > size {
		return 0, fmt.Errorf("offset %d of object of %d bytes: %w", offset, size, ErrInvalidRange)
	}
	if length < 0 {
		return size - offset, nil
	}
	if length > size-offset {
		return 0, fmt.Errorf("range [%d,+%d) of object of %d bytes: %w", offset, length, size, ErrInvalidRange)
	}
	return length, nil
}
