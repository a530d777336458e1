package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	cb "coffer/internal/backup"
	"coffer/internal/backupjob"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/repository/maintenance"
	"coffer/internal/resource/filesystem"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

const roleArn = "arn:aws:iam::111111111111:role/backup-role"

// jobEnv is the real server with the job runner, the EFS backup handler
// and vault repositories in a temp data dir.
type jobEnv struct {
	*env
	repos  *vaultrepo.Manager
	runner *jobs.Runner
	fs     map[string]*fileSystem // by id
}

// startJobs starts the server; runWorkers false leaves jobs CREATED.
func startJobs(t *testing.T, runWorkers bool) *jobEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	fake := clock.NewFake(time.Now())
	repos, err := localvaults.New(dir, bytes.Repeat([]byte{9}, 32), repository.Options{Clock: fake})
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	stk, err := stack.Build(stack.Options{Store: st, Clock: fake, Repos: repos, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(jobs.Options{Store: st, Clock: fake, LeaseTTL: 300 * time.Millisecond, Poll: 20 * time.Millisecond, Logger: quiet,
		Handlers: []jobs.Handler{stk.Backup}})
	if err != nil {
		t.Fatal(err)
	}
	stk.Service.SetNotifier(runner)
	creds := api.StaticCredentials{acctA.akid: acctA.secret, acctB.akid: acctB.secret}
	srv, err := api.New(api.Config{Region: region, ManagementAccount: acctA.id,
		AccountOf: map[string]string{acctA.akid: acctA.id, acctB.akid: acctB.id},
		TokenKey:  bytes.Repeat([]byte{7}, 32)},
		api.Deps{Clock: fake, Logger: quiet, Service: stk.Service,
			Auth: api.SigV4{V: &sigv4.Verifier{Creds: creds, Clock: clock.Real{}, Service: "backup", Region: region}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx, ln) }()
	n := 1
	if runWorkers {
		n = 2
		go func() { done <- runner.Run(ctx) }()
	}
	e := &jobEnv{env: &env{t: t, url: "http://" + ln.Addr().String(), store: st, clock: fake}, repos: repos, runner: runner,
		fs: map[string]*fileSystem{}}
	t.Cleanup(func() {
		cancel()
		for i := 0; i < n; i++ {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		repos.Close()
		st.Close()
	})
	return e
}

// addFS registers a file system of account a over a generated tree.
func (e *jobEnv) addFS(a account, id string, files int, seed int64) *fileSystem {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), id)
	genTree(e.t, dir, files, seed)
	fs := &fileSystem{AccountID: a.id, Region: region, ID: id, Arn: filesystem.ARN(region, a.id, id), Path: dir,
		Name: "name-" + id, Tags: map[string]string{"Name": "name-" + id}, CreationDate: e.clock.Now()}
	must(e.t, e.store.Write(ctx, func(tx store.Tx) error { return upsertFS(ctx, tx, fs) }))
	e.fs[id] = fs
	return fs
}

// genTree writes files of pseudo-random, incompressible content.
func genTree(t *testing.T, dir string, files int, seed int64) int64 {
	t.Helper()
	r := rand.New(rand.NewSource(seed))
	var total int64
	for i := 0; i < files; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%3))
		must(t, os.MkdirAll(sub, 0o755))
		b := make([]byte, 1000+r.Intn(300_000))
		r.Read(b)
		must(t, os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d.bin", i)), b, 0o644))
		total += int64(len(b))
	}
	return total
}

func treeSize(t *testing.T, dir string) int64 {
	var n int64
	must(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	}))
	return n
}

func (e *jobEnv) vault(c *backup.Client, name string) {
	e.t.Helper()
	_, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String(name)})
	must(e.t, err)
}

func (e *jobEnv) startBackup(c *backup.Client, vault string, fs *fileSystem, mut func(*backup.StartBackupJobInput)) *backup.StartBackupJobOutput {
	e.t.Helper()
	in := &backup.StartBackupJobInput{BackupVaultName: aws.String(vault), ResourceArn: aws.String(fs.Arn), IamRoleArn: aws.String(roleArn)}
	if mut != nil {
		mut(in)
	}
	out, err := c.StartBackupJob(ctx, in)
	must(e.t, err)
	return out
}

