package restorejob_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/index"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/resource/fstree/fstreetest"
	"coffer/internal/store"
)

var cmpOpts = fstreetest.CompareOptions{ModeMask: 0o777, MTime: true}

func compare(t *testing.T, a, b string, skip ...string) {
	t.Helper()
	o := cmpOpts
	o.Skip = skip
	diffs, err := fstreetest.CompareTrees(a, b, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Fatalf("restored tree differs from the source:\n%s", strings.Join(diffs, "\n"))
	}
}

func noStaging(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), fstree.StagingPrefix) {
			t.Errorf("staging left behind: %s", filepath.Join(dir, e.Name()))
		}
	}
}

func TestRestoreToNewFileSystem(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id, err := e.svc.Start(ctx, scA, StartRequest{RecoveryPointArn: e.rpArn, CopySourceTags: true,
		Metadata: map[string]string{"file-system-id": srcFS, "newFileSystem": "true", "CreationToken": "tok-1"}})
	must(t, err)
	j := e.drive(id)
	if j.State != "COMPLETED" {
		t.Fatalf("job %s: %s", j.State, j.StatusMessage)
	}
	fsID := filesystem.NewFileSystemID(resource.Scope(scA), id, "tok-1")
	if want := filesystem.ARN(region, acctA, fsID); j.CreatedResourceArn != want {
		t.Fatalf("CreatedResourceArn %q, want %q", j.CreatedResourceArn, want)
	}
	root := filepath.Join(e.newDir, fsID)
	compare(t, e.src, root)
	noStaging(t, e.newDir)
	must(t, e.st.Read(ctx, func(tx store.Tx) error {
		fs, err := tx.GetResource(ctx, scA, filesystem.ResourceType, fsID)
		if err != nil {
			return err
		}
		if fs.Attr(filesystem.AttrPath) != root || fs.CreatedByRestoreJob != id || !reflect.DeepEqual(fs.Tags, e.rpTags) {
			t.Errorf("registered file system %+v", fs)
		}
		rp, err := tx.GetRecoveryPoint(ctx, scA, e.rpArn)
		if err != nil {
			return err
		}
		if rp.LastRestoreTime == nil || !rp.LastRestoreTime.Equal(e.clock.Now()) {
			t.Errorf("LastRestoreTime %v", rp.LastRestoreTime)
		}
		lr, err := tx.GetLatestRestore(ctx, scA, e.srcArn)
		if err != nil {
			return err
		}
		if !lr.JobCreationDate.Equal(j.CreationDate) || !lr.RecoveryPointCreationDate.Equal(e.rpCreat) {
			t.Errorf("latest restore %+v", lr)
		}
		return nil
	}))
	// The same CreationToken never yields a second file system.
	_, err = e.svc.Start(ctx, scA, StartRequest{RecoveryPointArn: e.rpArn,
		Metadata: map[string]string{"file-system-id": srcFS, "newFileSystem": "true", "CreationToken": "tok-1"}})
	if !backup.IsCode(err, backup.CodeInvalidParameter) || !strings.Contains(err.Error(), "CreationToken") {
		t.Fatalf("second restore with the same CreationToken: %v", err)
	}
	// The new file system can itself be the target of a restore.
	j2 := e.drive(e.start(map[string]string{"file-system-id": fsID, "newFileSystem": "false", "ItemsToRestore": `["/small.txt"]`}))
	if j2.State != "COMPLETED" {
		t.Fatalf("restore into the new file system: %s %s", j2.State, j2.StatusMessage)
	}
}

