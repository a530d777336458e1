package storetest

import (
	"reflect"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// testRowRoundTrip writes a job, a vault and a recovery point with every
// field set, and others with every optional field unset (or false), and
// reads them back unchanged: each column's type and NULL handling, the
// booleans above all (BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite), maps
// the same on every adapter.
func testRowRoundTrip(t *testing.T, s store.Store) {
	ms := func(d time.Duration) *time.Time { v := t0.Add(d).Truncate(time.Millisecond); return &v }
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	created := t0.Truncate(time.Millisecond)

	full := &backup.Job{Kind: backup.JobBackup, ID: "job-full", AccountID: a.AccountID, Region: a.Region, State: backup.JobRunning,
		StatusMessage: "working", MessageCategory: "SUCCESS", PercentDone: "42.0", BytesTransferred: 1 << 40, BackupSizeBytes: 1<<40 + 1,
		CreationDate: created, CompletionDate: ms(time.Hour), InitiationDate: ms(time.Minute), StartBy: ms(2 * time.Hour),
		ExpectedCompletionDate: ms(3 * time.Hour), VaultName: "v", VaultArn: backup.VaultArn(a.Region, a.AccountID, "v"),
		DestinationVaultArn: "arn:dest", RecoveryPointArn: "arn:rp", DestinationRecoveryPointArn: "arn:drp", ResourceArn: "arn:res",
		ResourceType: "EFS", ResourceName: "fs", IamRoleArn: "arn:role", CreatedResourceArn: "arn:created", ParentJobID: "job-parent",
		IsParent: true, BackupType: "WINDOWS_VSS",
		Lifecycle:     backup.Lifecycle{MoveToColdStorageAfterDays: i64(30), DeleteAfterDays: i64(120), OptInToArchiveForSupportedResources: &yes},
		BackupOptions: map[string]string{"WindowsVSS": "enabled"}, CreatedByJSON: `{"BackupPlanId":"p"}`, IdempotencyToken: "tok",
		ScheduleKey: "rule|1|arn:res", LeaseOwner: "node-1", LeaseGeneration: 7, LeaseExpiry: ms(5 * time.Second),
		Heartbeat: ms(time.Second), ProgressPercent: 42.5, ParametersJSON: `{"p":1}`, ResultJSON: `{"r":2}`}
	sparse := &backup.Job{Kind: backup.JobCopy, ID: "job-sparse", AccountID: a.AccountID, Region: a.Region, State: backup.JobCreated,
		CreationDate: created, Lifecycle: backup.Lifecycle{OptInToArchiveForSupportedResources: &no}}
	// What sparse reads back as: the JSON columns are stored as {}.
	sparseWant := *sparse
	sparseWant.BackupOptions, sparseWant.ParametersJSON, sparseWant.ResultJSON = map[string]string{}, "{}", "{}"
	bare := &backup.Job{Kind: backup.JobRestore, ID: "job-bare", AccountID: a.AccountID, Region: a.Region, State: backup.JobCreated,
		CreationDate: created}
	bareWant := *bare
	bareWant.BackupOptions, bareWant.ParametersJSON, bareWant.ResultJSON = map[string]string{}, "{}", "{}"

	v := vault(a, "v")
	v.Locked, v.MinRetentionDays, v.MaxRetentionDays, v.LockDate = true, i64(1), i64(30), ms(time.Hour)
	unlocked := vault(a, "w")

	rp := &backup.RecoveryPoint{Arn: "arn:rp-full", AccountID: a.AccountID, Region: a.Region, VaultName: "v", VaultArn: v.Arn,
		SourceVaultArn: "arn:src", ResourceArn: "arn:res", ResourceType: "EFS", ResourceName: "fs", IamRoleArn: "arn:role",
		Status: backup.RecoveryPointCompleted, StatusMessage: "ok", StorageClass: "WARM", BackupSizeBytes: 12345,
		Lifecycle:           backup.Lifecycle{MoveToColdStorageAfterDays: i64(30), DeleteAfterDays: i64(120), OptInToArchiveForSupportedResources: &yes},
		MoveToColdStorageAt: ms(30 * 24 * time.Hour), DeleteAt: ms(120 * 24 * time.Hour), CreationDate: created,
		InitiationDate: ms(time.Second), CompletionDate: ms(time.Minute), LastRestoreTime: ms(time.Hour), EncryptionKeyArn: "arn:key",
		ManifestID: "m", BackupJobID: "job-full", Tags: map[string]string{"k": "v"}, CreatedByJSON: `{"BackupPlanId":"p"}`}
	rpBare := &backup.RecoveryPoint{Arn: "arn:rp-bare", AccountID: a.AccountID, Region: a.Region, VaultName: "v", VaultArn: v.Arn,
		Status: backup.RecoveryPointCompleted, CreationDate: created.Add(-time.Second), Lifecycle: backup.Lifecycle{OptInToArchiveForSupportedResources: &no}}
	rpBareWant := *rpBare
	rpBareWant.Tags = map[string]string{}

	mustWrite(t, s, func(tx store.Tx) error {
		for _, j := range []*backup.Job{full, sparse, bare} {
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
		}
		for _, v := range []*backup.Vault{v, unlocked} {
			if err := tx.CreateVault(ctx, v); err != nil {
				return err
			}
		}
		for _, r := range []*backup.RecoveryPoint{rp, rpBare} {
			if err := tx.CreateRecoveryPoint(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})

	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s read back as\n%+v\nwant\n%+v", what, got, want)
		}
	}
	readAll := func() {
		t.Helper()
		if err := s.Read(ctx, func(tx store.Tx) error {
			for _, c := range []struct {
				j    *backup.Job
				want *backup.Job
			}{{full, full}, {sparse, &sparseWant}, {bare, &bareWant}} {
				got, err := tx.GetJob(ctx, a, c.j.Kind, c.j.ID)
				if err != nil {
					return err
				}
				check("job "+c.j.ID, got, c.want)
			}
			for _, want := range []*backup.Vault{v, unlocked} {
				got, err := tx.GetVault(ctx, a, want.Name)
				if err != nil {
					return err
				}
				check("vault "+want.Name, got, want)
			}
			rps, _, err := tx.ListRecoveryPoints(ctx, a, store.RecoveryPointFilter{VaultName: "v"}, store.Page{})
			if err != nil {
				return err
			}
			check("recovery points", rps, []*backup.RecoveryPoint{rp, &rpBareWant})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	readAll()

	// An update writes every column again: turn the values around.
	full.IsParent, full.Lifecycle.OptInToArchiveForSupportedResources, full.CompletionDate = false, &no, nil
	sparse.IsParent, sparse.Lifecycle = true, backup.Lifecycle{DeleteAfterDays: i64(7), OptInToArchiveForSupportedResources: &yes}
	sparseWant.IsParent, sparseWant.Lifecycle = sparse.IsParent, sparse.Lifecycle
	v.Locked, v.MinRetentionDays, v.LockDate = false, nil, nil
	rp.Lifecycle.OptInToArchiveForSupportedResources, rp.LastRestoreTime = nil, nil
	mustWrite(t, s, func(tx store.Tx) error {
		for _, j := range []*backup.Job{full, sparse} {
			if err := tx.UpdateJob(ctx, j, j.LeaseGeneration); err != nil {
				return err
			}
		}
		if err := tx.UpdateVault(ctx, v); err != nil {
			return err
		}
		return tx.UpdateRecoveryPoint(ctx, rp)
	})
	readAll()
}
