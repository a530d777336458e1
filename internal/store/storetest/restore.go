package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

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

// testRestoreJobQueries: restore jobs listed by protected resource with
// every filter and paged; latest-restore fields per protected resource;
// a runner's UpdateJob keeps a restore job's extra columns.
func testRestoreJobQueries(t *testing.T, s store.Store) {
	sc := store.Scope{AccountID: "111111111111", Region: "us-east-1"}
	other := store.Scope{AccountID: "222222222222", Region: "us-east-1"}
	res := "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-12345678"
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := s.Write(ctx, func(tx store.Tx) error {
		for i := range 7 {
			acct := sc
			if i == 6 {
				acct = other
			}
			j := &backup.Job{Kind: backup.JobRestore, ID: fmt.Sprintf("JOB-%d", i), AccountID: acct.AccountID, Region: acct.Region,
				State: map[bool]backup.JobState{true: backup.JobCompleted, false: backup.JobPending}[i%2 == 0], CreationDate: base.Add(time.Duration(i) * time.Minute),
				ResourceArn: res, RecoveryPointArn: "rp"}
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
			if err := tx.SetRestoreJobExtra(ctx, acct, j.ID, store.RestoreJobExtra{RecoveryPointCreationDate: base.Add(time.Duration(i) * time.Hour)}); err != nil {
				return err
			}
		}
		// Another account cannot annotate a job it does not own.
		if err := tx.SetRestoreJobExtra(ctx, other, "JOB-0", store.RestoreJobExtra{}); !backup.IsCode(err, backup.CodeNotFound) {
			return fmt.Errorf("foreign SetRestoreJobExtra: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func(q store.RestoreJobQuery, p store.Page) ([]string, string) {
		var ids []string
		var next string
		if err := s.Read(ctx, func(tx store.Tx) error {
			js, n, err := tx.ListRestoreJobsByResource(ctx, sc, q, p)
			for _, j := range js {
				ids = append(ids, j.ID)
			}
			next = n
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ids, next
	}
	for _, tc := range []struct {
		q    store.RestoreJobQuery
		want string
	}{
		{store.RestoreJobQuery{ResourceArn: res}, "[JOB-5 JOB-4 JOB-3 JOB-2 JOB-1 JOB-0]"},
		{store.RestoreJobQuery{ResourceArn: res, State: "COMPLETED"}, "[JOB-4 JOB-2 JOB-0]"},
		{store.RestoreJobQuery{ResourceArn: res, RPCreatedAfter: timePtr(base.Add(2 * time.Hour))}, "[JOB-5 JOB-4 JOB-3]"},
		{store.RestoreJobQuery{ResourceArn: res, RPCreatedBefore: timePtr(base.Add(2 * time.Hour))}, "[JOB-1 JOB-0]"},
		{store.RestoreJobQuery{ResourceArn: "other"}, "[]"},
	} {
		got, _ := list(tc.q, store.Page{Limit: 100})
		if fmt.Sprint(got) != tc.want && !(len(got) == 0 && tc.want == "[]") {
			t.Errorf("%+v: %v, want %s", tc.q, got, tc.want)
		}
	}
	var all []string
	p := store.Page{Limit: 4}
	for {
		ids, next := list(store.RestoreJobQuery{ResourceArn: res}, p)
		all = append(all, ids...)
		if next == "" {
			break
		}
		p.After = next
	}
	if fmt.Sprint(all) != "[JOB-5 JOB-4 JOB-3 JOB-2 JOB-1 JOB-0]" {
		t.Fatalf("paged: %v", all)
	}
	err = s.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.GetLatestRestore(ctx, sc, res); !backup.IsCode(err, backup.CodeNotFound) {
			return fmt.Errorf("latest restore of an unknown resource: %v", err)
		}
		if err := tx.SetLatestRestore(ctx, sc, res, store.LatestRestore{}); !backup.IsCode(err, backup.CodeNotFound) {
			return fmt.Errorf("set on an unknown resource: %v", err)
		}
		if err := tx.UpsertProtectedResource(ctx, &backup.ProtectedResource{AccountID: sc.AccountID, Region: sc.Region, ResourceArn: res, ResourceType: "EFS"}); err != nil {
			return err
		}
		if _, err := tx.GetLatestRestore(ctx, sc, res); !backup.IsCode(err, backup.CodeNotFound) {
			return fmt.Errorf("latest restore before any restore: %v", err)
		}
		lr := store.LatestRestore{ExecutionTimeMinutes: 3, JobCreationDate: base, RecoveryPointCreationDate: base.Add(-time.Hour)}
		if err := tx.SetLatestRestore(ctx, sc, res, lr); err != nil {
			return err
		}
		got, err := tx.GetLatestRestore(ctx, sc, res)
		if err != nil {
			return err
		}
		if *got != lr {
			return fmt.Errorf("latest restore %+v, want %+v", got, lr)
		}
		if _, err := tx.GetLatestRestore(ctx, other, res); !backup.IsCode(err, backup.CodeNotFound) {
			return fmt.Errorf("another account sees the latest restore: %v", err)
		}
		x, err := tx.GetRestoreJobExtra(ctx, sc, "JOB-3")
		if err != nil {
			return err
		}
		if !x.RecoveryPointCreationDate.Equal(base.Add(3 * time.Hour)) {
			return fmt.Errorf("extra %+v", x)
		}
		// A backup job update by the runner keeps the restore column.
		j, err := tx.GetJob(ctx, sc, backup.JobRestore, "JOB-3")
		if err != nil {
			return err
		}
		j.State = "RUNNING"
		if err := tx.UpdateJob(ctx, j, j.LeaseGeneration); err != nil {
			return err
		}
		x, err = tx.GetRestoreJobExtra(ctx, sc, "JOB-3")
		if err != nil || !x.RecoveryPointCreationDate.Equal(base.Add(3*time.Hour)) {
			return fmt.Errorf("after UpdateJob: %+v %v", x, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func timePtr(t time.Time) *time.Time { return &t }
