package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/resource/filesystem"
	"coffer/internal/testutil/cofferproc"
	"coffer/internal/testutil/pgtest"
	"coffer/internal/testutil/s3server"
)

const (
	soRegion = "us-east-1"
	soAcct   = "111111111111"
	soAKID   = "AKIASCALEOUTTEST0001"
	soSecret = "scale-out-secret-0123456789abcdef"
	soRole   = "arn:aws:iam::111111111111:role/scale"
)

// cluster is one PostgreSQL, one versitygw and the configs of the nodes
// that share them.
type cluster struct {
	t        *testing.T
	bin      string
	dir      string
	sources  []string // file system paths (shared by every node)
	newFS    string
	pg       *pgtest.Server
	s3       *s3server.Server
	fsYAML   string
	s3YAML   string
	procs    []*cofferproc.Proc // every node process started, in order
	procNode []string           // node id of procs[i]
	workers  int                // workers per node (default 1)
	nodeS3   map[string]string  // vault_storage section of a node, if not s3YAML
}

func newCluster(t *testing.T, sources int, fileBytes int, seed int64) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	c.pg = pgtest.Start(t, pgtest.Options{})
	c.s3 = s3server.Start(t)
	c.s3.CreateBucket(t, "coffer-shared")
	c.bin = cofferproc.Build(t)
	r := mrand.New(mrand.NewSource(seed))
	var fsYAML strings.Builder
	for i := range sources {
		p := filepath.Join(c.dir, "shared", "src", strconv.Itoa(i+1))
		for j := range 3 {
			b := make([]byte, fileBytes/3+r.Intn(1024))
			r.Read(b)
			writeFile(t, filepath.Join(p, fmt.Sprintf("d%d", j%2), fmt.Sprintf("f%d.bin", j)), b)
		}
		writeFile(t, filepath.Join(p, "small.txt"), []byte("source "+strconv.Itoa(i+1)))
		c.sources = append(c.sources, p)
		fmt.Fprintf(&fsYAML, "  - {id: %s, account: \"%s\", path: %q}\n", soFS(i), soAcct, p)
	}
	c.fsYAML = fsYAML.String()
	c.newFS = filepath.Join(c.dir, "shared", "newfs")
	c.s3YAML = c.s3Config(c.s3.Endpoint)
	db := c.pg.TempDB(t)
	t.Setenv("COFFER_TEST_PG_DSN", c.pg.URL(db))
	t.Setenv("COFFER_S3_SECRET_ACCESS_KEY", c.s3.SecretKey)
	t.Setenv("COFFER_TEST_MASTER_KEY", randomKey(t))
	t.Setenv("COFFER_TEST_TOKEN_KEY", randomKey(t))
	return c
}

// s3Config is the vault_storage section of a node that reaches the
// shared bucket at endpoint.
func (c *cluster) s3Config(endpoint string) string {
	return fmt.Sprintf(`vault_storage:
  type: s3
  s3: {endpoint: %q, region: %q, bucket: coffer-shared, prefix: cluster, access_key_id: %q, path_style: true}
`, endpoint, c.s3.Region, c.s3.AccessKey)
}