func TestRestoreIntoExistingFileSystem(t *testing.T) {
	e := newEnv(t)
	fstreetest.WriteFile(t, filepath.Join(e.dst, "keep/me.txt"), []byte("existing data"), 0o644)
	sent, err := fstreetest.RecordSentinel(e.dst)
	must(t, err)
	j := e.drive(e.start(map[string]string{"file-system-id": dstFS, "newFileSystem": "false"}))
	if j.State != "COMPLETED" {
		t.Fatalf("job %s: %s", j.State, j.StatusMessage)
	}
	name := "aws-backup-restore_" + j.CreationDate.UTC().Format("2006-01-02T15-04-05-000Z")
	compare(t, e.src, filepath.Join(e.dst, name))
	changes, err := sent.Changes(name)
	must(t, err)
	// Only the new recovery directory appeared; the root's own mtime changes.
	for _, c := range changes {
		if !strings.HasPrefix(c, `"`+name) && !strings.HasPrefix(c, `"" changed`) {
			t.Errorf("unexpected change outside the recovery directory: %s", c)
		}
	}
	if j.CreatedResourceArn != filesystem.ARN(region, acctA, dstFS) {
		t.Errorf("CreatedResourceArn %q", j.CreatedResourceArn)
	}
	noStaging(t, e.dst)
}

func listFiles(t *testing.T, root string) []string {
	t.Helper()
	m, err := fstreetest.Walk(root)
	must(t, err)
	var out []string
	for rel, ent := range m {
		if rel != "" && ent.Mode&unix.S_IFMT != unix.S_IFDIR {
			out = append(out, rel)
		}
	}
	sort.Strings(out)
	return out
}

func TestItemLevelRestores(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		items string
		want  []string
	}{
		{"file", `["/dir/sub/b.txt"]`, []string{"dir/sub/b.txt"}},
		{"directory", `["/dir/sub"]`, []string{"dir/sub/b.txt", "dir/sub/c.go"}},
		{"several", `["/small.txt","/docs","/dir/link"]`, []string{"dir/link", "docs/readme.md", "small.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := "/items-" + tc.name
			j := e.drive(e.start(map[string]string{"file-system-id": dstFS, "newFileSystem": "false", "ItemsToRestore": tc.items, "TargetPath": target}))
			if j.State != "COMPLETED" {
				t.Fatalf("job %s: %s", j.State, j.StatusMessage)
			}
			got := listFiles(t, filepath.Join(e.dst, target))
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("restored %q, want %q", got, tc.want)
			}
			for _, f := range tc.want {
				a, _ := os.Lstat(filepath.Join(e.src, f))
				if a.Mode()&os.ModeSymlink != 0 {
					continue
				}
				x, _ := os.ReadFile(filepath.Join(e.src, f))
				y, _ := os.ReadFile(filepath.Join(e.dst, target, f))
				if string(x) != string(y) {
					t.Errorf("%s differs", f)
				}
			}
			if tc.name == "directory" {
				compare(t, filepath.Join(e.src, "dir/sub"), filepath.Join(e.dst, target, "dir/sub"))
			}
		})
	}
}

func TestIncludeExclude(t *testing.T) {
	e := newEnv(t)
	j := e.drive(e.start(map[string]string{"file-system-id": dstFS, "newFileSystem": "false",
		"Include": `["**/*.go","/docs"]`, "Exclude": `["vendor","**/sub/c.go"]`, "TargetPath": "/globbed"}))
	if j.State != "COMPLETED" {
		t.Fatalf("job %s: %s", j.State, j.StatusMessage)
	}
	got := listFiles(t, filepath.Join(e.dst, "globbed"))
	want := []string{"dir/a.go", "docs/readme.md"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %q, want %q", got, want)
	}
}

