package storetest

import (
	"fmt"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// Contract tests of the resource, runner and recovery-point query
// methods (listed in Run).

func testResources(t *testing.T, s store.Store) {
	r := &backup.Resource{AccountID: a.AccountID, Region: a.Region, Type: "EFS", ID: "fs-0123abcd",
		Arn:  "arn:aws:elasticfilesystem:" + a.Region + ":" + a.AccountID + ":file-system/fs-0123abcd",
		Name: "app", Tags: map[string]string{"Name": "app"}, Attrs: map[string]string{"path": "/srv/a"}, CreationDate: t0}
	mustWrite(t, s, func(tx store.Tx) error { return tx.UpsertResource(ctx, r) })
	r2 := *r
	r2.Attrs, r2.CreatedByRestoreJob = map[string]string{"path": "/srv/b"}, "R1"
	mustWrite(t, s, func(tx store.Tx) error { return tx.UpsertResource(ctx, &r2) })
	// Another type may use the same id.
	other := &backup.Resource{AccountID: a.AccountID, Region: a.Region, Type: "S3", ID: "fs-0123abcd", Arn: "arn:aws:s3:::fs-0123abcd", CreationDate: t0}
	mustWrite(t, s, func(tx store.Tx) error { return tx.UpsertResource(ctx, other) })
	err := s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.GetResource(ctx, a, "EFS", r.ID)
		if err != nil {
			return err
		}
		if got.Attr("path") != "/srv/b" || got.Tags["Name"] != "app" || got.CreatedByRestoreJob != "R1" || !got.CreationDate.Equal(t0) ||
			got.Type != "EFS" || got.Arn != r.Arn {
			return fmt.Errorf("round trip %+v", got)
		}
		_, err = tx.GetResource(ctx, b, "EFS", r.ID)
		wantCode(t, err, backup.CodeNotFound)
		l, err := tx.ListResources(ctx, a, "EFS")
		if err != nil || len(l) != 1 {
			return fmt.Errorf("list = %v, %v", l, err)
		}
		l, err = tx.ListResources(ctx, a, "S3")
		if err != nil || len(l) != 1 || l[0].Arn != other.Arn || len(l[0].Attrs) != 0 {
			return fmt.Errorf("list of S3 = %v, %v", l, err)
		}
		l, err = tx.ListResources(ctx, b, "EFS")
		if err != nil || len(l) != 0 {
			return fmt.Errorf("list of b = %v, %v", l, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The ARN is unique across accounts and types.
	dup := *other
	dup.AccountID, dup.ID = b.AccountID, "bucket-b"
	err = s.Write(ctx, func(tx store.Tx) error { return tx.UpsertResource(ctx, &dup) })
	wantCode(t, err, backup.CodeAlreadyExists)
	err = s.Write(ctx, func(tx store.Tx) error { return tx.DeleteResource(ctx, b, "EFS", r.ID) })
	wantCode(t, err, backup.CodeNotFound)
	mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteResource(ctx, a, "EFS", r.ID) })
	err = s.Read(ctx, func(tx store.Tx) error { _, err := tx.GetResource(ctx, a, "EFS", r.ID); return err })
	wantCode(t, err, backup.CodeNotFound)
	err = s.Read(ctx, func(tx store.Tx) error { _, err := tx.GetResource(ctx, a, "S3", other.ID); return err })
	if err != nil {
		t.Fatalf("deleting one type's resource removed another's: %v", err)
	}
}

func claim(t *testing.T, s store.Store, now time.Time, owner string) *backup.Job {
	t.Helper()
	var j *backup.Job
	mustWrite(t, s, func(tx store.Tx) error {
		var err error
		j, err = tx.ClaimJob(ctx, store.Claim{Kinds: []backup.JobKind{backup.JobBackup}, Owner: owner, Now: now, LeaseExpiry: now.Add(time.Minute)})
		return err
	})
	return j
}

func testClaim(t *testing.T, s store.Store) {
	mk := func(id, res string, created time.Time, startBy time.Time) *backup.Job {
		sb := startBy
		return &backup.Job{Kind: backup.JobBackup, ID: id, AccountID: a.AccountID, Region: a.Region, State: "CREATED", CreationDate: created,
			StartBy: &sb, ResourceArn: res, ResourceType: "EFS"}
	}
	mustWrite(t, s, func(tx store.Tx) error {
		for _, j := range []*backup.Job{
			mk("A", "r1", t0, t0.Add(time.Hour)),
			mk("B", "r1", t0.Add(time.Second), t0.Add(time.Hour)),
			mk("C", "r2", t0.Add(2*time.Second), t0.Add(time.Second)), // start window already over at claim time
			mk("D", "r3", t0.Add(3*time.Second), t0.Add(time.Hour)),
		} {
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
		}
		return tx.CreateJob(ctx, &backup.Job{Kind: backup.JobRestore, ID: "R", AccountID: a.AccountID, Region: a.Region, State: "PENDING", CreationDate: t0})
	})
	now := t0.Add(time.Minute)
	j := claim(t, s, now, "o1")
	if j == nil || j.ID != "A" || j.State != "RUNNING" || j.LeaseOwner != "o1" || j.LeaseGeneration != 1 || j.InitiationDate == nil ||
		!j.InitiationDate.Equal(now) || j.LeaseExpiry == nil || !j.LeaseExpiry.Equal(now.Add(time.Minute)) {
		t.Fatalf("first claim %+v", j)
	}
	// B waits behind A (same resource) and becomes PENDING; C is past its
	// start window; D is next. The restore kind is not asked for.
	if j := claim(t, s, now, "o1"); j == nil || j.ID != "D" {
		t.Fatalf("second claim %+v", j)
	}
	if j := claim(t, s, now, "o1"); j != nil {
		t.Fatalf("third claim %+v", j)
	}
	err := s.Read(ctx, func(tx store.Tx) error {
		bj, err := tx.GetJobByID(ctx, "B")
		if err != nil {
			return err
		}
		if bj.State != "PENDING" {
			return fmt.Errorf("job B = %s", bj.State)
		}
		l, err := tx.ListJobsInStates(ctx, []backup.JobKind{backup.JobBackup}, []backup.JobState{backup.JobRunning}, 10)
		if err != nil || len(l) != 2 || l[0].ID != "A" || l[1].ID != "D" {
			return fmt.Errorf("running = %v, %v", l, err)
		}
		l, err = tx.ListJobsInStates(ctx, []backup.JobKind{backup.JobBackup, backup.JobRestore}, []backup.JobState{backup.JobCreated, backup.JobPending}, 10)
		if err != nil || len(l) != 3 {
			return fmt.Errorf("waiting = %d, %v", len(l), err)
		}
		_, err = tx.GetJobByID(ctx, "nope")
		wantCode(t, err, backup.CodeNotFound)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A finishes: B becomes claimable.
	mustWrite(t, s, func(tx store.Tx) error {
		aj, err := tx.GetJobByID(ctx, "A")
		if err != nil {
			return err
		}
		aj.State = "COMPLETED"
		return tx.UpdateJob(ctx, aj, aj.LeaseGeneration)
	})
	if j := claim(t, s, now, "o2"); j == nil || j.ID != "B" || j.LeaseOwner != "o2" {
		t.Fatalf("claim after A %+v", j)
	}
}

func testRecoveryPointQueries(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateVault(ctx, vault(a, "v")) })
	var arns []string
	mustWrite(t, s, func(tx store.Tx) error {
		for i := 0; i < 5; i++ {
			del := t0.Add(time.Duration(i) * time.Hour)
			res := fmt.Sprintf("arn:res:%d", i%2)
			status := backup.RecoveryPointCompleted
			if i == 4 {
				status = "PARTIAL"
			}
			rp := &backup.RecoveryPoint{Arn: backup.RecoveryPointArn(a.Region, a.AccountID, fmt.Sprintf("rp%d", i)), AccountID: a.AccountID,
				Region: a.Region, VaultName: "v", VaultArn: backup.VaultArn(a.Region, a.AccountID, "v"), ResourceArn: res, ResourceType: "EFS",
				Status: status, StorageClass: "WARM", CreationDate: t0.Add(time.Duration(i) * time.Minute), DeleteAt: &del}
			arns = append(arns, rp.Arn)
			if err := tx.CreateRecoveryPoint(ctx, rp); err != nil {
				return err
			}
			lt := t0
			if err := tx.UpsertProtectedResource(ctx, &backup.ProtectedResource{AccountID: a.AccountID, Region: a.Region, ResourceArn: res,
				ResourceType: "EFS", LastBackupTime: &lt, LastRecoveryPointArn: rp.Arn}); err != nil {
				return err
			}
		}
		return nil
	})
	after := t0.Add(90 * time.Second)
	err := s.Read(ctx, func(tx store.Tx) error {
		for _, tc := range []struct {
			q    store.RecoveryPointQuery
			want int
		}{
			{store.RecoveryPointQuery{VaultName: "v"}, 5},
			{store.RecoveryPointQuery{ResourceArn: "arn:res:0"}, 3},
			{store.RecoveryPointQuery{ResourceArn: "arn:res:0", Status: "COMPLETED"}, 2},
			{store.RecoveryPointQuery{ResourceType: "S3"}, 0},
			{store.RecoveryPointQuery{CreatedAfter: &after}, 3},
			{store.RecoveryPointQuery{CreatedBefore: &after}, 2},
		} {
			var got []*backup.RecoveryPoint
			pg := store.Page{Limit: 2}
			for {
				rps, next, err := tx.QueryRecoveryPoints(ctx, a, tc.q, pg)
				if err != nil {
					return err
				}
				got = append(got, rps...)
				if next == "" {
					break
				}
				pg.After = next
			}
			if len(got) != tc.want {
				return fmt.Errorf("query %+v: %d, want %d", tc.q, len(got), tc.want)
			}
			for i := 1; i < len(got); i++ {
				if got[i].CreationDate.After(got[i-1].CreationDate) {
					return fmt.Errorf("query %+v: not newest first", tc.q)
				}
			}
		}
		if rps, _, err := tx.QueryRecoveryPoints(ctx, b, store.RecoveryPointQuery{}, store.Page{}); err != nil || len(rps) != 0 {
			return fmt.Errorf("other account sees %d, %v", len(rps), err)
		}
		due, err := tx.ListDueRecoveryPoints(ctx, t0.Add(2*time.Hour), 10)
		if err != nil || len(due) != 3 || due[0].Arn != arns[0] {
			return fmt.Errorf("due = %d, %v", len(due), err)
		}
		prs, next, err := tx.ListProtectedResources(ctx, a, store.Page{Limit: 1})
		if err != nil || len(prs) != 1 || next == "" {
			return fmt.Errorf("protected page 1 = %v %q %v", prs, next, err)
		}
		prs2, next2, err := tx.ListProtectedResources(ctx, a, store.Page{Limit: 1, After: next})
		if err != nil || len(prs2) != 1 || next2 != "" || prs2[0].ResourceArn == prs[0].ResourceArn {
			return fmt.Errorf("protected page 2 = %v %q %v", prs2, next2, err)
		}
		if prs, _, err := tx.ListProtectedResources(ctx, b, store.Page{}); err != nil || len(prs) != 0 {
			return fmt.Errorf("other account's protected resources: %d, %v", len(prs), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
