package copyjob

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/resource/fstree/fstreetest"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/localvaults"
)

const (
	region = "us-east-1"
	acctA  = "111111111111"
	acctB  = "222222222222"
	role   = "arn:aws:iam::111111111111:role/copier"
)

type env struct {
	t     *testing.T
	st    *sqlite.Store
	repos *vaultrepo.Manager
	clock *clock.Fake
	h     *Handler
	dir   string
	src   string
	n     int
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	repos, err := localvaults.New(filepath.Join(dir, "data"), bytes.Repeat([]byte{7}, 32), repository.Options{PackSize: 1 << 20})
	must(t, err)
	t.Cleanup(func() { repos.Close() })
	e := &env{t: t, st: st, repos: repos, clock: clock.NewFake(time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)), dir: dir,
		src: filepath.Join(dir, "src")}
	e.h = &Handler{Store: st, Repos: repos, Clock: e.clock}
	makeTree(t, e.src)
	return e
}

func makeTree(t *testing.T, root string) {
	fstreetest.WriteFile(t, filepath.Join(root, "empty"), nil, 0o644)
	fstreetest.WriteFile(t, filepath.Join(root, "small.txt"), []byte("hello\n"), 0o640)
	fstreetest.WriteFile(t, filepath.Join(root, "big.bin"), fstreetest.PseudoRandom(1, 3<<20+17), 0o600)
	fstreetest.WriteFile(t, filepath.Join(root, "dir/a.go"), fstreetest.PseudoRandom(2, 5000), 0o644)
	fstreetest.WriteFile(t, filepath.Join(root, "dir/sub/b.txt"), bytes.Repeat([]byte("x"), 70000), 0o755)
	must(t, os.MkdirAll(filepath.Join(root, "emptydir"), 0o750))
	must(t, os.Symlink("../small.txt", filepath.Join(root, "dir", "link")))
}

func (e *env) vault(acct, name string, mut func(v *backup.Vault)) *backup.Vault {
	ctx := context.Background()
	v := &backup.Vault{AccountID: acct, Region: region, Name: name, Arn: backup.VaultArn(region, acct, name),
		VaultType: backup.VaultTypeBackup, VaultState: backup.VaultStateAvailable, CreationDate: e.clock.Now()}
	if mut != nil {
		mut(v)
	}
	must(e.t, e.st.Write(ctx, func(tx store.Tx) error { return tx.CreateVault(ctx, v) }))
	must(e.t, e.repos.CreateVaultStorage(ctx, v))
	return v
}

// backup stores tree in vault v and inserts a COMPLETED recovery point.
func (e *env) backup(v *backup.Vault, tree string, lc backup.Lifecycle) *backup.RecoveryPoint {
	ctx := context.Background()
	repo, err := e.repos.Open(ctx, v)
	must(e.t, err)
	var res fstree.BackupResult
	must(e.t, repo.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		var err error
		res, err = fstree.Backup(ctx, w, nil, tree, fstree.BackupOptions{})
		return err
	}))
	m, err := repo.SaveManifest(ctx, repository.Manifest{Root: res.Root})
	must(e.t, err)
	e.n++
	now := e.clock.Now()
	del := now.Add(time.Duration(*lc.DeleteAfterDays) * 24 * time.Hour)
	rp := &backup.RecoveryPoint{Arn: backup.RecoveryPointArn(region, v.AccountID, "rp-"+string(rune('a'+e.n))), AccountID: v.AccountID,
		Region: region, VaultName: v.Name, VaultArn: v.Arn, ResourceArn: "arn:aws:elasticfilesystem:us-east-1:" + v.AccountID + ":file-system/fs-0000000000000000a",
		ResourceType: filesystem.ResourceType, Status: "COMPLETED", StorageClass: "WARM", BackupSizeBytes: res.BytesTotal,
		Lifecycle: lc, DeleteAt: &del, CreationDate: now, CompletionDate: &now, ManifestID: m.ID}
	must(e.t, e.st.Write(ctx, func(tx store.Tx) error { return tx.CreateRecoveryPoint(ctx, rp) }))
	return rp
}

func days(n int64) *int64 { return &n }