func TestInPlaceConflictPolicies(t *testing.T) {
	e := newEnv(t)
	srcSmall, _ := os.ReadFile(filepath.Join(e.src, "small.txt"))
	st, err := os.Lstat(filepath.Join(e.src, "small.txt"))
	must(t, err)
	srcM := st.ModTime()
	for _, tc := range []struct {
		policy   string
		existing time.Time // mtime of the existing small.txt
		replaced bool
	}{
		{"SKIP_EXISTING", srcM.Add(-time.Hour), false},
		{"OVERWRITE_EXISTING", srcM.Add(time.Hour), true},
		{"OVERWRITE_IF_NEWER", srcM.Add(-time.Hour), true},
		{"OVERWRITE_IF_NEWER", srcM.Add(time.Hour), false},
	} {
		t.Run(tc.policy+"/"+tc.existing.Sub(srcM).String(), func(t *testing.T) {
			dir := "inplace-" + strings.ToLower(tc.policy) + "-" + strings.ReplaceAll(tc.existing.Sub(srcM).String(), "-", "m")
			p := filepath.Join(e.dst, dir, "small.txt")
			fstreetest.WriteFile(t, p, []byte("existing"), 0o600)
			must(t, os.Chtimes(p, tc.existing, tc.existing))
			fstreetest.WriteFile(t, filepath.Join(e.dst, dir, "extra.txt"), []byte("not in backup"), 0o600)
			j := e.drive(e.start(map[string]string{"file-system-id": dstFS, "newFileSystem": "false",
				"TargetPath": "/" + dir, "ConflictPolicy": tc.policy, "ItemsToRestore": `["/small.txt","/dir/a.go"]`}))
			if j.State != "COMPLETED" {
				t.Fatalf("job %s: %s", j.State, j.StatusMessage)
			}
			got, _ := os.ReadFile(p)
			if tc.replaced != (string(got) == string(srcSmall)) {
				t.Fatalf("small.txt = %q, replaced want %v", got, tc.replaced)
			}
			if b, _ := os.ReadFile(filepath.Join(e.dst, dir, "extra.txt")); string(b) != "not in backup" {
				t.Fatal("an entry absent from the backup was touched")
			}
			if b, _ := os.ReadFile(filepath.Join(e.dst, dir, "dir/a.go")); len(b) != 5000 {
				t.Fatal("a missing entry was not restored")
			}
		})
	}
}

// A corrupted pack fails the job before anything appears in the target.
func TestCorruptPackFailsWithoutTouchingTarget(t *testing.T) {
	e := newEnv(t)
	// Flip one byte inside the first data blob of /big.bin: the snapshot's
	// trees still load and the damage is met while file content is verified.
	ctx := context.Background()
	repo, err := e.repos.Open(ctx, e.vault)
	must(t, err)
	var manifestID string
	must(t, e.st.Read(ctx, func(tx store.Tx) error {
		rp, err := tx.GetRecoveryPoint(ctx, scA, e.rpArn)
		if err == nil {
			manifestID = rp.ManifestID
		}
		return err
	}))
	man, err := repo.LoadManifest(ctx, manifestID)
	must(t, err)
	tree, err := snapshot.LoadTree(ctx, repo, man.Root)
	must(t, err)
	var blobID repository.ID
	for _, n := range tree.Nodes {
		if n.Name == "big.bin" {
			blobID = n.Content[0]
		}
	}
	loc, packID, ok := repo.Index().Lookup(index.Key{Type: uint8(repository.DataBlob), ID: blobID})
	if !ok {
		t.Fatal("blob of big.bin not in the index")
	}
	dir, err := e.repos.Dir(e.vault)
	must(t, err)
	packPath := filepath.Join(dir, repository.PackName(packID))
	b, err := os.ReadFile(packPath)
	must(t, err)
	b[loc.Offset+loc.Length/2] ^= 0x40
	must(t, os.WriteFile(packPath, b, 0o600))
	sent, err := fstreetest.RecordSentinel(e.dst)
	must(t, err)
	// Reopen so no cached blob hides the damage.
	must(t, e.repos.Close())
	j := e.drive(e.start(map[string]string{"file-system-id": dstFS, "newFileSystem": "false"}))
	if j.State != "FAILED" || j.MessageCategory != backup.CategoryRecoveryPointCorrupt || !strings.Contains(j.StatusMessage, e.rpArn+" in backup vault v1 is damaged") ||
		strings.Contains(j.StatusMessage, dir) || strings.Contains(j.StatusMessage, "load ") {
		t.Fatalf("job %s %s: %s", j.State, j.MessageCategory, j.StatusMessage)
	}
	t.Logf("status message: %s", j.StatusMessage)
	changes, err := sent.Changes()
	must(t, err)
	for _, c := range changes {
		if !strings.HasPrefix(c, `"" changed`) { // the root's own times change (staging created and removed)
			t.Errorf("target changed: %s", c)
		}
	}
	ents, _ := os.ReadDir(e.dst)
	if len(ents) != 0 {
		t.Fatalf("target not empty: %v", ents)
	}
}