// wait polls DescribeBackupJob until the job is terminal (no time limit:
// the test binary's timeout bounds it).
func wait(t *testing.T, c *backup.Client, id string) *backup.DescribeBackupJobOutput {
	t.Helper()
	for {
		d, err := c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(id)})
		must(t, err)
		if cb.JobState(d.State).Terminal() {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func storedJob(t *testing.T, e *jobEnv, a account, id string) *cb.Job {
	var j *cb.Job
	must(t, e.store.Read(ctx, func(tx store.Tx) error {
		var err error
		j, err = tx.GetJob(ctx, store.Scope{AccountID: a.id, Region: region}, cb.JobBackup, id)
		return err
	}))
	return j
}

func TestBackupJobEndToEnd(t *testing.T) {
	e := startJobs(t, true)
	c := e.client(acctA)
	e.vault(c, "v1")
	fs := e.addFS(acctA, "fs-0123456789", 12, 1)
	size := treeSize(t, fs.Path)
	created := e.clock.Now()

	out := e.startBackup(c, "v1", fs, func(in *backup.StartBackupJobInput) {
		in.Lifecycle = &types.Lifecycle{DeleteAfterDays: aws.Int64(35)}
		in.RecoveryPointTags = map[string]string{"team": "db"}
		in.CompleteWindowMinutes = aws.Int64(120)
	})
	if !strings.HasPrefix(aws.ToString(out.RecoveryPointArn), "arn:aws:backup:us-east-1:111111111111:recovery-point:") ||
		len(aws.ToString(out.BackupJobId)) != 36 || strings.ToUpper(*out.BackupJobId) != *out.BackupJobId || out.CreationDate == nil {
		t.Fatalf("start output %+v", out)
	}
	d := wait(t, c, *out.BackupJobId)
	if d.State != types.BackupJobStateCompleted || aws.ToString(d.PercentDone) != "100.0" || aws.ToInt64(d.BackupSizeInBytes) != size ||
		aws.ToInt64(d.BytesTransferred) <= 0 || aws.ToString(d.AccountId) != acctA.id || aws.ToString(d.BackupVaultName) != "v1" ||
		aws.ToString(d.BackupVaultArn) != vaultArn(acctA, "v1") || aws.ToString(d.RecoveryPointArn) != *out.RecoveryPointArn ||
		aws.ToString(d.ResourceArn) != fs.Arn || aws.ToString(d.ResourceType) != "EFS" || aws.ToString(d.ResourceName) != "name-fs-0123456789" ||
		aws.ToString(d.IamRoleArn) != roleArn || aws.ToString(d.MessageCategory) != "SUCCESS" || aws.ToString(d.StatusMessage) != "" ||
		d.CreationDate == nil || d.CompletionDate == nil || d.InitiationDate == nil || d.StartBy == nil ||
		d.StartBy.Sub(*d.CreationDate) != 480*time.Minute || d.CreationDate.UnixMilli() != created.UnixMilli() ||
		d.RecoveryPointLifecycle == nil || aws.ToInt64(d.RecoveryPointLifecycle.DeleteAfterDays) != 35 || !d.IsEncrypted ||
		d.IsParent || aws.ToString(d.VaultType) != "BACKUP_VAULT" || aws.ToInt64(d.NumberOfChildJobs) != 0 {
		t.Fatalf("describe: size %d/%d sent %d pct %s msg %q cat %q name %q", aws.ToInt64(d.BackupSizeInBytes), size, aws.ToInt64(d.BytesTransferred),
			aws.ToString(d.PercentDone), aws.ToString(d.StatusMessage), aws.ToString(d.MessageCategory), aws.ToString(d.ResourceName))
	}
	first := aws.ToInt64(d.BytesTransferred)

	rp, err := c.DescribeRecoveryPoint(ctx, &backup.DescribeRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: out.RecoveryPointArn})
	must(t, err)
	if rp.Status != types.RecoveryPointStatusCompleted || aws.ToInt64(rp.BackupSizeInBytes) != size || aws.ToString(rp.ResourceArn) != fs.Arn ||
		aws.ToString(rp.ResourceType) != "EFS" || rp.StorageClass != types.StorageClassWarm || !rp.IsEncrypted ||
		rp.CalculatedLifecycle == nil || rp.CalculatedLifecycle.DeleteAt == nil ||
		rp.CalculatedLifecycle.DeleteAt.Sub(*rp.CreationDate) != 35*24*time.Hour || aws.ToString(rp.IamRoleArn) != roleArn ||
		rp.CompletionDate == nil || rp.InitiationDate == nil || aws.ToString(rp.ResourceName) != "name-fs-0123456789" || rp.CreatedBy != nil {
		t.Fatalf("recovery point %+v", rp)
	}
	tags, err := c.ListTags(ctx, &backup.ListTagsInput{ResourceArn: out.RecoveryPointArn})
	must(t, err)
	if tags.Tags["team"] != "db" {
		t.Fatalf("recovery point tags %v", tags.Tags)
	}
	pr, err := c.DescribeProtectedResource(ctx, &backup.DescribeProtectedResourceInput{ResourceArn: aws.String(fs.Arn)})
	must(t, err)
	if aws.ToString(pr.LastRecoveryPointArn) != *out.RecoveryPointArn || aws.ToString(pr.LastBackupVaultArn) != vaultArn(acctA, "v1") ||
		pr.LastBackupTime == nil || aws.ToString(pr.ResourceName) != "name-fs-0123456789" || aws.ToString(pr.ResourceType) != "EFS" {
		t.Fatalf("protected resource %+v", pr)
	}
	lp, err := c.ListProtectedResources(ctx, &backup.ListProtectedResourcesInput{})
	must(t, err)
	if len(lp.Results) != 1 || aws.ToString(lp.Results[0].ResourceArn) != fs.Arn {
		t.Fatalf("protected resources %+v", lp.Results)
	}

	// Incremental: an unchanged tree reads nothing and stores almost nothing.
	out2 := e.startBackup(c, "v1", fs, nil)
	d2 := wait(t, c, *out2.BackupJobId)
	if d2.State != types.BackupJobStateCompleted || aws.ToInt64(d2.BackupSizeInBytes) != size {
		t.Fatalf("second backup %+v", d2)
	}
	var res backupjob.Result
	must(t, json.Unmarshal([]byte(storedJob(t, e, acctA, *out2.BackupJobId).ResultJSON), &res))
	if res.BytesRead != 0 || res.UnchangedFiles != 12 || res.ParentManifest == "" || aws.ToInt64(d2.BytesTransferred) > first/100 {
		t.Fatalf("incremental backup read %d bytes, stored %d (first stored %d), result %+v", res.BytesRead, aws.ToInt64(d2.BytesTransferred), first, res)
	}
	t.Logf("first backup stored %d bytes of %d; unchanged second backup stored %d bytes, read %d", first, size, aws.ToInt64(d2.BytesTransferred), res.BytesRead)

	// A completed job cannot be stopped.
	_, err = c.StopBackupJob(ctx, &backup.StopBackupJobInput{BackupJobId: out.BackupJobId})
	expectErr[*types.InvalidRequestException](t, err)

	// The repository checks clean, reading every blob.
	repo, err := e.repos.Open(ctx, &cb.Vault{AccountID: acctA.id, Region: region, Name: "v1"})
	must(t, err)
	rep, err := maintenance.Check(ctx, repo, maintenance.CheckOptions{ReadData: true})
	must(t, err)
	if !rep.OK() || rep.Manifests != 2 {
		t.Fatalf("check: %s", rep)
	}
}

