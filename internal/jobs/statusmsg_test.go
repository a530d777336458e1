package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/local"
	"coffer/internal/repository/blob/retry"
	"coffer/internal/repository/blob/s3"
	"coffer/internal/resource/filesystem"
	"coffer/internal/service"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/s3server"
	"coffer/internal/testutil/stack"
	"coffer/internal/vaultrepo"
	"coffer/internal/vaultrepo/s3vaults"
)

// Issue 14 defect 6: every message a job can end with names what failed in
// the caller's terms and holds nothing of the server's internals.

const (
	msgAcct   = "111111111111"
	msgRegion = "us-east-1"
	msgRole   = "arn:aws:iam::111111111111:role/b"
)

var msgCaller = service.Caller{AccountID: msgAcct, Region: msgRegion}

// internals are what a StatusMessage must never hold: engine and system
// call error chains, storage addresses, object ids, runner ids, format
// mistakes.
var internals = regexp.MustCompile(`renameat|openat|unlinkat|mkdirat|write session|pack verification|repository:|blob:|s3:|` +
	`retry:|dial tcp|127\.0\.0\.1|context canceled|deadline exceeded|runner-[0-9a-f]|[0-9a-f]{32}|%!|\bload [0-9a-f]|` +
	`no such file or directory|giving up after`)

// checkMessage fails unless msg is a caller's message: not empty, none of
// the server's paths, no internals, and every wanted name present.
func checkMessage(t *testing.T, j *backup.Job, state backup.JobState, category string, serverPaths []string, want ...string) {
	t.Helper()
	msg := j.StatusMessage
	t.Logf("%s %s (%s): %s", j.Kind, j.State, j.MessageCategory, msg)
	if j.State != state || j.MessageCategory != category {
		t.Errorf("job ended %s/%s, want %s/%s: %q", j.State, j.MessageCategory, state, category, msg)
	}
	if msg == "" {
		t.Error("empty StatusMessage")
	}
	for _, p := range serverPaths {
		if p != "" && strings.Contains(msg, p) {
			t.Errorf("StatusMessage holds the server path %s: %q", p, msg)
		}
	}
	if m := internals.FindString(msg); m != "" {
		t.Errorf("StatusMessage holds internals (%q): %q", m, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("StatusMessage does not name %q: %q", w, msg)
		}
	}
}

// world is the core wired as `coffer serve` wires it, in-process: a SQLite
// store, vault repositories on local disk (or S3), the file-system plugin,
// the job handlers and a runner, all under one base directory.
type world struct {
	t       *testing.T
	base    string // every server path is below it
	data    string
	vaults  string // local vault storage root
	newFS   string
	st      store.Store
	clk     *clock.Fake
	repos   *vaultrepo.Manager
	stk     *stack.Stack
	runner  *jobs.Runner
	hang    *hangSwitch
	fsPaths map[string]string
}

