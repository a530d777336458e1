package s3bucket_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/crypto"
	"coffer/internal/resource"
	"coffer/internal/resource/s3bucket"
	"coffer/internal/testutil"
)

// startMoto runs moto's S3 server (python3 -m moto.server) on loopback.
// Unlike versitygw's POSIX backend, which stores "a//b", "/a" and "a/../b"
// under cleaned names, moto keeps every key exactly as given.
func startMoto(t *testing.T) server {
	t.Helper()
	py := testutil.RequireTool(t, "python3")
	if err := exec.Command(py, "-c", "import moto.server, flask").Run(); err != nil {
		testutil.SkipOrFail(t, "moto's server is not importable: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(py, "-m", "moto.server", "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto did not answer: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return server{id: "moto", url: url, region: "us-east-1", ak: "AKIDMOTO", sk: "motosecret"}
}

func newRepo(t *testing.T) *repository.Repository {
	t.Helper()
	r, err := repository.Create(context.Background(), blobtest.NewMem(clock.Real{}), crypto.RandomKey(), repository.Options{})
	must(t, err)
	t.Cleanup(func() { _ = r.Close() })
	return r
}

type nopProgress struct{}

func (nopProgress) Update(int64, int64) {}

var sc = resource.Scope{AccountID: "111111111111", Region: "us-east-1"}

func backupBucket(t *testing.T, p *s3bucket.Plugin, repo *repository.Repository, r *backup.Resource, parent *resource.Snapshot) (resource.Snapshot, resource.BackupResult, repository.WriterStats) {
	t.Helper()
	var res resource.BackupResult
	var stats repository.WriterStats
	err := repo.WithWriter(context.Background(), func(ctx context.Context, w *repository.Writer) error {
		var err error
		res, err = p.Backup(ctx, resource.BackupRequest{Resource: r, Session: w, Parent: parent, Progress: nopProgress{}})
		stats = w.Stats()
		return err
	})
	must(t, err)
	return resource.Snapshot{Loader: repo, Root: res.Root}, res, stats
}

func restoreBucket(t *testing.T, p *s3bucket.Plugin, snap resource.Snapshot, src *backup.Resource, spec *backup.RestoreSpec, target *backup.Resource) resource.RestoreResult {
	t.Helper()
	rp := &backup.RecoveryPoint{Arn: backup.RecoveryPointArn(sc.Region, sc.AccountID, "rp-x"), ResourceArn: src.Arn, ResourceType: "S3"}
	res, err := p.Restore(context.Background(), resource.RestoreRequest{JobID: fmt.Sprintf("JOB-%d", time.Now().UnixNano()), Scope: sc, Spec: spec,
		RecoveryPoint: rp, Snapshot: snap, Target: target, Created: time.Now(), Progress: nopProgress{}})
	must(t, err)
	if res.Finish != nil {
		must(t, res.Finish(context.Background()))
	}
	return res
}

// exactKeys are keys S3 allows that file-system-backed servers rewrite.
var exactKeys = []string{
	"a//b", "/leading", "//double-leading", "x/../y", "../up", "a/./b", "dir/", "dir", "dir/inner", "trailing.",
	"sp ace+plus%25?q#frag", "ünïcødé/ñ/✓", strings.Repeat("k", 1024), strings.Repeat("seg/", 200) + "end", "...", "a/../../b",
}

// TestExactKeys round-trips keys that only an exact-key server keeps, with
// metadata and tags, through a backup and a restore into a new bucket.
func TestExactKeys(t *testing.T) {
	srv := startMoto(t)
	c := srv.client()
	createBucket(t, c, "exact")
	for i, k := range exactKeys {
		putObj(t, c, "exact", obj{key: k, data: pseudoRandom(byte(i), 100*i), ct: "text/x-" + strconv.Itoa(i),
			meta: map[string]string{"i": strconv.Itoa(i)}, tags: map[string]string{"key": "k" + strconv.Itoa(i)}, hdr: i%2 == 0})
	}
	if got := listKeys(t, c, "exact"); len(got) != len(exactKeys) {
		t.Fatalf("moto lists %d keys of %d: %q", len(got), len(exactKeys), got)
	}
	p := &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{srv.endpoint()}, StateDir: t.TempDir(), Workers: 4, MaxAttempts: 2}
	src := s3bucket.NewResource(sc.Region, sc.AccountID, "exact", srv.id, nil)
	repo := newRepo(t)
	snap, res, _ := backupBucket(t, p, repo, src, nil)
	if len(res.Problems) > 0 || res.Items != int64(len(exactKeys)) {
		t.Fatalf("backup: %d items, problems %v", res.Items, res.Problems)
	}
	restoreBucket(t, p, snap, src, &backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: "exact-copy"}}, nil)
	if d := diffStates(bucketState(t, c, "exact", nil), bucketState(t, c, "exact-copy", nil)); len(d) > 0 {
		t.Fatalf("exact-copy differs:\n%s", strings.Join(d, "\n"))
	}
	// Item restore of a key with "//" and of the "dir/" prefix, under a
	// destination prefix, into an existing bucket.
	createBucket(t, c, "exact-items")
	tgt := s3bucket.NewResource(sc.Region, sc.AccountID, "exact-items", srv.id, nil)
	restoreBucket(t, p, snap, src, &backup.RestoreSpec{Target: backup.RestoreTarget{ID: "exact-items", Path: "r/"},
		Items: []string{"/a//b", "/dir/"}}, tgt)
	got := listKeys(t, c, "exact-items")
	if strings.Join(got, "|") != "r/a//b|r/dir/|r/dir/inner" {
		t.Fatalf("item restore: %q", got)
	}
}

