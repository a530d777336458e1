package repository

import (
	"encoding/hex"
	"fmt"
)

// ID names a blob: a keyed hash of its plaintext, so that equal content
// deduplicates inside one repository while content hashes never leak outside.
type ID [32]byte

// String returns the lower-case hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value (never a valid blob ID in use).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses the hex form produced by String.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("invalid id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid id %q: %w", s, err)
	}
	return id, nil
}

// BlobType says what a blob holds. The numeric values are persisted in pack
// headers and indexes: never renumber or reuse a retired value.
type BlobType uint8

const (
	// DataBlob holds a chunk of file (or object, or dump) content.
	DataBlob BlobType = 1
	// TreeBlob holds an encoded directory listing (see package snapshot).
	TreeBlob BlobType = 2
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	default:
		return fmt.Sprintf("blobtype(%d)", uint8(t))
	}
}
