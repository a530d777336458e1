package scheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/service"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
)

// TestOccurrenceStartsOneJobPerResource: a due occurrence starts one
// backup job per selected resource, with CreatedBy, the rule's windows
// and lifecycle; later passes start nothing more; the jobs run and their
// recovery points carry CreatedBy and are found by plan id.
func TestOccurrenceStartsOneJobPerResource(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:00"))
	e.vault("primary")
	a := e.fileSystem("fs-000000000000000a1", map[string]string{"team": "ops"})
	b := e.fileSystem("fs-000000000000000b2", nil)
	r := rule("daily", "cron(0 5 ? * * *)", "")
	r.StartWindowMinutes, r.CompletionWindowMinutes = i64(120), i64(600)
	days := int64(30)
	r.Lifecycle = backup.Lifecycle{DeleteAfterDays: &days}
	r.RecoveryPointTags = map[string]string{"origin": "plan"}
	p := e.plan("nightly", r)
	e.selectAll(p.ID)
	s := e.scheduler("node-1", e.svc)

	if rep := e.tick(s); rep.Backups != 0 || !rep.NextDue.Equal(utc("2026-03-02 05:00")) {
		t.Fatalf("before 05:00: %+v", rep)
	}
	e.clk.Set(utc("2026-03-02 05:00").Add(10 * time.Second))
	if rep := e.tick(s); rep.Backups != 2 || rep.Occurrences != 1 {
		t.Fatalf("at 05:00: %+v", rep)
	}
	for i := 0; i < 3; i++ {
		if rep := e.tick(s); rep.Backups != 0 || rep.Occurrences != 0 {
			t.Fatalf("pass %d after 05:00 started more: %+v", i, rep)
		}
	}
	js := e.jobs(backup.JobBackup)
	if len(js) != 2 || js[0].ResourceArn != a || js[1].ResourceArn != b {
		t.Fatalf("jobs %v", js)
	}
	for _, j := range js {
		c := creator(t, j)
		if c.BackupPlanId != p.ID || c.BackupPlanArn != p.Arn || c.BackupPlanVersion != p.VersionID || c.BackupRuleId != p.Rules[0].ID ||
			c.BackupRuleName != "daily" || c.BackupRuleCron != "cron(0 5 ? * * *)" || c.BackupRuleTimezone != "Etc/UTC" || c.BackupPlanName != "nightly" {
			t.Fatalf("CreatedBy %+v", c)
		}
		if j.State != backup.JobCreated || !j.StartBy.Equal(utc("2026-03-02 07:00")) || j.IamRoleArn != role ||
			*j.Lifecycle.DeleteAfterDays != 30 || j.VaultName != "primary" {
			t.Fatalf("job %+v", j)
		}
	}
	e.runAll()
	for _, j := range e.jobs(backup.JobBackup) {
		if j.State != backup.JobCompleted {
			t.Fatalf("job %s ended %s: %s", j.ID, j.State, j.StatusMessage)
		}
	}
	rps, _, err := e.svc.ListRecoveryPoints(e.ctx, caller, service.RecoveryPointQuery{VaultName: "primary", BackupPlanID: p.ID}, store.Page{Limit: 10})
	if err != nil || len(rps) != 2 {
		t.Fatalf("recovery points by plan: %d %v", len(rps), err)
	}
	for _, rp := range rps {
		if c, ok := backup.ParseCreator(rp.CreatedByJSON); !ok || c.BackupRuleId != p.Rules[0].ID || rp.Tags["origin"] != "plan" {
			t.Fatalf("recovery point %s: CreatedBy %q tags %v", rp.Arn, rp.CreatedByJSON, rp.Tags)
		}
	}
	if rps, _, _ := e.svc.ListRecoveryPoints(e.ctx, caller, service.RecoveryPointQuery{VaultName: "primary", BackupPlanID: "other"}, store.Page{Limit: 10}); len(rps) != 0 {
		t.Fatalf("another plan's filter found %d", len(rps))
	}
	got, err := e.svc.GetPlan(e.ctx, caller, p.ID, "")
	if err != nil || got.LastExecutionDate == nil {
		t.Fatalf("LastExecutionDate not set: %+v %v", got, err)
	}
	// The next day's occurrence: two more jobs, incremental onto the first.
	e.clk.Set(utc("2026-03-03 05:01"))
	if rep := e.tick(s); rep.Backups != 2 {
		t.Fatalf("next day: %+v", rep)
	}
}

