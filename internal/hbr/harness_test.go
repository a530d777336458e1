package hbr_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	alisdk "github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	alierr "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	awsbackup "github.com/aws/aws-sdk-go-v2/service/backup"
	awstypes "github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/api"
	"coffer/internal/api/sigv4"
	"coffer/internal/backup"
	"coffer/internal/backupjob"
	"coffer/internal/clock"
	"coffer/internal/hbr"
	"coffer/internal/jobs"
	"coffer/internal/repository"
	"coffer/internal/resource"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/s3bucket"
	"coffer/internal/restorejob"
	"coffer/internal/service"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/s3server"
	"coffer/internal/vaultrepo/localvaults"
)

const (
	region    = "us-east-1"
	hbrRegion = "cn-hangzhou"
	fsSrc     = "fs-00000000000000a01"
	fsDst     = "fs-00000000000000a02"
	fsB       = "fs-00000000000000b01"
	roleArn   = "arn:aws:iam::111111111111:role/backup"
)

type account struct{ id, akid, secret string }

var (
	acctA = account{"111111111111", "LTAIAAAAAAAAAAAAAAAA", "secretAsecretAsecretAsecretAsecret"}
	acctB = account{"222222222222", "LTAIBBBBBBBBBBBBBBBB", "secretBsecretBsecretBsecretBsecret"}
)

// env is the real server: the AWS API and the HBR front end on one
// listener (hbr.Route, as cmd/coffer mounts them), a real SQLite store,
// local vault repositories, the job runner with the backup and restore
// handlers, and three file systems: src and dst of account A, b of B.
// A backup of src (through the AWS API) is the snapshot every test
// restores.
type env struct {
	t        *testing.T
	host     string
	st       store.Store
	svc      *service.Service
	hsrv     *hbr.Server
	src, dst string
	dstB     string
	gate     *gate
	rpArn    string
	regTimes map[string]int64
}

// gate holds restores whose TargetPath starts with /cancel mid-run: after
// their first data blob, the next blob load blocks until the job's
// context ends (fault injection for the cancel tests).
type gate struct {
	reached chan string // job ids that reached the gate
}

type gatedFS struct {
	*filesystem.Plugin
	g *gate
}

func (p gatedFS) Restore(ctx context.Context, req resource.RestoreRequest) (resource.RestoreResult, error) {
	if strings.HasPrefix(req.Spec.Target.Path, "/cancel") {
		req.Snapshot.Loader = &gatedLoader{Loader: req.Snapshot.Loader, g: p.g, job: req.JobID}
	}
	return p.Plugin.Restore(ctx, req)
}

type gatedLoader struct {
	resource.Loader
	g    *gate
	job  string
	data atomic.Int64
}

func (l *gatedLoader) LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	if t == repository.DataBlob && l.data.Add(1) == 2 {
		l.g.reached <- l.job
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return l.Loader.LoadBlob(ctx, t, id, buf)
}

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// buildTree writes the source tree.
func buildTree(t *testing.T, root string) {
	files := map[string]string{"small.txt": "hello\n", "dir/a.go": strings.Repeat("a", 5000), "dir/sub/b.txt": strings.Repeat("b", 70000),
		"dir/sub/c.go": "package c\n", "vendor/v.go": "package v\n", "docs/readme.md": "# docs\n", "empty": ""}
	big := make([]byte, 2<<20+5)
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
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	mustDo(t, os.Chtimes(filepath.Join(root, "small.txt"), old, old))
	mustDo(t, os.Chtimes(filepath.Join(root, "docs", "readme.md"), old, old))
}

type envOptions struct {
	// noRunner: jobs stay queued (no runner).
	noRunner bool
	// signClock is the front end's signing clock (default real time).
	signClock clock.Clock
	// nonces, when set, is the front end's shared nonce store.
	nonces hbr.NonceStore
	// s3, when set, registers the S3 bucket plugin with this server as
	// endpoint "s3" and the buckets of s3Buckets as resources of A.
	s3        *s3server.Server
	s3Buckets []string
}

