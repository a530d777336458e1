package crashtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/backup"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/cofferproc"
)

const (
	region = "us-east-1"
	acct   = "111111111111"
	akid   = "AKIACRASHCAMPAIGN001"
	secret = "crash-campaign-secret-0123456789"
	role   = "arn:aws:iam::111111111111:role/crash"
	// DefaultKills is the campaign size of a default (CI) run.
	DefaultKills = 25
	// settleBound is how long after a kill the jobs the killed server was
	// running may stay unfinished: the lease (6 s) plus a reconciliation
	// interval (3 s), with a wide margin for a loaded machine.
	settleBound = 30 * time.Second
)

var vaults = []string{"v1", "v2"}

// entry is one file-tree entry as a restore must reproduce it.
type entry struct {
	typ   string // "d", "f", "l"
	mode  fs.FileMode
	size  int64
	mtime int64
	sum   string // file content SHA-256; link target
}

// tree is a fingerprint: path inside the root → entry (the root itself
// excluded).
type tree map[string]entry

func fingerprint(root string) (tree, error) {
	out := tree{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := entry{mode: fi.Mode().Perm()}
		switch {
		case fi.IsDir():
			e.typ = "d"
		case fi.Mode()&fs.ModeSymlink != 0:
			e.typ = "l"
			if e.sum, err = os.Readlink(p); err != nil {
				return err
			}
			e.mode = 0
		case fi.Mode().IsRegular():
			e.typ, e.size, e.mtime = "f", fi.Size(), fi.ModTime().UnixNano()
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			e.sum = hex.EncodeToString(h.Sum(nil))
		default:
			e.typ = fi.Mode().Type().String()
		}
		out[rel] = e
		return nil
	})
	return out, err
}

// diff lists how got differs from want (at most a few lines).
func diff(want, got tree) []string {
	var out []string
	for _, k := range slices.Sorted(mapsKeys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, "missing "+k)
		case g != want[k]:
			out = append(out, fmt.Sprintf("%s: %+v, want %+v", k, g, want[k]))
		}
	}
	for _, k := range slices.Sorted(mapsKeys(got)) {
		if _, ok := want[k]; !ok {
			out = append(out, "unexpected "+k)
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("... %d more", len(out)-5))
	}
	return out
}

func mapsKeys[M ~map[K]V, K comparable, V any](m M) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// source is a file system the campaign backs up; it changes only while no
// backup of it is queued or running, so every backup job sees one version.
type source struct {
	id, path string
	version  int
	tree     tree
	files    []string // regular files, relative
}

// backupRec is an acknowledged StartBackupJob.
type backupRec struct {
	src     *source
	version int
	tree    tree
	done    bool
}

// rpRec is a recovery point the campaign expects to exist.
type rpRec struct {
	arn, vault string
	tree       tree
	origin     string // "backup of fs-… v3", "copy of …"
	deleted    bool   // DeleteRecoveryPoint acknowledged
	expiring   bool   // its DeleteAt was set in the past: the sweeper deletes it
	restored   bool   // a restore of it was compared
}

// restoreRec is an acknowledged StartRestoreJob.
type restoreRec struct {
	rp      *rpRec
	newFS   bool
	created time.Time
	done    bool
}

type copyRec struct {
	rp   *rpRec
	done bool
}

// campaign is the driver: the server under test, its files, and the
// ledger of everything the API acknowledged.
type campaign struct {
	t                   *testing.T
	r                   *rand.Rand
	ctx                 context.Context
	bin, cfg            string
	dir, data, newFS    string
	target              *source // existing file system that restores write into
	sources             []*source
	proc                *cofferproc.Proc
	cl                  *sdk.Client
	backups             map[string]*backupRec
	restores            map[string]*restoreRec
	copies              map[string]*copyRec
	rps                 map[string]*rpRec
	pending             map[string]time.Time // job → when it must be finished (ran when its server was killed)
	stats               map[string]int
	errors              map[string]string // server log errors, one example per kind
	packs               map[string]bool   // pack files at the last vault check
	took                map[string]time.Duration
	restoreDirsExpected map[string]bool // recovery directories of COMPLETED restores in target
}

func TestCrashCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve")
	}
	kills := DefaultKills
	if v := os.Getenv("COFFER_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("COFFER_CRASH_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
	seed := int64(20261207)
	if v := os.Getenv("COFFER_CRASH_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("COFFER_CRASH_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("crash campaign: %d kills, seed %d (COFFER_CRASH_KILLS, COFFER_CRASH_SEED)", kills, seed)
	start := time.Now()
	c := newCampaign(t, seed)
	for k := 1; k <= kills; k++ {
		c.iteration(k, kills)
		if t.Failed() {
			t.Fatalf("stopping at kill %d of %d (seed %d)", k, kills, seed)
		}
	}
	c.finish()
	t.Logf("crash campaign done: %d kills in %v, seed %d; %s", kills, time.Since(start).Round(time.Second), seed, c.summary())
	for _, k := range slices.Sorted(mapsKeys(c.errors)) {
		t.Logf("server logged: %s", c.errors[k])
	}
}

func newCampaign(t *testing.T, seed int64) *campaign {
	dir := t.TempDir()
	c := &campaign{t: t, r: rand.New(rand.NewSource(seed)), ctx: context.Background(), dir: dir,
		data: filepath.Join(dir, "data"), newFS: filepath.Join(dir, "newfs"),
		backups: map[string]*backupRec{}, restores: map[string]*restoreRec{}, copies: map[string]*copyRec{},
		rps: map[string]*rpRec{}, pending: map[string]time.Time{}, stats: map[string]int{}, errors: map[string]string{}, took: map[string]time.Duration{}, restoreDirsExpected: map[string]bool{}}
	c.bin = cofferproc.Build(t)
	var fsYAML strings.Builder
	for i := range 4 {
		s := &source{id: fmt.Sprintf("fs-0000000%d", i+1), path: filepath.Join(dir, "src", strconv.Itoa(i+1))}
		for j := range 8 {
			c.writeFile(s, fmt.Sprintf("d%d/seed%02d.bin", j%3, j), 512<<10+c.r.Intn(2<<20))
		}
		c.sources = append(c.sources, s)
		fmt.Fprintf(&fsYAML, "  - {id: %s, account: \"%s\", path: %s}\n", s.id, acct, s.path)
	}
	c.target = &source{id: "fs-000000aa", path: filepath.Join(dir, "target")}
	must(t, os.MkdirAll(c.target.path, 0o755))
	must(t, os.WriteFile(filepath.Join(c.target.path, "existing.txt"), []byte("kept by every restore"), 0o644))
	fmt.Fprintf(&fsYAML, "  - {id: %s, account: \"%s\", path: %s}\n", c.target.id, acct, c.target.path)
	c.cfg = filepath.Join(dir, "coffer.yaml")
	must(t, os.WriteFile(c.cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
region: %s
new_file_systems_dir: %s
sweeper_interval_seconds: 2
accounts:
  - id: "%s"
    access_keys:
      - access_key_id: %s
        secret_access_key: %s
file_systems:
%s`, c.data, region, c.newFS, acct, akid, secret, fsYAML.String())), 0o600))
	c.start()
	for _, v := range vaults {
		_, err := c.cl.CreateBackupVault(c.ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String(v)})
		must(t, err)
	}
	// A first backup of every source, without kills, so that restores and
	// copies have recovery points from the first kill on.
	for _, s := range c.sources {
		tr, err := fingerprint(s.path)
		must(t, err)
		s.tree = tr
		o, err := c.cl.StartBackupJob(c.ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"),
			ResourceArn: aws.String(filesystem.ARN(region, acct, s.id)), IamRoleArn: aws.String(role)})
		must(t, err)
		c.backups[aws.ToString(o.BackupJobId)] = &backupRec{src: s, version: s.version, tree: tr}
	}
	for deadline := time.Now().Add(2 * time.Minute); len(c.live()) < len(c.sources); time.Sleep(100 * time.Millisecond) {
		if c.account(); time.Now().After(deadline) {
			t.Fatal("the first backups did not complete")
		}
	}
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (c *campaign) start() {
	done := c.timed("starts")
	defer done()
	c.proc = cofferproc.Start(c.t, c.bin, c.cfg)
	c.cl = sdk.New(sdk.Options{Region: region, BaseEndpoint: aws.String("http://" + c.proc.Addr), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")})
}

// writeFile writes n random bytes to rel in s, with an mtime no earlier
// write of the same path had (so no backup can take it for unchanged).
func (c *campaign) writeFile(s *source, rel string, n int) {
	p := filepath.Join(s.path, rel)
	must(c.t, os.MkdirAll(filepath.Dir(p), 0o755))
	b := make([]byte, n)
	c.r.Read(b)
	must(c.t, os.WriteFile(p, b, 0o644))
	s.version++
	mt := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(s.version)*time.Second + time.Duration(c.r.Intn(1e9)))
	must(c.t, os.Chtimes(p, mt, mt))
	if !slices.Contains(s.files, rel) {
		s.files = append(s.files, rel)
	}
}

// mutate changes a source: new, rewritten, deleted, renamed and re-moded
// files and symlinks, keeping it below about 24 MiB.
func (c *campaign) mutate(s *source) {
	for range 1 + c.r.Intn(4) {
		switch op := c.r.Intn(6); {
		case op == 0 || len(s.files) < 4:
			c.writeFile(s, fmt.Sprintf("d%d/n%04d.bin", c.r.Intn(4), s.version), 64<<10+c.r.Intn(2<<20))
		case op == 1:
			c.writeFile(s, s.files[c.r.Intn(len(s.files))], 64<<10+c.r.Intn(2<<20))
		case op == 2:
			i := c.r.Intn(len(s.files))
			must(c.t, os.Remove(filepath.Join(s.path, s.files[i])))
			s.files = slices.Delete(s.files, i, i+1)
		case op == 3:
			i := c.r.Intn(len(s.files))
			to := fmt.Sprintf("d%d/r%04d.bin", c.r.Intn(4), s.version)
			must(c.t, os.MkdirAll(filepath.Dir(filepath.Join(s.path, to)), 0o755))
			must(c.t, os.Rename(filepath.Join(s.path, s.files[i]), filepath.Join(s.path, to)))
			s.files[i] = to
		case op == 4:
			must(c.t, os.Chmod(filepath.Join(s.path, s.files[c.r.Intn(len(s.files))]), fs.FileMode(0o600+c.r.Intn(0o100))))
		default:
			l := fmt.Sprintf("d%d/l%04d", c.r.Intn(4), s.version)
			must(c.t, os.MkdirAll(filepath.Dir(filepath.Join(s.path, l)), 0o755))
			os.Remove(filepath.Join(s.path, l))
			must(c.t, os.Symlink("../"+s.files[c.r.Intn(len(s.files))], filepath.Join(s.path, l)))
		}
		s.version++
	}
	// Keep the size bounded.
	for size := c.size(s); size > 24<<20 && len(s.files) > 4; size = c.size(s) {
		i := c.r.Intn(len(s.files))
		must(c.t, os.Remove(filepath.Join(s.path, s.files[i])))
		s.files = slices.Delete(s.files, i, i+1)
	}
}

func (c *campaign) size(s *source) int64 {
	var n int64
	for _, f := range s.files {
		if fi, err := os.Lstat(filepath.Join(s.path, f)); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// jobs lists every job of the three kinds, by id.
type jobInfo struct {
	kind      backup.JobKind
	state     string
	msg       string
	rp        string // BACKUP: the recovery point; COPY: the destination recovery point; RESTORE: the source one
	createdFS string // RESTORE: CreatedResourceArn
	created   time.Time
	resource  string
}

func (c *campaign) jobs() map[string]jobInfo {
	out := map[string]jobInfo{}
	bp := sdk.NewListBackupJobsPaginator(c.cl, &sdk.ListBackupJobsInput{})
	for bp.HasMorePages() {
		page, err := bp.NextPage(c.ctx)
		must(c.t, err)
		for _, j := range page.BackupJobs {
			out[aws.ToString(j.BackupJobId)] = jobInfo{kind: backup.JobBackup, state: string(j.State), msg: aws.ToString(j.StatusMessage),
				rp: aws.ToString(j.RecoveryPointArn), resource: aws.ToString(j.ResourceArn)}
		}
	}
	rp := sdk.NewListRestoreJobsPaginator(c.cl, &sdk.ListRestoreJobsInput{})
	for rp.HasMorePages() {
		page, err := rp.NextPage(c.ctx)
		must(c.t, err)
		for _, j := range page.RestoreJobs {
			out[aws.ToString(j.RestoreJobId)] = jobInfo{kind: backup.JobRestore, state: string(j.Status), msg: aws.ToString(j.StatusMessage),
				rp: aws.ToString(j.RecoveryPointArn), createdFS: aws.ToString(j.CreatedResourceArn), created: aws.ToTime(j.CreationDate)}
		}
	}
	cp := sdk.NewListCopyJobsPaginator(c.cl, &sdk.ListCopyJobsInput{})
	for cp.HasMorePages() {
		page, err := cp.NextPage(c.ctx)
		must(c.t, err)
		for _, j := range page.CopyJobs {
			out[aws.ToString(j.CopyJobId)] = jobInfo{kind: backup.JobCopy, state: string(j.State), msg: aws.ToString(j.StatusMessage),
				rp: aws.ToString(j.DestinationRecoveryPointArn)}
		}
	}
	return out
}

func terminal(state string) bool { return backup.JobState(state).Terminal() }

// iteration: (server up) account for what finished, check, start work,
// wait a random moment, SIGKILL; (server down) verify every vault, maybe
// let a recovery point expire; restart.
func (c *campaign) iteration(k, kills int) {
	var ops []string
	var delay time.Duration
	switch n := c.r.Intn(20); {
	case n < 3: // during the start: reconciliation, staging cleanup, sweep and prune
		ops = []string{"start only"}
		delay = time.Duration(c.r.Intn(400)) * time.Millisecond
	case n < 12: // while the work just started runs: once a job runs
		ops = c.work(c.account())
		t0 := time.Now()
		c.waitRunning(3 * time.Second)
		delay = time.Since(t0) + time.Duration(c.r.Intn(400))*time.Millisecond
		time.Sleep(delay - time.Since(t0))
		delay, ops = 0, append(ops, fmt.Sprintf("kill %v after a job ran", time.Since(t0).Round(time.Millisecond)))
	case n < 17:
		ops = c.work(c.account())
		delay = time.Duration(c.r.Intn(2000)) * time.Millisecond
	default: // long enough for most of it to finish and commit
		ops = c.work(c.account())
		delay = 2*time.Second + time.Duration(c.r.Intn(3000))*time.Millisecond
	}
	c.took["waiting to kill"] += delay
	time.Sleep(delay)
	c.scanLog()
	// What the server is running when it dies must be finished by a later
	// server within settleBound.
	running := 0
	for id, j := range c.jobs() {
		if j.state == string(types.BackupJobStateRunning) || j.state == string(types.BackupJobStateAborting) {
			if _, ok := c.pending[id]; !ok {
				c.pending[id] = time.Now().Add(settleBound)
			}
			running++
		}
	}
	c.proc.Kill()
	c.stats["kills"]++
	c.t.Logf("kill %d/%d after %v: %s; %d running", k, kills, delay.Round(time.Millisecond), strings.Join(ops, ", "), running)
	c.checkVaults()
	if c.r.Intn(6) == 0 {
		c.expireOne()
	}
	c.start()
}

// waitRunning waits until a job the campaign started runs (at most d).
func (c *campaign) waitRunning(d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		o, err := c.cl.ListBackupJobs(c.ctx, &sdk.ListBackupJobsInput{ByState: types.BackupJobStateRunning})
		must(c.t, err)
		if len(o.BackupJobs) > 0 {
			return
		}
		r, err := c.cl.ListRestoreJobs(c.ctx, &sdk.ListRestoreJobsInput{ByStatus: types.RestoreJobStatusRunning})
		must(c.t, err)
		if len(r.RestoreJobs) > 0 {
			return
		}
		cp, err := c.cl.ListCopyJobs(c.ctx, &sdk.ListCopyJobsInput{ByState: types.CopyJobStateRunning})
		must(c.t, err)
		if len(cp.CopyJobs) > 0 {
			return
		}
	}
}

// scanLog counts what the server did that the API does not show: sweeps
// that deleted expired recovery points and pruned, and failures it logged.
func (c *campaign) scanLog() {
	for _, line := range strings.Split(c.proc.Log(), "\n") {
		for _, m := range []string{"expired recovery point deleted", "recovery point sweep failed", "orphan manifests deleted", "lock refresh failed",
			"job reconciliation failed", "restore staging cleanup incomplete", "level=ERROR"} {
			if strings.Contains(line, m) {
				c.stats["log: "+m]++
				if m == "level=ERROR" {
					msg := line
					if i := strings.Index(line, "msg="); i >= 0 {
						msg = line[i:]
					}
					c.errors[firstWords(msg)] = msg
				}
			}
		}
	}
}

// account reads every job, records finished work in the ledger, compares
// finished restores with their recovery point's source, and checks that
// jobs of killed servers finished in time.
func (c *campaign) account() map[string]jobInfo {
	done := c.timed("accounting and comparing")
	defer done()
	// Recovery points first: one that is listed was committed with its
	// job's completion, so the job listing that follows shows it finished.
	listed := map[string][]string{}
	for _, v := range vaults {
		listed[v] = c.listRPs(v)
	}
	js := c.jobs()
	for id := range c.backups {
		if _, ok := js[id]; !ok {
			c.t.Errorf("acknowledged backup job %s is gone", id)
		}
	}
	for id, dl := range c.pending {
		j, ok := js[id]
		switch {
		case !ok:
			c.t.Errorf("job %s is gone", id)
		case terminal(j.state):
			delete(c.pending, id)
		case time.Now().After(dl):
			c.t.Errorf("job %s (%s) of a killed server is still %s %v after the kill", id, j.kind, j.state, settleBound)
			delete(c.pending, id)
		}
	}
	for id, b := range c.backups {
		j := js[id]
		if b.done || !terminal(j.state) {
			continue
		}
		b.done = true
		c.stats["backup "+j.state]++
		if j.state != string(types.BackupJobStateCompleted) {
			c.checkFailMessage(id, j)
			continue
		}
		c.rps[j.rp] = &rpRec{arn: j.rp, vault: "v1", tree: b.tree, origin: fmt.Sprintf("backup %s of %s v%d", id, b.src.id, b.version)}
	}
	for id, cp := range c.copies {
		j := js[id]
		if cp.done || !terminal(j.state) {
			continue
		}
		cp.done = true
		c.stats["copy "+j.state]++
		if j.state != string(types.CopyJobStateCompleted) {
			c.checkFailMessage(id, j)
			continue
		}
		c.rps[j.rp] = &rpRec{arn: j.rp, vault: "v2", tree: cp.rp.tree, origin: "copy of " + cp.rp.origin}
	}
	for id, rs := range c.restores {
		j := js[id]
		if rs.done || !terminal(j.state) {
			continue
		}
		rs.done = true
		c.stats["restore "+j.state]++
		if j.state != string(types.RestoreJobStatusCompleted) {
			c.checkFailMessage(id, j)
			continue
		}
		var root string
		if rs.newFS {
			fsID := j.createdFS[strings.LastIndex(j.createdFS, "/")+1:]
			root = filepath.Join(c.newFS, fsID)
		} else {
			root = c.restoreDir(rs.created)
			c.restoreDirsExpected[filepath.Base(root)] = true
		}
		got, err := fingerprint(root)
		if err != nil {
			c.t.Errorf("restore %s of %s: %v", id, rs.rp.origin, err)
			continue
		}
		if d := diff(rs.rp.tree, got); len(d) > 0 {
			c.t.Errorf("restore %s of %s (%s) differs from its source:\n%s", id, rs.rp.arn, rs.rp.origin, strings.Join(d, "\n"))
		}
		rs.rp.restored = true
		c.stats["restores compared"]++
		// Compared: the space is not needed any more (the name stays
		// recorded as a completed restore's).
		must(c.t, os.RemoveAll(root))
	}
	// Recovery points: every one the API lists is one the ledger expects.
	for _, v := range vaults {
		for _, arn := range listed[v] {
			rp, ok := c.rps[arn]
			switch {
			case !ok:
				c.t.Errorf("vault %s lists recovery point %s, which no completed job created", v, arn)
			case rp.deleted:
				c.t.Errorf("recovery point %s (%s) is back after its deletion was acknowledged", arn, rp.origin)
			}
		}
	}
	return js
}

// checkFailMessage: a job that did not complete says why, in the
// caller's terms.
func (c *campaign) checkFailMessage(id string, j jobInfo) {
	if j.msg == "" {
		c.t.Errorf("job %s ended %s without a message", id, j.state)
	}
	if strings.Contains(j.msg, c.dir) {
		c.t.Errorf("job %s ended %s with a server path: %q", id, j.state, j.msg)
	}
	c.stats["message: "+firstWords(j.msg)]++
}

func firstWords(s string) string {
	f := strings.Fields(s)
	if len(f) > 5 {
		f = f[:5]
	}
	return strings.Join(f, " ")
}

// restoreDir finds the recovery directory of a restore into the existing
// file system created at t.
func (c *campaign) restoreDir(t time.Time) string {
	name := c.restoreDirName(t)
	for n := 1; n < 10; n++ {
		cand := name
		if n > 1 {
			cand += "-" + strconv.Itoa(n)
		}
		if !c.restoreDirsExpected[cand] {
			if _, err := os.Lstat(filepath.Join(c.target.path, cand)); err == nil {
				return filepath.Join(c.target.path, cand)
			}
		}
	}
	return filepath.Join(c.target.path, name)
}

// restoreDirName is the recovery directory name of a restore created at t.
func (c *campaign) restoreDirName(t time.Time) string {
	t = t.UTC()
	return fmt.Sprintf("%s%s-%03dZ", filesystem.RestoreDirPrefix, t.Format("2006-01-02T15-04-05"), t.Nanosecond()/int(time.Millisecond))
}

func (c *campaign) listRPs(vault string) []string {
	var out []string
	p := sdk.NewListRecoveryPointsByBackupVaultPaginator(c.cl, &sdk.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String(vault)})
	for p.HasMorePages() {
		page, err := p.NextPage(c.ctx)
		must(c.t, err)
		for _, rp := range page.RecoveryPoints {
			out = append(out, aws.ToString(rp.RecoveryPointArn))
		}
	}
	return out
}

// live are the recovery points that should exist.
func (c *campaign) live() []*rpRec {
	var out []*rpRec
	for _, rp := range c.rps {
		if !rp.deleted && !rp.expiring {
			out = append(out, rp)
		}
	}
	slices.SortFunc(out, func(a, b *rpRec) int { return strings.Compare(a.arn, b.arn) })
	return out
}

// work starts one to three random operations.
func (c *campaign) work(js map[string]jobInfo) []string {
	var ops []string
	busy := map[string]bool{} // sources with a backup not yet finished
	for _, j := range js {
		if j.kind == backup.JobBackup && !terminal(j.state) {
			busy[j.resource] = true
		}
	}
	for range 1 + c.r.Intn(3) {
		live := c.live()
		switch op := c.r.Intn(10); {
		case op < 4 || len(live) == 0:
			var free []*source
			for _, s := range c.sources {
				if !busy[filesystem.ARN(region, acct, s.id)] {
					free = append(free, s)
				}
			}
			if len(free) == 0 {
				continue
			}
			s := free[c.r.Intn(len(free))]
			if s.tree != nil {
				c.mutate(s)
			}
			tr, err := fingerprint(s.path)
			must(c.t, err)
			s.tree = tr
			o, err := c.cl.StartBackupJob(c.ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"),
				ResourceArn: aws.String(filesystem.ARN(region, acct, s.id)), IamRoleArn: aws.String(role)})
			must(c.t, err)
			busy[filesystem.ARN(region, acct, s.id)] = true
			c.backups[aws.ToString(o.BackupJobId)] = &backupRec{src: s, version: s.version, tree: tr}
			ops = append(ops, "backup "+s.id)
		case op < 7:
			rp := live[c.r.Intn(len(live))]
			newFS := c.r.Intn(2) == 0
			md := map[string]string{"file-system-id": c.target.id, "newFileSystem": "false"}
			if newFS {
				md = map[string]string{"file-system-id": "fs-00000001", "newFileSystem": "true"}
			}
			o, err := c.cl.StartRestoreJob(c.ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp.arn), Metadata: md,
				IamRoleArn: aws.String(role)})
			if err != nil {
				c.t.Errorf("restore of live recovery point %s (%s) refused: %v", rp.arn, rp.origin, err)
				continue
			}
			d, err := c.cl.DescribeRestoreJob(c.ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: o.RestoreJobId})
			must(c.t, err)
			c.restores[aws.ToString(o.RestoreJobId)] = &restoreRec{rp: rp, newFS: newFS, created: aws.ToTime(d.CreationDate)}
			ops = append(ops, map[bool]string{true: "restore to a new file system", false: "restore into " + c.target.id}[newFS])
		case op < 9:
			var src []*rpRec
			for _, rp := range live {
				if rp.vault == "v1" {
					src = append(src, rp)
				}
			}
			if len(src) == 0 {
				continue
			}
			rp := src[c.r.Intn(len(src))]
			o, err := c.cl.StartCopyJob(c.ctx, &sdk.StartCopyJobInput{RecoveryPointArn: aws.String(rp.arn), SourceBackupVaultName: aws.String("v1"),
				DestinationBackupVaultArn: aws.String(backup.VaultArn(region, acct, "v2")), IamRoleArn: aws.String(role)})
			if err != nil {
				c.stats["copy refused"]++
				continue
			}
			c.copies[aws.ToString(o.CopyJobId)] = &copyRec{rp: rp}
			ops = append(ops, "copy")
		default:
			rp := live[c.r.Intn(len(live))]
			if _, err := c.cl.DeleteRecoveryPoint(c.ctx, &sdk.DeleteRecoveryPointInput{BackupVaultName: aws.String(rp.vault),
				RecoveryPointArn: aws.String(rp.arn)}); err != nil {
				c.stats["delete refused (in use)"]++
				continue
			}
			rp.deleted = true
			c.stats["deleted"]++
			ops = append(ops, "delete recovery point")
		}
	}
	if len(ops) == 0 {
		ops = append(ops, "nothing")
	}
	return ops
}

// checkVaults runs `coffer vault check --read-data` on every vault while
// the server is down.
func (c *campaign) checkVaults() {
	done := c.timed("vault checks")
	defer done()
	for _, v := range vaults {
		out, err := exec.Command(c.bin, "vault", "check", "--config", c.cfg, "--vault", v, "--read-data").CombinedOutput()
		if err != nil {
			c.t.Errorf("coffer vault check --read-data --vault %s: %v\n%s", v, err, out)
		}
	}
	c.stats["vault checks"] += len(vaults)
	// Packs that went away since the last check were deleted by prunes.
	packs := map[string]bool{}
	for _, v := range vaults {
		err := filepath.WalkDir(filepath.Join(c.data, "vaults", acct, region, v, "data"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				packs[p] = true
			}
			return nil
		})
		must(c.t, err)
	}
	for p := range c.packs {
		if !packs[p] {
			c.stats["packs deleted by prune"]++
		}
	}
	c.packs = packs
}

// expireOne (server down) sets a recovery point's DeleteAt in the past, as
// if its lifecycle had run out, and ages every pack by two days, so that
// the sweeper at the next start deletes it and prunes its vault for real
// (deleting and rewriting packs, not only marking). The vault's packs are
// all written by dead sessions at this point, so ageing them is what time
// would do.
func (c *campaign) expireOne() {
	live := c.live()
	if len(live) == 0 {
		return
	}
	rp := live[c.r.Intn(len(live))]
	st, err := sqlite.Open(c.ctx, filepath.Join(c.data, "metadata.db"))
	must(c.t, err)
	defer st.Close()
	sc := store.Scope{AccountID: acct, Region: region}
	past := time.Now().Add(-time.Hour)
	err = st.Write(c.ctx, func(tx store.Tx) error {
		cur, err := tx.GetRecoveryPoint(c.ctx, sc, rp.arn)
		if err != nil {
			return err
		}
		cur.DeleteAt = &past
		return tx.UpdateRecoveryPoint(c.ctx, cur)
	})
	if backup.IsCode(err, backup.CodeNotFound) {
		return
	}
	must(c.t, err)
	rp.expiring = true
	// The repository locks left by killed servers would keep the prune out
	// until their leases end (5 min); no process holds them now, so they
	// go, as an operator's unlock after a crash would remove them.
	locks, _ := filepath.Glob(filepath.Join(c.data, "vaults", acct, region, "*", "locks", "*"))
	for _, l := range locks {
		must(c.t, os.Remove(l))
	}
	old := time.Now().Add(-48 * time.Hour)
	must(c.t, filepath.WalkDir(filepath.Join(c.data, "vaults"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(p, string(filepath.Separator)+"data"+string(filepath.Separator)) {
			return err
		}
		return os.Chtimes(p, old, old)
	}))
	c.stats["expired"]++
}

// finish: a last restart without kills; every job ends, every vault
// verifies, every surviving recovery point restores identical to its
// source, expired and deleted ones are gone, and no staging is left.
func (c *campaign) finish() {
	deadline := time.Now().Add(settleBound + 3*time.Minute)
	for {
		js := c.account()
		open := 0
		for _, j := range js {
			if !terminal(j.state) {
				open++
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d jobs still unfinished after the last restart", open)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// One more start: staging cleanup and the orphan pass run with every
	// job finished.
	c.proc.Kill()
	c.checkVaults()
	c.start()
	c.account()
	survivors := map[string]bool{}
	for _, v := range vaults {
		for _, arn := range c.listRPs(v) {
			survivors[arn] = true
		}
	}
	for _, rp := range c.rps {
		switch {
		case rp.deleted && survivors[rp.arn]:
			c.t.Errorf("deleted recovery point %s survives", rp.arn)
		case rp.expiring && survivors[rp.arn]:
			c.t.Errorf("expired recovery point %s (%s) survives the sweeps", rp.arn, rp.origin)
		case !rp.deleted && !rp.expiring && !survivors[rp.arn]:
			c.t.Errorf("recovery point %s (%s) was lost", rp.arn, rp.origin)
		}
	}
	// Every survivor restores identical to its source.
	for _, rp := range c.live() {
		o, err := c.cl.StartRestoreJob(c.ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp.arn), IamRoleArn: aws.String(role),
			Metadata: map[string]string{"file-system-id": "fs-00000001", "newFileSystem": "true"}})
		must(c.t, err)
		c.restores[aws.ToString(o.RestoreJobId)] = &restoreRec{rp: rp, newFS: true}
	}
	for {
		js := c.account()
		open := 0
		for id := range c.restores {
			if !terminal(js[id].state) {
				open++
			}
		}
		if open == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, rp := range c.live() {
		if !rp.restored {
			c.t.Errorf("recovery point %s (%s) was never restored and compared", rp.arn, rp.origin)
		}
	}
	// No staging area is left anywhere, and the existing file system holds
	// only what it had and the recovery directories of completed restores.
	for _, root := range []string{c.target.path, c.newFS} {
		ents, _ := os.ReadDir(root)
		for _, e := range ents {
			n := e.Name()
			if strings.HasPrefix(n, fstree.StagingPrefix) || strings.HasPrefix(n, filesystem.NewFSStagingPrefix) {
				c.t.Errorf("staging %s left in %s", n, root)
			}
			if root == c.newFS && !strings.HasPrefix(n, fstree.StagingPrefix) && !strings.HasPrefix(n, filesystem.NewFSStagingPrefix) {
				// Compared restores were removed: what is left belongs to
				// no completed restore.
				c.t.Errorf("new file system %s belongs to no completed restore", n)
			}
			if root == c.target.path && n != "existing.txt" && !c.restoreDirsExpected[n] {
				var who []string
				for id, j := range c.jobs() {
					if j.kind == backup.JobRestore && strings.HasPrefix(n, filepath.Base(c.restoreDirName(j.created))) {
						who = append(who, fmt.Sprintf("%s %s %q", id, j.state, j.msg))
					}
				}
				c.t.Errorf("%s in the existing file system belongs to no completed restore: %v", n, who)
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.target.path, "existing.txt")); err != nil || string(b) != "kept by every restore" {
		c.t.Errorf("existing.txt changed: %q %v", b, err)
	}
	c.proc.Kill()
	c.checkVaults()
	c.stats["recovery points at the end"] = len(survivors)
}

// timed adds the time until the returned func runs to phase.
func (c *campaign) timed(phase string) func() {
	t0 := time.Now()
	return func() { c.took[phase] += time.Since(t0) }
}

func (c *campaign) summary() string {
	var parts []string
	for _, k := range slices.Sorted(mapsKeys(c.stats)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, c.stats[k]))
	}
	for _, k := range slices.Sorted(mapsKeys(c.took)) {
		parts = append(parts, fmt.Sprintf("time in %s: %v", k, c.took[k].Round(time.Second)))
	}
	return strings.Join(parts, "; ")
}