func TestStartBackupJobValidation(t *testing.T) {
	e := startJobs(t, false)
	c := e.client(acctA)
	e.vault(c, "v1")
	fs := e.addFS(acctA, "fs-0000000a", 1, 2)
	tests := []struct {
		name string
		mut  func(*backup.StartBackupJobInput)
		want string
	}{
		{"bad role", func(in *backup.StartBackupJobInput) { in.IamRoleArn = aws.String("role") }, "InvalidParameterValueException"},
		{"unsupported type", func(in *backup.StartBackupJobInput) {
			in.ResourceArn = aws.String("arn:aws:ec2:us-east-1:111111111111:volume/vol-1")
		}, "InvalidParameterValueException"},
		{"unknown fs", func(in *backup.StartBackupJobInput) {
			in.ResourceArn = aws.String(filesystem.ARN(region, acctA.id, "fs-99999999"))
		}, "ResourceNotFoundException"},
		{"unknown vault", func(in *backup.StartBackupJobInput) { in.BackupVaultName = aws.String("nope") }, "ResourceNotFoundException"},
		{"short start window", func(in *backup.StartBackupJobInput) { in.StartWindowMinutes = aws.Int64(59) }, "InvalidParameterValueException"},
		{"cold+90", func(in *backup.StartBackupJobInput) {
			in.Lifecycle = &types.Lifecycle{MoveToColdStorageAfterDays: aws.Int64(10), DeleteAfterDays: aws.Int64(99)}
		}, "InvalidParameterValueException"},
		{"backup options", func(in *backup.StartBackupJobInput) { in.BackupOptions = map[string]string{"WindowsVSS": "enabled"} }, "InvalidParameterValueException"},
		{"index", func(in *backup.StartBackupJobInput) { in.Index = types.IndexEnabled }, "InvalidParameterValueException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &backup.StartBackupJobInput{BackupVaultName: aws.String("v1"), ResourceArn: aws.String(fs.Arn), IamRoleArn: aws.String(roleArn)}
			tc.mut(in)
			_, err := c.StartBackupJob(ctx, in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
		})
	}
	l, err := c.ListBackupJobs(ctx, &backup.ListBackupJobsInput{})
	must(t, err)
	if len(l.BackupJobs) != 0 {
		t.Fatalf("rejected requests created jobs: %d", len(l.BackupJobs))
	}
}