// CleanStaging removes what interrupted restores left in registered file
// systems and in new_file_systems_dir, and nothing else.
func TestCleanStaging(t *testing.T) {
	e := newEnv(t)
	leftovers := []string{
		filepath.Join(e.dst, fstree.StagingPrefix+"JOB-1", "dir", "f"),
		filepath.Join(e.src, fstree.StagingPrefix+"JOB-2", "f"),
		filepath.Join(e.newDir, fstree.StagingPrefix+"JOB-3", "f"),
		filepath.Join(e.newDir, filesystem.NewFSStagingPrefix+"JOB-4", "deep", "f"),
	}
	for _, p := range leftovers {
		fstreetest.WriteFile(t, p, []byte("partial"), 0o600)
	}
	fstreetest.WriteFile(t, filepath.Join(e.dst, "keep.txt"), []byte("keep"), 0o644)
	fstreetest.WriteFile(t, filepath.Join(e.newDir, "fs-00000000000000abc", "keep.txt"), []byte("keep"), 0o644)
	// A link named like staging that points outside is removed as a link.
	outside := t.TempDir()
	fstreetest.WriteFile(t, filepath.Join(outside, "victim"), []byte("v"), 0o644)
	must(t, os.Symlink(outside, filepath.Join(e.newDir, filesystem.NewFSStagingPrefix+"LINK")))
	must(t, e.cleanStaging(e.newDir))
	for _, p := range leftovers {
		if _, err := os.Lstat(filepath.Dir(p)); !os.IsNotExist(err) {
			t.Errorf("%s survived", p)
		}
	}
	for _, p := range []string{filepath.Join(e.dst, "keep.txt"), filepath.Join(e.newDir, "fs-00000000000000abc", "keep.txt"), filepath.Join(outside, "victim")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(e.newDir, filesystem.NewFSStagingPrefix+"LINK")); !os.IsNotExist(err) {
		t.Errorf("staging-named link survived: %v", err)
	}
	noStaging(t, e.dst)
	noStaging(t, e.newDir)
	// A missing new_file_systems_dir is not an error.
	must(t, e.cleanStaging(filepath.Join(t.TempDir(), "absent")))
}

// Two restores into one existing file system created in the same
// millisecond both succeed: the second recovery directory gets "-2"
// (issue 14, defect 4). The name carries milliseconds.
func TestTwoRestoresSameMillisecond(t *testing.T) {
	e := newEnv(t)
	e.clock.Advance(123 * time.Millisecond)
	md := map[string]string{"file-system-id": dstFS, "newFileSystem": "false"}
	id1, id2 := e.start(md), e.start(md)
	j1, j2 := e.drive(id1), e.drive(id2)
	if j1.State != "COMPLETED" || j2.State != "COMPLETED" {
		t.Fatalf("jobs %s (%s), %s (%s)", j1.State, j1.StatusMessage, j2.State, j2.StatusMessage)
	}
	name := "aws-backup-restore_" + j1.CreationDate.UTC().Format("2006-01-02T15-04-05") + "-123Z"
	compare(t, e.src, filepath.Join(e.dst, name))
	compare(t, e.src, filepath.Join(e.dst, name+"-2"))
	if !strings.Contains(j2.StatusMessage, name+"-2") {
		t.Errorf("second job's status %q does not name its directory", j2.StatusMessage)
	}
}

// Found by the crash campaign (issue 14 defect 10): a restore started while
// a prune held the vault's exclusive lock (or while a killed prune's lock
// had not expired) FAILED at once; it now waits for the lock, as backups
// do, and completes.
func TestRestoreWaitsForMaintenanceLock(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	repo, err := e.repos.Open(ctx, e.vault)
	must(t, err)
	lock, err := repo.AcquireLock(ctx, repository.LockExclusive)
	must(t, err)
	id := e.start(map[string]string{"file-system-id": dstFS, "newFileSystem": "false"})
	done := make(chan *backup.Job, 1)
	go func() { done <- e.drive(id) }()
	// The restore meets the lock (no timing is asserted: the job must
	// complete whenever the lock goes away).
	time.Sleep(time.Second)
	must(t, lock.Release(ctx))
	j := <-done
	if j.State != "COMPLETED" {
		t.Fatalf("restore under a prune's lock: %s %s", j.State, j.StatusMessage)
	}
}
