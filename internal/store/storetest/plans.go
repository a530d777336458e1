package storetest

import (
	"fmt"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

func plan(s store.Scope, id, name, version string, at time.Time) *backup.Plan {
	del := int64(35)
	return &backup.Plan{AccountID: s.AccountID, Region: s.Region, ID: id, Arn: backup.PlanArn(s.Region, s.AccountID, id), VersionID: version,
		Name: name, VersionDate: at, CreatorRequestID: "crid-" + id,
		Rules: []backup.Rule{{ID: "rule-" + id, Name: "daily", TargetVaultName: "v", ScheduleExpression: "cron(0 5 ? * * *)",
			Timezone: "Etc/UTC", StartWindowMinutes: 480, CompletionWindowMinutes: 10080, Lifecycle: backup.Lifecycle{DeleteAfterDays: &del},
			RecoveryPointTags: map[string]string{"k": "v"},
			CopyActions:       []backup.CopyAction{{DestinationVaultArn: backup.VaultArn(s.Region, s.AccountID, "dst"), KeepSourceExpiry: true}}}},
		AdvancedBackupSettings: []backup.AdvancedBackupSetting{{ResourceType: "EC2", BackupOptions: map[string]string{"WindowsVSS": "enabled"}}},
	}
}

func testPlans(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error {
		for i := 0; i < 5; i++ {
			if err := tx.CreatePlan(ctx, plan(a, fmt.Sprintf("p%d", i), fmt.Sprintf("plan-%d", 4-i), "v1", t0)); err != nil {
				return err
			}
		}
		return tx.CreatePlan(ctx, plan(b, "pb", "plan-b", "v1", t0))
	})
	err := s.Write(ctx, func(tx store.Tx) error { return tx.CreatePlan(ctx, plan(a, "p0", "again", "v9", t0)) })
	wantCode(t, err, backup.CodeAlreadyExists)
	// A new version becomes current; the old one stays readable.
	v2 := plan(a, "p0", "plan-4-renamed", "v2", t0.Add(time.Hour))
	v2.Rules[0].ScheduleExpression = "cron(0 6 ? * * *)"
	mustWrite(t, s, func(tx store.Tx) error { return tx.AddPlanVersion(ctx, v2) })
	err = s.Read(ctx, func(tx store.Tx) error {
		cur, err := tx.GetPlan(ctx, a, "p0", "")
		if err != nil {
			return err
		}
		if cur.VersionID != "v2" || cur.Name != "plan-4-renamed" || cur.Rules[0].ScheduleExpression != "cron(0 6 ? * * *)" ||
			!cur.VersionDate.Equal(t0.Add(time.Hour)) || cur.CreatorRequestID != "crid-p0" {
			return fmt.Errorf("current version %+v", cur)
		}
		old, err := tx.GetPlan(ctx, a, "p0", "v1")
		if err != nil {
			return err
		}
		r := old.Rules[0]
		if old.VersionID != "v1" || r.ScheduleExpression != "cron(0 5 ? * * *)" || *r.Lifecycle.DeleteAfterDays != 35 ||
			r.RecoveryPointTags["k"] != "v" || len(r.CopyActions) != 1 || !r.CopyActions[0].KeepSourceExpiry ||
			old.OptionsFor("EC2")["WindowsVSS"] != "enabled" {
			return fmt.Errorf("old version %+v", old)
		}
		_, err = tx.GetPlan(ctx, a, "p0", "nope")
		wantCode(t, err, backup.CodeNotFound)
		_, err = tx.GetPlan(ctx, b, "p0", "")
		wantCode(t, err, backup.CodeNotFound)
		n, err := tx.CountPlanVersions(ctx, a, "p0")
		if err != nil || n != 2 {
			return fmt.Errorf("versions = %d, %v", n, err)
		}
		vs, next, err := tx.ListPlanVersions(ctx, a, "p0", store.Page{Limit: 1})
		if err != nil || len(vs) != 1 || vs[0].VersionID != "v2" || next == "" {
			return fmt.Errorf("versions page 1: %v %q %v", vs, next, err)
		}
		vs, next, err = tx.ListPlanVersions(ctx, a, "p0", store.Page{Limit: 1, After: next})
		if err != nil || len(vs) != 1 || vs[0].VersionID != "v1" || next != "" {
			return fmt.Errorf("versions page 2: %v %q %v", vs, next, err)
		}
		p, err := tx.FindPlan(ctx, a, "crid-p3", "")
		if err != nil || p == nil || p.ID != "p3" {
			return fmt.Errorf("find by creator request id: %v %v", p, err)
		}
		p, err = tx.FindPlan(ctx, a, "", "plan-2")
		if err != nil || p == nil || p.ID != "p2" {
			return fmt.Errorf("find by name: %v %v", p, err)
		}
		p, err = tx.FindPlan(ctx, b, "crid-p3", "")
		if err != nil || p != nil {
			return fmt.Errorf("other account found: %v %v", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Deleted plans leave the list unless asked for, and keep resolving.
	del := t0.Add(2 * time.Hour)
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.DeletePlan(ctx, a, "p1", del); err != nil {
			return err
		}
		return tx.SetPlanLastExecution(ctx, a, "p2", t0.Add(3*time.Hour))
	})
	err = s.Write(ctx, func(tx store.Tx) error { return tx.DeletePlan(ctx, b, "p1", del) })
	wantCode(t, err, backup.CodeNotFound)
	err = s.Read(ctx, func(tx store.Tx) error {
		list := func(incl bool) ([]string, error) {
			var ids []string
			pg := store.Page{Limit: 2}
			for {
				ps, next, err := tx.ListPlans(ctx, a, incl, pg)
				if err != nil {
					return nil, err
				}
				for _, p := range ps {
					ids = append(ids, p.ID)
				}
				if next == "" {
					return ids, nil
				}
				pg.After = next
			}
		}
		ids, err := list(false)
		if err != nil || fmt.Sprint(ids) != "[p4 p3 p2 p0]" {
			return fmt.Errorf("list (by name, without deleted) = %v, %v", ids, err)
		}
		ids, err = list(true)
		if err != nil || fmt.Sprint(ids) != "[p4 p3 p2 p1 p0]" {
			return fmt.Errorf("list with deleted = %v, %v", ids, err)
		}
		p, err := tx.GetPlan(ctx, a, "p1", "")
		if err != nil || p.DeletionDate == nil || !p.DeletionDate.Equal(del) {
			return fmt.Errorf("deleted plan: %+v %v", p, err)
		}
		if p, err := tx.FindPlan(ctx, a, "", "plan-3"); err != nil || p != nil {
			return fmt.Errorf("a deleted plan's name is free again: %v %v", p, err)
		}
		p, err = tx.GetPlan(ctx, a, "p2", "")
		if err != nil || p.LastExecutionDate == nil || !p.LastExecutionDate.Equal(t0.Add(3*time.Hour)) {
			return fmt.Errorf("last execution: %+v %v", p, err)
		}
		n, err := tx.CountPlans(ctx, a)
		if err != nil || n != 4 {
			return fmt.Errorf("count = %d %v", n, err)
		}
		act, err := tx.ListActivePlans(ctx)
		if err != nil || len(act) != 5 {
			return fmt.Errorf("active plans of every account = %d, %v", len(act), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSelections(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreatePlan(ctx, plan(a, "p", "plan", "v1", t0)) })
	sel := func(id, name string, i int) *backup.Selection {
		return &backup.Selection{AccountID: a.AccountID, Region: a.Region, PlanID: "p", ID: id, Name: name,
			IamRoleArn: "arn:aws:iam::111111111111:role/r", Resources: []string{"arn:aws:elasticfilesystem:*"},
			NotResources: []string{"arn:x"}, ListOfTags: []backup.TagCondition{{Type: "STRINGEQUALS", Key: "team", Value: "ops"}},
			Conditions:       backup.Conditions{StringLike: []backup.ConditionParameter{{Key: "aws:ResourceTag/env", Value: "prod*"}}},
			CreatorRequestID: "crid-" + id, CreationDate: t0.Add(time.Duration(i) * time.Second)}
	}
	mustWrite(t, s, func(tx store.Tx) error {
		for i := 0; i < 5; i++ {
			if err := tx.CreateSelection(ctx, sel(fmt.Sprintf("s%d", i), fmt.Sprintf("sel-%d", i), i)); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.Write(ctx, func(tx store.Tx) error { return tx.CreateSelection(ctx, sel("s9", "sel-2", 9)) })
	wantCode(t, err, backup.CodeAlreadyExists)
	other := sel("s9", "sel-x", 9)
	other.PlanID = "missing"
	err = s.Write(ctx, func(tx store.Tx) error { return tx.CreateSelection(ctx, other) })
	wantCode(t, err, backup.CodeNotFound)
	err = s.Read(ctx, func(tx store.Tx) error {
		got, err := tx.GetSelection(ctx, a, "p", "s3")
		if err != nil {
			return err
		}
		if got.Name != "sel-3" || got.Resources[0] != "arn:aws:elasticfilesystem:*" || got.NotResources[0] != "arn:x" ||
			got.ListOfTags[0].Value != "ops" || got.Conditions.StringLike[0].Value != "prod*" || !got.CreationDate.Equal(t0.Add(3*time.Second)) {
			return fmt.Errorf("round trip %+v", got)
		}
		_, err = tx.GetSelection(ctx, b, "p", "s3")
		wantCode(t, err, backup.CodeNotFound)
		f, err := tx.FindSelection(ctx, a, "p", "crid-s1")
		if err != nil || f == nil || f.ID != "s1" {
			return fmt.Errorf("find: %v %v", f, err)
		}
		var ids []string
		pg := store.Page{Limit: 2}
		for {
			ss, next, err := tx.ListSelections(ctx, a, "p", pg)
			if err != nil {
				return err
			}
			for _, x := range ss {
				ids = append(ids, x.ID)
			}
			if next == "" {
				break
			}
			pg.After = next
		}
		if fmt.Sprint(ids) != "[s0 s1 s2 s3 s4]" {
			return fmt.Errorf("list = %v", ids)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, func(tx store.Tx) error { return tx.DeleteSelection(ctx, a, "p", "s0") })
	err = s.Write(ctx, func(tx store.Tx) error { return tx.DeleteSelection(ctx, a, "p", "s0") })
	wantCode(t, err, backup.CodeNotFound)
	err = s.Read(ctx, func(tx store.Tx) error {
		n, err := tx.CountSelections(ctx, a, "p")
		if err != nil || n != 4 {
			return fmt.Errorf("count = %d %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testOccurrences(t *testing.T, s store.Store) {
	inst := t0.Truncate(time.Minute)
	occ := func(owner string, lease time.Time) *store.Occurrence {
		return &store.Occurrence{RuleID: "r1", Instant: inst, AccountID: a.AccountID, Region: a.Region, PlanID: "p", VersionID: "v1",
			Owner: owner, LeaseExpiry: lease}
	}
	claim := func(o *store.Occurrence, now time.Time) bool {
		t.Helper()
		var ok bool
		mustWrite(t, s, func(tx store.Tx) error {
			var err error
			ok, err = tx.ClaimOccurrence(ctx, o, now)
			return err
		})
		return ok
	}
	if !claim(occ("n1", t0.Add(time.Minute)), t0) {
		t.Fatal("first claim refused")
	}
	if claim(occ("n2", t0.Add(2*time.Minute)), t0.Add(30*time.Second)) {
		t.Fatal("a live claim was taken by another owner")
	}
	if !claim(occ("n1", t0.Add(3*time.Minute)), t0.Add(30*time.Second)) {
		t.Fatal("the owner could not renew its claim")
	}
	stale := func(now time.Time) int {
		t.Helper()
		var n int
		err := s.Read(ctx, func(tx store.Tx) error {
			os, err := tx.ListStaleOccurrences(ctx, now, 10)
			n = len(os)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := stale(t0.Add(time.Minute)); n != 0 {
		t.Fatalf("%d stale occurrences while the lease lives", n)
	}
	if n := stale(t0.Add(4 * time.Minute)); n != 1 {
		t.Fatalf("%d stale occurrences after the lease expired, want 1", n)
	}
	// n1 dies; once its lease expires n2 takes over, and n1 can no longer finish.
	if !claim(occ("n2", t0.Add(10*time.Minute)), t0.Add(4*time.Minute)) {
		t.Fatal("an expired claim was not taken over")
	}
	err := s.Write(ctx, func(tx store.Tx) error { return tx.FinishOccurrence(ctx, "r1", inst, "n1", 1, t0.Add(5*time.Minute)) })
	wantCode(t, err, backup.CodeLeaseLost)
	mustWrite(t, s, func(tx store.Tx) error { return tx.FinishOccurrence(ctx, "r1", inst, "n2", 3, t0.Add(5*time.Minute)) })
	if claim(occ("n3", t0.Add(time.Hour)), t0.Add(time.Hour)) {
		t.Fatal("a DONE occurrence was claimed again")
	}
	if n := stale(t0.Add(time.Hour)); n != 0 {
		t.Fatalf("a DONE occurrence is listed as stale (%d)", n)
	}
	err = s.Read(ctx, func(tx store.Tx) error {
		o, err := tx.GetOccurrence(ctx, "r1", inst)
		if err != nil {
			return err
		}
		if o.State != store.OccurrenceDone || o.Owner != "n2" || o.Jobs != 3 || o.DoneAt == nil {
			return fmt.Errorf("occurrence %+v", o)
		}
		l, err := tx.LatestOccurrence(ctx, "r1")
		if err != nil || l == nil || !l.Equal(inst) {
			return fmt.Errorf("latest = %v %v", l, err)
		}
		l, err = tx.LatestOccurrence(ctx, "r2")
		if err != nil || l != nil {
			return fmt.Errorf("latest of an unknown rule = %v %v", l, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Scheduled jobs: the key is unique across every account.
	j1 := Job(a, backup.JobBackup, 1, t0)
	j1.ScheduleKey = "r1|123|arn:res"
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateJob(ctx, j1) })
	j2 := Job(b, backup.JobBackup, 2, t0)
	j2.ScheduleKey = j1.ScheduleKey
	err = s.Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, j2) })
	wantCode(t, err, backup.CodeAlreadyExists)
	j3 := Job(a, backup.JobBackup, 3, t0) // no key: any number of these
	j4 := Job(a, backup.JobBackup, 4, t0)
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.CreateJob(ctx, j3); err != nil {
			return err
		}
		return tx.CreateJob(ctx, j4)
	})
	err = s.Read(ctx, func(tx store.Tx) error {
		j, err := tx.GetJobByScheduleKey(ctx, j1.ScheduleKey)
		if err != nil || j.ID != j1.ID || j.ScheduleKey != j1.ScheduleKey {
			return fmt.Errorf("by key: %+v %v", j, err)
		}
		_, err = tx.GetJobByScheduleKey(ctx, "nope")
		wantCode(t, err, backup.CodeNotFound)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rpIn(s store.Scope, vault, id, res string, created time.Time) *backup.RecoveryPoint {
	return &backup.RecoveryPoint{Arn: backup.RecoveryPointArn(s.Region, s.AccountID, id), AccountID: s.AccountID, Region: s.Region,
		VaultName: vault, VaultArn: backup.VaultArn(s.Region, s.AccountID, vault), ResourceArn: res, ResourceType: "EFS",
		ResourceName: "name-" + id, Status: backup.RecoveryPointCompleted, StorageClass: "WARM", CreationDate: created}
}

func testRecoveryPointCreator(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error { return tx.CreateVault(ctx, vault(a, "v")) })
	by := backup.RecoveryPointCreator{BackupPlanId: "plan-1", BackupPlanArn: backup.PlanArn(a.Region, a.AccountID, "plan-1"),
		BackupPlanVersion: "v1", BackupRuleId: "rule-1"}.JSON()
	mustWrite(t, s, func(tx store.Tx) error {
		for i := 0; i < 4; i++ {
			rp := rpIn(a, "v", fmt.Sprintf("rp%d", i), "arn:res", t0.Add(time.Duration(i)*time.Minute))
			if i%2 == 0 {
				rp.CreatedByJSON = by
			}
			if err := tx.CreateRecoveryPoint(ctx, rp); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.Read(ctx, func(tx store.Tx) error {
		rp, err := tx.GetRecoveryPoint(ctx, a, backup.RecoveryPointArn(a.Region, a.AccountID, "rp2"))
		if err != nil || rp.CreatedByJSON != by {
			return fmt.Errorf("created by round trip: %q %v", rp.CreatedByJSON, err)
		}
		rps, _, err := tx.QueryRecoveryPoints(ctx, a, store.RecoveryPointQuery{VaultName: "v", BackupPlanID: "plan-1"}, store.Page{Limit: 10})
		if err != nil || len(rps) != 2 || rps[0].Arn != backup.RecoveryPointArn(a.Region, a.AccountID, "rp2") {
			return fmt.Errorf("by plan: %d %v", len(rps), err)
		}
		rps, _, err = tx.QueryRecoveryPoints(ctx, a, store.RecoveryPointQuery{BackupPlanID: "plan-2"}, store.Page{Limit: 10})
		if err != nil || len(rps) != 0 {
			return fmt.Errorf("other plan: %d %v", len(rps), err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testLegalHolds(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.CreateVault(ctx, vault(a, "v")); err != nil {
			return err
		}
		for i := 0; i < 3; i++ {
			rp := rpIn(a, "v", fmt.Sprintf("rp%d", i), "arn:res", t0)
			due := t0.Add(time.Hour)
			rp.DeleteAt = &due
			if err := tx.CreateRecoveryPoint(ctx, rp); err != nil {
				return err
			}
		}
		return nil
	})
	arn := func(i int) string { return backup.RecoveryPointArn(a.Region, a.AccountID, fmt.Sprintf("rp%d", i)) }
	from := t0.Add(-time.Hour)
	hold := func(id string, at time.Time) *backup.LegalHold {
		return &backup.LegalHold{AccountID: a.AccountID, Region: a.Region, ID: id, Arn: backup.LegalHoldArn(a.Region, a.AccountID, id),
			Title: "t-" + id, Description: "d", Status: backup.LegalHoldActive, CreationDate: at, IdempotencyToken: "tok-" + id,
			Selection: backup.RecoveryPointSelection{VaultNames: []string{"v"}, DateFrom: &from}}
	}
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.CreateLegalHold(ctx, hold("h1", t0), []string{arn(0), arn(1)}); err != nil {
			return err
		}
		return tx.CreateLegalHold(ctx, hold("h2", t0.Add(time.Second)), []string{arn(1)})
	})
	due := func() []string {
		var out []string
		err := s.Read(ctx, func(tx store.Tx) error {
			rps, err := tx.ListDueRecoveryPoints(ctx, t0.Add(2*time.Hour), 100)
			for _, rp := range rps {
				out = append(out, rp.Arn)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if d := due(); len(d) != 1 || d[0] != arn(2) {
		t.Fatalf("due recovery points under holds: %v", d)
	}
	err := s.Read(ctx, func(tx store.Tx) error {
		h, err := tx.GetLegalHold(ctx, a, "h1")
		if err != nil {
			return err
		}
		if h.Title != "t-h1" || h.Status != backup.LegalHoldActive || h.Selection.VaultNames[0] != "v" || !h.Selection.DateFrom.Equal(from) {
			return fmt.Errorf("round trip %+v", h)
		}
		if _, err := tx.GetLegalHold(ctx, b, "h1"); !backup.IsCode(err, backup.CodeNotFound) {
			return fmt.Errorf("other account: %v", err)
		}
		f, err := tx.FindLegalHold(ctx, a, "tok-h2")
		if err != nil || f == nil || f.ID != "h2" {
			return fmt.Errorf("find: %v %v", f, err)
		}
		hs, err := tx.ActiveLegalHolds(ctx, a, arn(1))
		if err != nil || len(hs) != 2 || hs[0].ID != "h1" {
			return fmt.Errorf("active holds of rp1: %v %v", hs, err)
		}
		hs, err = tx.ActiveLegalHolds(ctx, b, arn(1))
		if err != nil || len(hs) != 0 {
			return fmt.Errorf("other account's holds: %v %v", hs, err)
		}
		rps, next, err := tx.ListLegalHoldRecoveryPoints(ctx, a, "h1", store.Page{Limit: 1})
		if err != nil || len(rps) != 1 || rps[0].Arn != arn(0) || next == "" {
			return fmt.Errorf("hold rps page 1: %v %q %v", rps, next, err)
		}
		rps, next, err = tx.ListLegalHoldRecoveryPoints(ctx, a, "h1", store.Page{Limit: 1, After: next})
		if err != nil || len(rps) != 1 || rps[0].Arn != arn(1) || next != "" {
			return fmt.Errorf("hold rps page 2: %v %q %v", rps, next, err)
		}
		hl, _, err := tx.ListLegalHolds(ctx, a, store.Page{Limit: 10})
		if err != nil || len(hl) != 2 || hl[0].ID != "h2" {
			return fmt.Errorf("list: %v %v", hl, err)
		}
		n, err := tx.CountActiveLegalHolds(ctx, a)
		if err != nil || n != 2 {
			return fmt.Errorf("count: %d %v", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cancelling h1 frees rp0; rp1 is still held by h2.
	mustWrite(t, s, func(tx store.Tx) error {
		h, err := tx.GetLegalHold(ctx, a, "h1")
		if err != nil {
			return err
		}
		now := t0.Add(time.Hour)
		h.Status, h.CancelDescription, h.CancellationDate = backup.LegalHoldCanceled, "done", &now
		return tx.UpdateLegalHold(ctx, h)
	})
	if d := due(); len(d) != 2 || d[0] != arn(0) || d[1] != arn(2) {
		t.Fatalf("due after cancelling h1: %v", d)
	}
	err = s.Read(ctx, func(tx store.Tx) error {
		h, err := tx.GetLegalHold(ctx, a, "h1")
		if err != nil || h.Status != backup.LegalHoldCanceled || h.CancelDescription != "done" || h.CancellationDate == nil {
			return fmt.Errorf("cancelled: %+v %v", h, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testSettings(t *testing.T, s store.Store) {
	err := s.Read(ctx, func(tx store.Tx) error {
		rs, err := tx.GetRegionSettings(ctx, a)
		if err != nil || len(rs.OptIn) != 0 || rs.OptIn == nil {
			return fmt.Errorf("empty region settings: %+v %v", rs, err)
		}
		gs, err := tx.GetGlobalSettings(ctx, a.AccountID)
		if err != nil || len(gs.Values) != 0 || gs.LastUpdateTime != nil {
			return fmt.Errorf("empty global settings: %+v %v", gs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.PutRegionSettings(ctx, a, &backup.RegionSettings{OptIn: map[string]bool{"EFS": false, "S3": true},
			Management: map[string]bool{"EFS": true}}); err != nil {
			return err
		}
		now := t0
		return tx.PutGlobalSettings(ctx, a.AccountID, &backup.GlobalSettings{Values: map[string]string{"isCrossAccountBackupEnabled": "true"},
			LastUpdateTime: &now})
	})
	err = s.Read(ctx, func(tx store.Tx) error {
		rs, err := tx.GetRegionSettings(ctx, a)
		if err != nil || rs.OptIn["EFS"] || !rs.OptIn["S3"] || !rs.Management["EFS"] {
			return fmt.Errorf("region settings: %+v %v", rs, err)
		}
		other, err := tx.GetRegionSettings(ctx, b)
		if err != nil || len(other.OptIn) != 0 {
			return fmt.Errorf("other account's region settings: %+v %v", other, err)
		}
		gs, err := tx.GetGlobalSettings(ctx, a.AccountID)
		if err != nil || gs.Values["isCrossAccountBackupEnabled"] != "true" || gs.LastUpdateTime == nil || !gs.LastUpdateTime.Equal(t0.Truncate(time.Millisecond)) {
			return fmt.Errorf("global settings: %+v %v", gs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testProtectedByVault(t *testing.T, s store.Store) {
	mustWrite(t, s, func(tx store.Tx) error {
		for _, v := range []string{"v", "w"} {
			if err := tx.CreateVault(ctx, vault(a, v)); err != nil {
				return err
			}
		}
		for i, c := range []struct{ vault, res string }{{"v", "arn:r1"}, {"v", "arn:r1"}, {"v", "arn:r2"}, {"w", "arn:r3"}, {"w", "arn:r1"}} {
			if err := tx.CreateRecoveryPoint(ctx, rpIn(a, c.vault, fmt.Sprintf("rp%d", i), c.res, t0.Add(time.Duration(i)*time.Minute))); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.Read(ctx, func(tx store.Tx) error {
		rs, next, err := tx.ListProtectedResourcesByVault(ctx, a, "v", store.Page{Limit: 1})
		if err != nil || len(rs) != 1 || next == "" {
			return fmt.Errorf("page 1: %v %q %v", rs, next, err)
		}
		r := rs[0]
		if r.ResourceArn != "arn:r1" || r.LastRecoveryPointArn != backup.RecoveryPointArn(a.Region, a.AccountID, "rp1") ||
			!r.LastBackupTime.Equal(t0.Add(time.Minute).Truncate(time.Millisecond)) || r.LastBackupVaultArn != backup.VaultArn(a.Region, a.AccountID, "v") {
			return fmt.Errorf("latest of r1 in v: %+v", r)
		}
		rs, next, err = tx.ListProtectedResourcesByVault(ctx, a, "v", store.Page{Limit: 1, After: next})
		if err != nil || len(rs) != 1 || rs[0].ResourceArn != "arn:r2" || next != "" {
			return fmt.Errorf("page 2: %v %q %v", rs, next, err)
		}
		rs, _, err = tx.ListProtectedResourcesByVault(ctx, b, "v", store.Page{Limit: 10})
		if err != nil || len(rs) != 0 {
			return fmt.Errorf("other account: %v %v", rs, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