func TestStartBackupJobIdempotency(t *testing.T) {
	e := startJobs(t, false)
	c := e.client(acctA)
	e.vault(c, "v1")
	fs := e.addFS(acctA, "fs-0000000b", 1, 3)
	tok := func(in *backup.StartBackupJobInput) { in.IdempotencyToken = aws.String("tok-1") }
	a := e.startBackup(c, "v1", fs, tok)
	b := e.startBackup(c, "v1", fs, tok)
	if *a.BackupJobId != *b.BackupJobId || *a.RecoveryPointArn != *b.RecoveryPointArn {
		t.Fatalf("same token gave %s and %s", *a.BackupJobId, *b.BackupJobId)
	}
	_, err := c.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("v1"), ResourceArn: aws.String(fs.Arn),
		IamRoleArn: aws.String(roleArn), IdempotencyToken: aws.String("tok-1"), StartWindowMinutes: aws.Int64(90)})
	expectErr[*types.InvalidRequestException](t, err)
	l, err := c.ListBackupJobs(ctx, &backup.ListBackupJobsInput{})
	must(t, err)
	if len(l.BackupJobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(l.BackupJobs))
	}
	// After the one-hour window the token starts a new job.
	e.clock.Advance(61 * time.Minute)
	c2 := e.startBackup(c, "v1", fs, tok)
	if *c2.BackupJobId == *a.BackupJobId {
		t.Fatal("token reused after its window")
	}
	// Another account's identical token is independent.
	cB := e.client(acctB)
	e.vault(cB, "v1")
	fsB := e.addFS(acctB, "fs-0000000c", 1, 4)
	d := e.startBackup(cB, "v1", fsB, tok)
	if *d.BackupJobId == *c2.BackupJobId {
		t.Fatal("tokens shared across accounts")
	}
}

