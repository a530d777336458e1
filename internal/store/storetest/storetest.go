// Package storetest is the metadata-store contract suite. Every adapter runs
// it unchanged: storetest.Run(t, func(t *testing.T) store.Store { ... }).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// Run runs the contract suite; open must return a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"VaultCRUD", testVaultCRUD},
		{"VaultTenancy", testVaultTenancy},
		{"VaultPaging", testVaultPaging},
		{"Tags", testTags},
		{"Idempotency", testIdempotency},
		{"RecoveryPointsBlockVaultDelete", testRecoveryPoints},
		{"RollbackOnError", testRollback},
		{"Jobs", testJobs},
		{"JobLeaseFencing", testJobLease},
		{"Resources", testResources},
		{"ClaimJob", testClaim},
		{"RecoveryPointQueries", testRecoveryPointQueries},
		{"RestoreJobExtra", testRestoreJobExtra},
		{"RestoreJobQueries", testRestoreJobQueries},
		{"Summaries", testSummaries},
		{"SummariesAfterChanges", testSummariesAfterChanges},
		{"Nonces", testNonces},
		{"RepoVersions", testRepoVersions},
		{"ClusterMeta", testClusterMeta},
		{"ConsoleSessions", testConsoleSessions},
		{"Plans", testPlans},
		{"Selections", testSelections},
		{"Occurrences", testOccurrences},
		{"RecoveryPointCreator", testRecoveryPointCreator},
		{"LegalHolds", testLegalHolds},
		{"Settings", testSettings},
		{"ProtectedResourcesByVault", testProtectedByVault},
		{"RowRoundTrip", testRowRoundTrip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var (
	ctx = context.Background()
	t0  = time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	a   = store.Scope{AccountID: "111111111111", Region: "us-east-1"}
	b   = store.Scope{AccountID: "222222222222", Region: "us-east-1"}
)

func vault(s store.Scope, name string) *backup.Vault {
	return &backup.Vault{AccountID: s.AccountID, Region: s.Region, Name: name, Arn: backup.VaultArn(s.Region, s.AccountID, name),
		VaultType: backup.VaultTypeBackup, VaultState: backup.VaultStateAvailable, CreationDate: t0, CreatorRequestID: "req-" + name}
}

func mustWrite(t *testing.T, s store.Store, fn func(store.Tx) error) {
	t.Helper()
	if err := s.Write(ctx, fn); err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, c backup.Code) {
	t.Helper()
	if !backup.IsCode(err, c) {
		t.Fatalf("err = %v, want code %s", err, c)
	}
}

func testVaultCRUD(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateVault(ctx, vault(a, "v1")) })
	err := s.Write(ctx, func(tx store.Tx) error { return tx.CreateVault(ctx, vault(a, "v1")) })
	wantCode(t, err, backup.CodeAlreadyExists)
	var be *backup.Error
	_ = errors.As(err, &be)
	if be == nil || be.Arn != backup.VaultArn(a.Region, a.AccountID, "v1") || be.CreatorRequestID != "req-v1" {
		t.Fatalf("AlreadyExists lacks Arn/CreatorRequestId: %+v", be)
	}
	minDays, maxDays := int64(1), int64(30)
	lock := t0.Add(72 * time.Hour)
	policy := `{"Version":"2012-10-17"}`
	mustWrite(t, s, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, a, "v1")
		if err != nil {
			return err
		}
		v.Locked, v.MinRetentionDays, v.MaxRetentionDays, v.LockDate, v.AccessPolicy = true, &minDays, &maxDays, &lock, &policy
		return tx.UpdateVault(ctx, v)
	})
	err = s.Read(ctx, func(tx store.Tx) error {
		v, err := tx.GetVault(ctx, a, "v1")
		if err != nil {
			return err
		}
		if !v.CreationDate.Equal(t0.Truncate(time.Millisecond)) || !v.Locked || *v.MinRetentionDays != 1 || *v.MaxRetentionDays != 30 ||
			!v.LockDate.Equal(lock) || *v.AccessPolicy != policy || v.CreatorRequestID != "req-v1" {
			return fmt.Errorf("vault round trip: %+v", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteVault(ctx, a, "v1") })
	err = s.Read(ctx, func(tx store.Tx) error { _, err := tx.GetVault(ctx, a, "v1"); return err })
	wantCode(t, err, backup.CodeNotFound)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.DeleteVault(ctx, a, "v1") })
	wantCode(t, err, backup.CodeNotFound)
}