func start(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	mustDo(t, err)
	repos, err := localvaults.New(filepath.Join(dir, "data"), bytes.Repeat([]byte{5}, 32), repository.Options{PackSize: 1 << 20})
	mustDo(t, err)
	e := &env{t: t, st: st, gate: &gate{reached: make(chan string, 16)}}
	fsRoot := filepath.Join(dir, "fs")
	e.src, e.dst, e.dstB = filepath.Join(fsRoot, "src"), filepath.Join(fsRoot, "dst"), filepath.Join(fsRoot, "b")
	for _, d := range []string{e.src, e.dst, e.dstB} {
		mustDo(t, os.MkdirAll(d, 0o755))
	}
	buildTree(t, e.src)
	clk := clock.Real{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	plugins := []resource.Plugin{gatedFS{Plugin: &filesystem.Plugin{NewFileSystemsDir: filepath.Join(fsRoot, "new")}, g: e.gate}}
	if o.s3 != nil {
		plugins = append(plugins, &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{{ID: "s3", URL: o.s3.Endpoint, Region: o.s3.Region,
			PathStyle: true, AccessKeyID: o.s3.AccessKey, SecretAccessKey: o.s3.SecretKey}}})
	}
	reg, err := resource.NewRegistry(plugins...)
	mustDo(t, err)
	svc, err := service.New(service.Deps{Store: st, Clock: clk, Plugins: reg, Repos: repos, VaultStorage: repos, RecoveryPointData: repos, Logger: log})
	mustDo(t, err)
	e.svc = svc
	scopes := []store.Scope{{AccountID: acctA.id, Region: region}, {AccountID: acctB.id, Region: region}}
	mustDo(t, svc.SyncResources(ctx, "EFS", scopes, []*backup.Resource{
		filesystem.NewResource(region, acctA.id, fsSrc, e.src, nil),
		filesystem.NewResource(region, acctA.id, fsDst, e.dst, nil),
		filesystem.NewResource(region, acctB.id, fsB, e.dstB, nil),
	}))
	if o.s3 != nil {
		var buckets []*backup.Resource
		for _, b := range o.s3Buckets {
			buckets = append(buckets, s3bucket.NewResource(region, acctA.id, b, "s3", nil))
		}
		mustDo(t, svc.SyncResources(ctx, s3bucket.ResourceType, scopes, buckets))
	}
	var runnerDone chan error
	if !o.noRunner {
		runner, err := jobs.New(jobs.Options{Store: st, Clock: clk, Poll: 20 * time.Millisecond, LeaseTTL: 1500 * time.Millisecond, Logger: log,
			Handlers: []jobs.Handler{&backupjob.Handler{Store: st, Repos: repos, Clock: clk, Plugins: reg},
				&restorejob.Handler{Store: st, Repos: repos, Clock: clk, Plugins: reg}}})
		mustDo(t, err)
		svc.SetNotifier(runner)
		runnerDone = make(chan error, 1)
		go func() { runnerDone <- runner.Run(ctx) }()
	}
	accountOf := map[string]string{acctA.akid: acctA.id, acctB.akid: acctB.id}
	creds := api.StaticCredentials{acctA.akid: acctA.secret, acctB.akid: acctB.secret}
	awsSrv, err := api.New(api.Config{Region: region, AccountOf: accountOf, TokenKey: bytes.Repeat([]byte{7}, 32)},
		api.Deps{Clock: clk, Logger: log, Service: svc, Auth: api.SigV4{V: &sigv4.Verifier{Creds: creds, Clock: clk, Service: "backup", Region: region}}})
	mustDo(t, err)
	signClk := o.signClock
	if signClk == nil {
		signClk = clk
	}
	hsrv, err := hbr.New(hbr.Config{Region: region, RegionID: hbrRegion, AccountOf: accountOf}, hbr.Deps{Service: svc, Creds: creds, Clock: signClk, Logger: log,
		Nonces: o.nonces})
	mustDo(t, err)
	e.hsrv = hsrv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	mustDo(t, err)
	hs := &http.Server{Handler: hbr.Route(hsrv, awsSrv), ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	e.host = ln.Addr().String()
	t.Cleanup(func() {
		_ = hs.Close()
		cancel()
		if runnerDone != nil {
			if err := <-runnerDone; err != nil {
				t.Errorf("runner: %v", err)
			}
		}
		_ = st.Close()
	})
	e.regTimes = map[string]int64{}
	mustDo(t, st.Read(ctx, func(tx store.Tx) error {
		for _, r := range []struct{ sc, id string }{{acctA.id, fsSrc}, {acctA.id, fsDst}, {acctB.id, fsB}} {
			res, err := tx.GetResource(ctx, store.Scope{AccountID: r.sc, Region: region}, "EFS", r.id)
			if err != nil {
				return err
			}
			e.regTimes[r.id] = res.CreationDate.Unix()
		}
		return nil
	}))
	if !o.noRunner {
		e.backup()
	}
	return e
}

// aws is an AWS SDK client of a.
func (e *env) aws(a account) *awsbackup.Client {
	return awsbackup.New(awsbackup.Options{Region: region, BaseEndpoint: aws.String("http://" + e.host),
		Credentials: awscreds.NewStaticCredentialsProvider(a.akid, a.secret, ""), RetryMaxAttempts: 1})
}

// backup creates vault "v1" of A and backs src up into it through the AWS
// API, then finds the snapshot through HBR.
func (e *env) backup() {
	t := e.t
	ctx := context.Background()
	c := e.aws(acctA)
	_, err := c.CreateBackupVault(ctx, &awsbackup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")})
	mustDo(t, err)
	out, err := c.StartBackupJob(ctx, &awsbackup.StartBackupJobInput{BackupVaultName: aws.String("v1"),
		ResourceArn: aws.String(filesystem.ARN(region, acctA.id, fsSrc)), IamRoleArn: aws.String(roleArn)})
	mustDo(t, err)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		d, err := c.DescribeBackupJob(ctx, &awsbackup.DescribeBackupJobInput{BackupJobId: out.BackupJobId})
		mustDo(t, err)
		if d.State == awstypes.BackupJobStateCompleted {
			e.rpArn = aws.ToString(d.RecoveryPointArn)
			break
		}
		if d.State == awstypes.BackupJobStateFailed || time.Now().After(deadline) {
			t.Fatalf("backup job %s: %s", d.State, aws.ToString(d.StatusMessage))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiErr is an HBR error as a client reports it.
type apiErr struct {
	Code    string
	Status  int
	Message string
}

func (e *apiErr) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// client is one of the three real HBR clients.
type client interface {
	name() string
	// call runs action; params are strings, ints or (Filters) lists of
	// maps; inBody names the parameters the generated SDKs send in the
	// form body of a POST.
	call(action, method string, params map[string]any, inBody ...string) (map[string]any, *apiErr)
}

// goClient is github.com/aliyun/alibaba-cloud-sdk-go's sdk core
// (requests.NewCommonRequest, V2 HMAC-SHA1 signatures).
type goClient struct {
	e *env
	c *alisdk.Client
}

func (e *env) goClient(a account) *goClient {
	cfg := alisdk.NewConfig().WithAutoRetry(false).WithMaxRetryTime(0).WithScheme("HTTP").WithTimeout(60 * time.Second)
	c, err := alisdk.NewClientWithOptions(hbrRegion, cfg, credentials.NewAccessKeyCredential(a.akid, a.secret))
	mustDo(e.t, err)
	return &goClient{e: e, c: c}
}

func (g *goClient) name() string { return "alibaba-cloud-sdk-go" }

// flatten renders params as strings, Filters flattened 1-based.
func flatten(params map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range params {
		switch x := v.(type) {
		case string:
			out[k] = x
		case int:
			out[k] = fmt.Sprint(x)
		case int64:
			out[k] = fmt.Sprint(x)
		case []map[string]any:
			for i, f := range x {
				for fk, fv := range f {
					if vals, ok := fv.([]string); ok {
						for j, s := range vals {
							out[fmt.Sprintf("%s.%d.%s.%d", k, i+1, fk, j+1)] = s
						}
					} else {
						out[fmt.Sprintf("%s.%d.%s", k, i+1, fk)] = fmt.Sprint(fv)
					}
				}
			}
		default:
			panic(fmt.Sprintf("flatten: %T", v))
		}
	}
	return out
}

func (g *goClient) call(action, method string, params map[string]any, inBody ...string) (map[string]any, *apiErr) {
	req := requests.NewCommonRequest()
	req.Method = method
	req.Scheme = "http"
	host, port, _ := net.SplitHostPort(g.e.host)
	req.Domain, req.Port = host, port
	req.Product, req.Version, req.ApiName = "hbr", "2017-09-08", action
	body := map[string]bool{}
	for _, n := range inBody {
		body[n] = true
	}
	for k, v := range flatten(params) {
		if method == "POST" && body[k] {
			req.FormParams[k] = v
		} else {
			req.QueryParams[k] = v
		}
	}
	resp, err := g.c.ProcessCommonRequest(req)
	if err != nil {
		var se *alierr.ServerError
		if errors.As(err, &se) {
			return nil, &apiErr{Code: se.ErrorCode(), Status: se.HttpStatus(), Message: se.Message()}
		}
		g.e.t.Fatalf("%s %s: %v", g.name(), action, err)
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(resp.GetHttpContentBytes()))
	dec.UseNumber()
	mustDo(g.e.t, dec.Decode(&out))
	return out, nil
}

// nodeClient drives testdata/hbrclient.js: @alicloud/pop-core (V2) or
// @alicloud/openapi-client (V3).
type nodeClient struct {
	e    *env
	kind string // "pop" or "openapi"
	a    account
	drv  *nodeDriver
}

func (n *nodeClient) name() string {
	if n.kind == "pop" {
		return "@alicloud/pop-core"
	}
	return "@alicloud/openapi-client"
}

func (n *nodeClient) call(action, method string, params map[string]any, inBody ...string) (map[string]any, *apiErr) {
	query, body := map[string]any{}, map[string]any{}
	isBody := map[string]bool{}
	for _, b := range inBody {
		isBody[b] = true
	}
	for k, v := range params {
		if method == "POST" && isBody[k] {
			body[k] = v
		} else {
			query[k] = v
		}
	}
	res := n.drv.do(n.e.t, map[string]any{"client": n.kind, "endpoint": n.e.host, "akid": n.a.akid, "secret": n.a.secret,
		"action": action, "method": method, "query": query, "body": body})
	if ok, _ := res["ok"].(bool); ok {
		b, _ := json.Marshal(res["body"])
		var out map[string]any
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		mustDo(n.e.t, dec.Decode(&out))
		return out, nil
	}
	code, _ := res["code"].(string)
	if code == "DriverError" {
		n.e.t.Fatalf("%s %s: %v", n.name(), action, res["message"])
	}
	st, _ := res["status"].(float64)
	msg, _ := res["message"].(string)
	return nil, &apiErr{Code: code, Status: int(st), Message: msg}
}

// Node clients, installed with npm into the user cache directory.
var nodePackages = []string{"@alicloud/openapi-client@0.4.15", "@alicloud/pop-core@1.8.0", "@alicloud/openapi-util@0.3.3", "@alicloud/tea-util@1.4.11"}

var (
	nodeOnce sync.Once
	nodeDir  string
	nodeErr  error
)

// nodeModules installs the Node clients once (npm into the user cache
// directory) and returns their node_modules. Without node and npm the
// test is skipped, except in CI, where it fails.
func nodeModules(t *testing.T) string {
	t.Helper()
	nodeOnce.Do(func() {
		for _, tool := range []string{"node", "npm"} {
			if _, err := exec.LookPath(tool); err != nil {
				nodeErr = fmt.Errorf("%s is not installed", tool)
				return
			}
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "coffer-test", "hbr-npm-"+strings.NewReplacer("@", "", "/", "_").Replace(strings.Join(nodePackages, "+")))
		mods := filepath.Join(dir, "node_modules")
		if _, err := os.Stat(filepath.Join(mods, "@alicloud", "pop-core", "package.json")); err == nil {
			nodeDir = mods
			return
		}
		tmp := dir + ".tmp" + fmt.Sprint(os.Getpid())
		os.RemoveAll(tmp)
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			nodeErr = err
			return
		}
		args := append([]string{"install", "--prefix", tmp, "--no-audit", "--no-fund", "--no-package-lock", "--loglevel", "error"}, nodePackages...)
		cmd := exec.Command("npm", args...)
		if out, err := cmd.CombinedOutput(); err != nil {
			nodeErr = fmt.Errorf("npm install: %v\n%s", err, out)
			return
		}
		os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			nodeErr = err
			return
		}
		nodeDir = mods
	})
	if nodeErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("Node HBR clients unavailable in CI: %v", nodeErr)
		}
		t.Skipf("skipping the Node.js client tests: %v (install node and npm to run them)", nodeErr)
	}
	return nodeDir
}