// TestSelections: ARNs, trailing wildcards, NotResources, ListOfTags (OR),
// Conditions (AND, StringLike/NotEquals...) are evaluated against the
// resources' tags at each run; an opted-out type is only backed up when a
// selection names the resource's ARN exactly.
func TestSelections(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:00"))
	e.vault("primary")
	prod := e.fileSystem("fs-00000000000000001", map[string]string{"env": "prod-eu", "team": "ops"})
	stage := e.fileSystem("fs-00000000000000002", map[string]string{"env": "staging", "team": "ops"})
	dev := e.fileSystem("fs-00000000000000003", map[string]string{"env": "dev", "team": "web"})
	bare := e.fileSystem("fs-00000000000000004", nil)
	tests := []struct {
		name string
		sel  backup.Selection
		want []string
	}{
		{"every resource", backup.Selection{Resources: []string{"*"}}, []string{prod, stage, dev, bare}},
		{"exact ARNs", backup.Selection{Resources: []string{prod, dev}}, []string{prod, dev}},
		{"prefix wildcard", backup.Selection{Resources: []string{"arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0000000000000000*"}},
			[]string{prod, stage, dev, bare}},
		{"AWS's documented pattern", backup.Selection{Resources: []string{"arn:aws:elasticfilesystem:*:*:file-system/*"}},
			[]string{prod, stage, dev, bare}},
		{"inner wildcards", backup.Selection{Resources: []string{"arn:aws:elasticfilesystem:*:111111111111:file-system/fs-*0?"}},
			[]string{prod, stage, dev, bare}},
		{"another type's pattern", backup.Selection{Resources: []string{"arn:aws:ec2:*:*:volume/*"}}, nil},
		{"wildcard minus NotResources", backup.Selection{Resources: []string{"*"}, NotResources: []string{stage, "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-00000000000000004*"}},
			[]string{prod, dev}},
		{"ListOfTags OR", backup.Selection{ListOfTags: []backup.TagCondition{{Type: "STRINGEQUALS", Key: "env", Value: "dev"},
			{Type: "STRINGEQUALS", Key: "aws:ResourceTag/env", Value: "staging"}}}, []string{stage, dev}},
		{"Conditions AND", backup.Selection{Resources: []string{"*"}, Conditions: backup.Conditions{
			StringEquals:    []backup.ConditionParameter{{Key: "aws:ResourceTag/team", Value: "ops"}},
			StringNotEquals: []backup.ConditionParameter{{Key: "aws:ResourceTag/env", Value: "staging"}}}}, []string{prod}},
		{"StringLike", backup.Selection{Conditions: backup.Conditions{StringLike: []backup.ConditionParameter{{Key: "aws:ResourceTag/env", Value: "*prod*"}}}},
			[]string{prod}},
		{"StringNotLike", backup.Selection{Resources: []string{"*"}, Conditions: backup.Conditions{StringNotLike: []backup.ConditionParameter{{Key: "aws:ResourceTag/env", Value: "*a*"}}}},
			[]string{prod, dev, bare}},
		{"tags and ListOfTags", backup.Selection{Resources: []string{prod, stage, dev}, ListOfTags: []backup.TagCondition{{Type: "STRINGEQUALS", Key: "team", Value: "ops"}}},
			[]string{prod, stage}},
	}
	p := e.plan("p", rule("r", "cron(0 5 ? * * *)", ""))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel := tc.sel
			sel.Name, sel.IamRoleArn = "s", role
			created, err := e.svc.CreateSelection(e.ctx, caller, service.CreateSelectionRequest{PlanID: p.ID, Selection: sel})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := e.svc.DeleteSelection(e.ctx, caller, p.ID, created.ID); err != nil {
					t.Fatal(err)
				}
			}()
			rs, err := e.svc.PlanResources(e.ctx, scope, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.Arn)
			}
			if fmt.Sprint(got) != fmt.Sprint(sortedCopy(tc.want)) {
				t.Fatalf("selected %v, want %v", got, sortedCopy(tc.want))
			}
		})
	}
	// Tags are read at each run: retagging changes the selection.
	e.selection(p.ID, backup.Selection{Name: "ops", IamRoleArn: role, ListOfTags: []backup.TagCondition{{Type: "STRINGEQUALS", Key: "team", Value: "ops"}}})
	e.fileSystem("fs-00000000000000003", map[string]string{"team": "ops"}) // dev joins ops
	rs, err := e.svc.PlanResources(e.ctx, scope, p.ID)
	if err != nil || len(rs) != 3 {
		t.Fatalf("after retagging: %d %v", len(rs), err)
	}
	// Opt out of EFS: tag selections and "*" stop selecting file systems;
	// Resources that name the type (an exact ARN, or a pattern of the type)
	// still do (as AWS documents).
	if err := e.svc.UpdateRegionSettings(e.ctx, caller, map[string]bool{"EFS": false}, nil); err != nil {
		t.Fatal(err)
	}
	if rs, _ := e.svc.PlanResources(e.ctx, scope, p.ID); len(rs) != 0 {
		t.Fatalf("opted-out type still selected by tags: %v", rs)
	}
	e.selection(p.ID, backup.Selection{Name: "exact", IamRoleArn: role, Resources: []string{bare}})
	if rs, _ := e.svc.PlanResources(e.ctx, scope, p.ID); len(rs) != 1 || rs[0].Arn != bare {
		t.Fatalf("exact ARN of an opted-out type: %v", rs)
	}
	e.selection(p.ID, backup.Selection{Name: "every", IamRoleArn: role, Resources: []string{"*"}})
	if rs, _ := e.svc.PlanResources(e.ctx, scope, p.ID); len(rs) != 1 {
		t.Fatalf("* selected an opted-out type: %v", rs)
	}
	e.selection(p.ID, backup.Selection{Name: "efs", IamRoleArn: role, Resources: []string{"arn:aws:elasticfilesystem:*:*:file-system/*"}})
	if rs, _ := e.svc.PlanResources(e.ctx, scope, p.ID); len(rs) != 4 {
		t.Fatalf("a pattern naming an opted-out type: %d selected", len(rs))
	}
}