func TestBackupTenancy(t *testing.T) {
	e := startJobs(t, true)
	cA, cB := e.client(acctA), e.client(acctB)
	e.vault(cA, "v1")
	e.vault(cB, "v1")
	fs := e.addFS(acctA, "fs-0000000d", 2, 5)
	out := e.startBackup(cA, "v1", fs, nil)
	wait(t, cA, *out.BackupJobId)

	_, err := cB.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: out.BackupJobId})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = cB.StopBackupJob(ctx, &backup.StopBackupJobInput{BackupJobId: out.BackupJobId})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = cB.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("v1"), ResourceArn: aws.String(fs.Arn), IamRoleArn: aws.String(roleArn)})
	expectErr[*types.ResourceNotFoundException](t, err)
	l, err := cB.ListBackupJobs(ctx, &backup.ListBackupJobsInput{})
	must(t, err)
	lo, err := cB.ListBackupJobs(ctx, &backup.ListBackupJobsInput{ByAccountId: aws.String(acctA.id)})
	must(t, err)
	if len(l.BackupJobs)+len(lo.BackupJobs) != 0 {
		t.Fatalf("B sees A's jobs")
	}
	// The management account (A here) may look at B's; B has none.
	la, err := cA.ListBackupJobs(ctx, &backup.ListBackupJobsInput{ByAccountId: aws.String(acctB.id)})
	must(t, err)
	if len(la.BackupJobs) != 0 {
		t.Fatal("management view of B is not empty")
	}
	rps, err := cB.ListRecoveryPointsByResource(ctx, &backup.ListRecoveryPointsByResourceInput{ResourceArn: aws.String(fs.Arn)})
	must(t, err)
	v, err := cB.ListRecoveryPointsByBackupVault(ctx, &backup.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	if len(rps.RecoveryPoints)+len(v.RecoveryPoints) != 0 {
		t.Fatal("B sees A's recovery points")
	}
	_, err = cB.DescribeRecoveryPoint(ctx, &backup.DescribeRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: out.RecoveryPointArn})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = cB.DeleteRecoveryPoint(ctx, &backup.DeleteRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: out.RecoveryPointArn})
	expectErr[*types.ResourceNotFoundException](t, err)
	_, err = cB.DescribeProtectedResource(ctx, &backup.DescribeProtectedResourceInput{ResourceArn: aws.String(fs.Arn)})
	expectErr[*types.ResourceNotFoundException](t, err)
	p, err := cB.ListProtectedResources(ctx, &backup.ListProtectedResourcesInput{})
	must(t, err)
	if len(p.Results) != 0 {
		t.Fatal("B sees A's protected resources")
	}
}

