package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/aws/smithy-go"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	cb "coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

type copyEnv struct {
	*env
	repos  *vaultrepo.Manager
	newDir string // restores' new file systems
}

// startCopy runs the real server and job runner with the BACKUP and COPY
// handlers on real vault repositories.
func startCopy(t *testing.T) *copyEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	must(t, err)
	fake := clock.NewFake(time.Now())
	repos, err := localvaults.New(filepath.Join(dir, "data"), bytes.Repeat([]byte{5}, 32), repository.Options{Clock: fake, PackSize: 1 << 20})
	must(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	newDir := filepath.Join(dir, "newfs")
	stk, err := stack.Build(stack.Options{Store: st, Clock: fake, Repos: repos, NewFileSystemsDir: newDir, Logger: quiet})
	must(t, err)
	runner, err := jobs.New(jobs.Options{Store: st, Clock: fake, LeaseTTL: 2 * time.Second, Poll: 20 * time.Millisecond, Logger: quiet,
		Handlers: stk.Handlers()})
	must(t, err)
	stk.Service.SetNotifier(runner)
	creds := api.StaticCredentials{acctA.akid: acctA.secret, acctB.akid: acctB.secret}
	srv, err := api.New(api.Config{Region: region, ManagementAccount: acctA.id,
		AccountOf: map[string]string{acctA.akid: acctA.id, acctB.akid: acctB.id},
		TokenKey:  bytes.Repeat([]byte{7}, 32)},
		api.Deps{Clock: fake, Logger: quiet, Service: stk.Service,
			Auth: api.SigV4{V: &sigv4.Verifier{Creds: creds, Clock: clock.Real{}, Service: "backup", Region: region}}})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx, ln) }()
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for i := 0; i < 2; i++ {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("serve/run: %v", err)
			}
		}
		repos.Close()
		st.Close()
	})
	return &copyEnv{env: &env{t: t, url: "http://" + ln.Addr().String(), store: st, clock: fake}, repos: repos, newDir: newDir}
}

func cpWaitCopy(t *testing.T, c *backup.Client, id string) *types.CopyJob {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // a hang guard, not a timing assertion
	for time.Now().Before(deadline) {
		d, err := c.DescribeCopyJob(context.Background(), &backup.DescribeCopyJobInput{CopyJobId: aws.String(id)})
		must(t, err)
		if s := string(d.CopyJob.State); s == "COMPLETED" || s == "FAILED" {
			return d.CopyJob
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("copy job %s did not finish", id)
	return nil
}

func cpWaitBackup(t *testing.T, c *backup.Client, id string) *backup.DescribeBackupJobOutput {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		d, err := c.DescribeBackupJob(context.Background(), &backup.DescribeBackupJobInput{BackupJobId: aws.String(id)})
		must(t, err)
		if cb.JobState(d.State).Terminal() {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("backup job %s did not finish", id)
	return nil
}

func cpFile(t *testing.T, p string, n int, seed byte) {
	b := make([]byte, n)
	x := uint32(seed) + 7
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, b, 0o644))
}

// cpRestoreCompare restores a recovery point of vault (acct, name) with
// fstree and compares every file with the source directory.
func (e *copyEnv) cpRestoreCompare(acct, name, rpArn, src string) {
	t := e.t
	ctx := context.Background()
	var v *cb.Vault
	var rp *cb.RecoveryPoint
	sc := store.Scope{AccountID: acct, Region: region}
	must(t, e.store.Read(ctx, func(tx store.Tx) error {
		var err error
		if v, err = tx.GetVault(ctx, sc, name); err != nil {
			return err
		}
		rp, err = tx.GetRecoveryPoint(ctx, sc, rpArn)
		return err
	}))
	repo, err := e.repos.Open(ctx, v)
	must(t, err)
	m, err := repo.LoadManifest(ctx, rp.ManifestID)
	must(t, err)
	target := t.TempDir()
	_, err = fstree.Restore(ctx, repo, m.Root, fstree.RestoreOptions{TargetRoot: target, Dest: "out", StagingID: "s"})
	must(t, err)
	cpCompareDirs(t, src, filepath.Join(target, "out"))
}

// cpCompareDirs compares every regular file of src with the same path
// under got.
func cpCompareDirs(t *testing.T, src, got string) {
	t.Helper()
	n := 0
	must(t, filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs after restore of the copy (%v)", rel, err)
		}
		n++
		return nil
	}))
	if n == 0 {
		t.Fatal("no files compared")
	}
}