func sortedCopy(xs []string) []string {
	out := append([]string(nil), xs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// runDays ticks every step from..to and returns the occurrence instants of
// the backup jobs started.
func (e *env) runDays(s *Scheduler, from, to time.Time, step time.Duration, window int64) []string {
	for now := from; !now.After(to); now = now.Add(step) {
		e.clk.Set(now)
		e.tick(s)
	}
	var out []string
	for _, j := range e.jobs(backup.JobBackup) {
		out = append(out, scheduledAt(j, window).UTC().Format("2006-01-02 15:04"))
	}
	return out
}

// TestDSTNewYork: a daily 02:30 rule in America/New_York runs once on each
// transition day: on the spring-forward day (02:30 does not exist) at
// 03:30 EDT, on the fall-back day once.
func TestDSTNewYork(t *testing.T) {
	e := newEnv(t, utc("2026-03-06 12:00"))
	e.vault("primary")
	e.fileSystem("fs-0000000000000000a", nil)
	p := e.plan("ny", rule("r", "cron(30 2 ? * * *)", "America/New_York"))
	e.selectAll(p.ID)
	s := e.scheduler("n", e.svc)
	got := e.runDays(s, utc("2026-03-06 12:00"), utc("2026-03-10 12:00"), 10*time.Minute, 480)
	want := []string{"2026-03-07 07:30", "2026-03-08 07:30", "2026-03-09 06:30", "2026-03-10 06:30"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("spring: occurrences %v, want %v", got, want)
	}
	e.clk.Set(utc("2026-10-30 12:00"))
	p2 := e.plan("ny-fall", rule("r", "cron(30 1 ? * * *)", "America/New_York"))
	e.selectAll(p2.ID)
	all := e.runDays(s, utc("2026-10-30 12:00"), utc("2026-11-02 12:00"), 10*time.Minute, 480)
	// The clock jumped from March to October: the first plan's catch-up
	// records its latest missed occurrences; look at the transition only.
	got = nil
	for _, g := range all {
		if g >= "2026-10-31" {
			got = append(got, g)
		}
	}
	// 01:30 happens twice on 11-01 (EDT, then EST): once, at the first; the
	// first plan keeps running daily at 02:30 local (EDT, then EST).
	want = []string{"2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30", "2026-10-31 06:30", "2026-11-01 07:30", "2026-11-02 07:30"}
	if len(got) != len(want) {
		t.Fatalf("fall: %d occurrences %v, want %d", len(got), got, len(want))
	}
	for _, w := range want {
		n := 0
		for _, g := range got {
			if g == w {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("fall: %s occurs %d times in %v", w, n, got)
		}
	}
}

// TestDSTBerlin: the same in Europe/Berlin (last Sundays of March and
// October), with a rule inside the repeated hour.
func TestDSTBerlin(t *testing.T) {
	e := newEnv(t, utc("2026-03-27 12:00"))
	e.vault("primary")
	e.fileSystem("fs-0000000000000000b", nil)
	p := e.plan("berlin", rule("r", "cron(15 2 ? * * *)", "Europe/Berlin"))
	e.selectAll(p.ID)
	s := e.scheduler("n", e.svc)
	got := e.runDays(s, utc("2026-03-27 12:00"), utc("2026-03-30 12:00"), 15*time.Minute, 480)
	want := []string{"2026-03-28 01:15", "2026-03-29 01:15", "2026-03-30 00:15"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("spring: %v, want %v", got, want)
	}
	got = e.runDays(s, utc("2026-10-23 12:00"), utc("2026-10-26 12:00"), 15*time.Minute, 480)
	// Down-time between the two runs: the catch-up starts the latest
	// MaxMissed (10) occurrences when the scheduler comes back.
	var fall []string
	for _, g := range got {
		if g >= "2026-10-24" {
			fall = append(fall, g)
		}
	}
	want = []string{"2026-10-24 00:15", "2026-10-25 00:15", "2026-10-26 01:15"}
	if fmt.Sprint(fall) != fmt.Sprint(want) {
		t.Fatalf("fall: %v, want %v", fall, want)
	}
}

// TestRestartMidWindow: after down-time, an occurrence whose start window
// is still open runs; one whose window closed is recorded EXPIRED with the
// AWS message; neither ever twice; catch-up is bounded.
func TestRestartMidWindow(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:00"))
	e.vault("primary")
	e.fileSystem("fs-0000000000000000c", nil)
	p := e.plan("p", rule("daily", "cron(0 5 ? * * *)", ""))
	e.selectAll(p.ID)
	first := e.scheduler("before-restart", e.svc)
	e.tick(first)
	// Down from 04:00 to 06:00: the 05:00 window (480 min) is still open.
	e.clk.Set(utc("2026-03-02 06:00"))
	second := e.scheduler("after-restart", e.svc)
	if rep := e.tick(second); rep.Backups != 1 {
		t.Fatalf("after restart: %+v", rep)
	}
	js := e.jobs(backup.JobBackup)
	if len(js) != 1 || js[0].State != backup.JobCreated || !js[0].StartBy.Equal(utc("2026-03-02 13:00")) {
		t.Fatalf("job %+v", js)
	}
	e.runAll()
	if j := e.jobs(backup.JobBackup)[0]; j.State != backup.JobCompleted {
		t.Fatalf("state %s: %s", j.State, j.StatusMessage)
	}
	e.tick(first)
	e.tick(second)
	if n := len(e.jobs(backup.JobBackup)); n != 1 {
		t.Fatalf("%d jobs after more passes", n)
	}
	// Down from the 2nd 06:00 to the 3rd 14:00: the 3rd's 05:00 window
	// closed at 13:00: recorded EXPIRED, not run.
	e.clk.Set(utc("2026-03-03 14:00"))
	if rep := e.tick(second); rep.Backups != 1 {
		t.Fatalf("after long down-time: %+v", rep)
	}
	js = e.jobs(backup.JobBackup)
	if len(js) != 2 {
		t.Fatalf("%d jobs", len(js))
	}
	exp := js[1]
	if exp.State != backup.JobExpired || exp.StatusMessage != "Backup job expired before it could start: its start window ended at 2026-03-03T13:00:00Z." ||
		exp.CompletionDate == nil {
		t.Fatalf("missed occurrence: %s %q", exp.State, exp.StatusMessage)
	}
	e.runAll()
	if j := e.jobs(backup.JobBackup)[1]; j.State != backup.JobExpired {
		t.Fatalf("an expired job ran: %s", j.State)
	}
	// Down for five days with MaxMissed 2: the two latest occurrences are
	// started (the latest still in its window), the older three skipped.
	e.clk.Set(utc("2026-03-08 06:00"))
	bounded, err := New(Options{Service: e.svc, Clock: e.clk, Owner: "bounded", MaxMissed: 2, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	rep := e.tick(bounded)
	if rep.Backups != 2 || rep.Skipped != 3 {
		t.Fatalf("bounded catch-up: %+v", rep)
	}
	js = e.jobs(backup.JobBackup)
	last2 := js[len(js)-2:]
	if last2[0].StartBy.After(*last2[1].StartBy) {
		last2[0], last2[1] = last2[1], last2[0]
	}
	if last2[0].State != backup.JobExpired || !scheduledAt(last2[0], 480).Equal(utc("2026-03-07 05:00")) ||
		last2[1].State != backup.JobCreated || !scheduledAt(last2[1], 480).Equal(utc("2026-03-08 05:00")) {
		t.Fatalf("bounded catch-up jobs: %v %v", last2[0], last2[1])
	}
}

// TestCrashMidOccurrence: a scheduler that claimed an occurrence and died
// after starting some of its jobs: once its claim's lease expires another
// scheduler starts the missing jobs only.
func TestCrashMidOccurrence(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:59"))
	e.vault("primary")
	a := e.fileSystem("fs-0000000000000000d", nil)
	e.fileSystem("fs-0000000000000000e", nil)
	e.fileSystem("fs-0000000000000000f", nil)
	p := e.plan("p", rule("daily", "cron(0 5 ? * * *)", ""))
	e.selectAll(p.ID)
	at := utc("2026-03-02 05:00")
	e.clk.Set(at.Add(time.Second))
	r := p.Rules[0]
	// The dead scheduler: claim, one job, then nothing.
	o := &service.Occurrence{RuleID: r.ID, Instant: at, AccountID: acct, Region: region, PlanID: p.ID, VersionID: p.VersionID,
		Owner: "dead", LeaseExpiry: e.clk.Now().Add(DefaultLeaseTTL)}
	if ok, err := e.svc.ClaimOccurrence(e.ctx, o); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	sw, cw := r.StartWindowMinutes, r.CompletionWindowMinutes
	if _, err := e.svc.StartBackup(e.ctx, caller, service.StartBackupRequest{VaultName: "primary", ResourceArn: a, IamRoleArn: role,
		StartWindowMinutes: &sw, CompleteWindowMinutes: &cw, ScheduledAt: at, ScheduleKey: scheduleKey(r.ID, at, a),
		CreatedBy: backup.RecoveryPointCreator{BackupPlanId: p.ID}.JSON()}); err != nil {
		t.Fatal(err)
	}
	alive := e.scheduler("alive", e.svc)
	if rep := e.tick(alive); rep.Backups != 0 || rep.Occurrences != 0 {
		t.Fatalf("took a live claim: %+v", rep)
	}
	e.clk.Advance(DefaultLeaseTTL + time.Second)
	rep := e.tick(alive)
	// Three resources: the one the dead scheduler started is found (its
	// key), two are new.
	if rep.Occurrences != 1 || rep.Backups != 3 {
		t.Fatalf("takeover: %+v", rep)
	}
	js := e.jobs(backup.JobBackup)
	if len(js) != 3 {
		t.Fatalf("%d jobs, want 3", len(js))
	}
	occ, err := e.svc.GetOccurrence(e.ctx, r.ID, at)
	if err != nil || occ.State != store.OccurrenceDone || occ.Owner != "alive" || occ.Jobs != 3 {
		t.Fatalf("occurrence %+v %v", occ, err)
	}
	if rep := e.tick(alive); rep.Backups != 0 {
		t.Fatalf("again: %+v", rep)
	}
}

// TestTwoSchedulersShareAStore: two servers (two connections to one
// database, two schedulers) pass concurrently over two days of an hourly
// rule: every (occurrence, resource) has exactly one job.
func TestTwoSchedulersShareAStore(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 00:30"))
	e.vault("primary")
	for i := 0; i < 3; i++ {
		e.fileSystem(fmt.Sprintf("fs-00000000000000%03d", i), nil)
	}
	p := e.plan("hourly", rule("h", "cron(0 * ? * * *)", ""))
	e.selectAll(p.ID)
	st2, err := sqlite.Open(e.ctx, e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	_, svc2 := e.core(st2)
	nodes := []*Scheduler{e.scheduler("node-1", e.svc), e.scheduler("node-2", svc2)}
	const hours = 48
	for h := 0; h < hours; h++ {
		e.clk.Advance(time.Hour)
		var wg sync.WaitGroup
		errs := make(chan error, 2*len(nodes))
		for _, n := range nodes {
			for k := 0; k < 2; k++ { // each node runs two passes at once too
				wg.Add(1)
				go func(n *Scheduler) {
					defer wg.Done()
					if _, err := n.Tick(context.Background()); err != nil {
						errs <- err
					}
				}(n)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	js := e.jobs(backup.JobBackup)
	if len(js) != hours*3 {
		t.Fatalf("%d jobs, want %d", len(js), hours*3)
	}
	seen := map[string]bool{}
	for _, j := range js {
		k := scheduledAt(j, 480).Format(time.RFC3339) + " " + j.ResourceArn
		if seen[k] || j.ScheduleKey == "" {
			t.Fatalf("duplicate or keyless job for %s", k)
		}
		seen[k] = true
	}
}

// TestStartWindow: a scheduled job nobody starts within StartWindowMinutes
// ends EXPIRED with the AWS-style message and never runs.
func TestStartWindow(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:59"))
	e.vault("primary")
	e.fileSystem("fs-00000000000000011", nil)
	r := rule("daily", "cron(0 5 ? * * *)", "")
	r.StartWindowMinutes = i64(60)
	p := e.plan("p", r)
	e.selectAll(p.ID)
	s := e.scheduler("n", e.svc)
	e.clk.Set(utc("2026-03-02 05:00"))
	e.tick(s)
	e.clk.Set(utc("2026-03-02 06:00")) // no runner ran: the window ended
	if ran, err := e.runner.RunOne(e.ctx); err != nil || ran {
		t.Fatalf("a job past its start window was claimed: %v %v", ran, err)
	}
	if err := e.runner.Reconcile(e.ctx); err != nil {
		t.Fatal(err)
	}
	j := e.jobs(backup.JobBackup)[0]
	if j.State != backup.JobExpired || j.StatusMessage != "Backup job expired before it could start: its start window ended at 2026-03-02T06:00:00Z." {
		t.Fatalf("%s %q", j.State, j.StatusMessage)
	}
}

// TestCompletionWindow: a scheduled backup still running when its
// completion window ends is stopped and ends EXPIRED with AWS's message
// "Backup job expired before completion." (the vault is held by a
// maintenance lock, so the backup waits).
func TestCompletionWindow(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:59"))
	e.vault("primary")
	e.fileSystem("fs-00000000000000012", nil)
	r := rule("daily", "cron(0 5 ? * * *)", "")
	r.CompletionWindowMinutes = i64(90)
	p := e.plan("p", r)
	e.selectAll(p.ID)
	s := e.scheduler("n", e.svc)
	e.clk.Set(utc("2026-03-02 05:00"))
	e.tick(s)
	v, err := e.svc.DescribeVault(e.ctx, caller, "primary")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := e.repos.Open(e.ctx, v.Vault)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := repo.AcquireLock(e.ctx, "exclusive")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lock.Release(e.ctx) }()
	done := make(chan error, 1)
	go func() {
		_, err := e.runner.RunOne(e.ctx)
		done <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for e.jobs(backup.JobBackup)[0].State != backup.JobRunning {
		if time.Now().After(deadline) {
			t.Fatal("job never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.clk.Set(utc("2026-03-02 06:31")) // 05:00 + 90 min passed
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("job not stopped after its completion window")
	}
	j := e.jobs(backup.JobBackup)[0]
	if j.State != backup.JobAborted || j.StatusMessage != "Backup job was aborted: it did not complete within its completion window." {
		t.Fatalf("%s %q", j.State, j.StatusMessage)
	}
	if rps, _, _ := e.svc.ListRecoveryPoints(e.ctx, caller, service.RecoveryPointQuery{VaultName: "primary"}, store.Page{Limit: 10}); len(rps) != 0 {
		t.Fatalf("an expired backup left %d recovery points", len(rps))
	}
}

// TestCopyActions: each successful scheduled backup is copied to every
// copy action's vault, once, with CreatedBy and the action's lifecycle;
// DeleteAfterDays -1 keeps the source's expiry.
func TestCopyActions(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:59"))
	e.vault("primary")
	second := e.vault("second")
	third := e.vault("third")
	e.fileSystem("fs-00000000000000021", nil)
	r := rule("daily", "cron(0 5 ? * * *)", "")
	ten, thirty := int64(10), int64(30)
	r.Lifecycle = backup.Lifecycle{DeleteAfterDays: &thirty}
	r.CopyActions = []backup.CopyAction{{DestinationVaultArn: second, Lifecycle: backup.Lifecycle{DeleteAfterDays: &ten}},
		{DestinationVaultArn: third, KeepSourceExpiry: true}}
	p := e.plan("p", r)
	e.selectAll(p.ID)
	s := e.scheduler("n", e.svc)
	e.clk.Set(utc("2026-03-02 05:00"))
	e.tick(s)
	if rep := e.tick(s); rep.Copies != 0 {
		t.Fatalf("copies before the backup completed: %+v", rep)
	}
	e.runAll() // the backup
	e.clk.Advance(time.Minute)
	if rep := e.tick(s); rep.Copies != 2 {
		t.Fatalf("copies: %+v", rep)
	}
	if rep := e.tick(s); len(e.jobs(backup.JobCopy)) != 2 {
		t.Fatalf("%d copy jobs after another pass (%+v)", len(e.jobs(backup.JobCopy)), rep)
	}
	// A second scheduler (restart) does not copy again either.
	if e.tick(e.scheduler("other", e.svc)); len(e.jobs(backup.JobCopy)) != 2 {
		t.Fatal("a restarted scheduler copied again")
	}
	e.runAll() // the copies
	for _, j := range e.jobs(backup.JobCopy) {
		if j.State != backup.JobCompleted {
			t.Fatalf("copy %s: %s %s", j.ID, j.State, j.StatusMessage)
		}
		if c := creator(t, j); c.BackupPlanId != p.ID || c.BackupRuleId != p.Rules[0].ID {
			t.Fatalf("copy CreatedBy %+v", c)
		}
	}
	src, _, _ := e.svc.ListRecoveryPoints(e.ctx, caller, service.RecoveryPointQuery{VaultName: "primary"}, store.Page{Limit: 10})
	for _, tc := range []struct {
		vault string
		del   time.Time
	}{{"second", time.Time{}}, {"third", *src[0].DeleteAt}} {
		rps, _, err := e.svc.ListRecoveryPoints(e.ctx, caller, service.RecoveryPointQuery{VaultName: tc.vault, BackupPlanID: p.ID}, store.Page{Limit: 10})
		if err != nil || len(rps) != 1 {
			t.Fatalf("%s: %d copies by plan, %v", tc.vault, len(rps), err)
		}
		if tc.del.IsZero() { // the action's own lifecycle: 10 days from the copy
			tc.del = rps[0].CreationDate.Add(10 * 24 * time.Hour)
		}
		if rps[0].DeleteAt == nil || !rps[0].DeleteAt.Equal(tc.del) {
			t.Fatalf("%s: copy expires %v, want %v", tc.vault, rps[0].DeleteAt, tc.del)
		}
	}
}

// TestLifecycleAndLegalHold: the sweeper deletes scheduled recovery points
// whose lifecycle ended, except those under an active legal hold, which
// DeleteRecoveryPoint also refuses naming the hold; cancelling the hold
// lets the next sweep delete it.
func TestLifecycleAndLegalHold(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:59"))
	e.vault("primary")
	held := e.fileSystem("fs-00000000000000031", nil)
	e.fileSystem("fs-00000000000000032", nil)
	r := rule("daily", "cron(0 5 ? * * *)", "")
	one := int64(1)
	r.Lifecycle = backup.Lifecycle{DeleteAfterDays: &one}
	p := e.plan("p", r)
	e.selectAll(p.ID)
	s := e.scheduler("n", e.svc)
	e.clk.Set(utc("2026-03-02 05:00"))
	e.tick(s)
	e.runAll()
	h, err := e.svc.CreateLegalHold(e.ctx, caller, service.CreateLegalHoldRequest{Title: "case 42", Description: "litigation",
		Selection: backup.RecoveryPointSelection{ResourceIdentifiers: []string{held}}})
	if err != nil {
		t.Fatal(err)
	}
	// The plan keeps running; newer recovery points are not under the hold.
	e.clk.Set(utc("2026-03-04 06:00")) // both of the 2nd expired on the 3rd 05:00
	sw := e.sweeper()
	rep, err := sw.Sweep(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 1 {
		t.Fatalf("sweep: %+v", rep)
	}
	rps, _, _ := e.svc.ListRecoveryPoints(e.ctx, caller, service.RecoveryPointQuery{VaultName: "primary"}, store.Page{Limit: 10})
	if len(rps) != 1 || rps[0].ResourceArn != held {
		t.Fatalf("left after the sweep: %v", rps)
	}
	err = e.svc.DeleteRecoveryPoint(e.ctx, caller, "primary", rps[0].Arn)
	if !backup.IsCode(err, backup.CodeInvalidRequest) || !strings.Contains(err.Error(), h.ID) || !strings.Contains(err.Error(), "case 42") {
		t.Fatalf("delete under a hold: %v", err)
	}
	if err := e.svc.CancelLegalHold(e.ctx, caller, h.ID, "settled", nil); err != nil {
		t.Fatal(err)
	}
	if rep, err := sw.Sweep(e.ctx); err != nil || rep.Deleted != 1 {
		t.Fatalf("sweep after cancelling: %+v %v", rep, err)
	}
}

// TestCrossAccountCopyAction: a copy action into another account's vault
// goes through the destination vault's access policy like StartCopyJob:
// without a policy allowing the plan's account the copy job fails (access
// denied, naming nothing of the other account but the vault ARN it was
// given); once the other account allows backup:CopyIntoBackupVault, the
// next occurrence's copy lands there, carrying the plan's CreatedBy.
func TestCrossAccountCopyAction(t *testing.T) {
	const other = "222222222222"
	e := newEnv(t, utc("2026-03-02 04:59"))
	e.vault("primary")
	oc := service.Caller{AccountID: other, Region: region}
	dr, err := e.svc.CreateVault(e.ctx, oc, service.CreateVaultRequest{Name: "dr"})
	if err != nil {
		t.Fatal(err)
	}
	e.fileSystem("fs-00000000000000031", nil)
	r := rule("daily", "cron(0 5 ? * * *)", "")
	r.CopyActions = []backup.CopyAction{{DestinationVaultArn: dr.Arn}}
	p := e.plan("p", r)
	e.selectAll(p.ID)
	s := e.scheduler("n", e.svc)

	day := func(d string) *backup.Job {
		t.Helper()
		e.clk.Set(utc(d + " 05:00"))
		if rep := e.tick(s); rep.Backups != 1 {
			t.Fatalf("%s: %+v", d, rep)
		}
		e.runAll() // the backup
		e.clk.Advance(time.Minute)
		if rep := e.tick(s); rep.Copies != 1 {
			t.Fatalf("%s: copies %+v", d, rep)
		}
		e.runAll() // the copy
		cs := e.jobs(backup.JobCopy)
		return cs[len(cs)-1]
	}
	denied := day("2026-03-02")
	if denied.State != backup.JobFailed || !strings.Contains(denied.StatusMessage, "Access denied") ||
		!strings.Contains(denied.StatusMessage, dr.Arn) {
		t.Fatalf("copy without a policy: %s %q", denied.State, denied.StatusMessage)
	}
	if rps, _, err := e.svc.ListRecoveryPoints(e.ctx, oc, service.RecoveryPointQuery{VaultName: "dr"}, store.Page{Limit: 10}); err != nil || len(rps) != 0 {
		t.Fatalf("denied copy left %d recovery points (%v)", len(rps), err)
	}
	// A later pass does not start the failed copy again.
	if e.tick(s); len(e.jobs(backup.JobCopy)) != 1 {
		t.Fatalf("failed copy started again: %d copy jobs", len(e.jobs(backup.JobCopy)))
	}

	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct +
		`:root"},"Action":"backup:CopyIntoBackupVault","Resource":"*"}]}`
	if err := e.svc.PutVaultAccessPolicy(e.ctx, oc, "dr", pol); err != nil {
		t.Fatal(err)
	}
	allowed := day("2026-03-03")
	if allowed.State != backup.JobCompleted {
		t.Fatalf("copy with a policy: %s %q", allowed.State, allowed.StatusMessage)
	}
	if c := creator(t, allowed); c.BackupPlanId != p.ID || c.BackupRuleId != p.Rules[0].ID {
		t.Fatalf("copy CreatedBy %+v", c)
	}
	rps, _, err := e.svc.ListRecoveryPoints(e.ctx, oc, service.RecoveryPointQuery{VaultName: "dr"}, store.Page{Limit: 10})
	if err != nil || len(rps) != 1 {
		t.Fatalf("copies in the other account's vault: %d (%v)", len(rps), err)
	}
	if c, ok := backup.ParseCreator(rps[0].CreatedByJSON); !ok || c.BackupPlanId != p.ID {
		t.Fatalf("copied recovery point CreatedBy %q", rps[0].CreatedByJSON)
	}
}

// TestPassesRememberClaims: a scheduler skips the store read for rules
// with nothing due after the occurrence it last saw claimed, yet never
// misses one: not when another scheduler claimed the latest occurrence,
// and not when the rule's schedule changed.
func TestPassesRememberClaims(t *testing.T) {
	e := newEnv(t, utc("2026-03-02 04:00"))
	e.vault("primary")
	e.fileSystem("fs-00000000000000041", nil)
	p := e.plan("p", rule("daily", "cron(0 5 ? * * *)", ""))
	e.selectAll(p.ID)
	a, b := e.scheduler("a", e.svc), e.scheduler("b", e.svc)
	step := func(s *Scheduler, at string, want int) {
		t.Helper()
		e.clk.Set(utc(at))
		if rep := e.tick(s); rep.Occurrences != want {
			t.Fatalf("%s at %s: %d occurrences, want %d", s.Owner(), at, rep.Occurrences, want)
		}
	}
	step(a, "2026-03-02 05:00", 1)
	step(a, "2026-03-02 12:00", 0)
	step(b, "2026-03-03 05:00", 1) // b claims day 2; a has not seen it
	step(a, "2026-03-03 05:30", 0)
	step(a, "2026-03-04 05:00", 1)
	step(b, "2026-03-04 05:10", 0)
	// A new schedule: 06:00 from now on.
	r := rule("daily", "cron(0 6 ? * * *)", "")
	if _, err := e.svc.UpdatePlan(e.ctx, caller, p.ID, service.PlanInput{Name: "p", Rules: []service.RuleInput{r}}); err != nil {
		t.Fatal(err)
	}
	step(a, "2026-03-04 06:00", 1)
	step(b, "2026-03-04 06:01", 0)
	step(b, "2026-03-05 06:00", 1)
	step(a, "2026-03-05 06:00", 0)
	if n := len(e.jobs(backup.JobBackup)); n != 5 {
		t.Fatalf("%d backup jobs, want 5", n)
	}
}