// copyJob inserts a CREATED copy job as StartCopyJob does.
func (e *env) copyJob(rp *backup.RecoveryPoint, src, dst *backup.Vault, dstAcct, dstName string, lc backup.Lifecycle, keep bool) *backup.Job {
	ctx := context.Background()
	e.n++
	id := "COPY-" + string(rune('A'+e.n))
	dstArn := backup.VaultArn(region, dstAcct, dstName)
	p := Params{DestinationAccount: dstAcct, DestinationVaultName: dstName, KeepSourceExpiry: keep,
		DestinationRecoveryPointArn: backup.RecoveryPointArn(region, dstAcct, "copy-"+strings.ToLower(id))}
	pj, err := jsonString(p)
	must(e.t, err)
	j := &backup.Job{Kind: backup.JobCopy, ID: id, AccountID: src.AccountID, Region: region, State: backup.JobCreated,
		CreationDate: e.clock.Now(), VaultName: src.Name, VaultArn: src.Arn, DestinationVaultArn: dstArn, RecoveryPointArn: rp.Arn,
		ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType, IamRoleArn: role, Lifecycle: lc, ParametersJSON: pj}
	must(e.t, e.st.Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, j) }))
	return j
}

type progress struct{ done, total int64 }

func (p *progress) Update(d, t int64) { p.done, p.total = d, t }

// drive plays the runner's part of the jobs.Handler contract for one job.
func (e *env) drive(j *backup.Job) (*backup.Job, Result) {
	t := e.t
	ctx := context.Background()
	must(t, e.st.Write(ctx, func(tx store.Tx) error {
		gen := j.LeaseGeneration
		now := e.clock.Now()
		j.State, j.InitiationDate, j.LeaseGeneration = "RUNNING", &now, gen+1
		return tx.UpdateJob(ctx, j, gen)
	}))
	res, runErr := e.h.Run(ctx, j, &progress{})
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
			j.State = "COMPLETED"
		}
		return tx.UpdateJob(ctx, j, j.LeaseGeneration)
	}))
	var r Result
	if j.ResultJSON != "" && j.ResultJSON != "{}" {
		must(t, jsonParse(j.ResultJSON, &r))
	}
	return j, r
}

func (e *env) rpCount(v *backup.Vault) int64 {
	ctx := context.Background()
	var n int64
	must(e.t, e.st.Read(ctx, func(tx store.Tx) error {
		var err error
		n, err = tx.CountRecoveryPoints(ctx, store.Scope{AccountID: v.AccountID, Region: region}, v.Name)
		return err
	}))
	return n
}

// restoreAndCompare restores recovery point arn of vault v with fstree and
// compares the result with the source tree.
func (e *env) restoreAndCompare(v *backup.Vault, arn string) {
	t := e.t
	ctx := context.Background()
	var rp *backup.RecoveryPoint
	must(t, e.st.Read(ctx, func(tx store.Tx) error {
		var err error
		rp, err = tx.GetRecoveryPoint(ctx, store.Scope{AccountID: v.AccountID, Region: region}, arn)
		return err
	}))
	if rp.AccountID != v.AccountID || rp.VaultName != v.Name {
		t.Fatalf("recovery point %s belongs to %s/%s, want %s/%s", arn, rp.AccountID, rp.VaultName, v.AccountID, v.Name)
	}
	repo, err := e.repos.Open(ctx, v)
	must(t, err)
	m, err := repo.LoadManifest(ctx, rp.ManifestID)
	must(t, err)
	target := filepath.Join(e.dir, "restore-"+v.AccountID+"-"+v.Name+"-"+rp.ManifestID[:8])
	must(t, os.MkdirAll(target, 0o755))
	_, err = fstree.Restore(ctx, repo, m.Root, fstree.RestoreOptions{TargetRoot: target, Dest: "out", StagingID: "s1"})
	must(t, err)
	compareTrees(t, e.src, filepath.Join(target, "out"))
}

func compareTrees(t *testing.T, a, b string) {
	t.Helper()
	seen := 0
	must(t, filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		q := filepath.Join(b, rel)
		ia, err := os.Lstat(p)
		if err != nil {
			return err
		}
		ib, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s missing in restore: %v", rel, err)
			return nil
		}
		seen++
		if ia.Mode() != ib.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, ib.Mode(), ia.Mode())
		}
		switch {
		case ia.Mode().IsRegular():
			x, _ := os.ReadFile(p)
			y, _ := os.ReadFile(q)
			if !bytes.Equal(x, y) {
				t.Errorf("%s: content differs (%d vs %d bytes)", rel, len(y), len(x))
			}
		case ia.Mode()&fs.ModeSymlink != 0:
			x, _ := os.Readlink(p)
			y, _ := os.Readlink(q)
			if x != y {
				t.Errorf("%s: link %q, want %q", rel, y, x)
			}
		}
		return nil
	}))
	if seen < 8 {
		t.Fatalf("compared only %d entries", seen)
	}
}

