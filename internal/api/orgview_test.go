package api_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	cb "coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
)

// acctC is a second member account (acctA is the management account).
var acctC = account{"333333333333", "AKIACCCCCCCCCCCCCCCC", "secretCsecretCsecretCsecretCsecretCsecre"}

// startOrg runs the real server with a management account (A) and two
// member accounts (B, C).
func startOrg(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	must(t, err)
	fake := clock.NewFake(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	creds := api.StaticCredentials{acctA.akid: acctA.secret, acctB.akid: acctB.secret, acctC.akid: acctC.secret}
	stk, err := stack.Build(stack.Options{Store: st, Clock: fake})
	must(t, err)
	srv, err := api.New(api.Config{Region: region, ManagementAccount: acctA.id,
		AccountOf: map[string]string{acctA.akid: acctA.id, acctB.akid: acctB.id, acctC.akid: acctC.id},
		TokenKey:  bytes.Repeat([]byte{7}, 32)},
		api.Deps{Clock: fake, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Service: stk.Service,
			Auth: api.SigV4{V: &sigv4.Verifier{Creds: creds, Clock: clock.Real{}, Service: "backup", Region: region}}})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		st.Close()
	})
	return &env{t: t, url: "http://" + ln.Addr().String(), store: st, clock: fake}
}

var orgKinds = []cb.JobKind{cb.JobBackup, cb.JobCopy, cb.JobRestore}

// orgSeed inserts, for every account and kind, perAcct jobs created in the
// last days, with varied states. It returns job IDs by kind and account.
func orgSeed(t *testing.T, e *env, perAcct int) map[cb.JobKind]map[string][]string {
	ctx := context.Background()
	ids := map[cb.JobKind]map[string][]string{}
	states := map[cb.JobKind][]cb.JobState{cb.JobBackup: {"COMPLETED", "FAILED"}, cb.JobCopy: {"COMPLETED", "FAILED"},
		cb.JobRestore: {"COMPLETED", "FAILED"}}
	n := 0
	must(t, e.store.Write(ctx, func(tx store.Tx) error {
		for _, k := range orgKinds {
			ids[k] = map[string][]string{}
			for _, a := range []account{acctA, acctB, acctC} {
				for i := 0; i < perAcct; i++ {
					n++
					id := fmt.Sprintf("%08X-0000-4000-8000-%012X", n, n)
					j := &cb.Job{Kind: k, ID: id, AccountID: a.id, Region: region, State: states[k][i%2],
						CreationDate: e.clock.Now().Add(-time.Duration(n) * time.Hour), ResourceType: "EFS",
						ResourceArn: "arn:aws:elasticfilesystem:us-east-1:" + a.id + ":file-system/fs-0000000000000000a",
						VaultName:   "v1", VaultArn: cb.VaultArn(region, a.id, "v1"),
						RecoveryPointArn: cb.RecoveryPointArn(region, a.id, fmt.Sprintf("rp-%d", n)), MessageCategory: "SUCCESS"}
					if k == cb.JobCopy {
						j.DestinationVaultArn = cb.VaultArn(region, a.id, "v2")
						j.ParametersJSON = `{"destinationAccount":"` + a.id + `","destinationVaultName":"v2","destinationRecoveryPointArn":"x"}`
					}
					if err := tx.CreateJob(ctx, j); err != nil {
						return err
					}
					if k == cb.JobRestore {
						if err := tx.SetRestoreJobExtra(ctx, store.Scope{AccountID: a.id, Region: region}, id,
							store.RestoreJobExtra{RecoveryPointCreationDate: j.CreationDate}); err != nil {
							return err
						}
					}
					ids[k][a.id] = append(ids[k][a.id], id)
				}
			}
		}
		return nil
	}))
	return ids
}

// listed is one job seen through a list call.
type listed struct{ id, account string }

