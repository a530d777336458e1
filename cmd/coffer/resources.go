package main

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/config"
	"coffer/internal/store"
)

// upsertFileSystems makes the store's file systems match the config's (the
// config is their source of truth: configured ones are upserted, ones no
// longer configured are removed; file systems created by restores stay).
// A file system's display name is its "Name" tag, as on AWS.
func upsertFileSystems(ctx context.Context, st store.Store, cfg *config.Config, clk clock.Clock) error {
	return st.Write(ctx, func(tx store.Tx) error {
		configured := map[string]bool{}
		for _, f := range cfg.FileSystems {
			configured[f.Account+"/"+f.ID] = true
		}
		for _, a := range cfg.Accounts {
			sc := store.Scope{AccountID: a.ID, Region: cfg.Region}
			old, err := tx.ListFileSystems(ctx, sc)
			if err != nil {
				return err
			}
			for _, f := range old {
				if f.CreatedByRestoreJob == "" && !configured[a.ID+"/"+f.ID] {
					if err := tx.DeleteFileSystem(ctx, sc, f.ID); err != nil {
						return err
					}
				}
			}
		}
		for _, f := range cfg.FileSystems {
			sc := store.Scope{AccountID: f.Account, Region: cfg.Region}
			created := clk.Now()
			if old, err := tx.GetFileSystem(ctx, sc, f.ID); err == nil {
				created = old.CreationDate
			} else if !backup.IsCode(err, backup.CodeNotFound) {
				return err
			}
			if err := tx.UpsertFileSystem(ctx, &backup.FileSystem{AccountID: f.Account, Region: cfg.Region, ID: f.ID,
				Arn: backup.FileSystemArn(cfg.Region, f.Account, f.ID), Path: f.Path, Name: f.Tags["Name"], Tags: f.Tags,
				CreationDate: created}); err != nil {
				return err
			}
		}
		return nil
	})
}