func soFS(i int) string { return fmt.Sprintf("fs-%08x", 0x5c0000+i+1) }

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomKey(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// config writes the config of node id; keysFromEnv false leaves the keys
// to the node's data_dir (a node set up wrongly).
func (c *cluster) config(id string, keysFromEnv bool) string {
	keys := "master_key_env: COFFER_TEST_MASTER_KEY\ntoken_key_env: COFFER_TEST_TOKEN_KEY\n"
	if !keysFromEnv {
		keys = ""
	}
	s3 := c.s3YAML
	if v, ok := c.nodeS3[id]; ok {
		s3 = v
	}
	p := filepath.Join(c.dir, id+".yaml")
	writeFile(c.t, p, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %q
region: %s
node_id: %s
lease_seconds: 3
workers: %d
new_file_systems_dir: %q
metadata:
  type: postgres
  postgres: {dsn_env: COFFER_TEST_PG_DSN, max_conns: 4}
%saccounts:
  - id: "%s"
    access_keys:
      - {access_key_id: %s, secret_access_key: %s}
%sfile_systems:
%s`, filepath.Join(c.dir, id, "data"), soRegion, id, max(c.workers, 1), c.newFS, keys, soAcct, soAKID, soSecret, s3, c.fsYAML)))
	return p
}

// start starts node id and returns it with an API client.
func (c *cluster) start(id string) (*cofferproc.Proc, *sdk.Client) {
	p := cofferproc.Start(c.t, c.bin, c.config(id, true))
	c.procs = append(c.procs, p)
	c.procNode = append(c.procNode, id)
	return p, sdk.New(sdk.Options{Region: soRegion, BaseEndpoint: aws.String("http://" + p.Addr), RetryMaxAttempts: 1,
		Credentials: awscreds.NewStaticCredentialsProvider(soAKID, soSecret, "")})
}

var jobStartedRE = regexp.MustCompile(`msg="job started" .*\bjob=(\S+)`)

// started maps each job id to the node processes whose log says they
// started it.
func (c *cluster) started() map[string][]int {
	out := map[string][]int{}
	for i, p := range c.procs {
		for _, m := range jobStartedRE.FindAllStringSubmatch(p.Log(), -1) {
			out[m[1]] = append(out[m[1]], i)
		}
	}
	return out
}

// backupStarted creates vault v1 through cl, starts a backup of the first
// source into it and waits until a node's log says it started the job; it
// returns the job id.
func (c *cluster) backupStarted(ctx context.Context, cl *sdk.Client) string {
	t := c.t
	t.Helper()
	_, err := cl.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	o, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"), IamRoleArn: aws.String(soRole),
		ResourceArn: aws.String(filesystem.ARN(soRegion, soAcct, soFS(0)))})
	must(t, err)
	id := aws.ToString(o.BackupJobId)
	for deadline := time.Now().Add(2 * time.Minute); len(c.started()[id]) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node a did not start the job\n%s", c.logs())
		}
	}
	return id
}

func (c *cluster) logs() string {
	var b strings.Builder
	for i, p := range c.procs {
		fmt.Fprintf(&b, "---- %s (process %d) ----\n%s", c.procNode[i], i, p.Log())
	}
	return b.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// backupJobs lists every backup job (through cl).
func backupJobs(t *testing.T, cl *sdk.Client) map[string]types.BackupJob {
	out := map[string]types.BackupJob{}
	p := sdk.NewListBackupJobsPaginator(cl, &sdk.ListBackupJobsInput{MaxResults: aws.Int32(7)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		must(t, err)
		for _, j := range page.BackupJobs {
			out[aws.ToString(j.BackupJobId)] = j
		}
	}
	return out
}

// envInt reads a positive count from the environment.
func envInt(t *testing.T, name string, def, minimum int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minimum {
		t.Fatalf("%s=%q: want a number >= %d", name, v, minimum)
	}
	return n
}

// restoreJobs lists every restore job (through cl).
func restoreJobs(t *testing.T, cl *sdk.Client) map[string]types.RestoreJobsListMember {
	out := map[string]types.RestoreJobsListMember{}
	p := sdk.NewListRestoreJobsPaginator(cl, &sdk.ListRestoreJobsInput{MaxResults: aws.Int32(7)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		must(t, err)
		for _, j := range page.RestoreJobs {
			out[aws.ToString(j.RestoreJobId)] = j
		}
	}
	return out
}

// waitRestores waits (bounded) until every restore job in ids is terminal.
func (c *cluster) waitRestores(cl *sdk.Client, ids []string) map[string]types.RestoreJobsListMember {
	c.t.Helper()
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		js := restoreJobs(c.t, cl)
		open := 0
		for _, id := range ids {
			switch js[id].Status {
			case types.RestoreJobStatusCompleted, types.RestoreJobStatusFailed, types.RestoreJobStatusAborted:
			default:
				open++
			}
		}
		if open == 0 {
			return js
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d restore jobs not terminal after the deadline\n%s", open, c.logs())
		}
	}
}

// copyJobs lists every copy job (through cl).
func copyJobs(t *testing.T, cl *sdk.Client) map[string]types.CopyJob {
	out := map[string]types.CopyJob{}
	p := sdk.NewListCopyJobsPaginator(cl, &sdk.ListCopyJobsInput{MaxResults: aws.Int32(7)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		must(t, err)
		for _, j := range page.CopyJobs {
			out[aws.ToString(j.CopyJobId)] = j
		}
	}
	return out
}

// waitCopies waits (bounded) until every copy job in ids is terminal.
func (c *cluster) waitCopies(cl *sdk.Client, ids []string) map[string]types.CopyJob {
	c.t.Helper()
	for deadline := time.Now().Add(4 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		js := copyJobs(c.t, cl)
		open := 0
		for _, id := range ids {
			switch js[id].State {
			case types.CopyJobStateCompleted, types.CopyJobStateFailed, types.CopyJobStatePartial:
			default:
				open++
			}
		}
		if open == 0 {
			return js
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d copy jobs not terminal after the deadline\n%s", open, c.logs())
		}
	}
}

// waitTerminal waits (bounded) until every job in ids is terminal, as
// node cl sees it.
func (c *cluster) waitTerminal(cl *sdk.Client, ids []string) map[string]types.BackupJob {
	c.t.Helper()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		js := backupJobs(c.t, cl)
		open := 0
		for _, id := range ids {
			switch js[id].State {
			case types.BackupJobStateCompleted, types.BackupJobStateFailed, types.BackupJobStateAborted, types.BackupJobStateExpired:
			default:
				open++
			}
		}
		if open == 0 {
			return js
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%d jobs not terminal after the deadline\n%s", open, c.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestScaleOutKills runs `coffer serve` nodes (two; COFFER_SCALEOUT_NODES)
// on one PostgreSQL and one S3 store (versitygw). All answer for the same
// data: page tokens and idempotency tokens work across nodes, and an HBR
// request replayed to another node is refused. Then, round after round,
// backups, copies and restores are submitted round-robin through the
// nodes, and a random node is killed with SIGKILL once it runs one of them
// (at a random moment after the first round): the survivors end what it
// ran (FAILED, interrupted) — no job is ever started twice — and run what
// it had not claimed; the killed node is restarted. Every job ends in one
// terminal state, every completed backup and copy has exactly its own
// recovery point, every completed restore is byte-identical to the tree
// its recovery point was taken from, and the vaults check clean with
// `coffer vault check --read-data` while the nodes run. A vault deleted and
// re-created by one node is written correctly by another that had it open,
// and a node whose master key differs refuses to start.
//
// The default (CI) run: 2 nodes, 4 sources, 3 kills, 1 copy and 1 restore
// per round. The campaign (3 nodes, 200 jobs, 10 kills):
//
//	COFFER_SCALEOUT_NODES=3 COFFER_SCALEOUT_ROUNDS=10 COFFER_SCALEOUT_SOURCES=8 COFFER_SCALEOUT_EXTRA=6 \
//	  go test -run TestScaleOutKills -timeout 60m -v ./cmd/coffer/
//
// COFFER_SCALEOUT_SEED picks the seed.
func TestScaleOutKills(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the scale-out test starts PostgreSQL, versitygw and several coffer processes")
	}
	rounds := envInt(t, "COFFER_SCALEOUT_ROUNDS", 3, 1)
	nNodes := envInt(t, "COFFER_SCALEOUT_NODES", 2, 2)
	nSources := envInt(t, "COFFER_SCALEOUT_SOURCES", 4, 2)
	extra := envInt(t, "COFFER_SCALEOUT_EXTRA", 1, 0)
	seed := time.Now().UnixNano()
	if v := os.Getenv("COFFER_SCALEOUT_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		must(t, err)
		seed = n
	}
	t.Logf("scale-out: %d nodes, %d sources, %d kills, %d copies and restores per round, seed %d "+
		"(COFFER_SCALEOUT_NODES, _SOURCES, _ROUNDS, _EXTRA, _SEED)", nNodes, nSources, rounds, extra, seed)
	r := mrand.New(mrand.NewSource(seed))
	ctx := context.Background()
	c := newCluster(t, nSources, 6<<20, seed)
	type node struct {
		id   string
		proc *cofferproc.Proc
		cl   *sdk.Client
	}
	nodes := make([]*node, nNodes)
	for i := range nodes {
		n := &node{id: fmt.Sprintf("node-%c", 'a'+i)}
		n.proc, n.cl = c.start(n.id)
		nodes[i] = n
	}
	ca, cb := nodes[0].cl, nodes[1].cl

	// Any node answers for the data of all.
	var v3Arn string
	for _, v := range []string{"v1", "v2", "v3"} {
		o, err := ca.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String(v)})
		must(t, err)
		v3Arn = aws.ToString(o.BackupVaultArn)
	}
	p1, err := ca.ListBackupVaults(ctx, &sdk.ListBackupVaultsInput{MaxResults: aws.Int32(2)})
	must(t, err)
	p2, err := cb.ListBackupVaults(ctx, &sdk.ListBackupVaultsInput{MaxResults: aws.Int32(2), NextToken: p1.NextToken})
	if err != nil || len(p1.BackupVaultList) != 2 || len(p2.BackupVaultList) != 1 || aws.ToString(p2.BackupVaultList[0].BackupVaultName) != "v3" {
		t.Fatalf("a page token of node a on node b: %v %v %v", p1.BackupVaultList, p2, err)
	}
	// The same idempotency token to every node at once: one job.
	var wg sync.WaitGroup
	idem := make([]string, nNodes)
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := n.cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"), IamRoleArn: aws.String(soRole),
				ResourceArn: aws.String(filesystem.ARN(soRegion, soAcct, soFS(0))), IdempotencyToken: aws.String("same-token-every-node")})
			if err != nil {
				t.Errorf("node %d: %v", i, err)
				return
			}
			idem[i] = aws.ToString(o.BackupJobId)
		}()
	}
	wg.Wait()
	for i := range idem {
		if t.Failed() || idem[i] == "" || idem[i] != idem[0] {
			t.Fatalf("one idempotency token on %d nodes gave jobs %q", nNodes, idem)
		}
	}
	// HBR signature nonces are shared: a request replayed to another node
	// is refused.
	signed := hbrSignedURL(soAKID, soSecret, time.Now())
	if st, code := hbrGet(t, "http://"+nodes[0].proc.Addr+signed); st != 200 {
		t.Fatalf("HBR DescribeVaults on node a: %d %s", st, code)
	}
	if st, code := hbrGet(t, "http://"+nodes[1].proc.Addr+signed); st != 400 || code != "SignatureNonceUsed" {
		t.Fatalf("HBR request replayed to node b: %d %s, want 400 SignatureNonceUsed", st, code)
	}
	all := []string{idem[0]}                                       // backup jobs
	trees := map[string]string{idem[0]: treeSums(t, c.sources[0])} // backup job -> the tree it backed up
	first := c.waitTerminal(cb, all)[idem[0]]
	if first.State != types.BackupJobStateCompleted {
		t.Fatalf("the first backup: %s %q", first.State, aws.ToString(first.StatusMessage))
	}
	// Completed backups: copies and restores use their recovery points.
	done, rpOf := []string{idem[0]}, map[string]string{idem[0]: aws.ToString(first.RecoveryPointArn)}
	var copies []string
	copySrc := map[string]string{} // copy job -> the backup job whose recovery point it copies
	takeovers, restored := 0, 0

	for round := range rounds {
		// New data in every source (so each backup has something to
		// upload), then a backup of each, and copies and restores of
		// earlier recovery points, round-robin through the nodes.
		for i, src := range c.sources {
			b := make([]byte, 2<<20+r.Intn(1024))
			r.Read(b)
			writeFile(t, filepath.Join(src, fmt.Sprintf("round%d-%d.bin", round, i)), b)
		}
		rr := round
		next := func() *sdk.Client { rr++; return nodes[rr%nNodes].cl }
		var ids, roundCopies, roundRestores []string
		restoreSrc := map[string]string{} // restore job -> backup job
		for i := range nSources {
			o, err := next().StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"), IamRoleArn: aws.String(soRole),
				ResourceArn: aws.String(filesystem.ARN(soRegion, soAcct, soFS(i)))})
			must(t, err)
			ids = append(ids, aws.ToString(o.BackupJobId))
			trees[aws.ToString(o.BackupJobId)] = treeSums(t, c.sources[i])
		}
		all = append(all, ids...)
		for range extra {
			src := done[r.Intn(len(done))]
			co, err := next().StartCopyJob(ctx, &sdk.StartCopyJobInput{RecoveryPointArn: aws.String(rpOf[src]),
				SourceBackupVaultName: aws.String("v1"), DestinationBackupVaultArn: aws.String(v3Arn), IamRoleArn: aws.String(soRole)})
			must(t, err)
			roundCopies = append(roundCopies, aws.ToString(co.CopyJobId))
			copySrc[aws.ToString(co.CopyJobId)] = src
			src = done[r.Intn(len(done))]
			ro, err := next().StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rpOf[src]), IamRoleArn: aws.String(soRole),
				Metadata: map[string]string{"file-system-id": soFS(0), "newFileSystem": "true"}})
			must(t, err)
			roundRestores = append(roundRestores, aws.ToString(ro.RestoreJobId))
			restoreSrc[aws.ToString(ro.RestoreJobId)] = src
		}
		copies = append(copies, roundCopies...)
		roundAll := append(append(append([]string(nil), ids...), roundCopies...), roundRestores...)
		// Once the victim runs one of them (or after a minute), kill -9:
		// at once in the first round (so at least one kill lands while a
		// job runs), at a random moment later.
		vi := r.Intn(nNodes)
		victim := nodes[vi]
		var victimJob string
		for deadline := time.Now().Add(time.Minute); victimJob == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			st := c.started()
			for _, id := range roundAll {
				for _, pi := range st[id] {
					if c.procs[pi] == victim.proc {
						victimJob = id
					}
				}
			}
		}
		if round > 0 {
			time.Sleep(time.Duration(r.Intn(300)) * time.Millisecond)
		}
		victim.proc.Kill()
		// The others end what it ran and run what it had not claimed.
		survivor := nodes[(vi+1)%nNodes].cl
		js := c.waitTerminal(survivor, ids)
		cjs := c.waitCopies(survivor, roundCopies)
		rjs := c.waitRestores(survivor, roundRestores)
		started := c.started()
		for _, id := range roundAll {
			state, msg := string(js[id].State), aws.ToString(js[id].StatusMessage)
			if j, ok := cjs[id]; ok {
				state, msg = string(j.State), aws.ToString(j.StatusMessage)
			}
			if j, ok := rjs[id]; ok {
				state, msg = string(j.Status), aws.ToString(j.StatusMessage)
			}
			by := started[id]
			if len(by) != 1 {
				t.Fatalf("round %d: job %s started by %d node processes, want 1\n%s", round, id, len(by), c.logs())
			}
			onVictim := c.procs[by[0]] == victim.proc
			switch {
			case state == "COMPLETED":
			case onVictim && state == "FAILED" && strings.Contains(msg, "interrupted"):
				takeovers++
			default:
				t.Fatalf("round %d: job %s (on the killed node: %v) ended %s: %q\n%s", round, id, onVictim, state, msg, c.logs())
			}
		}
		for _, id := range roundRestores {
			if j := rjs[id]; j.Status == types.RestoreJobStatusCompleted {
				created := aws.ToString(j.CreatedResourceArn)
				if got, want := treeSums(t, filepath.Join(c.newFS, soFSOf(created))), trees[restoreSrc[id]]; got != want {
					t.Fatalf("round %d: restore %s of backup %s differs from the source:\n got %s\nwant %s", round, id, restoreSrc[id], got, want)
				}
				restored++
			}
		}
		for _, id := range ids {
			if js[id].State == types.BackupJobStateCompleted {
				done, rpOf[id] = append(done, id), aws.ToString(js[id].RecoveryPointArn)
			}
		}
		t.Logf("round %d: killed %s (it had started %q); %d jobs", round, victim.id, victimJob, len(roundAll))
		victim.proc, victim.cl = c.start(victim.id)
		ca, cb = nodes[0].cl, nodes[1].cl
	}
	if takeovers == 0 {
		t.Fatalf("in %d kills no job of a killed node was ended by another one\n%s", rounds, c.logs())
	}

	// Every completed job has its own recovery point, and nothing else is
	// in the vault: no job ran twice.
	js := backupJobs(t, ca)
	completed := map[string]string{} // recovery point -> job
	for _, id := range all {
		if j := js[id]; j.State == types.BackupJobStateCompleted {
			rp := aws.ToString(j.RecoveryPointArn)
			if prev, dup := completed[rp]; dup || rp == "" {
				t.Fatalf("jobs %s and %s share recovery point %q", prev, id, rp)
			}
			completed[rp] = id
		}
	}
	var rps []string
	pg := sdk.NewListRecoveryPointsByBackupVaultPaginator(cb, &sdk.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("v1")})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		must(t, err)
		for _, rp := range page.RecoveryPoints {
			rps = append(rps, aws.ToString(rp.RecoveryPointArn))
			if _, ok := completed[aws.ToString(rp.RecoveryPointArn)]; !ok {
				t.Errorf("recovery point %s belongs to no completed job", aws.ToString(rp.RecoveryPointArn))
			}
		}
	}
	if len(rps) != len(completed) {
		t.Fatalf("%d recovery points for %d completed jobs", len(rps), len(completed))
	}

	// Every completed copy has its own recovery point in v3, and nothing
	// else is there.
	cjs := c.waitCopies(cb, copies)
	copied := map[string]string{} // destination recovery point -> copy job
	for _, id := range copies {
		if j := cjs[id]; j.State == types.CopyJobStateCompleted {
			rp := aws.ToString(j.DestinationRecoveryPointArn)
			if prev, dup := copied[rp]; dup || rp == "" {
				t.Fatalf("copies %s and %s share recovery point %q", prev, id, rp)
			}
			copied[rp] = id
		}
	}
	v3rps, err := cb.ListRecoveryPointsByBackupVault(ctx, &sdk.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("v3")})
	must(t, err)
	if len(v3rps.RecoveryPoints) != len(copied) {
		t.Fatalf("%d recovery points in v3 for %d completed copies", len(v3rps.RecoveryPoints), len(copied))
	}

	// `coffer vault check --read-data` while the nodes run.
	for _, v := range []string{"v1", "v3"} {
		out, err := exec.Command(c.bin, "vault", "check", "--config", c.config("node-b", true), "--vault", v, "--read-data").CombinedOutput()
		if err != nil {
			t.Fatalf("vault check %s: %v\n%s", v, err, out)
		}
	}
	// A copied recovery point restores as its source was.
	for rp, id := range copied {
		src := copySrc[id]
		c.restoreOn(ca, rp, soFSOf(aws.ToString(js[src].ResourceArn)), trees[src])
		break
	}

	// A recovery point that a node a process wrote restores byte-identical
	// through node b (which had the vault open since its last start).
	started := c.started()
	pick, pickJob := "", ""
	for rp, id := range completed {
		if pick == "" || c.procNode[started[id][0]] == "node-a" {
			pick, pickJob = rp, id
		}
	}
	if pick == "" {
		t.Fatal("no completed backup")
	}
	t.Logf("restoring %s (backup job %s) through node b", pick, pickJob)
	c.restoreOn(cb, pick, soFSOf(aws.ToString(js[pickJob].ResourceArn)), trees[pickJob])

	// A vault deleted and created again by one node has a new repository
	// (new keys): a node that had the old one open must not write into the
	// new one with the old keys. Node b alone runs a backup into v2 (and
	// keeps its repository open); node a deletes and re-creates v2; node b
	// alone backs up into it again; node a restores that byte-identical
	// and the vault checks clean.
	others := func(f func(n *node)) {
		for i, n := range nodes {
			if i != 1 {
				f(n)
			}
		}
	}
	others(func(n *node) { n.proc.Kill() })
	firstRP := c.backupOn(cb, "v2", 2)
	others(func(n *node) { n.proc, n.cl = c.start(n.id) })
	ca = nodes[0].cl
	_, err = ca.DeleteRecoveryPoint(ctx, &sdk.DeleteRecoveryPointInput{BackupVaultName: aws.String("v2"), RecoveryPointArn: aws.String(firstRP)})
	must(t, err)
	_, err = ca.DeleteBackupVault(ctx, &sdk.DeleteBackupVaultInput{BackupVaultName: aws.String("v2")})
	must(t, err)
	_, err = ca.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("v2")})
	must(t, err)
	others(func(n *node) { n.proc.Kill() })
	second := c.backupOn(cb, "v2", 2)
	others(func(n *node) { n.proc, n.cl = c.start(n.id) })
	ca = nodes[0].cl
	if out, err := exec.Command(c.bin, "vault", "check", "--config", c.config("node-a", true), "--vault", "v2", "--read-data").CombinedOutput(); err != nil {
		t.Fatalf("vault check of the re-created vault: %v\n%s\n%s", err, out, c.logs())
	}
	c.restoreOn(ca, second, soFS(2), treeSums(t, c.sources[2]))

	// A node whose master key is not the cluster's refuses to start and
	// says why, without showing a key.
	cfgC := c.config("node-z", false)
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(cctx, c.bin, "serve", "--config", cfgC).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "master key") || !strings.Contains(string(out), "not the one the metadata store was first used with") {
		t.Fatalf("node with another master key: %v\n%s", err, out)
	}
	keyC, rerr := os.ReadFile(filepath.Join(c.dir, "node-z", "data", "master.key"))
	must(t, rerr)
	if bytes.Contains(out, keyC) || strings.Contains(string(out), base64.StdEncoding.EncodeToString(keyC)) ||
		strings.Contains(string(out), os.Getenv("COFFER_TEST_MASTER_KEY")) || strings.Contains(string(out), hex.EncodeToString(keyC)) {
		t.Fatalf("the refusal shows a key:\n%s", out)
	}
	if strings.Contains(c.logs(), os.Getenv("COFFER_TEST_PG_DSN")) || strings.Contains(c.logs(), pgtest.Password) {
		t.Fatal("a node logged the PostgreSQL DSN")
	}
	t.Logf("%d backup jobs, %d completed; %d copies, %d completed; %d restores compared; %d jobs ended by another node after a kill",
		len(all), len(completed), len(copies), len(copied), restored, takeovers)
}

// backupOn backs source i up into vault through cl, waits for it, and
// returns the recovery point.
func (c *cluster) backupOn(cl *sdk.Client, vault string, i int) string {
	c.t.Helper()
	ctx := context.Background()
	o, err := cl.StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String(vault), IamRoleArn: aws.String(soRole),
		ResourceArn: aws.String(filesystem.ARN(soRegion, soAcct, soFS(i)))})
	must(c.t, err)
	id := aws.ToString(o.BackupJobId)
	j := c.waitTerminal(cl, []string{id})[id]
	if j.State != types.BackupJobStateCompleted {
		c.t.Fatalf("backup of %s into %s: %s %q\n%s", soFS(i), vault, j.State, aws.ToString(j.StatusMessage), c.logs())
	}
	return aws.ToString(j.RecoveryPointArn)
}

func soFSOf(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// restoreOn restores recovery point rp (of file system fsID) to a new
// file system through cl and compares it with want (treeSums).
func (c *cluster) restoreOn(cl *sdk.Client, rp, fsID, want string) {
	c.t.Helper()
	ctx := context.Background()
	ro, err := cl.StartRestoreJob(ctx, &sdk.StartRestoreJobInput{RecoveryPointArn: aws.String(rp), IamRoleArn: aws.String(soRole),
		Metadata: map[string]string{"file-system-id": fsID, "newFileSystem": "true"}})
	must(c.t, err)
	var rj *sdk.DescribeRestoreJobOutput
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		rj, err = cl.DescribeRestoreJob(ctx, &sdk.DescribeRestoreJobInput{RestoreJobId: ro.RestoreJobId})
		must(c.t, err)
		if rj.Status == types.RestoreJobStatusCompleted || rj.Status == types.RestoreJobStatusFailed || rj.Status == types.RestoreJobStatusAborted {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("restore not done: %s\n%s", rj.Status, c.logs())
		}
	}
	if rj.Status != types.RestoreJobStatusCompleted {
		c.t.Fatalf("restore of %s: %s %q\n%s", rp, rj.Status, aws.ToString(rj.StatusMessage), c.logs())
	}
	created := aws.ToString(rj.CreatedResourceArn)
	got := treeSums(c.t, filepath.Join(c.newFS, created[strings.LastIndex(created, "/")+1:]))
	if got != want {
		c.t.Fatalf("restored tree differs from the source:\n got %s\nwant %s", got, want)
	}
}

// treeSums describes a tree: every path with its type, permissions, size
// and content hash.
func treeSums(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %s", rel, fi.Mode())
		if fi.Mode().IsRegular() {
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
			line += fmt.Sprintf(" %d %x", fi.Size(), h.Sum(nil)[:8])
		}
		if rel != "." {
			lines = append(lines, line)
		}
		return nil
	})
	must(t, err)
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}

// hbrSignedURL is the path and query of a signed HBR V2 GET of
// DescribeVaults (the host is not signed, so it can be sent to any node).
func hbrSignedURL(akid, secret string, ts time.Time) string {
	n := make([]byte, 8)
	_, _ = rand.Read(n)
	p := map[string]string{"Action": "DescribeVaults", "Version": "2017-09-08", "Format": "JSON", "AccessKeyId": akid,
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": hex.EncodeToString(n),
		"Timestamp": ts.UTC().Format("2006-01-02T15:04:05Z"), "RegionId": soRegion}
	enc := func(s string) string {
		return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, enc(k)+"="+enc(p[k]))
	}
	canon := strings.Join(parts, "&")
	m := hmac.New(sha1.New, []byte(secret+"&"))
	m.Write([]byte("GET&%2F&" + enc(canon)))
	return "/?" + canon + "&Signature=" + enc(base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

// hbrGet sends a GET and returns the status and the error Code.
func hbrGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		return 200, ""
	}
	m := regexp.MustCompile(`"Code":"([^"]*)"`).FindSubmatch(b)
	if m == nil {
		return resp.StatusCode, string(b)
	}
	return resp.StatusCode, string(m[1])
}