type worldOptions struct {
	vaultTmpfsMiB int              // vault storage on a tmpfs of this size
	s3            *s3server.Server // vault storage in this S3 server instead
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	ctx := context.Background()
	base := t.TempDir()
	w := &world{t: t, base: base, data: filepath.Join(base, "data"), vaults: filepath.Join(base, "data", "vaults"),
		newFS: filepath.Join(base, "newfs"), clk: clock.NewFake(time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)),
		hang: &hangSwitch{}, fsPaths: map[string]string{}}
	must(t, os.MkdirAll(w.vaults, 0o700))
	if o.vaultTmpfsMiB > 0 {
		mountTmpfs(t, w.vaults, o.vaultTmpfsMiB)
	}
	st, err := sqlite.Open(ctx, filepath.Join(w.data, "metadata.db"))
	must(t, err)
	t.Cleanup(func() { st.Close() })
	w.st = st
	master := bytes.Repeat([]byte{7}, 32)
	ropts := repository.Options{Clock: w.clk, PackSize: 1 << 20}
	if o.s3 != nil {
		w.repos, err = s3vaults.New(s3vaults.Options{
			S3: s3.Config{Endpoint: o.s3.Endpoint, Region: o.s3.Region, Bucket: "vaults", AccessKeyID: o.s3.AccessKey,
				SecretAccessKey: o.s3.SecretKey, PathStyle: true, MaxAttempts: 1},
			Retry: retry.Options{Attempts: 1},
		}, master, ropts)
	} else {
		w.repos, err = vaultrepo.New(&hangBackend{root: w.vaults, hang: w.hang}, master, ropts)
	}
	must(t, err)
	t.Cleanup(func() { w.repos.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w.stk, err = stack.Build(stack.Options{Store: st, Clock: w.clk, Repos: w.repos, NewFileSystemsDir: w.newFS, Logger: log})
	must(t, err)
	w.runner, err = jobs.New(jobs.Options{Store: st, Clock: w.clk, Handlers: w.stk.Handlers(), LeaseTTL: 300 * time.Millisecond,
		Poll: 10 * time.Millisecond, ShutdownGrace: 5 * time.Second, Logger: log})
	must(t, err)
	for _, v := range []string{"v1", "v2"} {
		_, err := w.stk.Service.CreateVault(ctx, msgCaller, service.CreateVaultRequest{Name: v})
		must(t, err)
	}
	return w
}

// paths are the server paths a message must not show.
func (w *world) paths() []string {
	ps := []string{w.base, w.data, w.vaults, w.newFS}
	for _, p := range w.fsPaths {
		ps = append(ps, p)
	}
	return ps
}

// fileSystems registers file systems id → path (as the config does).
func (w *world) fileSystems(fss map[string]string) {
	w.t.Helper()
	var rs []*backup.Resource
	for id, p := range fss {
		w.fsPaths[id] = p
	}
	for id, p := range w.fsPaths {
		rs = append(rs, filesystem.NewResource(msgRegion, msgAcct, id, p, nil))
	}
	must(w.t, w.stk.Service.SyncResources(context.Background(), filesystem.ResourceType, []store.Scope{msgCaller.Scope()}, rs))
}

func (w *world) startBackup(fsID string, complete *int64) string {
	w.t.Helper()
	j, err := w.stk.Service.StartBackup(context.Background(), msgCaller, service.StartBackupRequest{VaultName: "v1",
		ResourceArn: filesystem.ARN(msgRegion, msgAcct, fsID), IamRoleArn: msgRole, CompleteWindowMinutes: complete})
	must(w.t, err)
	return j.ID
}

func (w *world) startRestore(rpArn string, md map[string]string) string {
	w.t.Helper()
	j, err := w.stk.Service.StartRestore(context.Background(), msgCaller, service.StartRestoreRequest{RecoveryPointArn: rpArn, Metadata: md})
	must(w.t, err)
	return j.ID
}

func (w *world) startCopy(rpArn string) string {
	w.t.Helper()
	j, err := w.stk.Service.StartCopy(context.Background(), msgCaller, service.StartCopyRequest{RecoveryPointArn: rpArn,
		SourceVaultName: "v1", DestinationVaultArn: backup.VaultArn(msgRegion, msgAcct, "v2"), IamRoleArn: msgRole})
	must(w.t, err)
	return j.ID
}

// runOne runs the next job to its end.
func (w *world) runOne() {
	w.t.Helper()
	ran, err := w.runner.RunOne(context.Background())
	must(w.t, err)
	if !ran {
		w.t.Fatal("no job to run")
	}
}

func (w *world) job(kind backup.JobKind, id string) *backup.Job {
	w.t.Helper()
	j, err := w.stk.Service.DescribeJob(context.Background(), msgCaller, kind, id)
	must(w.t, err)
	return j
}

// backedUp backs fsID up and returns the recovery point's ARN.
func (w *world) backedUp(fsID string) string {
	w.t.Helper()
	id := w.startBackup(fsID, nil)
	w.runOne()
	j := w.job(backup.JobBackup, id)
	if j.State != backup.JobCompleted {
		w.t.Fatalf("backup of %s: %s %s", fsID, j.State, j.StatusMessage)
	}
	return j.RecoveryPointArn
}

// randomTree writes n files of size bytes of random data under root.
func randomTree(t *testing.T, root string, seed uint64, n, size int) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range n {
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		p := filepath.Join(root, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%03d.bin", i))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, b, 0o644))
	}
}

func mountTmpfs(t *testing.T, dir string, mib int) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", mib), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); this case needs root", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// hangSwitch makes a vault storage's data writes block until their context
// ends (fault injection: storage that stops answering), so that a job is
// reliably still running when the test stops it, lets it expire or shuts
// the runner down.
type hangSwitch struct {
	on      atomic.Bool
	mu      sync.Mutex
	waiting chan struct{} // closed when a write first blocks
}

func (h *hangSwitch) arm() chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.waiting = make(chan struct{})
	h.on.Store(true)
	return h.waiting
}