func TestCopySameAccountOnlyMissingChunks(t *testing.T) {
	e := newEnv(t)
	src := e.vault(acctA, "src", nil)
	dst := e.vault(acctA, "dst", nil)
	rp := e.backup(src, e.src, backup.Lifecycle{DeleteAfterDays: days(35)})

	j, r1 := e.drive(e.copyJob(rp, src, dst, acctA, "dst", backup.Lifecycle{DeleteAfterDays: days(100)}, false))
	if j.State != "COMPLETED" {
		t.Fatalf("state %s: %s", j.State, j.StatusMessage)
	}
	if r1.SentBlobs == 0 || r1.SentBytes < 3<<20 {
		t.Fatalf("first copy sent %d blobs / %d bytes, want the whole tree", r1.SentBlobs, r1.SentBytes)
	}
	if j.DestinationRecoveryPointArn == "" || j.BytesTransferred != r1.StoredBytes || j.MessageCategory != CategorySuccess {
		t.Fatalf("job result fields: %+v", j)
	}
	e.restoreAndCompare(dst, j.DestinationRecoveryPointArn)

	// The same recovery point again: every chunk is already there.
	j2, r2 := e.drive(e.copyJob(rp, src, dst, acctA, "dst", backup.Lifecycle{DeleteAfterDays: days(100)}, false))
	if j2.State != "COMPLETED" {
		t.Fatalf("second copy: %s: %s", j2.State, j2.StatusMessage)
	}
	if r2.SentBlobs != 0 || r2.SentBytes != 0 || r2.SkippedBlobs != r1.DataBlobs {
		t.Fatalf("second copy sent %d blobs / %d bytes, skipped %d of %d", r2.SentBlobs, r2.SentBytes, r2.SkippedBlobs, r1.DataBlobs)
	}
	t.Logf("first copy: %d blobs, %d plaintext bytes, %d stored; second copy: %d blobs, %d stored bytes",
		r1.SentBlobs, r1.SentBytes, r1.StoredBytes, r2.SentBlobs, r2.StoredBytes)
	if r2.StoredBytes >= r1.StoredBytes/100 {
		t.Fatalf("second copy stored %d bytes (first %d)", r2.StoredBytes, r1.StoredBytes)
	}

	// A second recovery point sharing most data: only the changed file moves.
	fstreetest.WriteFile(t, filepath.Join(e.src, "dir/new.bin"), fstreetest.PseudoRandom(9, 200000), 0o644)
	rp2 := e.backup(src, e.src, backup.Lifecycle{DeleteAfterDays: days(35)})
	j3, r3 := e.drive(e.copyJob(rp2, src, dst, acctA, "dst", backup.Lifecycle{DeleteAfterDays: days(100)}, false))
	if j3.State != "COMPLETED" {
		t.Fatalf("third copy: %s: %s", j3.State, j3.StatusMessage)
	}
	if r3.SentBytes != 200000 {
		t.Fatalf("third copy sent %d plaintext bytes, want exactly the new file's 200000", r3.SentBytes)
	}
	e.restoreAndCompare(dst, j3.DestinationRecoveryPointArn)
	if n := e.rpCount(dst); n != 3 {
		t.Fatalf("destination has %d recovery points, want 3", n)
	}
}

func TestCopyLifecycle(t *testing.T) {
	e := newEnv(t)
	src := e.vault(acctA, "src", nil)
	dst := e.vault(acctA, "dst", nil)
	rp := e.backup(src, e.src, backup.Lifecycle{DeleteAfterDays: days(35)})
	j, _ := e.drive(e.copyJob(rp, src, dst, acctA, "dst", backup.Lifecycle{}, true))
	if j.State != "COMPLETED" {
		t.Fatalf("%s: %s", j.State, j.StatusMessage)
	}
	ctx := context.Background()
	must(t, e.st.Read(ctx, func(tx store.Tx) error {
		c, err := tx.GetRecoveryPoint(ctx, store.Scope{AccountID: acctA, Region: region}, j.DestinationRecoveryPointArn)
		if err != nil {
			return err
		}
		if c.DeleteAt == nil || !c.DeleteAt.Equal(*rp.DeleteAt) || c.SourceVaultArn != src.Arn {
			t.Errorf("copy DeleteAt %v SourceVaultArn %s, want %v %s", c.DeleteAt, c.SourceVaultArn, rp.DeleteAt, src.Arn)
		}
		return nil
	}))
}