// TestScaleOutPausedNode: a node stopped (SIGSTOP) past its lease while it
// runs a backup has the job ended by the other node; when it resumes
// (SIGCONT) it finds its lease lost and discards its result: the job stays
// as the other node ended it, no recovery point appears, and the vault
// checks clean. Then either node backs the source up, and it restores
// byte-identical.
func TestScaleOutPausedNode(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the scale-out test starts PostgreSQL, versitygw and several coffer processes")
	}
	ctx := context.Background()
	c := newCluster(t, 1, 60<<20, 7)
	a, ca := c.start("node-a")
	id := c.backupStarted(ctx, ca)
	must(t, a.Signal(syscall.SIGSTOP))
	resumed := false
	defer func() {
		if !resumed {
			_ = a.Signal(syscall.SIGCONT)
		}
	}()
	_, cb := c.start("node-b")
	j := c.waitTerminal(cb, []string{id})[id]
	if j.State != types.BackupJobStateFailed || !strings.Contains(aws.ToString(j.StatusMessage), "interrupted") {
		t.Fatalf("the paused node's job ended %s %q; want FAILED, interrupted (did it finish before the pause?)\n%s",
			j.State, aws.ToString(j.StatusMessage), c.logs())
	}
	must(t, a.Signal(syscall.SIGCONT))
	resumed = true
	for deadline := time.Now().Add(2 * time.Minute); !strings.Contains(a.Log(), "lease lost"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the resumed node did not notice it lost the lease\n%s", c.logs())
		}
	}
	for _, cl := range []*sdk.Client{ca, cb} {
		d, err := cl.DescribeBackupJob(ctx, &sdk.DescribeBackupJobInput{BackupJobId: aws.String(id)})
		must(t, err)
		if d.State != j.State || aws.ToString(d.StatusMessage) != aws.ToString(j.StatusMessage) || d.CompletionDate == nil || !d.CompletionDate.Equal(aws.ToTime(j.CompletionDate)) {
			t.Fatalf("after the resume the job is %s %q %q; want it as node b ended it", d.State, aws.ToString(d.StatusMessage), aws.ToString(d.RecoveryPointArn))
		}
	}
	rps, err := cb.ListRecoveryPointsByBackupVault(ctx, &sdk.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	if len(rps.RecoveryPoints) != 0 {
		t.Fatalf("the discarded result left recovery points: %v", rps.RecoveryPoints)
	}
	if arn := aws.ToString(j.RecoveryPointArn); arn != "" {
		if _, err := cb.DescribeRecoveryPoint(ctx, &sdk.DescribeRecoveryPointInput{BackupVaultName: aws.String("v1"), RecoveryPointArn: aws.String(arn)}); err == nil {
			t.Fatalf("the discarded result's recovery point %s exists", arn)
		}
	}
	if out, err := exec.Command(c.bin, "vault", "check", "--config", c.config("node-b", true), "--vault", "v1", "--read-data").CombinedOutput(); err != nil {
		t.Fatalf("vault check: %v\n%s", err, out)
	}
	want := treeSums(t, c.sources[0])
	rp := c.backupOn(cb, "v1", 0)
	c.restoreOn(ca, rp, soFS(0), want)
}