// orgList lists every page of kind's jobs as caller with ByAccountId.
func orgList(t *testing.T, c *backup.Client, kind cb.JobKind, by *string) ([]listed, error) {
	ctx := context.Background()
	var out []listed
	var token *string
	for page := 0; ; page++ {
		if page > 50 {
			t.Fatal("too many pages")
		}
		var next *string
		switch kind {
		case cb.JobBackup:
			r, err := c.ListBackupJobs(ctx, &backup.ListBackupJobsInput{ByAccountId: by, MaxResults: aws.Int32(2), NextToken: token})
			if err != nil {
				return nil, err
			}
			for _, j := range r.BackupJobs {
				out = append(out, listed{aws.ToString(j.BackupJobId), aws.ToString(j.AccountId)})
			}
			next = r.NextToken
		case cb.JobCopy:
			r, err := c.ListCopyJobs(ctx, &backup.ListCopyJobsInput{ByAccountId: by, MaxResults: aws.Int32(2), NextToken: token})
			if err != nil {
				return nil, err
			}
			for _, j := range r.CopyJobs {
				out = append(out, listed{aws.ToString(j.CopyJobId), aws.ToString(j.AccountId)})
			}
			next = r.NextToken
		case cb.JobRestore:
			r, err := c.ListRestoreJobs(ctx, &backup.ListRestoreJobsInput{ByAccountId: by, MaxResults: aws.Int32(2), NextToken: token})
			if err != nil {
				return nil, err
			}
			for _, j := range r.RestoreJobs {
				out = append(out, listed{aws.ToString(j.RestoreJobId), aws.ToString(j.AccountId)})
			}
			next = r.NextToken
		}
		if next == nil {
			return out, nil
		}
		token = next
	}
}

func orgDescribe(c *backup.Client, kind cb.JobKind, id string) (string, error) {
	ctx := context.Background()
	switch kind {
	case cb.JobBackup:
		r, err := c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(id)})
		if err != nil {
			return "", err
		}
		return aws.ToString(r.AccountId), nil
	case cb.JobCopy:
		r, err := c.DescribeCopyJob(ctx, &backup.DescribeCopyJobInput{CopyJobId: aws.String(id)})
		if err != nil {
			return "", err
		}
		return aws.ToString(r.CopyJob.AccountId), nil
	default:
		r, err := c.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: aws.String(id)})
		if err != nil {
			return "", err
		}
		return aws.ToString(r.AccountId), nil
	}
}

func idsOf(ls []listed) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.id)
	}
	sort.Strings(out)
	return out
}

func sorted(xs ...[]string) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x...)
	}
	sort.Strings(out)
	return out
}

// TestOrgViewTenancy: every list and describe job operation, called by a
// member account with another account's id and with *, shows nothing
// foreign; the management account sees all accounts with * and exactly one
// with its id.
func TestOrgViewTenancy(t *testing.T) {
	e := startOrg(t)
	ids := orgSeed(t, e, 3)
	b, mgmt := e.client(acctB), e.client(acctA)
	for _, k := range orgKinds {
		own := sorted(ids[k][acctB.id])
		cases := []struct {
			name   string
			by     *string
			wantBy []string
		}{
			{"no filter", nil, own},
			{"own id", aws.String(acctB.id), own},
			{"other member id", aws.String(acctC.id), nil},
			{"management id", aws.String(acctA.id), nil},
			{"star", aws.String("*"), own},
			{"ANY", aws.String("ANY"), own},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("member/%s/%s", k, c.name), func(t *testing.T) {
				got, err := orgList(t, b, k, c.by)
				must(t, err)
				for _, l := range got {
					if l.account != acctB.id {
						t.Fatalf("member B saw job %s of account %s", l.id, l.account)
					}
				}
				// ListBackupJobs and ListRestoreJobs answer a member's * with an
				// empty list (their own choice); ListCopyJobs with the
				// member's own jobs. Neither shows anything foreign.
				emptyOK := c.by != nil && (*c.by == "*" || *c.by == "ANY") && k != cb.JobCopy && len(got) == 0
				if fmt.Sprint(idsOf(got)) != fmt.Sprint(c.wantBy) && !emptyOK {
					t.Fatalf("got %v, want %v", idsOf(got), c.wantBy)
				}
			})
		}
		t.Run(fmt.Sprintf("member/%s/describe foreign", k), func(t *testing.T) {
			for _, other := range []string{acctA.id, acctC.id} {
				for _, id := range ids[k][other] {
					if acct, err := orgDescribe(b, k, id); err == nil {
						t.Fatalf("member B described %s job %s of account %s", k, id, acct)
					} else {
						expectErr[*types.ResourceNotFoundException](t, err)
					}
				}
			}
			for _, id := range ids[k][acctB.id] {
				acct, err := orgDescribe(b, k, id)
				must(t, err)
				if acct != acctB.id {
					t.Fatalf("own job %s has AccountId %s", id, acct)
				}
			}
		})
		t.Run(fmt.Sprintf("management/%s", k), func(t *testing.T) {
			all, err := orgList(t, mgmt, k, aws.String("*"))
			must(t, err)
			if want := sorted(ids[k][acctA.id], ids[k][acctB.id], ids[k][acctC.id]); fmt.Sprint(idsOf(all)) != fmt.Sprint(want) {
				t.Fatalf("* listed %v, want %v", idsOf(all), want)
			}
			one, err := orgList(t, mgmt, k, aws.String(acctC.id))
			must(t, err)
			if want := sorted(ids[k][acctC.id]); fmt.Sprint(idsOf(one)) != fmt.Sprint(want) {
				t.Fatalf("ByAccountId=C listed %v, want %v", idsOf(one), want)
			}
			for _, l := range one {
				if l.account != acctC.id {
					t.Fatalf("job %s has AccountId %s", l.id, l.account)
				}
			}
			mine, err := orgList(t, mgmt, k, nil)
			must(t, err)
			if want := sorted(ids[k][acctA.id]); fmt.Sprint(idsOf(mine)) != fmt.Sprint(want) {
				t.Fatalf("no filter listed %v, want %v", idsOf(mine), want)
			}
		})
	}
	// The management account describes members' jobs of every kind; a
	// member never describes the management account's.
	for _, k := range orgKinds {
		for _, other := range []string{acctB.id, acctC.id} {
			acct, err := orgDescribe(mgmt, k, ids[k][other][0])
			must(t, err)
			if acct != other {
				t.Fatalf("management describe of %s job: AccountId %s, want %s", k, acct, other)
			}
		}
	}
	// A page token of one account is useless to another.
	r, err := mgmt.ListCopyJobs(context.Background(), &backup.ListCopyJobsInput{ByAccountId: aws.String("*"), MaxResults: aws.Int32(1)})
	must(t, err)
	if r.NextToken == nil {
		t.Fatal("no token")
	}
	_, err = b.ListCopyJobs(context.Background(), &backup.ListCopyJobsInput{ByAccountId: aws.String("*"), MaxResults: aws.Int32(1), NextToken: r.NextToken})
	expectErr[*types.InvalidParameterValueException](t, err)
}

