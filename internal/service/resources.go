package service

import (
	"context"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// SyncResources makes the store's resources of type typ in the given
// scopes match the configured ones (the configuration is their source of
// truth): configured resources are upserted (keeping their first
// registration date), those no longer configured are removed; resources
// created by restores stay.
func (s *Service) SyncResources(ctx context.Context, typ string, scopes []store.Scope, configured []*backup.Resource) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		want := map[string]bool{}
		for _, r := range configured {
			want[r.AccountID+"/"+r.Region+"/"+r.ID] = true
		}
		for _, sc := range scopes {
			old, err := tx.ListResources(ctx, sc, typ)
			if err != nil {
				return err
			}
			for _, r := range old {
				if r.CreatedByRestoreJob == "" && !want[sc.AccountID+"/"+sc.Region+"/"+r.ID] {
					if err := tx.DeleteResource(ctx, sc, typ, r.ID); err != nil {
						return err
					}
				}
			}
		}
		now := s.clk.Now()
		for _, r := range configured {
			sc := store.Scope{AccountID: r.AccountID, Region: r.Region}
			cp := *r
			cp.Type = typ
			cp.CreationDate = now
			if old, err := tx.GetResource(ctx, sc, typ, r.ID); err == nil {
				cp.CreationDate = old.CreationDate
			} else if !backup.IsCode(err, backup.CodeNotFound) {
				return err
			}
			if err := tx.UpsertResource(ctx, &cp); err != nil {
				return err
			}
		}
		return nil
	})
}
