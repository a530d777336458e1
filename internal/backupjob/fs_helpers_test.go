package backupjob_test

import (
	"coffer/internal/resource"
	"coffer/internal/resource/filesystem"
	"coffer/internal/testutil/stack"
)

// fileSystem and upsertFS register file systems (stack.FileSystem).
type fileSystem = stack.FileSystem

var upsertFS = stack.UpsertFS

// fsPlugins is the plugin registry of file systems.
var fsPlugins = func() *resource.Registry {
	r, err := resource.NewRegistry(&filesystem.Plugin{})
	if err != nil {
		panic(err)
	}
	return r
}()
