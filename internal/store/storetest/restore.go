package storetest

import (
	"reflect"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// testRestoreJobExtra: a restore job's extra fields round-trip, labels
// included; a job without labels reads back nil labels; another account
// neither reads nor writes them.
func testRestoreJobExtra(t *testing.T, s store.Store) {
	j1 := Job(a, backup.JobRestore, 1, t0)
	j2 := Job(a, backup.JobRestore, 2, t0)
	labels := map[string]string{"hbr.RestoreType": "NAS", "hbr.CrossAccountRoleName": "role-ä", "empty": ""}
	mustWrite(t, s, func(tx store.Tx) error {
		for _, j := range []*backup.Job{j1, j2} {
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
		}
		if err := tx.SetRestoreJobExtra(ctx, a, j1.ID, store.RestoreJobExtra{RecoveryPointCreationDate: t0, Labels: labels}); err != nil {
			return err
		}
		return tx.SetRestoreJobExtra(ctx, a, j2.ID, store.RestoreJobExtra{RecoveryPointCreationDate: t0})
	})
	err := s.Read(ctx, func(tx store.Tx) error {
		x, err := tx.GetRestoreJobExtra(ctx, a, j1.ID)
		if err != nil {
			return err
		}
		if !x.RecoveryPointCreationDate.Equal(t0) || !reflect.DeepEqual(x.Labels, labels) {
			t.Errorf("job 1 extra = %+v, want creation %v and labels %v", x, t0, labels)
		}
		x, err = tx.GetRestoreJobExtra(ctx, a, j2.ID)
		if err != nil {
			return err
		}
		if x.Labels != nil {
			t.Errorf("job 2 labels = %v, want nil", x.Labels)
		}
		_, err = tx.GetRestoreJobExtra(ctx, b, j1.ID)
		wantCode(t, err, backup.CodeNotFound)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Write(ctx, func(tx store.Tx) error {
		return tx.SetRestoreJobExtra(ctx, b, j1.ID, store.RestoreJobExtra{Labels: map[string]string{"x": "y"}})
	})
	wantCode(t, err, backup.CodeNotFound)
}