// nodeDriver is a running testdata/hbrclient.js.
type nodeDriver struct {
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Reader
}

func startNodeDriver(t *testing.T) *nodeDriver {
	mods := nodeModules(t)
	cmd := exec.Command("node", filepath.Join("testdata", "hbrclient.js"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	mustDo(t, err)
	out, err := cmd.StdoutPipe()
	mustDo(t, err)
	mustDo(t, cmd.Start())
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return &nodeDriver{in: in, out: bufio.NewReaderSize(out, 1<<20)}
}

func (d *nodeDriver) do(t *testing.T, cmd map[string]any) map[string]any {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := json.Marshal(cmd)
	mustDo(t, err)
	if _, err := d.in.Write(append(b, '\n')); err != nil {
		t.Fatalf("node driver: %v", err)
	}
	line, err := d.out.ReadBytes('\n')
	if err != nil {
		t.Fatalf("node driver: %v", err)
	}
	var res map[string]any
	mustDo(t, json.Unmarshal(line, &res))
	return res
}

// clients returns the three clients for account a (the Node ones share
// one driver).
func (e *env) clients(a account) []client {
	out := []client{e.goClient(a)}
	drv := startNodeDriver(e.t)
	out = append(out, &nodeClient{e: e, kind: "pop", a: a, drv: drv}, &nodeClient{e: e, kind: "openapi", a: a, drv: drv})
	return out
}

// restoreJobCount counts the restore jobs of every account.
func (e *env) restoreJobCount() int {
	e.t.Helper()
	n := 0
	ctx := context.Background()
	mustDo(e.t, e.st.Read(ctx, func(tx store.Tx) error {
		js, err := tx.ListJobsInStates(ctx, []backup.JobKind{backup.JobRestore}, []backup.JobState{backup.JobCreated, backup.JobPending,
			backup.JobRunning, backup.JobAborting, backup.JobAborted, backup.JobCompleted, backup.JobFailed, backup.JobExpired, backup.JobPartial}, 100000)
		n = len(js)
		return err
	}))
	return n
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func num(v any) int64 {
	switch x := v.(type) {
	case json.Number:
		n, _ := x.Int64()
		return n
	case float64:
		return int64(x)
	}
	return -1
}

// list returns out[outer][inner] as a list of objects.
func list(out map[string]any, outer, inner string) []map[string]any {
	o, _ := out[outer].(map[string]any)
	l, _ := o[inner].([]any)
	var res []map[string]any
	for _, x := range l {
		m, _ := x.(map[string]any)
		res = append(res, m)
	}
	return res
}
