package stack

import (
	"context"
	"time"

	"coffer/internal/backup"
	"coffer/internal/resource/filesystem"
	"coffer/internal/store"
)

// FileSystem is how tests describe a file system to register.
type FileSystem struct {
	AccountID, Region, ID, Arn, Path, Name string
	Tags                                   map[string]string
	CreationDate                           time.Time
	CreatedByRestoreJob                    string
}

// Resource is f as a resource of the file-system plugin.
func (f *FileSystem) Resource() *backup.Resource {
	r := filesystem.NewResource(f.Region, f.AccountID, f.ID, f.Path, f.Tags)
	r.Name, r.CreationDate, r.CreatedByRestoreJob = f.Name, f.CreationDate, f.CreatedByRestoreJob
	if f.Arn != "" {
		r.Arn = f.Arn
	}
	return r
}

// UpsertFS registers f.
func UpsertFS(ctx context.Context, tx store.Tx, f *FileSystem) error {
	return tx.UpsertResource(ctx, f.Resource())
}
