package api_test

import (
	"context"
	"time"

	"coffer/internal/backup"
	"coffer/internal/resource/filesystem"
	"coffer/internal/store"
)

// fileSystem is how these tests describe a file system to register.
type fileSystem struct {
	AccountID, Region, ID, Arn, Path, Name string
	Tags                                   map[string]string
	CreationDate                           time.Time
	CreatedByRestoreJob                    string
}

func (f *fileSystem) res() *backup.Resource {
	r := filesystem.NewResource(f.Region, f.AccountID, f.ID, f.Path, f.Tags)
	r.Name, r.CreationDate, r.CreatedByRestoreJob = f.Name, f.CreationDate, f.CreatedByRestoreJob
	if f.Arn != "" {
		r.Arn = f.Arn
	}
	return r
}

// upsertFS registers f.
func upsertFS(ctx context.Context, tx store.Tx, f *fileSystem) error {
	return tx.UpsertResource(ctx, f.res())
}
