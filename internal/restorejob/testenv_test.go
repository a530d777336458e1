package restorejob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/resource/fstree/fstreetest"
	"coffer/internal/restorejob"
	"coffer/internal/service"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

const (
	region = "us-east-1"
	acctA  = "111111111111"
	acctB  = "222222222222"
	srcFS  = "fs-0000000000000000a"
	dstFS  = "fs-0000000000000000b"
)

var scA = store.Scope{AccountID: acctA, Region: region}

// env is a real SQLite store, a real vault repository on disk (vaultrepo),
// a source file system that was backed up into a COMPLETED recovery point,
// and an existing target file system.
type env struct {
	t       testing.TB
	size    int64 // logical bytes of the backed-up tree
	st      *sqlite.Store
	repos   *vaultrepo.Manager
	vault   *backup.Vault
	svc     *restoreSvc
	clock   *clock.Fake
	src     string // source tree
	dst     string // existing target file system root
	newDir  string // new_file_systems_dir
	rpArn   string
	srcArn  string
	rpTags  map[string]string
	rpCreat time.Time
}

func newEnv(t *testing.T) *env {
	return newEnvWith(t, func(tb testing.TB, root string) { fstreetest.MakeTree(tb, root) })
}

func newEnvWith(t testing.TB, mk func(testing.TB, string)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master := bytes.Repeat([]byte{9}, 32)
	repos, err := localvaults.New(filepath.Join(dir, "data"), master, repository.Options{PackSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repos.Close() })
	e := &env{t: t, st: st, repos: repos, clock: clock.NewFake(time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)),
		src: filepath.Join(dir, "src"), dst: filepath.Join(dir, "dst"), newDir: filepath.Join(dir, "newfs")}
	e.svc = newRestoreSvc(t, st, repos, e.clock, e.newDir)
	for _, d := range []string{e.src, e.dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk(t, e.src)
	e.vault = &backup.Vault{AccountID: acctA, Region: region, Name: "v1", Arn: backup.VaultArn(region, acctA, "v1"),
		VaultType: backup.VaultTypeBackup, VaultState: backup.VaultStateAvailable, CreationDate: e.clock.Now()}
	e.srcArn = filesystem.ARN(region, acctA, srcFS)
	e.rpTags = map[string]string{"team": "storage", "env": "prod"}
	must(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.CreateVault(ctx, e.vault); err != nil {
			return err
		}
		for _, fs := range []*fileSystem{
			{AccountID: acctA, Region: region, ID: srcFS, Arn: e.srcArn, Path: e.src, CreationDate: e.clock.Now()},
			{AccountID: acctA, Region: region, ID: dstFS, Arn: filesystem.ARN(region, acctA, dstFS), Path: e.dst, CreationDate: e.clock.Now()},
		} {
			if err := upsertFS(ctx, tx, fs); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, repos.CreateVaultStorage(ctx, e.vault))
	e.rpArn = e.backup(e.src, "COMPLETED")
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// backup stores tree into the vault repository (fstree.Backup +
// SaveManifest) and inserts its recovery point row.
func (e *env) backup(tree, status string) string {
	t := e.t
	ctx := context.Background()
	repo, err := e.repos.Open(ctx, e.vault)
	must(t, err)
	var res fstree.BackupResult
	must(t, repo.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		var err error
		res, err = fstree.Backup(ctx, w, nil, tree, fstree.BackupOptions{})
		return err
	}))
	if len(res.Problems) > 0 {
		t.Fatalf("backup problems: %v", res.Problems)
	}
	e.size = res.BytesTotal
	man, err := repo.SaveManifest(ctx, repository.Manifest{Root: res.Root})
	must(t, err)
	n, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	arn := backup.RecoveryPointArn(region, acctA, "rp-"+strconv.FormatInt(n.Int64(), 16))
	e.rpCreat = e.clock.Now().Add(-time.Hour)
	done := e.clock.Now()
	must(t, e.st.Write(ctx, func(tx store.Tx) error {
		if err := tx.CreateRecoveryPoint(ctx, &backup.RecoveryPoint{Arn: arn, AccountID: acctA, Region: region, VaultName: e.vault.Name,
			VaultArn: e.vault.Arn, ResourceArn: e.srcArn, ResourceType: filesystem.ResourceType, Status: backup.RecoveryPointStatus(status), StorageClass: "WARM",
			BackupSizeBytes: res.BytesTotal, CreationDate: e.rpCreat, CompletionDate: &done, ManifestID: man.ID, Tags: e.rpTags}); err != nil {
			return err
		}
		return tx.UpsertProtectedResource(ctx, &backup.ProtectedResource{AccountID: acctA, Region: region, ResourceArn: e.srcArn,
			ResourceType: filesystem.ResourceType, LastBackupTime: &done, LastBackupVaultArn: e.vault.Arn, LastRecoveryPointArn: arn})
	}))
	return arn
}

