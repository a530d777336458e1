package fstree

import (
	"coffer/internal/repository/snapshot"
)

// maxTreeBlobSize caps the size of a tree blob this package loads.
const maxTreeBlobSize = snapshot.MaxTreeSize

// encodeTree and decodeTree are the only two places that know the tree blob
// encoding (snapshot.EncodeTree/DecodeTree, which validate the tree: names,
// order, types, extents).
func encodeTree(t *snapshot.Tree) ([]byte, error) { return snapshot.EncodeTree(t) }

func decodeTree(data []byte) (*snapshot.Tree, error) { return snapshot.DecodeTree(data) }
