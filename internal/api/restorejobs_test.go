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
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/aws/smithy-go"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/resource/fstree/fstreetest"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
	"coffer/internal/vaultrepo/localvaults"
)

const (
	rSrcFS = "fs-00000000000000a01"
	rDstFS = "fs-00000000000000a02"
	rBFS   = "fs-00000000000000b01"
)

// renv is the real server with the real job runner and the restore
// handler, a real vault repository holding a snapshot of src made by
// fstree.Backup, and two file systems of account A and one of account B.
type renv struct {
	t      *testing.T
	url    string
	st     *sqlite.Store
	src    string
	dst    string
	newDir string
	outer  string // parent of everything a restore may touch
	rpArn  string
	srcArn string
	vault  *backup.Vault
}

func startRestoreEnv(t *testing.T) *renv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	repos, err := localvaults.New(filepath.Join(dir, "data"), bytes.Repeat([]byte{5}, 32), repository.Options{PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	e := &renv{t: t, st: st, outer: filepath.Join(dir, "fs")}
	e.src, e.dst, e.newDir = filepath.Join(e.outer, "src"), filepath.Join(e.outer, "dst"), filepath.Join(e.outer, "new")
	for _, d := range []string{e.src, e.dst, filepath.Join(e.outer, "b")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	buildTree(t, e.src)
	clk := clock.Real{}
	stk, err := stack.Build(stack.Options{Store: st, Clock: clk, Repos: repos, NewFileSystemsDir: e.newDir})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.New(jobs.Options{Store: st, Clock: clk, Handlers: []jobs.Handler{stk.Restore}, Poll: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	stk.Service.SetNotifier(runner)
	creds := api.StaticCredentials{acctA.akid: acctA.secret, acctB.akid: acctB.secret}
	srv, err := api.New(api.Config{Region: region, AccountOf: map[string]string{acctA.akid: acctA.id, acctB.akid: acctB.id},
		TokenKey: bytes.Repeat([]byte{7}, 32)},
		api.Deps{Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Service: stk.Service,
			Auth: api.SigV4{V: &sigv4.Verifier{Creds: creds, Clock: clk, Service: "backup", Region: region}}})
	if err != nil {
		t.Fatal(err)
	}
	// Vault, file systems, a snapshot of src and its recovery point.
	now := time.Now().UTC()
	e.vault = &backup.Vault{AccountID: acctA.id, Region: region, Name: "v1", Arn: backup.VaultArn(region, acctA.id, "v1"),
		VaultType: backup.VaultTypeBackup, VaultState: backup.VaultStateAvailable, CreationDate: now}
	e.srcArn = filesystem.ARN(region, acctA.id, rSrcFS)
	mustDo(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.CreateVault(ctx, e.vault); err != nil {
			return err
		}
		for _, fs := range []*fileSystem{
			{AccountID: acctA.id, Region: region, ID: rSrcFS, Arn: e.srcArn, Path: e.src, CreationDate: now},
			{AccountID: acctA.id, Region: region, ID: rDstFS, Arn: filesystem.ARN(region, acctA.id, rDstFS), Path: e.dst, CreationDate: now},
			{AccountID: acctB.id, Region: region, ID: rBFS, Arn: filesystem.ARN(region, acctB.id, rBFS), Path: filepath.Join(e.outer, "b"), CreationDate: now},
		} {
			if err := upsertFS(ctx, tx, fs); err != nil {
				return err
			}
		}
		return nil
	}))
	mustDo(t, repos.CreateVaultStorage(ctx, e.vault))
	repo, err := repos.Open(ctx, e.vault)
	mustDo(t, err)
	var res fstree.BackupResult
	mustDo(t, repo.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		var err error
		res, err = fstree.Backup(ctx, w, nil, e.src, fstree.BackupOptions{})
		return err
	}))
	man, err := repo.SaveManifest(ctx, repository.Manifest{Root: res.Root})
	mustDo(t, err)
	e.rpArn = backup.RecoveryPointArn(region, acctA.id, "11111111-2222-3333-4444-555555555555")
	created := now.Add(-time.Hour)
	mustDo(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.CreateRecoveryPoint(ctx, &backup.RecoveryPoint{Arn: e.rpArn, AccountID: acctA.id, Region: region, VaultName: "v1",
			VaultArn: e.vault.Arn, ResourceArn: e.srcArn, ResourceType: "EFS", Status: "COMPLETED", StorageClass: "WARM",
			BackupSizeBytes: res.BytesTotal, CreationDate: created, CompletionDate: &now, ManifestID: man.ID,
			Tags: map[string]string{"team": "storage"}}); err != nil {
			return err
		}
		return tx.UpsertProtectedResource(ctx, &backup.ProtectedResource{AccountID: acctA.id, Region: region, ResourceArn: e.srcArn,
			ResourceType: "EFS", LastBackupTime: &now, LastBackupVaultArn: e.vault.Arn, LastRecoveryPointArn: e.rpArn})
	}))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	done := make(chan error, 2)
	go func() { done <- srv.Serve(ctx, ln) }()
	go func() { done <- runner.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("serve/run: %v", err)
			}
		}
		repos.Close()
		st.Close()
	})
	return e
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *renv) client(a account) *sdk.Client {
	return sdk.New(sdk.Options{Region: region, BaseEndpoint: aws.String(e.url),
		Credentials: credentials.NewStaticCredentialsProvider(a.akid, a.secret, ""), RetryMaxAttempts: 1})
}