type progress struct{ done, total int64 }

func (p *progress) Update(d, t int64) { p.done, p.total = d, t }

// drive plays the runner's part of the jobs.Handler contract for one job:
// claim (RUNNING, lease generation+1), Run, then in one transaction Commit
// and the completion (or FAILED with the error's message).
func (e *env) drive(id string) *backup.Job {
	t := e.t
	ctx := context.Background()
	var j *backup.Job
	must(t, e.st.Write(ctx, func(tx store.Tx) error {
		var err error
		if j, err = tx.GetJob(ctx, scA, backup.JobRestore, id); err != nil {
			return err
		}
		gen := j.LeaseGeneration
		now := e.clock.Now()
		j.State, j.InitiationDate, j.LeaseGeneration = "RUNNING", &now, gen+1
		return tx.UpdateJob(ctx, j, gen)
	}))
	res, runErr := e.svc.Run(ctx, j, &progress{})
	must(t, e.st.Write(ctx, func(tx store.Tx) error {
		now := e.clock.Now()
		j.CompletionDate = &now
		if runErr == nil && res.Commit != nil {
			runErr = res.Commit(ctx, tx)
		}
		if runErr != nil {
			j.State = "FAILED"
			j.StatusMessage, j.MessageCategory = jobs.FailureStatus(runErr)
		} else {
			res.Apply(j)
			j.State, j.PercentDone = "COMPLETED", "100.0"
		}
		return tx.UpdateJob(ctx, j, j.LeaseGeneration)
	}))
	// As the runner: after the commit, the result's Committed; a result
	// not committed is abandoned.
	if j.State == "COMPLETED" && res.Committed != nil {
		must(t, res.Committed(ctx))
	} else if j.State != "COMPLETED" && res.Abandon != nil {
		must(t, res.Abandon(ctx))
	}
	return j
}

func (e *env) start(md map[string]string) string {
	e.t.Helper()
	id, err := e.svc.Start(context.Background(), scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md})
	must(e.t, err)
	return id
}

// StartRequest is the service's restore request.
type StartRequest = service.StartRestoreRequest

// restoreSvc puts StartRestore (service) and Run (the RESTORE handler)
// side by side, as the runner sees them.
type restoreSvc struct {
	NewFileSystemsDir string
	st                store.Store
	repos             *vaultrepo.Manager
	clock             clock.Clock
}

func newRestoreSvc(t testing.TB, st store.Store, repos *vaultrepo.Manager, clk clock.Clock, newDir string) *restoreSvc {
	return &restoreSvc{NewFileSystemsDir: newDir, st: st, repos: repos, clock: clk}
}

func (r *restoreSvc) stack() *stack.Stack {
	s, err := stack.Build(stack.Options{Store: r.st, Clock: r.clock, Repos: r.repos, NewFileSystemsDir: r.NewFileSystemsDir})
	if err != nil {
		panic(err)
	}
	return s
}

func (r *restoreSvc) Start(ctx context.Context, sc store.Scope, req StartRequest) (string, error) {
	j, err := r.stack().Service.StartRestore(ctx, service.Caller{AccountID: sc.AccountID, Region: sc.Region}, req)
	if err != nil {
		return "", err
	}
	return j.ID, nil
}

func (r *restoreSvc) Run(ctx context.Context, j *backup.Job, p jobs.Progress) (jobs.Result, error) {
	return r.stack().Restore.Run(ctx, j, p)
}

// cleanStaging runs the start-up cleanup with newDir as new_file_systems_dir.
func (e *env) cleanStaging(newDir string) error {
	s := *e.svc
	s.NewFileSystemsDir = newDir
	return restorejob.CleanStaging(context.Background(), e.st, s.stack().Plugins.Plugins(), []store.Scope{scA}, e.clock.Now())
}