type hangStorage struct {
	blob.Storage
	h *hangSwitch
}

func (s *hangStorage) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	if s.h.on.Load() && strings.HasPrefix(name, "data/") {
		s.h.mu.Lock()
		select {
		case <-s.h.waiting:
		default:
			close(s.h.waiting)
		}
		s.h.mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	return s.Storage.Put(ctx, name, data, opts)
}

// hangBackend is vault storage on local disk (blob/local, as localvaults),
// each vault's storage wrapped in a hangStorage.
type hangBackend struct {
	root string
	hang *hangSwitch
}

func (b *hangBackend) dir(rel string) string { return filepath.Join(b.root, filepath.FromSlash(rel)) }

func (b *hangBackend) Open(ctx context.Context, rel string, create bool) (blob.Storage, error) {
	if !create {
		if _, err := os.Stat(filepath.Join(b.dir(rel), repository.ConfigName)); errors.Is(err, fs.ErrNotExist) {
			return nil, vaultrepo.ErrNoRepository
		}
	}
	st, err := local.Open(b.dir(rel), local.Options{})
	if err != nil {
		return nil, err
	}
	return &hangStorage{Storage: st, h: b.hang}, nil
}

func (b *hangBackend) Clear(ctx context.Context, rel string) error { return os.RemoveAll(b.dir(rel)) }
func (b *hangBackend) List(ctx context.Context) ([]string, error)  { return nil, nil }
func (b *hangBackend) Location(rel string) string                  { return b.dir(rel) }

// flipPackBytes damages every data pack of vault v1.
func (w *world) flipPackBytes() {
	w.t.Helper()
	dir := filepath.Join(w.vaults, msgAcct, msgRegion, "v1", "data")
	n := 0
	must(w.t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i := len(b) / 4; i < len(b)*3/4; i += 4096 {
			b[i] ^= 0x5a
		}
		n++
		return os.WriteFile(p, b, 0o600)
	}))
	if n == 0 {
		w.t.Fatal("no pack to damage")
	}
	must(w.t, w.repos.Close()) // no cached data hides the damage
}

func TestStatusMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real backups and restores")
	}
	ctx := context.Background()
	t.Run("vault storage full", func(t *testing.T) {
		w := newWorld(t, worldOptions{vaultTmpfsMiB: 3})
		src := filepath.Join(w.base, "src")
		randomTree(t, src, 1, 12, 1<<20)
		w.fileSystems(map[string]string{"fs-0000000a": src})
		id := w.startBackup("fs-0000000a", nil)
		w.runOne()
		checkMessage(t, w.job(backup.JobBackup, id), backup.JobFailed, backup.CategoryInsufficientSpace, w.paths(),
			"vault v1", "EFS fs-0000000a", "ran out of storage space")
	})
	t.Run("restore target full", func(t *testing.T) {
		w := newWorld(t, worldOptions{})
		src, dst := filepath.Join(w.base, "src"), filepath.Join(w.base, "dst")
		randomTree(t, src, 2, 6, 1<<20)
		mountTmpfs(t, dst, 1)
		w.fileSystems(map[string]string{"fs-0000000a": src, "fs-0000000b": dst})
		rp := w.backedUp("fs-0000000a")
		id := w.startRestore(rp, map[string]string{"file-system-id": "fs-0000000b", "newFileSystem": "false"})
		w.runOne()
		checkMessage(t, w.job(backup.JobRestore, id), backup.JobFailed, backup.CategoryInsufficientSpace, w.paths(),
			"fs-0000000b", rp)
	})
	t.Run("corrupt pack", func(t *testing.T) {
		w := newWorld(t, worldOptions{})
		src, dst := filepath.Join(w.base, "src"), filepath.Join(w.base, "dst")
		randomTree(t, src, 3, 4, 256<<10)
		must(t, os.MkdirAll(dst, 0o755))
		w.fileSystems(map[string]string{"fs-0000000a": src, "fs-0000000b": dst})
		rp := w.backedUp("fs-0000000a")
		w.flipPackBytes()
		id := w.startRestore(rp, map[string]string{"file-system-id": "fs-0000000b", "newFileSystem": "false"})
		w.runOne()
		checkMessage(t, w.job(backup.JobRestore, id), backup.JobFailed, backup.CategoryRecoveryPointCorrupt, w.paths(),
			rp, "vault v1", "damaged")
		id = w.startCopy(rp)
		w.runOne()
		checkMessage(t, w.job(backup.JobCopy, id), backup.JobFailed, backup.CategoryRecoveryPointCorrupt, w.paths(),
			rp, "vault v1", "damaged")
		// A new backup of changed data reads the damaged previous recovery
		// point's trees only when the tree is unchanged; changing every
		// file makes it store everything anew, so it completes.
	})
	t.Run("missing source directory", func(t *testing.T) {
		w := newWorld(t, worldOptions{})
		w.fileSystems(map[string]string{"fs-0000000c": filepath.Join(w.base, "gone", "src")})
		id := w.startBackup("fs-0000000c", nil)
		w.runOne()
		checkMessage(t, w.job(backup.JobBackup, id), backup.JobFailed, backup.CategoryResourceNotFound, w.paths(), "fs-0000000c")
	})
	t.Run("source is not a directory", func(t *testing.T) {
		w := newWorld(t, worldOptions{})
		p := filepath.Join(w.base, "file")
		must(t, os.WriteFile(p, []byte("x"), 0o644))
		w.fileSystems(map[string]string{"fs-0000000d": p})
		id := w.startBackup("fs-0000000d", nil)
		w.runOne()
		checkMessage(t, w.job(backup.JobBackup, id), backup.JobFailed, backup.CategoryFailed, w.paths(), "fs-0000000d")
	})
	t.Run("new_file_systems_dir unusable", func(t *testing.T) {
		w := newWorld(t, worldOptions{})
		src := filepath.Join(w.base, "src")
		randomTree(t, src, 4, 2, 1<<10)
		w.fileSystems(map[string]string{"fs-0000000a": src})
		rp := w.backedUp("fs-0000000a")
		must(t, os.WriteFile(w.newFS, []byte("not a directory"), 0o644))
		id := w.startRestore(rp, map[string]string{"file-system-id": "fs-0000000a", "newFileSystem": "true"})
		w.runOne()
		checkMessage(t, w.job(backup.JobRestore, id), backup.JobFailed, backup.CategoryFailed, w.paths(), "new_file_systems_dir")
	})
	t.Run("vault storage unreachable", func(t *testing.T) {
		srv := s3server.Start(t)
		srv.CreateBucket(t, "vaults")
		w := newWorld(t, worldOptions{s3: srv})
		src := filepath.Join(w.base, "src")
		randomTree(t, src, 5, 2, 64<<10)
		w.fileSystems(map[string]string{"fs-0000000a": src})
		rp := w.backedUp("fs-0000000a")
		srv.Stop()
		id := w.startBackup("fs-0000000a", nil)
		w.runOne()
		paths := append(w.paths(), srv.Endpoint, strings.TrimPrefix(srv.Endpoint, "http://"))
		checkMessage(t, w.job(backup.JobBackup, id), backup.JobFailed, backup.CategoryFailed, paths,
			"vault v1", "could not be reached")
		id = w.startRestore(rp, map[string]string{"file-system-id": "fs-0000000a", "newFileSystem": "true"})
		w.runOne()
		checkMessage(t, w.job(backup.JobRestore, id), backup.JobFailed, backup.CategoryFailed, paths,
			"vault v1", "could not be reached", rp)
	})
	t.Run("interrupted by a crash", func(t *testing.T) {
		w := newWorld(t, worldOptions{})
		src := filepath.Join(w.base, "src")
		randomTree(t, src, 6, 1, 1<<10)
		w.fileSystems(map[string]string{"fs-0000000a": src})
		id := w.startBackup("fs-0000000a", nil)
		// A runner claims the job and dies; its lease expires.
		must(t, w.st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.ClaimJob(ctx, store.Claim{Kinds: []backup.JobKind{backup.JobBackup}, Owner: "runner-0123456789abcdef",
				Now: w.clk.Now(), LeaseExpiry: w.clk.Now().Add(time.Second)})
			return err
		}))
		expiry := w.clk.Now().Add(time.Second).UTC().Format(time.RFC3339)
		w.clk.Advance(time.Minute)
		must(t, w.runner.Reconcile(ctx))
		// What happened, when, and what to do; never the dead runner's id
		// (a node's host name and port).
		j := w.job(backup.JobBackup, id)
		checkMessage(t, j, backup.JobFailed, backup.CategoryInterrupted, append(w.paths(), "runner-0123456789abcdef"),
			"Job was interrupted", "stopped, paused or lost contact with the metadata store", "lease expired at "+expiry, "Start the job again")
	})
	// A backup blocked on its vault storage, then stopped, expired or
	// interrupted by a shutdown.
	for _, tc := range []struct {
		name     string
		complete *int64
		end      func(w *world, id string, shutdown context.CancelFunc)
		state    backup.JobState
		category string
		want     string
	}{
		{"stopped", nil, func(w *world, id string, _ context.CancelFunc) {
			must(t, w.stk.Service.StopBackup(ctx, msgCaller, id))
		}, backup.JobAborted, "", "stopped"},
		// The completion window (60 min) has passed when the job starts
		// (moving the clock while it runs would expire its lease too).
		{"expired", ptr(int64(60)), func(w *world, id string, _ context.CancelFunc) {}, backup.JobAborted, "", "completion window"},
		{"server shutdown", nil, func(w *world, id string, shutdown context.CancelFunc) {
			shutdown()
		}, backup.JobFailed, backup.CategoryInterrupted, "interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOptions{})
			src := filepath.Join(w.base, "src")
			randomTree(t, src, 7, 4, 1<<20)
			w.fileSystems(map[string]string{"fs-0000000a": src})
			blocked := w.hang.arm()
			id := w.startBackup("fs-0000000a", tc.complete)
			if tc.complete != nil {
				w.clk.Advance(time.Duration(*tc.complete+1) * time.Minute)
			}
			rctx, shutdown := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.runner.Run(rctx) }()
			w.runner.Notify()
			// Until the backup blocks on its storage (or, expired at once,
			// has already ended).
			for waiting := true; waiting; {
				select {
				case <-blocked:
					waiting = false
				case <-time.After(10 * time.Millisecond):
					waiting = !w.job(backup.JobBackup, id).State.Terminal()
				}
			}
			tc.end(w, id, shutdown)
			for {
				if j := w.job(backup.JobBackup, id); j.State.Terminal() {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			shutdown()
			must(t, <-done)
			checkMessage(t, w.job(backup.JobBackup, id), tc.state, tc.category, w.paths(), tc.want)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
