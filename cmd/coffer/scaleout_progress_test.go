package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
)

// packGate is a proxy in front of the S3 server that holds uploads of data
// packs until the test lets them through, one at a time or all (fault
// injection: a slow store, without timing).
type packGate struct {
	srv  *httptest.Server
	one  chan struct{}
	all  chan struct{}
	once sync.Once
}

func newPackGate(t *testing.T, target string) *packGate {
	u, err := url.Parse(target)
	must(t, err)
	g := &packGate{one: make(chan struct{}), all: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(u) // keeps the Host header the client signed
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/data/") {
			select {
			case <-g.one:
			case <-g.all:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { g.open(); g.srv.Close() })
	return g
}

// release lets one held (or the next) pack upload through.
func (g *packGate) release(t *testing.T) {
	select {
	case g.one <- struct{}{}:
	case <-time.After(2 * time.Minute):
		t.Fatal("no pack upload waited at the gate")
	}
}

func (g *packGate) open() { g.once.Do(func() { close(g.all) }) }

// TestScaleOutLiveProgress: a backup running on node A is described
// through node B with live progress. Node A reaches the S3 store through a
// gate that holds its pack uploads, so the job cannot finish while the test
// looks: each time the test lets one pack through, node B shows the job
// still RUNNING with more bytes transferred (and its size, and a
// percentage that never goes back); with the gate open it completes.
func TestScaleOutLiveProgress(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the scale-out test starts PostgreSQL, versitygw and two coffer processes")
	}
	ctx := context.Background()
	// 36 MiB of random data: several 8 MiB packs.
	c := newCluster(t, 1, 36<<20, 11)
	gate := newPackGate(t, c.s3.Endpoint)
	c.nodeS3 = map[string]string{"node-a": c.s3Config(gate.srv.URL)}
	_, ca := c.start("node-a")
	id := c.backupStarted(ctx, ca)
	// Node B starts after A claimed the job: it only describes it.
	_, cb := c.start("node-b")
	describe := func() *sdk.DescribeBackupJobOutput {
		d, err := cb.DescribeBackupJob(ctx, &sdk.DescribeBackupJobInput{BackupJobId: aws.String(id)})
		must(t, err)
		return d
	}
	pct := func(d *sdk.DescribeBackupJobOutput) float64 {
		f, _ := strconv.ParseFloat(aws.ToString(d.PercentDone), 64)
		return f
	}
	waitFor := func(what string, ok func(d *sdk.DescribeBackupJobOutput) bool) *sdk.DescribeBackupJobOutput {
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			d := describe()
			if ok(d) {
				return d
			}
			if d.State != types.BackupJobStateRunning && d.State != types.BackupJobStateCreated && d.State != types.BackupJobStatePending {
				t.Fatalf("waiting for %s: the job ended %s %q\n%s", what, d.State, aws.ToString(d.StatusMessage), c.logs())
			}
			if time.Now().After(deadline) {
				t.Fatalf("node b never showed %s; last %s %s%% %d bytes\n%s", what, d.State, aws.ToString(d.PercentDone),
					aws.ToInt64(d.BytesTransferred), c.logs())
			}
		}
	}
	// Each pack let through adds its bytes to what node A reports at its
	// next heartbeat; the packs still held keep the job RUNNING (36 MiB of
	// random data need at least four).
	var seen []*sdk.DescribeBackupJobOutput
	for range 2 {
		last := int64(0)
		if len(seen) > 0 {
			last = aws.ToInt64(seen[len(seen)-1].BytesTransferred)
		}
		gate.release(t)
		seen = append(seen, waitFor("more bytes transferred while running", func(d *sdk.DescribeBackupJobOutput) bool {
			return d.State == types.BackupJobStateRunning && aws.ToInt64(d.BytesTransferred) > last
		}))
	}
	first, second := seen[0], seen[1]
	if pct(second) < pct(first) || pct(second) >= 100 || aws.ToInt64(second.BackupSizeInBytes) <= 0 {
		t.Fatalf("progress through node b: %s%% then %s%%, size %d", aws.ToString(first.PercentDone), aws.ToString(second.PercentDone),
			aws.ToInt64(second.BackupSizeInBytes))
	}
	t.Logf("through node b: %s%% %d bytes, then %s%% %d bytes", aws.ToString(first.PercentDone), aws.ToInt64(first.BytesTransferred),
		aws.ToString(second.PercentDone), aws.ToInt64(second.BytesTransferred))
	gate.open()
	j := c.waitTerminal(cb, []string{id})[id]
	if j.State != types.BackupJobStateCompleted {
		t.Fatalf("job ended %s %q\n%s", j.State, aws.ToString(j.StatusMessage), c.logs())
	}
	if aws.ToInt64(j.BytesTransferred) < aws.ToInt64(second.BytesTransferred) {
		t.Fatalf("completed with %d bytes transferred, fewer than the %d shown while running", aws.ToInt64(j.BytesTransferred), aws.ToInt64(second.BytesTransferred))
	}
	if got := c.started()[id]; len(got) != 1 || c.procNode[got[0]] != "node-a" {
		t.Fatalf("job started by processes %v, want node-a only", got)
	}
}