func TestCopyJobsEndToEnd(t *testing.T) {
	e := startCopy(t)
	ctx := context.Background()
	a, b := e.client(acctA), e.client(acctB)
	src := filepath.Join(t.TempDir(), "src")
	cpFile(t, filepath.Join(src, "a.bin"), 2<<20, 1)
	cpFile(t, filepath.Join(src, "d/b.bin"), 300000, 2)
	fsArn := filesystem.ARN(region, acctA.id, "fs-0000000000000000c")
	must(t, e.store.Write(ctx, func(tx store.Tx) error {
		return upsertFS(ctx, tx, &fileSystem{AccountID: acctA.id, Region: region, ID: "fs-0000000000000000c", Arn: fsArn,
			Path: src, Name: "data", CreationDate: e.clock.Now()})
	}))
	for _, v := range []struct {
		c    *backup.Client
		name string
	}{{a, "src"}, {a, "dst"}, {b, "remote"}} {
		_, err := v.c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String(v.name)})
		must(t, err)
	}
	role := "arn:aws:iam::111111111111:role/backup"
	bj, err := a.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("src"), ResourceArn: aws.String(fsArn),
		IamRoleArn: aws.String(role), Lifecycle: &types.Lifecycle{DeleteAfterDays: aws.Int64(35)}})
	must(t, err)
	if d := cpWaitBackup(t, a, *bj.BackupJobId); d.State != types.BackupJobStateCompleted {
		t.Fatalf("backup: %s %s", d.State, aws.ToString(d.StatusMessage))
	}
	rpArn := aws.ToString(bj.RecoveryPointArn)
	dstArn := cb.VaultArn(region, acctA.id, "dst")
	remoteArn := cb.VaultArn(region, acctB.id, "remote")
	start := func(dest string, lc *types.Lifecycle, token *string) string {
		out, err := a.StartCopyJob(ctx, &backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("src"),
			DestinationBackupVaultArn: aws.String(dest), IamRoleArn: aws.String(role), Lifecycle: lc, IdempotencyToken: token})
		must(t, err)
		if out.CreationDate == nil {
			t.Fatal("no CreationDate")
		}
		return aws.ToString(out.CopyJobId)
	}

	// Same account.
	id1 := start(dstArn, &types.Lifecycle{DeleteAfterDays: aws.Int64(100)}, aws.String("tok-1"))
	if again := start(dstArn, &types.Lifecycle{DeleteAfterDays: aws.Int64(100)}, aws.String("tok-1")); again != id1 {
		t.Fatalf("idempotent retry started %s, first %s", again, id1)
	}
	_, err = a.StartCopyJob(ctx, &backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("src"),
		DestinationBackupVaultArn: aws.String(dstArn), IamRoleArn: aws.String(role), IdempotencyToken: aws.String("tok-1")})
	expectErr[*types.InvalidRequestException](t, err)
	j1 := cpWaitCopy(t, a, id1)
	if j1.State != types.CopyJobStateCompleted || aws.ToString(j1.AccountId) != acctA.id || aws.ToString(j1.SourceRecoveryPointArn) != rpArn ||
		aws.ToString(j1.DestinationBackupVaultArn) != dstArn || aws.ToString(j1.ResourceArn) != fsArn || j1.ResourceType == nil ||
		aws.ToInt64(j1.BackupSizeInBytes) != 2<<20+300000 || j1.CompletionDate == nil || aws.ToString(j1.DestinationRecoveryPointArn) == "" ||
		aws.ToString(j1.SourceBackupVaultArn) != cb.VaultArn(region, acctA.id, "src") || aws.ToInt64(j1.DestinationRecoveryPointLifecycle.DeleteAfterDays) != 100 {
		t.Fatalf("copy job: %+v", j1)
	}
	rps, err := a.ListRecoveryPointsByBackupVault(ctx, &backup.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("dst")})
	must(t, err)
	if len(rps.RecoveryPoints) != 1 || aws.ToString(rps.RecoveryPoints[0].RecoveryPointArn) != aws.ToString(j1.DestinationRecoveryPointArn) ||
		aws.ToString(rps.RecoveryPoints[0].SourceBackupVaultArn) != cb.VaultArn(region, acctA.id, "src") {
		t.Fatalf("destination recovery points: %+v", rps.RecoveryPoints)
	}
	e.cpRestoreCompare(acctA.id, "dst", aws.ToString(j1.DestinationRecoveryPointArn), src)

	// Cross account without a policy: the call succeeds, the job fails.
	id2 := start(remoteArn, nil, nil)
	j2 := cpWaitCopy(t, a, id2)
	if j2.State != types.CopyJobStateFailed || !strings.Contains(aws.ToString(j2.StatusMessage), "Access denied") ||
		aws.ToString(j2.MessageCategory) != "AccessDenied" {
		t.Fatalf("unauthorised copy: %s %q %q", j2.State, aws.ToString(j2.StatusMessage), aws.ToString(j2.MessageCategory))
	}
	// Copies into a vault of B that does not exist fail the same way.
	j2b := cpWaitCopy(t, a, start(cb.VaultArn(region, acctB.id, "missing"), nil, nil))
	if j2b.State != types.CopyJobStateFailed || aws.ToString(j2b.MessageCategory) != "AccessDenied" {
		t.Fatalf("copy into a missing foreign vault: %s %q", j2b.State, aws.ToString(j2b.StatusMessage))
	}

	// B allows A: the copy belongs to B and restores there.
	_, err = b.PutBackupVaultAccessPolicy(ctx, &backup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String("remote"),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"backup:CopyIntoBackupVault","Resource":"*"}]}`)})
	must(t, err)
	j3 := cpWaitCopy(t, a, start(remoteArn, &types.Lifecycle{DeleteAfterDays: aws.Int64(-1)}, nil))
	if j3.State != types.CopyJobStateCompleted || !strings.Contains(aws.ToString(j3.DestinationRecoveryPointArn), ":"+acctB.id+":") {
		t.Fatalf("authorised cross-account copy: %s %q %s", j3.State, aws.ToString(j3.StatusMessage), aws.ToString(j3.DestinationRecoveryPointArn))
	}
	brp, err := b.DescribeRecoveryPoint(ctx, &backup.DescribeRecoveryPointInput{BackupVaultName: aws.String("remote"),
		RecoveryPointArn: j3.DestinationRecoveryPointArn})
	must(t, err)
	if brp.Status != types.RecoveryPointStatusCompleted {
		t.Fatalf("copied recovery point status %s", brp.Status)
	}
	e.cpRestoreCompare(acctB.id, "remote", aws.ToString(j3.DestinationRecoveryPointArn), src)
	// B restores its copy with StartRestoreJob into a new file system.
	rs, err := b.StartRestoreJob(ctx, &backup.StartRestoreJobInput{RecoveryPointArn: j3.DestinationRecoveryPointArn, ResourceType: aws.String("EFS"),
		Metadata: map[string]string{"file-system-id": "fs-0000000000000000c", "newFileSystem": "true", "CreationToken": "copy-restore"}})
	must(t, err)
	var rj *backup.DescribeRestoreJobOutput
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		rj, err = b.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: rs.RestoreJobId})
		must(t, err)
		if rj.Status == types.RestoreJobStatusCompleted || rj.Status == types.RestoreJobStatusFailed || rj.Status == types.RestoreJobStatusAborted {
			break
		}
	}
	if rj.Status != types.RestoreJobStatusCompleted || aws.ToString(rj.AccountId) != acctB.id {
		t.Fatalf("restore of the copy in B: %s %q (account %s)", rj.Status, aws.ToString(rj.StatusMessage), aws.ToString(rj.AccountId))
	}
	created := aws.ToString(rj.CreatedResourceArn)
	if !strings.Contains(created, ":"+acctB.id+":file-system/") {
		t.Fatalf("CreatedResourceArn %q is not B's", created)
	}
	cpCompareDirs(t, src, filepath.Join(e.newDir, created[strings.LastIndex(created, "/")+1:]))
	// A cannot see it as its own.
	if _, err := a.DescribeRecoveryPoint(ctx, &backup.DescribeRecoveryPointInput{BackupVaultName: aws.String("remote"),
		RecoveryPointArn: j3.DestinationRecoveryPointArn}); err == nil {
		t.Fatal("source account described the destination account's recovery point")
	}

	// ListCopyJobs filters.
	list := func(in *backup.ListCopyJobsInput) []string {
		var ids []string
		p := backup.NewListCopyJobsPaginator(a, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			must(t, err)
			for _, j := range out.CopyJobs {
				ids = append(ids, aws.ToString(j.CopyJobId))
			}
		}
		return ids
	}
	for _, c := range []struct {
		name string
		in   backup.ListCopyJobsInput
		want int
	}{
		{"all, pages of 1", backup.ListCopyJobsInput{MaxResults: aws.Int32(1)}, 4},
		{"state FAILED", backup.ListCopyJobsInput{ByState: types.CopyJobStateFailed}, 2},
		{"destination vault", backup.ListCopyJobsInput{ByDestinationVaultArn: aws.String(remoteArn)}, 2},
		{"source RP", backup.ListCopyJobsInput{BySourceRecoveryPointArn: aws.String(rpArn)}, 4},
		{"resource", backup.ListCopyJobsInput{ByResourceArn: aws.String(fsArn), ByResourceType: aws.String("EFS")}, 4},
		{"message category", backup.ListCopyJobsInput{ByMessageCategory: aws.String("AccessDenied")}, 2},
		{"created after now", backup.ListCopyJobsInput{ByCreatedAfter: aws.Time(e.clock.Now().Add(time.Second))}, 0},
		{"complete before", backup.ListCopyJobsInput{ByCompleteBefore: aws.Time(e.clock.Now().Add(time.Hour))}, 4},
		{"complete after", backup.ListCopyJobsInput{ByCompleteAfter: aws.Time(e.clock.Now().Add(time.Hour))}, 0},
		{"parent", backup.ListCopyJobsInput{ByParentJobId: aws.String("X")}, 0},
		{"own account", backup.ListCopyJobsInput{ByAccountId: aws.String(acctA.id)}, 4},
	} {
		in := c.in
		if got := list(&in); len(got) != c.want {
			t.Errorf("%s: %d jobs, want %d", c.name, len(got), c.want)
		}
	}
	// Validation on the call.
	for _, c := range []struct {
		name string
		in   backup.StartCopyJobInput
		chk  func(error)
	}{
		{"unknown source vault", backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("nope"),
			DestinationBackupVaultArn: aws.String(dstArn), IamRoleArn: aws.String(role)}, func(err error) { expectErr[*types.ResourceNotFoundException](t, err) }},
		{"wrong source vault", backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("dst"),
			DestinationBackupVaultArn: aws.String(dstArn), IamRoleArn: aws.String(role)}, func(err error) { expectErr[*types.ResourceNotFoundException](t, err) }},
		{"missing own destination", backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("src"),
			DestinationBackupVaultArn: aws.String(cb.VaultArn(region, acctA.id, "nope")), IamRoleArn: aws.String(role)}, func(err error) { expectErr[*types.ResourceNotFoundException](t, err) }},
		{"bad destination arn", backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("src"),
			DestinationBackupVaultArn: aws.String("arn:aws:s3:::bucket"), IamRoleArn: aws.String(role)}, func(err error) { expectErr[*types.InvalidParameterValueException](t, err) }},
		{"other region", backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("src"),
			DestinationBackupVaultArn: aws.String(cb.VaultArn("eu-west-1", acctA.id, "dst")), IamRoleArn: aws.String(role)}, func(err error) { expectErr[*types.InvalidParameterValueException](t, err) }},
		{"bad role", backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("src"),
			DestinationBackupVaultArn: aws.String(dstArn), IamRoleArn: aws.String("role")}, func(err error) { expectErr[*types.InvalidParameterValueException](t, err) }},
		{"bad lifecycle", backup.StartCopyJobInput{RecoveryPointArn: aws.String(rpArn), SourceBackupVaultName: aws.String("src"),
			DestinationBackupVaultArn: aws.String(dstArn), IamRoleArn: aws.String(role), Lifecycle: &types.Lifecycle{DeleteAfterDays: aws.Int64(-2)}},
			func(err error) { expectErr[*types.InvalidParameterValueException](t, err) }},
		{"foreign recovery point", backup.StartCopyJobInput{RecoveryPointArn: aws.String(cb.RecoveryPointArn(region, acctB.id, "x")),
			SourceBackupVaultName: aws.String("src"), DestinationBackupVaultArn: aws.String(dstArn), IamRoleArn: aws.String(role)},
			func(err error) {
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
					t.Fatalf("error %v, want AccessDeniedException", err)
				}
			}},
	} {
		in := c.in
		_, err := a.StartCopyJob(ctx, &in)
		if err == nil {
			t.Fatalf("%s: accepted", c.name)
		}
		c.chk(err)
	}
	// B cannot see A's copy jobs.
	if _, err := b.DescribeCopyJob(ctx, &backup.DescribeCopyJobInput{CopyJobId: aws.String(id1)}); err == nil {
		t.Fatal("B described A's copy job")
	}
}