func TestListBackupJobsFiltersAndPages(t *testing.T) {
	e := startJobs(t, false) // no workers: jobs stay CREATED unless stopped
	c := e.client(acctA)
	e.vault(c, "v1")
	e.vault(c, "v2")
	f1 := e.addFS(acctA, "fs-00000001", 1, 6)
	f2 := e.addFS(acctA, "fs-00000002", 1, 7)
	t0 := e.clock.Now()
	var ids []string
	for i := 0; i < 7; i++ {
		fs, v := f1, "v1"
		if i%2 == 1 {
			fs, v = f2, "v2"
		}
		ids = append(ids, *e.startBackup(c, v, fs, nil).BackupJobId)
		e.clock.Advance(time.Minute)
	}
	// Stop jobs 0 and 1: ABORTED with a completion date.
	for _, id := range ids[:2] {
		_, err := c.StopBackupJob(ctx, &backup.StopBackupJobInput{BackupJobId: aws.String(id)})
		must(t, err)
	}
	count := func(in *backup.ListBackupJobsInput) []string {
		t.Helper()
		var got []string
		p := backup.NewListBackupJobsPaginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			must(t, err)
			if in.MaxResults != nil && len(page.BackupJobs) > int(*in.MaxResults) {
				t.Fatalf("page of %d > MaxResults", len(page.BackupJobs))
			}
			for _, j := range page.BackupJobs {
				got = append(got, *j.BackupJobId)
			}
		}
		return got
	}
	tests := []struct {
		name string
		in   backup.ListBackupJobsInput
		want int
	}{
		{"all paged by 2", backup.ListBackupJobsInput{MaxResults: aws.Int32(2)}, 7},
		{"state CREATED", backup.ListBackupJobsInput{ByState: types.BackupJobStateCreated}, 5},
		{"state ABORTED", backup.ListBackupJobsInput{ByState: types.BackupJobStateAborted}, 2},
		{"resource f1", backup.ListBackupJobsInput{ByResourceArn: aws.String(f1.Arn)}, 4},
		{"vault v2", backup.ListBackupJobsInput{ByBackupVaultName: aws.String("v2")}, 3},
		{"vault v2 + aborted", backup.ListBackupJobsInput{ByBackupVaultName: aws.String("v2"), ByState: types.BackupJobStateAborted}, 1},
		{"type EFS", backup.ListBackupJobsInput{ByResourceType: aws.String("EFS")}, 7},
		{"type other", backup.ListBackupJobsInput{ByResourceType: aws.String("S3")}, 0},
		{"created after", backup.ListBackupJobsInput{ByCreatedAfter: aws.Time(t0.Add(2*time.Minute + time.Second))}, 4},
		{"created before", backup.ListBackupJobsInput{ByCreatedBefore: aws.Time(t0.Add(2 * time.Minute))}, 2},
		{"complete after", backup.ListBackupJobsInput{ByCompleteAfter: aws.Time(t0)}, 2},
		{"complete before", backup.ListBackupJobsInput{ByCompleteBefore: aws.Time(t0)}, 0},
		{"message category", backup.ListBackupJobsInput{ByMessageCategory: aws.String("SUCCESS")}, 0},
		{"message category any", backup.ListBackupJobsInput{ByMessageCategory: aws.String("AGGREGATE_ALL")}, 7},
		{"parent job", backup.ListBackupJobsInput{ByParentJobId: aws.String("X")}, 0},
		{"own account", backup.ListBackupJobsInput{ByAccountId: aws.String(acctA.id), MaxResults: aws.Int32(3)}, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			got := count(&in)
			if len(got) != tc.want {
				t.Fatalf("%d jobs, want %d", len(got), tc.want)
			}
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Fatalf("job %s listed twice", id)
				}
				seen[id] = true
			}
		})
	}
	// Newest first.
	all := count(&backup.ListBackupJobsInput{MaxResults: aws.Int32(3)})
	if all[0] != ids[6] || all[6] != ids[0] {
		t.Fatalf("order %v", all)
	}
	// A token is bound to its filters.
	p1, err := c.ListBackupJobs(ctx, &backup.ListBackupJobsInput{MaxResults: aws.Int32(2)})
	must(t, err)
	_, err = c.ListBackupJobs(ctx, &backup.ListBackupJobsInput{MaxResults: aws.Int32(2), NextToken: p1.NextToken, ByState: types.BackupJobStateCreated})
	expectErr[*types.InvalidParameterValueException](t, err)
	// Start window: a CREATED job whose window passed becomes EXPIRED.
	e.clock.Advance(9 * time.Hour)
	must(t, e.runner.Reconcile(ctx))
	if got := count(&backup.ListBackupJobsInput{ByState: types.BackupJobStateExpired}); len(got) != 5 {
		t.Fatalf("%d expired, want 5", len(got))
	}
}

// E-5: concurrent StartBackupJob calls with one token create one job.
func TestStartBackupJobConcurrentToken(t *testing.T) {
	e := startJobs(t, false)
	c := e.client(acctA)
	e.vault(c, "v1")
	fs := e.addFS(acctA, "fs-0000000e", 1, 10)
	const n = 40
	ids := make(chan string, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			out, err := c.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("v1"), ResourceArn: aws.String(fs.Arn),
				IamRoleArn: aws.String(roleArn), IdempotencyToken: aws.String("same")})
			if err != nil {
				errs <- err
				return
			}
			ids <- *out.BackupJobId
		}()
	}
	first := ""
	for i := 0; i < n; i++ {
		select {
		case err := <-errs:
			t.Fatal(err)
		case id := <-ids:
			if first == "" {
				first = id
			} else if id != first {
				t.Fatalf("job ids %s and %s for one token", first, id)
			}
		}
	}
	l, err := c.ListBackupJobs(ctx, &backup.ListBackupJobsInput{})
	must(t, err)
	if len(l.BackupJobs) != 1 {
		t.Fatalf("%d jobs", len(l.BackupJobs))
	}
}