// TestVersionedBucket: the latest version of each key is backed up, a key
// whose latest version is a delete marker is absent, and a new bucket gets
// the source's versioning state.
func TestVersionedBucket(t *testing.T) {
	srv := startMoto(t)
	c := srv.client()
	ctx := ctxT(t)
	createBucket(t, c, "versioned")
	_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("versioned"),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	must(t, err)
	putObj(t, c, "versioned", obj{key: "a", data: []byte("version one")})
	putObj(t, c, "versioned", obj{key: "a", data: []byte("version two, the latest")})
	putObj(t, c, "versioned", obj{key: "b", data: []byte("deleted later")})
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("versioned"), Key: aws.String("b")})
	must(t, err)
	putObj(t, c, "versioned", obj{key: "c", data: []byte("c")})
	p := &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{srv.endpoint()}, StateDir: t.TempDir(), MaxAttempts: 2}
	src := s3bucket.NewResource(sc.Region, sc.AccountID, "versioned", srv.id, nil)
	snap, res, _ := backupBucket(t, p, newRepo(t), src, nil)
	if res.Items != 2 || len(res.Problems) > 0 {
		t.Fatalf("backup: %+v", res)
	}
	restoreBucket(t, p, snap, src, &backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: "versioned-copy"}}, nil)
	got := bucketState(t, c, "versioned-copy", nil)
	if len(got) != 2 || got["a"].Size != int64(len("version two, the latest")) {
		t.Fatalf("restored %+v", got)
	}
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("versioned-copy")})
	must(t, err)
	if v.Status != types.BucketVersioningStatusEnabled {
		t.Errorf("new bucket versioning %q", v.Status)
	}
	// Restoring into the source after "a" is deleted brings it back
	// (a delete marker is absent) and skips "c".
	_, err = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("versioned"), Key: aws.String("a")})
	must(t, err)
	res2 := restoreBucket(t, p, snap, src, &backup.RestoreSpec{Target: backup.RestoreTarget{ID: "versioned"}}, src)
	if res2.Skipped != 1 || res2.Items != 1 || readState(t, c, "versioned", "a").Size != int64(len("version two, the latest")) {
		t.Errorf("restore into the source: %+v", res2)
	}
}