// TestScaleOutPostgresRestart: PostgreSQL crashes and restarts while two
// nodes run backups: the nodes stay up and reconnect, every acknowledged
// job ends COMPLETED or FAILED with a message, each completed job has its
// recovery point, and new work runs afterwards.
func TestScaleOutPostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the scale-out test starts PostgreSQL, versitygw and several coffer processes")
	}
	ctx := context.Background()
	c := newCluster(t, 3, 12<<20, 11)
	a, ca := c.start("node-a")
	b, cb := c.start("node-b")
	_, err := ca.CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	var ids []string
	for i := range 3 {
		o, err := []*sdk.Client{ca, cb}[i%2].StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"),
			IamRoleArn: aws.String(soRole), ResourceArn: aws.String(filesystem.ARN(soRegion, soAcct, soFS(i)))})
		must(t, err)
		ids = append(ids, aws.ToString(o.BackupJobId))
	}
	for deadline := time.Now().Add(2 * time.Minute); len(c.started()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no job started\n%s", c.logs())
		}
	}
	c.pg.Crash()
	// While it is down, requests fail with an error of the API's shape.
	_, err = cb.ListBackupJobs(ctx, &sdk.ListBackupJobsInput{})
	if err == nil {
		t.Fatal("ListBackupJobs answered with PostgreSQL down")
	}
	time.Sleep(2 * time.Second)
	c.pg.Restart(t)
	var js map[string]types.BackupJob
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		o, err := ca.ListBackupJobs(ctx, &sdk.ListBackupJobsInput{})
		if err == nil && len(o.BackupJobs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node a does not answer after the restart: %v\n%s", err, c.logs())
		}
	}
	js = c.waitTerminal(cb, ids)
	completed := 0
	for _, id := range ids {
		switch j := js[id]; j.State {
		case types.BackupJobStateCompleted:
			completed++
			if aws.ToString(j.RecoveryPointArn) == "" {
				t.Fatalf("completed job %s without a recovery point", id)
			}
		case types.BackupJobStateFailed:
			if aws.ToString(j.StatusMessage) == "" {
				t.Fatalf("job %s failed without a message", id)
			}
			t.Logf("job %s: FAILED %q", id, aws.ToString(j.StatusMessage))
		default:
			t.Fatalf("job %s ended %s", id, j.State)
		}
	}
	for _, p := range []*cofferproc.Proc{a, b} {
		if p.ExitCode() != -1 {
			t.Fatalf("a node exited with PostgreSQL's restart\n%s", c.logs())
		}
	}
	rps, err := cb.ListRecoveryPointsByBackupVault(ctx, &sdk.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	if len(rps.RecoveryPoints) != completed {
		t.Fatalf("%d recovery points for %d completed jobs", len(rps.RecoveryPoints), completed)
	}
	want := treeSums(t, c.sources[0])
	rp := c.backupOn(ca, "v1", 0)
	c.restoreOn(cb, rp, soFS(0), want)
	if out, err := exec.Command(c.bin, "vault", "check", "--config", c.config("node-b", true), "--vault", "v1", "--read-data").CombinedOutput(); err != nil {
		t.Fatalf("vault check: %v\n%s", err, out)
	}
	t.Logf("%d of %d jobs running across the PostgreSQL crash completed", completed, len(ids))
}