func TestCopyFailures(t *testing.T) {
	allowA := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"backup:CopyIntoBackupVault","Resource":"*"}]}`
	withDeny := `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:*"},{"Effect":"Deny","Principal":{"AWS":"111111111111"},"Action":"backup:CopyIntoBackupVault"}]}`
	allowOther := `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"333333333333"},"Action":"backup:CopyIntoBackupVault"}]}`
	cases := []struct {
		name     string
		acct     string
		policy   *string
		min, max *int64
		noVault  bool
		lc       backup.Lifecycle
		wantOK   bool
		category string
		msg      string
	}{
		{name: "cross account allowed", acct: acctB, policy: &allowA, lc: backup.Lifecycle{DeleteAfterDays: days(30)}, wantOK: true},
		{name: "cross account no policy", acct: acctB, lc: backup.Lifecycle{DeleteAfterDays: days(30)}, category: CategoryAccessDenied, msg: "Access denied"},
		{name: "cross account other principal", acct: acctB, policy: &allowOther, lc: backup.Lifecycle{DeleteAfterDays: days(30)}, category: CategoryAccessDenied, msg: "Access denied"},
		{name: "cross account deny statement", acct: acctB, policy: &withDeny, lc: backup.Lifecycle{DeleteAfterDays: days(30)}, category: CategoryAccessDenied, msg: "Access denied"},
		{name: "cross account missing vault", acct: acctB, noVault: true, lc: backup.Lifecycle{DeleteAfterDays: days(30)}, category: CategoryAccessDenied, msg: "Access denied"},
		{name: "same account missing vault", acct: acctA, noVault: true, lc: backup.Lifecycle{DeleteAfterDays: days(30)}, category: CategoryNotFound, msg: "does not exist"},
		{name: "lock min retention", acct: acctA, min: days(60), lc: backup.Lifecycle{DeleteAfterDays: days(30)}, category: CategoryInvalidParameters, msg: "below the minimum retention of 60 days"},
		{name: "lock max retention", acct: acctA, max: days(10), lc: backup.Lifecycle{DeleteAfterDays: days(30)}, category: CategoryInvalidParameters, msg: "above the maximum retention of 10 days"},
		{name: "lock max never expires", acct: acctA, max: days(10), lc: backup.Lifecycle{}, category: CategoryInvalidParameters, msg: "never expire"},
		{name: "lock within bounds", acct: acctA, min: days(7), max: days(60), lc: backup.Lifecycle{DeleteAfterDays: days(30)}, wantOK: true},
		{name: "cross account lock conflict", acct: acctB, policy: &allowA, min: days(60), lc: backup.Lifecycle{DeleteAfterDays: days(30)}, category: CategoryInvalidParameters, msg: "minimum retention"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			src := e.vault(acctA, "src", nil)
			rp := e.backup(src, e.src, backup.Lifecycle{DeleteAfterDays: days(35)})
			var dst *backup.Vault
			if !c.noVault {
				dst = e.vault(c.acct, "dst", func(v *backup.Vault) {
					v.AccessPolicy = c.policy
					if c.min != nil || c.max != nil {
						v.Locked, v.MinRetentionDays, v.MaxRetentionDays = true, c.min, c.max
					}
				})
			}
			j, _ := e.drive(e.copyJob(rp, src, dst, c.acct, "dst", c.lc, false))
			if c.wantOK {
				if j.State != "COMPLETED" {
					t.Fatalf("state %s: %s", j.State, j.StatusMessage)
				}
				// The copy belongs to the destination account and restores there.
				e.restoreAndCompare(dst, j.DestinationRecoveryPointArn)
				if !strings.Contains(j.DestinationRecoveryPointArn, ":"+c.acct+":") {
					t.Fatalf("destination RP %s not in account %s", j.DestinationRecoveryPointArn, c.acct)
				}
				return
			}
			if j.State != "FAILED" || j.MessageCategory != c.category || !strings.Contains(j.StatusMessage, c.msg) {
				t.Fatalf("got %s/%s %q, want FAILED/%s containing %q", j.State, j.MessageCategory, j.StatusMessage, c.category, c.msg)
			}
			if j.DestinationRecoveryPointArn != "" {
				t.Fatalf("failed job has destination RP %s", j.DestinationRecoveryPointArn)
			}
			if dst != nil {
				if n := e.rpCount(dst); n != 0 {
					t.Fatalf("destination has %d recovery points after a failed copy", n)
				}
				repo, err := e.repos.Open(context.Background(), dst)
				must(t, err)
				ids, err := repo.ListManifestIDs(context.Background())
				must(t, err)
				if len(ids) != 0 {
					t.Fatalf("destination repository has manifests %v after a failed copy", ids)
				}
			}
		})
	}
}

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func jsonParse(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func FuzzParseParams(f *testing.F) {
	f.Add(`{"destinationAccount":"222222222222","destinationVaultName":"v","destinationRecoveryPointArn":"arn:x","keepSourceExpiry":true}`)
	f.Add(`{}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseParams(s)
		if err == nil && (p.DestinationAccount == "" || p.DestinationVaultName == "" || p.DestinationRecoveryPointArn == "") {
			t.Fatalf("accepted incomplete parameters %+v", p)
		}
	})
}