func buildTree(t *testing.T, root string) {
	files := map[string]string{"small.txt": "hello\n", "dir/a.go": strings.Repeat("a", 5000), "dir/sub/b.txt": strings.Repeat("b", 70000),
		"dir/sub/c.go": "package c\n", "vendor/v.go": "package v\n", "docs/readme.md": "# docs\n", "empty": ""}
	big := make([]byte, 3<<20+5)
	x := uint32(7)
	for i := range big {
		x = x*1664525 + 1013904223
		big[i] = byte(x >> 24)
	}
	files["big.bin"] = string(big)
	for name, data := range files {
		p := filepath.Join(root, name)
		mustDo(t, os.MkdirAll(filepath.Dir(p), 0o755))
		mustDo(t, os.WriteFile(p, []byte(data), 0o640))
	}
	mustDo(t, os.Symlink("../small.txt", filepath.Join(root, "dir", "link")))
	mustDo(t, os.MkdirAll(filepath.Join(root, "emptydir"), 0o700))
}

// wait polls DescribeRestoreJob until the job is terminal.
func (e *renv) wait(c *sdk.Client, id string) *sdk.DescribeRestoreJobOutput {
	e.t.Helper()
	for i := 0; ; i++ {
		out, err := c.DescribeRestoreJob(context.Background(), &sdk.DescribeRestoreJobInput{RestoreJobId: aws.String(id)})
		if err != nil {
			e.t.Fatal(err)
		}
		switch out.Status {
		case types.RestoreJobStatusCompleted, types.RestoreJobStatusFailed, types.RestoreJobStatusAborted:
			return out
		}
		if i > 6000 { // a guard against a hung job, not a timing assertion
			e.t.Fatalf("job %s still %s", id, out.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *renv) restore(c *sdk.Client, md map[string]string) (*sdk.DescribeRestoreJobOutput, error) {
	out, err := c.StartRestoreJob(context.Background(), &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), Metadata: md})
	if err != nil {
		return nil, err
	}
	return e.wait(c, *out.RestoreJobId), nil
}

func treeDiff(t *testing.T, a, b string) {
	t.Helper()
	d, err := fstreetest.CompareTrees(a, b, fstreetest.CompareOptions{ModeMask: 0o777, MTime: true})
	mustDo(t, err)
	if len(d) > 0 {
		t.Fatalf("trees differ:\n%s", strings.Join(d, "\n"))
	}
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func filesUnder(t *testing.T, root string) []string {
	m, err := fstreetest.Walk(root)
	mustDo(t, err)
	var out []string
	for rel, ent := range m {
		if rel != "" && ent.Mode&0o170000 != 0o040000 {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out
}

func TestSDKRestoreRoundTrips(t *testing.T) {
	e := startRestoreEnv(t)
	c := e.client(acctA)
	ctx := context.Background()

	// Full restore to a new file system, source tags copied.
	start, err := c.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(e.rpArn), ResourceType: aws.String("EFS"),
		CopySourceTagsToRestoredResource: true, IamRoleArn: aws.String("arn:aws:iam::" + acctA.id + ":role/restore"),
		Metadata: map[string]string{"file-system-id": rSrcFS, "newFileSystem": "true", "CreationToken": "sdk-1"}})
	mustDo(t, err)
	d := e.wait(c, *start.RestoreJobId)
	if d.Status != types.RestoreJobStatusCompleted {
		t.Fatalf("new FS restore %s: %s", d.Status, aws.ToString(d.StatusMessage))
	}
	fsID := aws.ToString(d.CreatedResourceArn)[strings.LastIndex(aws.ToString(d.CreatedResourceArn), "/")+1:]
	if !strings.HasPrefix(aws.ToString(d.CreatedResourceArn), "arn:aws:elasticfilesystem:"+region+":"+acctA.id+":file-system/fs-") || len(fsID) != 20 {
		t.Fatalf("CreatedResourceArn %q", aws.ToString(d.CreatedResourceArn))
	}
	treeDiff(t, e.src, filepath.Join(e.newDir, fsID))
	if aws.ToString(d.AccountId) != acctA.id || aws.ToString(d.PercentDone) != "100.0" || d.CompletionDate == nil || d.CreationDate == nil ||
		aws.ToString(d.RecoveryPointArn) != e.rpArn || aws.ToString(d.SourceResourceArn) != e.srcArn || aws.ToString(d.BackupVaultArn) != e.vault.Arn ||
		aws.ToString(d.ResourceType) != "EFS" || aws.ToString(d.IamRoleArn) != "arn:aws:iam::"+acctA.id+":role/restore" ||
		d.RecoveryPointCreationDate == nil || aws.ToInt64(d.BackupSizeInBytes) <= 0 {
		t.Fatalf("DescribeRestoreJob fields: %+v", d)
	}
	var fs *backup.Resource
	mustDo(t, e.st.Read(ctx, func(tx store.Tx) error {
		var err error
		fs, err = tx.GetResource(ctx, store.Scope{AccountID: acctA.id, Region: region}, filesystem.ResourceType, fsID)
		return err
	}))
	if fs.Tags["team"] != "storage" {
		t.Errorf("tags not copied: %v", fs.Tags)
	}
	md, err := c.GetRestoreJobMetadata(ctx, &sdk.GetRestoreJobMetadataInput{RestoreJobId: start.RestoreJobId})
	mustDo(t, err)
	if md.Metadata["CreationToken"] != "sdk-1" || md.Metadata["PerformanceMode"] != "generalPurpose" || md.Metadata["newFileSystem"] != "true" {
		t.Errorf("GetRestoreJobMetadata %v", md.Metadata)
	}

	// Into the existing file system: a new aws-backup-restore_ directory.
	d, err = e.restore(c, map[string]string{"file-system-id": rDstFS, "newfilesystem": "false"})
	mustDo(t, err)
	if d.Status != types.RestoreJobStatusCompleted {
		t.Fatalf("existing FS restore %s: %s", d.Status, aws.ToString(d.StatusMessage))
	}
	ents := visibleEntries(e.dst)
	if len(ents) != 1 || !strings.HasPrefix(ents[0], "aws-backup-restore_") {
		t.Fatalf("target root holds %v", ents)
	}
	treeDiff(t, e.src, filepath.Join(e.dst, ents[0]))

	// Item-level, globs and in-place restores.
	for _, tc := range []struct {
		name string
		md   map[string]string
		want []string
	}{
		{"file", map[string]string{"ItemsToRestore": `["/dir/sub/b.txt"]`, "TargetPath": "/one-file"}, []string{"dir/sub/b.txt"}},
		{"directory", map[string]string{"ItemsToRestore": `["/dir/sub"]`, "TargetPath": "/one-dir"}, []string{"dir/sub/b.txt", "dir/sub/c.go"}},
		{"several", map[string]string{"ItemsToRestore": `["/small.txt","/docs"]`, "TargetPath": "/several"}, []string{"docs/readme.md", "small.txt"}},
		{"globs", map[string]string{"Include": `["**/*.go"]`, "Exclude": `["vendor"]`, "TargetPath": "/globs"}, []string{"dir/a.go", "dir/sub/c.go"}},
	} {
		tc.md["file-system-id"], tc.md["newFileSystem"] = rDstFS, "false"
		d, err := e.restore(c, tc.md)
		mustDo(t, err)
		if d.Status != types.RestoreJobStatusCompleted {
			t.Fatalf("%s: %s %s", tc.name, d.Status, aws.ToString(d.StatusMessage))
		}
		got := filesUnder(t, filepath.Join(e.dst, tc.md["TargetPath"]))
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Fatalf("%s: restored %v, want %v", tc.name, got, tc.want)
		}
	}
	// In place with each conflict policy on a pre-populated directory.
	for _, policy := range []string{"SKIP_EXISTING", "OVERWRITE_EXISTING", "OVERWRITE_IF_NEWER"} {
		dir := filepath.Join(e.dst, "inplace-"+policy)
		mustDo(t, os.MkdirAll(dir, 0o755))
		mustDo(t, os.WriteFile(filepath.Join(dir, "small.txt"), []byte("old"), 0o644))
		old := time.Unix(1_000_000_000, 0) // older than the source
		mustDo(t, os.Chtimes(filepath.Join(dir, "small.txt"), old, old))
		d, err := e.restore(c, map[string]string{"file-system-id": rDstFS, "newFileSystem": "false", "TargetPath": "/inplace-" + policy,
			"ConflictPolicy": policy})
		mustDo(t, err)
		if d.Status != types.RestoreJobStatusCompleted {
			t.Fatalf("%s: %s %s", policy, d.Status, aws.ToString(d.StatusMessage))
		}
		b, _ := os.ReadFile(filepath.Join(dir, "small.txt"))
		if want := map[bool]string{true: "old", false: "hello\n"}[policy == "SKIP_EXISTING"]; string(b) != want {
			t.Errorf("%s: small.txt = %q, want %q", policy, b, want)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "dir/sub/c.go")); string(b) != "package c\n" {
			t.Errorf("%s: missing entries not restored", policy)
		}
	}

	// Echoing GetRecoveryPointRestoreMetadata back creates a new file system.
	rm, err := c.GetRecoveryPointRestoreMetadata(ctx, &sdk.GetRecoveryPointRestoreMetadataInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(e.rpArn)})
	mustDo(t, err)
	if rm.RestoreMetadata["file-system-id"] != rSrcFS || aws.ToString(rm.ResourceType) != "EFS" || aws.ToString(rm.BackupVaultArn) != e.vault.Arn {
		t.Fatalf("GetRecoveryPointRestoreMetadata %+v", rm)
	}
	d, err = e.restore(c, rm.RestoreMetadata)
	mustDo(t, err)
	if d.Status != types.RestoreJobStatusCompleted {
		t.Fatalf("echoed metadata: %s %s", d.Status, aws.ToString(d.StatusMessage))
	}

	// Monitoring: lists, filters, pagination, by protected resource.
	all := 0
	p := sdk.NewListRestoreJobsPaginator(c, &sdk.ListRestoreJobsInput{MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		pg, err := p.NextPage(ctx)
		mustDo(t, err)
		all += len(pg.RestoreJobs)
	}
	if all != 10 {
		t.Fatalf("ListRestoreJobs paged %d jobs, want 10", all)
	}
	for _, tc := range []struct {
		in   *sdk.ListRestoreJobsInput
		want int
	}{
		{&sdk.ListRestoreJobsInput{ByStatus: types.RestoreJobStatusCompleted}, 10},
		{&sdk.ListRestoreJobsInput{ByStatus: types.RestoreJobStatusFailed}, 0},
		{&sdk.ListRestoreJobsInput{ByResourceType: aws.String("EFS")}, 10},
		{&sdk.ListRestoreJobsInput{ByResourceType: aws.String("S3")}, 0},
		{&sdk.ListRestoreJobsInput{ByCreatedAfter: aws.Time(time.Now().Add(time.Hour))}, 0},
		{&sdk.ListRestoreJobsInput{ByCreatedBefore: aws.Time(time.Now().Add(time.Hour))}, 10},
		{&sdk.ListRestoreJobsInput{ByCompleteAfter: aws.Time(time.Now().Add(-time.Hour))}, 10},
		{&sdk.ListRestoreJobsInput{ByCompleteBefore: aws.Time(time.Now().Add(-time.Hour))}, 0},
		{&sdk.ListRestoreJobsInput{ByParentJobId: aws.String("nope")}, 0},
		{&sdk.ListRestoreJobsInput{ByAccountId: aws.String(acctA.id)}, 10},
		{&sdk.ListRestoreJobsInput{ByRestoreTestingPlanArn: aws.String("arn:aws:backup:us-east-1:111111111111:restore-testing-plan:x")}, 0},
	} {
		out, err := c.ListRestoreJobs(ctx, tc.in)
		mustDo(t, err)
		if len(out.RestoreJobs) != tc.want {
			t.Errorf("ListRestoreJobs %+v: %d jobs, want %d", tc.in, len(out.RestoreJobs), tc.want)
		}
	}
	byRes, err := c.ListRestoreJobsByProtectedResource(ctx, &sdk.ListRestoreJobsByProtectedResourceInput{ResourceArn: aws.String(e.srcArn),
		ByRecoveryPointCreationDateBefore: aws.Time(time.Now())})
	mustDo(t, err)
	if len(byRes.RestoreJobs) != 10 {
		t.Errorf("ListRestoreJobsByProtectedResource: %d", len(byRes.RestoreJobs))
	}
	byRes, err = c.ListRestoreJobsByProtectedResource(ctx, &sdk.ListRestoreJobsByProtectedResourceInput{ResourceArn: aws.String(e.srcArn),
		ByRecoveryPointCreationDateAfter: aws.Time(time.Now().Add(-time.Minute))})
	mustDo(t, err)
	if len(byRes.RestoreJobs) != 0 {
		t.Errorf("ListRestoreJobsByProtectedResource after RP creation: %d", len(byRes.RestoreJobs))
	}
	_, err = c.ListRestoreJobsByProtectedResource(ctx, &sdk.ListRestoreJobsByProtectedResourceInput{ResourceArn: aws.String(filesystem.ARN(region, acctA.id, "fs-99999999"))})
	if errCode(err) != "ResourceNotFoundException" {
		t.Errorf("by unknown resource: %v", err)
	}
	var rp *backup.RecoveryPoint
	var lr *store.LatestRestore
	mustDo(t, e.st.Read(ctx, func(tx store.Tx) error {
		var err error
		sc := store.Scope{AccountID: acctA.id, Region: region}
		if rp, err = tx.GetRecoveryPoint(ctx, sc, e.rpArn); err != nil {
			return err
		}
		lr, err = tx.GetLatestRestore(ctx, sc, e.srcArn)
		return err
	}))
	if rp.LastRestoreTime == nil || lr.JobCreationDate.IsZero() {
		t.Errorf("LastRestoreTime %v, latest restore %+v", rp.LastRestoreTime, lr)
	}
}

// visibleEntries lists dir without staging directories: a completed
// restore's staging directory (only its record of where the data went) is
// removed right after the completion commits, so it may still be there.
func visibleEntries(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), fstree.StagingPrefix) {
			out = append(out, e.Name())
		}
	}
	return out
}
