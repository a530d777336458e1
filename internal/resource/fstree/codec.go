package fstree

import (
	"bytes"
	"encoding/gob"
	"fmt"

	"coffer/internal/repository/snapshot"
)

// maxTreeBlobSize caps the size of a tree blob this package loads or decodes.
const maxTreeBlobSize = 64 << 20

// encodeTree and decodeTree are the only two places that know the tree blob
// encoding. They are a stand-in until the snapshot package provides
// EncodeTree/DecodeTree (repository-format.md); switch both bodies then.
func encodeTree(t *snapshot.Tree) ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(t); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decodeTree(data []byte) (*snapshot.Tree, error) {
	if len(data) > maxTreeBlobSize {
		return nil, fmt.Errorf("tree blob of %d bytes exceeds limit %d", len(data), maxTreeBlobSize)
	}
	var t snapshot.Tree
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&t); err != nil {
		return nil, err
	}
	return &t, nil
}