// TestScaleOutThroughput measures (it asserts nothing about time; opt-in
// with COFFER_BENCH_SCALEOUT=1): how many no-op-sized backup jobs one, two
// and three nodes (2 workers each) claim and finish per second, and how
// many ListBackupJobs requests 50 concurrent clients get answered per
// second through one node and spread over three. Everything (PostgreSQL,
// versitygw, the nodes, the clients) shares this machine's cores.
//
//	COFFER_BENCH_SCALEOUT=1 go test -run TestScaleOutThroughput -v -timeout 30m ./cmd/coffer/
func TestScaleOutThroughput(t *testing.T) {
	if os.Getenv("COFFER_BENCH_SCALEOUT") != "1" {
		t.Skip("set COFFER_BENCH_SCALEOUT=1 to measure scale-out throughput")
	}
	ctx := context.Background()
	const nSources, perSource = 20, 3
	c := newCluster(t, nSources, 3<<10, 5)
	c.workers = 2
	var nodes []*sdk.Client
	var procs []*cofferproc.Proc
	for i := range 3 {
		p, cl := c.start(fmt.Sprintf("node-%c", 'a'+i))
		nodes, procs = append(nodes, cl), append(procs, p)
	}
	_, err := nodes[0].CreateBackupVault(ctx, &sdk.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	must(t, err)
	for _, n := range []int{1, 2, 3} {
		// Nodes beyond n are stopped (SIGSTOP: they claim nothing).
		for i, p := range procs {
			if i >= n {
				must(t, p.Signal(syscall.SIGSTOP))
			}
		}
		var ids []string
		start := time.Now()
		for k := range perSource {
			for i := range nSources {
				o, err := nodes[(i+k)%n].StartBackupJob(ctx, &sdk.StartBackupJobInput{BackupVaultName: aws.String("v1"), IamRoleArn: aws.String(soRole),
					ResourceArn: aws.String(filesystem.ARN(soRegion, soAcct, soFS(i)))})
				must(t, err)
				ids = append(ids, aws.ToString(o.BackupJobId))
			}
		}
		js := c.waitTerminal(nodes[0], ids)
		el := time.Since(start)
		ok := 0
		for _, id := range ids {
			if js[id].State == types.BackupJobStateCompleted {
				ok++
			}
		}
		t.Logf("%d node(s): %d backup jobs (%d completed) in %v: %.1f jobs/s", n, len(ids), ok, el.Round(time.Millisecond), float64(len(ids))/el.Seconds())
		for i, p := range procs {
			if i >= n {
				must(t, p.Signal(syscall.SIGCONT))
			}
		}
	}
	for _, n := range []int{1, 3} {
		var okN, errN atomic.Int64
		var wg sync.WaitGroup
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		for i := range 50 {
			p := procs[i%n]
			cl := sdk.New(sdk.Options{Region: soRegion, BaseEndpoint: aws.String("http://" + p.Addr), RetryMaxAttempts: 1,
				Credentials: awscreds.NewStaticCredentialsProvider(soAKID, soSecret, "")})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for lctx.Err() == nil {
					_, err := cl.ListBackupJobs(lctx, &sdk.ListBackupJobsInput{MaxResults: aws.Int32(50)})
					switch {
					case err == nil:
						okN.Add(1)
					case lctx.Err() == nil:
						errN.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		cancel()
		t.Logf("ListBackupJobs, 50 clients through %d node(s): %.0f answered/s, %d errors (throttled) in 10 s", n, float64(okN.Load())/10, errN.Load())
	}
}