type sumRow struct {
	acct, state string
	count       int32
}

func backupSummaries(t *testing.T, c *backup.Client, in *backup.ListBackupJobSummariesInput) []sumRow {
	r, err := c.ListBackupJobSummaries(context.Background(), in)
	must(t, err)
	var out []sumRow
	for _, s := range r.BackupJobSummaries {
		out = append(out, sumRow{aws.ToString(s.AccountId), string(s.State), s.Count})
		if aws.ToString(s.Region) != region || s.StartTime == nil || s.EndTime == nil || !s.StartTime.Before(*s.EndTime) {
			t.Fatalf("bad summary row %+v", s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return fmt.Sprint(out[i]) < fmt.Sprint(out[j]) })
	return out
}

func TestOrgViewSummaries(t *testing.T) {
	e := startOrg(t)
	orgSeed(t, e, 4) // per account and kind: 2 COMPLETED, 2 FAILED, within the last 14 days
	b, mgmt := e.client(acctB), e.client(acctA)
	agg := types.AggregationPeriodFourteenDays
	cases := []struct {
		name string
		c    *backup.Client
		in   backup.ListBackupJobSummariesInput
		want []sumRow
	}{
		{"member own", b, backup.ListBackupJobSummariesInput{AggregationPeriod: agg, State: types.BackupJobStatusAggregateAll},
			[]sumRow{{acctB.id, "", 4}}},
		{"member ANY", b, backup.ListBackupJobSummariesInput{AccountId: aws.String("ANY"), AggregationPeriod: agg, State: types.BackupJobStatusAggregateAll},
			[]sumRow{{acctB.id, "", 4}}},
		{"member other", b, backup.ListBackupJobSummariesInput{AccountId: aws.String(acctC.id), AggregationPeriod: agg}, nil},
		{"management ANY", mgmt, backup.ListBackupJobSummariesInput{AccountId: aws.String("ANY"), AggregationPeriod: agg, State: types.BackupJobStatusAggregateAll},
			[]sumRow{{acctA.id, "", 4}, {acctB.id, "", 4}, {acctC.id, "", 4}}},
		{"management AGGREGATE_ALL", mgmt, backup.ListBackupJobSummariesInput{AccountId: aws.String("AGGREGATE_ALL"), AggregationPeriod: agg, State: types.BackupJobStatusAggregateAll},
			[]sumRow{{"", "", 12}}},
		{"management one account by state", mgmt, backup.ListBackupJobSummariesInput{AccountId: aws.String(acctC.id), AggregationPeriod: agg},
			[]sumRow{{acctC.id, "COMPLETED", 2}, {acctC.id, "FAILED", 2}}},
		{"management state filter", mgmt, backup.ListBackupJobSummariesInput{AccountId: aws.String("AGGREGATE_ALL"), AggregationPeriod: agg, State: types.BackupJobStatusFailed},
			[]sumRow{{"", "FAILED", 6}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			got := backupSummaries(t, c.c, &in)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	// Copy and restore summaries use the same machinery.
	rc, err := b.ListCopyJobSummaries(context.Background(), &backup.ListCopyJobSummariesInput{AccountId: aws.String("*"), AggregationPeriod: agg})
	must(t, err)
	total := int32(0)
	for _, s := range rc.CopyJobSummaries {
		if aws.ToString(s.AccountId) != acctB.id {
			t.Fatalf("member saw copy summary of %s", aws.ToString(s.AccountId))
		}
		total += s.Count
	}
	rr, err := mgmt.ListRestoreJobSummaries(context.Background(), &backup.ListRestoreJobSummariesInput{AccountId: aws.String("ANY"),
		State: types.RestoreJobStateAggregateAll, ResourceType: aws.String("EFS")})
	must(t, err)
	if rr.AggregationPeriod == nil || *rr.AggregationPeriod != "ONE_DAY" {
		t.Fatalf("default period %v", rr.AggregationPeriod)
	}
	accts := map[string]int32{}
	for _, s := range rr.RestoreJobSummaries {
		accts[aws.ToString(s.AccountId)] += s.Count
	}
	if total != 4 || len(accts) != 3 || accts[acctC.id] != 4 {
		t.Fatalf("copy total %d, restore per account %v", total, accts)
	}
	// Pagination of summaries: one row per page, all pages add up.
	var seen int32
	var token *string
	for i := 0; ; i++ {
		r, err := mgmt.ListBackupJobSummaries(context.Background(), &backup.ListBackupJobSummariesInput{AccountId: aws.String("ANY"),
			MaxResults: aws.Int32(1), NextToken: token})
		must(t, err)
		if len(r.BackupJobSummaries) != 1 {
			t.Fatalf("page %d has %d rows", i, len(r.BackupJobSummaries))
		}
		seen += r.BackupJobSummaries[0].Count
		if r.NextToken == nil {
			break
		}
		token = r.NextToken
	}
	if seen != 12 {
		t.Fatalf("pages count %d jobs, want 12", seen)
	}
	_, err = b.ListBackupJobSummaries(context.Background(), &backup.ListBackupJobSummariesInput{MaxResults: aws.Int32(501)})
	expectErr[*types.InvalidParameterValueException](t, err)
}

// TestSummariesOneDayBuckets compares ONE_DAY rows with per-day counts
// computed here from the seeded jobs' creation times.
func TestSummariesOneDayBuckets(t *testing.T) {
	e := startOrg(t)
	ctx := context.Background()
	// Jobs of B created every 7 hours over 20 days: some fall outside the
	// 14-day window.
	want := map[time.Time]int32{}
	now := e.clock.Now()
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.Add(-13 * 24 * time.Hour)
	must(t, e.store.Write(ctx, func(tx store.Tx) error {
		for i := 0; i < 20*24/7; i++ {
			created := now.Add(-time.Duration(i) * 7 * time.Hour)
			j := &cb.Job{Kind: cb.JobBackup, ID: fmt.Sprintf("B%07d", i), AccountID: acctB.id, Region: region, State: "COMPLETED",
				ResourceType: "EFS", MessageCategory: "SUCCESS", CreationDate: created}
			if err := tx.CreateJob(ctx, j); err != nil {
				return err
			}
			if !created.Before(first) {
				want[created.UTC().Truncate(24*time.Hour)]++
			}
		}
		return nil
	}))
	r, err := e.client(acctB).ListBackupJobSummaries(ctx, &backup.ListBackupJobSummariesInput{AggregationPeriod: types.AggregationPeriodOneDay})
	must(t, err)
	got := map[time.Time]int32{}
	for _, s := range r.BackupJobSummaries {
		if aws.ToString(s.AccountId) != acctB.id || s.State != types.BackupJobStatusCompleted || aws.ToString(s.ResourceType) != "EFS" ||
			aws.ToString(s.MessageCategory) != "SUCCESS" {
			t.Fatalf("row %+v", s)
		}
		day := s.StartTime.UTC()
		if !day.Equal(day.Truncate(24*time.Hour)) || s.EndTime.Sub(day) > 24*time.Hour {
			t.Fatalf("row %v..%v is not one UTC day", s.StartTime, s.EndTime)
		}
		got[day] += s.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(want) != 14 {
		t.Fatalf("per-day counts\n got  %v\n want %v", got, want)
	}
}
