package filesystem_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/repotest"
	"coffer/internal/resource"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/resource/fstree/fstreetest"
)

type nopProgress struct{}

func (nopProgress) Update(int64, int64) {}

// Found by the crash campaign (issue 14 defect 10): a restore into an
// existing file system moved its recovery directory into place before the
// job committed, so a kill in between left the directory visible while
// the job ended FAILED. Now the data appears only in Finish (inside the
// completing transaction), and a crash between Finish and the commit is
// undone by the next start's CleanStaging unless the job completed.
func TestRestoreAppearsOnlyWithItsCommit(t *testing.T) {
	ctx := context.Background()
	world := t.TempDir()
	p := &filesystem.Plugin{NewFileSystemsDir: filepath.Join(world, "new")}
	sc := resource.Scope{AccountID: "111111111111", Region: "us-east-1"}
	src := filesystem.NewResource(sc.Region, sc.AccountID, "fs-0000000000000001", filepath.Join(world, "src"), nil)
	fstreetest.MakeTree(t, src.Attr(filesystem.AttrPath))
	dst := filesystem.NewResource(sc.Region, sc.AccountID, "fs-0000000000000002", filepath.Join(world, "dst"), nil)
	must(t, os.MkdirAll(dst.Attr(filesystem.AttrPath), 0o755))
	repo := repotest.New(t)
	var root repository.ID
	must(t, repo.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		out, err := p.Backup(ctx, resource.BackupRequest{Resource: src, Session: w, Progress: nopProgress{}})
		root = out.Root
		return err
	}))
	rp := &backup.RecoveryPoint{Arn: backup.RecoveryPointArn(sc.Region, sc.AccountID, "rp-1"), ResourceArn: src.Arn, ResourceType: "EFS"}
	created := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	restore := func(job string, spec *backup.RestoreSpec, target *backup.Resource) resource.RestoreResult {
		t.Helper()
		res, err := p.Restore(ctx, resource.RestoreRequest{JobID: job, Scope: sc, Spec: spec, RecoveryPoint: rp,
			Snapshot: resource.Snapshot{Loader: repo, Root: root}, Target: target, Created: created, Progress: nopProgress{}})
		must(t, err)
		return res
	}
	recoveryDirs := func() []string {
		ents, err := os.ReadDir(dst.Attr(filesystem.AttrPath))
		must(t, err)
		var out []string
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), filesystem.RestoreDirPrefix) {
				out = append(out, e.Name())
			}
		}
		return out
	}
	staging := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		must(t, err)
		var out []string
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), fstree.StagingPrefix) || strings.HasPrefix(e.Name(), filesystem.NewFSStagingPrefix) {
				out = append(out, e.Name())
			}
		}
		return out
	}
	// Restart cleanup: job is not live; completed says whether it
	// committed.
	cleanup := func(job string, completed bool) {
		t.Helper()
		must(t, p.CleanStaging(ctx, resource.CleanupRequest{Resources: []*backup.Resource{dst},
			Live: func(string) bool { return false }, Completed: func(id string) bool { return id == job && completed }}))
	}
	existing := &backup.RestoreSpec{Target: backup.RestoreTarget{ID: dst.ID}}

	// 1. Nothing under a final name before Finish.
	res := restore("JOB-A", existing, dst)
	if d := recoveryDirs(); len(d) != 0 {
		t.Fatalf("recovery directory %v visible before the job commits", d)
	}
	// 2. Finish, then the server dies before the commit: undone.
	must(t, res.Finish(ctx))
	if d := recoveryDirs(); len(d) != 1 {
		t.Fatalf("after Finish: recovery directories %v", d)
	}
	cleanup("JOB-A", false)
	if d, s := recoveryDirs(), staging(dst.Attr(filesystem.AttrPath)); len(d) != 0 || len(s) != 0 {
		t.Fatalf("an uncommitted restore left %v and staging %v", d, s)
	}
	// 3. Finish, commit, then the server dies before Committed: kept.
	res = restore("JOB-B", existing, dst)
	must(t, res.Finish(ctx))
	cleanup("JOB-B", true)
	if d, s := recoveryDirs(), staging(dst.Attr(filesystem.AttrPath)); len(d) != 1 || len(s) != 0 {
		t.Fatalf("a committed restore: recovery directories %v, staging %v", d, s)
	}
	// 4. A transaction that fails after Finish: Discard takes it away.
	created = created.Add(time.Second)
	res = restore("JOB-C", existing, dst)
	must(t, res.Finish(ctx))
	must(t, res.Discard(ctx))
	if d, s := recoveryDirs(), staging(dst.Attr(filesystem.AttrPath)); len(d) != 1 || len(s) != 0 {
		t.Fatalf("a discarded restore: recovery directories %v, staging %v", d, s)
	}
	// 5. The normal end: Finish, commit, Committed.
	res = restore("JOB-D", existing, dst)
	must(t, res.Finish(ctx))
	must(t, res.Committed(ctx))
	if d, s := recoveryDirs(), staging(dst.Attr(filesystem.AttrPath)); len(d) != 2 || len(s) != 0 {
		t.Fatalf("a committed restore: recovery directories %v, staging %v", d, s)
	}

	// New file systems: the same for the file system's directory.
	newSpec := &backup.RestoreSpec{Target: backup.RestoreTarget{New: true}}
	res = restore("JOB-E", newSpec, nil)
	fsDir := res.Created.Attr(filesystem.AttrPath)
	must(t, res.Finish(ctx))
	if _, err := os.Stat(fsDir); err != nil {
		t.Fatalf("new file system not in place after Finish: %v", err)
	}
	cleanup("JOB-E", false)
	if _, err := os.Stat(fsDir); !os.IsNotExist(err) || len(staging(p.NewFileSystemsDir)) != 0 {
		t.Fatalf("an uncommitted new file system survives the cleanup: %v, staging %v", err, staging(p.NewFileSystemsDir))
	}
	res = restore("JOB-F", newSpec, nil)
	fsDir = res.Created.Attr(filesystem.AttrPath)
	must(t, res.Finish(ctx))
	cleanup("JOB-F", true)
	if _, err := os.Stat(fsDir); err != nil || len(staging(p.NewFileSystemsDir)) != 0 {
		t.Fatalf("a committed new file system: %v, staging %v", err, staging(p.NewFileSystemsDir))
	}
}