func testVaultTenancy(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateVault(ctx, vault(a, "shared-name")) })
	err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.GetVault(ctx, b, "shared-name"); return err })
	wantCode(t, err, backup.CodeNotFound)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.DeleteVault(ctx, b, "shared-name") })
	wantCode(t, err, backup.CodeNotFound)
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateVault(ctx, vault(b, "shared-name")) })
	err = s.Read(ctx, func(tx store.Tx) error {
		vs, _, err := tx.ListVaults(ctx, b, store.VaultFilter{}, store.Page{Limit: 10})
		if err != nil {
			return err
		}
		if len(vs) != 1 || vs[0].AccountID != b.AccountID {
			return fmt.Errorf("account b sees %d vaults", len(vs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testVaultPaging(t *testing.T, s store.Store) {
	const n = 57
	mustWrite(t, s, func(tx store.Tx) error {
		for i := 0; i < n; i++ {
			if err := tx.CreateVault(ctx, vault(a, fmt.Sprintf("v%03d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	seen := map[string]bool{}
	after := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("paging does not terminate")
		}
		var vs []*backup.Vault
		var next string
		err := s.Read(ctx, func(tx store.Tx) (err error) {
			vs, next, err = tx.ListVaults(ctx, a, store.VaultFilter{}, store.Page{Limit: 10, After: after})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if seen[v.Name] {
				t.Fatalf("repeat %s", v.Name)
			}
			seen[v.Name] = true
		}
		if next == "" {
			break
		}
		if next == after {
			t.Fatal("same cursor twice")
		}
		after = next
	}
	if len(seen) != n {
		t.Fatalf("saw %d vaults, want %d", len(seen), n)
	}
}

func testTags(t *testing.T, s store.Store) {
	arn := backup.VaultArn(a.Region, a.AccountID, "t")
	mustWrite(t, s, func(tx store.Tx) error { return tx.PutTags(ctx, arn, map[string]string{"a": "1", "b": "2"}) })
	mustWrite(t, s, func(tx store.Tx) error { return tx.PutTags(ctx, arn, map[string]string{"b": "3"}) })
	mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteTags(ctx, arn, []string{"a", "zz"}) })
	err := s.Read(ctx, func(tx store.Tx) error {
		tags, err := tx.ListTags(ctx, arn)
		if err != nil {
			return err
		}
		if len(tags) != 1 || tags["b"] != "3" {
			return fmt.Errorf("tags = %v", tags)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testIdempotency(t *testing.T, s store.Store) {
	i := &store.Idempotency{Operation: "StartBackupJob", Token: "tok", ParamsDigest: "d1", ResultID: "J1", ExpiresAt: t0.Add(time.Hour)}
	mustWrite(t, s, func(tx store.Tx) error { return tx.PutIdempotency(ctx, a, i) })
	err := s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.GetIdempotency(ctx, a, "StartBackupJob", "tok", t0)
		if err != nil {
			return err
		}
		if got.ResultID != "J1" || got.ParamsDigest != "d1" {
			return fmt.Errorf("got %+v", got)
		}
		_, err = tx.GetIdempotency(ctx, b, "StartBackupJob", "tok", t0)
		wantCode(t, err, backup.CodeNotFound)
		_, err = tx.GetIdempotency(ctx, a, "StartBackupJob", "tok", t0.Add(time.Hour))
		wantCode(t, err, backup.CodeNotFound)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, func(tx store.Tx) error {
		n, err := tx.DeleteExpiredIdempotency(ctx, t0.Add(2*time.Hour))
		if n != 1 {
			return fmt.Errorf("expired %d, want 1", n)
		}
		return err
	})
}

func testRecoveryPoints(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateVault(ctx, vault(a, "v")) })
	del := int64(35)
	rp := &backup.RecoveryPoint{Arn: backup.RecoveryPointArn(a.Region, a.AccountID, "rp1"), AccountID: a.AccountID, Region: a.Region,
		VaultName: "v", VaultArn: backup.VaultArn(a.Region, a.AccountID, "v"), ResourceArn: "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0123456789abcdef0",
		ResourceType: "EFS", Status: "COMPLETED", StorageClass: "WARM", CreationDate: t0, Lifecycle: backup.Lifecycle{DeleteAfterDays: &del},
		Tags: map[string]string{"k": "v"}}
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateRecoveryPoint(ctx, rp) })
	err := s.Write(ctx, func(tx store.Tx) error { return tx.DeleteVault(ctx, a, "v") })
	wantCode(t, err, backup.CodeInvalidRequest)
	err = s.Read(ctx, func(tx store.Tx) error {
		n, err := tx.CountRecoveryPoints(ctx, a, "v")
		if err != nil || n != 1 {
			return fmt.Errorf("count = %d, %v", n, err)
		}
		got, err := tx.GetRecoveryPoint(ctx, a, rp.Arn)
		if err != nil {
			return err
		}
		if *got.Lifecycle.DeleteAfterDays != 35 || got.Tags["k"] != "v" {
			return fmt.Errorf("round trip %+v", got)
		}
		_, err = tx.GetRecoveryPoint(ctx, b, rp.Arn)
		wantCode(t, err, backup.CodeNotFound)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteRecoveryPoint(ctx, a, rp.Arn) })
	mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteVault(ctx, a, "v") })
}

func testRollback(t *testing.T, s store.Store) {
	boom := fmt.Errorf("boom")
	err := s.Write(ctx, func(tx store.Tx) error {
		if err := tx.CreateVault(ctx, vault(a, "gone")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	err = s.Read(ctx, func(tx store.Tx) error { _, err := tx.GetVault(ctx, a, "gone"); return err })
	wantCode(t, err, backup.CodeNotFound)
}

// Job returns a synthetic job for tests and benchmarks.
func Job(s store.Scope, kind backup.JobKind, i int, created time.Time) *backup.Job {
	states := []backup.JobState{backup.JobCreated, backup.JobRunning, backup.JobCompleted, backup.JobFailed}
	return &backup.Job{Kind: kind, ID: fmt.Sprintf("%08X-0000-0000-0000-%012X", i, i), AccountID: s.AccountID, Region: s.Region,
		State: states[i%len(states)], CreationDate: created, VaultName: fmt.Sprintf("vault-%d", i%10),
		ResourceArn:  fmt.Sprintf("arn:aws:elasticfilesystem:%s:%s:file-system/fs-%017x", s.Region, s.AccountID, i%100),
		ResourceType: "EFS", MessageCategory: "SUCCESS", PercentDone: "0.0"}
}

func testJobs(t *testing.T, s store.Store) {
	const n = 45
	mustWrite(t, s, func(tx store.Tx) error {
		for i := 0; i < n; i++ {
			// Several jobs share a creation time to exercise the id tie-break.
			if err := tx.CreateJob(ctx, Job(a, backup.JobBackup, i, t0.Add(time.Duration(i/3)*time.Second))); err != nil {
				return err
			}
		}
		return tx.CreateJob(ctx, Job(b, backup.JobBackup, 1000, t0))
	})
	list := func(f store.JobFilter, limit int) []*backup.Job {
		var all []*backup.Job
		after := ""
		for {
			var js []*backup.Job
			var next string
			if err := s.Read(ctx, func(tx store.Tx) (err error) {
				js, next, err = tx.ListJobs(ctx, a, f, store.Page{Limit: limit, After: after})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			all = append(all, js...)
			if next == "" {
				return all
			}
			after = next
		}
	}
	all := list(store.JobFilter{Kind: backup.JobBackup}, 4)
	if len(all) != n {
		t.Fatalf("listed %d jobs, want %d", len(all), n)
	}
	seen := map[string]bool{}
	for i, j := range all {
		if seen[j.ID] {
			t.Fatalf("repeat %s", j.ID)
		}
		seen[j.ID] = true
		if i > 0 && (j.CreationDate.After(all[i-1].CreationDate) || (j.CreationDate.Equal(all[i-1].CreationDate) && j.ID < all[i-1].ID)) {
			t.Fatalf("order broken at %d", i)
		}
	}
	if got := list(store.JobFilter{Kind: backup.JobBackup, State: "COMPLETED", VaultName: "vault-2"}, 3); len(got) == 0 {
		t.Fatal("filtered list empty")
	} else {
		for _, j := range got {
			if j.State != "COMPLETED" || j.VaultName != "vault-2" {
				t.Fatalf("filter leak: %+v", j)
			}
		}
	}
	after := t0.Add(10 * time.Second)
	for _, j := range list(store.JobFilter{Kind: backup.JobBackup, CreatedAfter: &after}, 100) {
		if !j.CreationDate.After(after) {
			t.Fatalf("CreatedAfter leak: %v", j.CreationDate)
		}
	}
	if got := list(store.JobFilter{Kind: backup.JobCopy}, 10); len(got) != 0 {
		t.Fatalf("copy jobs: %d", len(got))
	}
	var allAcc []*backup.Job
	if err := s.Read(ctx, func(tx store.Tx) (err error) {
		allAcc, _, err = tx.ListJobs(ctx, a, store.JobFilter{Kind: backup.JobBackup, AllAccounts: true}, store.Page{Limit: 1000})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(allAcc) != n+1 {
		t.Fatalf("all accounts: %d", len(allAcc))
	}
	err := s.Read(ctx, func(tx store.Tx) error { _, err := tx.GetJob(ctx, b, backup.JobBackup, all[0].ID); return err })
	wantCode(t, err, backup.CodeNotFound)
	err = s.Read(ctx, func(tx store.Tx) error {
		_, _, err := tx.ListJobs(ctx, a, store.JobFilter{Kind: backup.JobBackup}, store.Page{Limit: 1, After: "garbage"})
		return err
	})
	wantCode(t, err, backup.CodeInvalidParameter)
}

func testJobLease(t *testing.T, s store.Store) {
	j := Job(a, backup.JobRestore, 7, t0)
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateJob(ctx, j) })
	j.LeaseOwner, j.LeaseGeneration, j.State = "worker-1", 1, "RUNNING"
	mustWrite(t, s, func(tx store.Tx) error { return tx.UpdateJob(ctx, j, 0) })
	stale := *j
	stale.State = "COMPLETED"
	err := s.Write(ctx, func(tx store.Tx) error { return tx.UpdateJob(ctx, &stale, 0) })
	wantCode(t, err, backup.CodeLeaseLost)
	err = s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.GetJob(ctx, a, backup.JobRestore, j.ID)
		if err != nil {
			return err
		}
		if got.State != "RUNNING" || got.LeaseGeneration != 1 || got.LeaseOwner != "worker-1" {
			return fmt.Errorf("after fenced update: %+v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
