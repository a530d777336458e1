package restorejob_test

import "coffer/internal/testutil/stack"

// fileSystem and upsertFS register file systems (stack.FileSystem).
type fileSystem = stack.FileSystem

var upsertFS = stack.UpsertFS
