package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"gopkg.in/yaml.v3"

	"coffer/internal/clock"
	"coffer/internal/config"
)

// The coffer-api tool's fixed names and timings.
const (
	apiAccount = "111111111111"
	apiRegion  = "us-east-1"
	apiVault   = "bench"
	// apiPoll is how often a job is described while it runs: the measured
	// wall time overshoots the job's end by at most this much.
	apiPoll = 50 * time.Millisecond
	// apiReadyTimeout bounds the wait for a starting server to answer.
	apiReadyTimeout = time.Minute
	// apiStopTimeout is how long Close waits after SIGTERM before SIGKILL.
	apiStopTimeout = 30 * time.Second
	// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat
	// (`getconf CLK_TCK`): 100 on every Linux architecture Go supports.
	clockTicks = 100
)

// cofferAPITool drives `coffer serve` through the AWS Backup API, as a
// client would: Init starts a server (one per round) with one account, the
// benchmark tree registered as a file system and an empty vault; Backup is
// StartBackupJob + DescribeBackupJob until COMPLETED, Restore is
// StartRestoreJob to a new file system + DescribeRestoreJob. The measured
// process is the server: wall clock from the Start call to the poll that
// sees COMPLETED, peak memory its VmHWM (reset before each operation), CPU
// the delta of its utime/stime.
type cofferAPITool struct {
	o   ToolOptions
	key config.AccessKey

	dir, dataDir, newFSDir string
	fileSystems            []config.FileSystem // registered in the config, in order
	srv                    *apiServer
	client                 *backup.Client
	// The newest recovery point and the file system it was taken of.
	lastRP, lastFS string
}

// apiServer is a running `coffer serve`.
type apiServer struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result, set before done is closed
	tail    *tailBuffer   // its stderr
}

func newCofferAPITool(o ToolOptions) (*cofferAPITool, error) {
	if o.CofferServerBin == "" {
		return nil, fmt.Errorf("coffer-api: no coffer executable given")
	}
	key, err := config.GenerateAccessKey()
	if err != nil {
		return nil, err
	}
	return &cofferAPITool{o: o, key: key}, nil
}

func (t *cofferAPITool) Name() string { return "coffer-api" }

// RepoDir is the vault's repository directory, where internal/vaultrepo
// keeps local repositories: <data_dir>/vaults/<account>/<region>/<vault>.
// The metadata database (data_dir/metadata.db) is not part of it.
func (t *cofferAPITool) RepoDir() string {
	return filepath.Join(t.dataDir, "vaults", apiAccount, apiRegion, apiVault)
}

// Init stops the previous round's server, writes a fresh configuration in
// dir and starts a server on it. When ToolOptions.Source names the tree
// the harness will back up (Run sets it: the tree exists before the first
// round), it is registered up front, so one server process serves the
// whole round; Backup of any other tree restarts the server with that tree
// added (not measured).
func (t *cofferAPITool) Init(ctx context.Context, dir string) error {
	if err := t.Close(); err != nil {
		return err
	}
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("coffer-api: tool directory %q is not absolute", dir)
	}
	t.dir, t.dataDir, t.newFSDir = dir, filepath.Join(dir, "data"), filepath.Join(dir, "newfs")
	t.fileSystems, t.lastRP, t.lastFS = nil, "", ""
	if err := os.MkdirAll(t.newFSDir, 0o700); err != nil {
		return fmt.Errorf("coffer-api: %w", err)
	}
	if t.o.Source != "" {
		t.register(t.o.Source)
	}
	if err := t.start(ctx); err != nil {
		return err
	}
	if _, err := t.client.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String(apiVault)}); err != nil {
		return fmt.Errorf("coffer-api: create vault: %w", err)
	}
	return nil
}

// register adds a file system for path to the configuration (the running
// server does not see it until it restarts) and returns it.
func (t *cofferAPITool) register(path string) config.FileSystem {
	fs := config.FileSystem{ID: fmt.Sprintf("fs-%017x", len(t.fileSystems)+1), Account: apiAccount, Path: filepath.Clean(path)}
	t.fileSystems = append(t.fileSystems, fs)
	return fs
}

func (t *cofferAPITool) fileSystem(path string) (config.FileSystem, bool) {
	for _, fs := range t.fileSystems {
		if fs.Path == filepath.Clean(path) {
			return fs, true
		}
	}
	return config.FileSystem{}, false
}

func (t *cofferAPITool) fsArn(fs config.FileSystem) string {
	return (&config.Config{Region: apiRegion}).FileSystemArn(fs)
}

func (t *cofferAPITool) roleArn() string {
	return "arn:aws:iam::" + apiAccount + ":role/service-role/AWSBackupDefaultServiceRole"
}

// writeConfig writes dir/coffer.yaml for listen, checked by coffer's own
// parser first.
func (t *cofferAPITool) writeConfig(listen string) (string, error) {
	// The server's defaults (job workers, memory limit) unless told
	// otherwise: the goals are about Coffer as configured out of the box.
	c := config.Config{Listen: listen, DataDir: t.dataDir, Region: apiRegion,
		Accounts:    []config.Account{{ID: apiAccount, Name: "bench", AccessKeys: []config.AccessKey{t.key}}},
		FileSystems: t.fileSystems, NewFileSystemsDir: t.newFSDir, Workers: t.o.APIWorkers}
	b, err := yaml.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("coffer-api: config: %w", err)
	}
	if _, err := config.Parse(b); err != nil {
		return "", fmt.Errorf("coffer-api: generated config: %w", err)
	}
	p := filepath.Join(t.dir, "coffer.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return "", fmt.Errorf("coffer-api: %w", err)
	}
	return p, nil
}

// freeLoopbackAddr returns 127.0.0.1:<a port that was free just now>.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// start writes the configuration and starts `coffer serve`, returning once
// it answers API calls.
func (t *cofferAPITool) start(ctx context.Context) error {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return fmt.Errorf("coffer-api: free port: %w", err)
	}
	cfg, err := t.writeConfig(addr)
	if err != nil {
		return err
	}
	cmd := exec.Command(t.o.CofferServerBin, "serve", "--config", cfg)
	cmd.Dir = t.dir
	cmd.Env = os.Environ() // GOMEMLIMIT, when set, overrides the limit as for coffer-direct
	s := &apiServer{cmd: cmd, done: make(chan struct{}), tail: &tailBuffer{max: 8 << 10}}
	cmd.Stderr = s.tail
	if t.o.Runner.Verbose != nil {
		cmd.Stderr = io.MultiWriter(s.tail, t.o.Runner.Verbose)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("coffer-api: start server: %w", err)
	}
	go func() { s.waitErr = cmd.Wait(); close(s.done) }()
	t.srv = s
	t.client = backup.New(backup.Options{Region: apiRegion, BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(t.key.AccessKeyID, t.key.SecretAccessKey, "")})
	if t.o.Logger != nil {
		t.o.Logger.Debug("coffer serve started", "pid", cmd.Process.Pid, "listen", addr, "config", cfg)
	}

	deadline := time.Now().Add(apiReadyTimeout)
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := t.client.ListBackupVaults(actx, &backup.ListBackupVaultsInput{}, func(o *backup.Options) { o.RetryMaxAttempts = 1 })
		cancel()
		if err == nil {
			return nil
		}
		if e := t.exited(); e != nil {
			return e
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("coffer-api: server on %s does not answer: %w\n%s", addr, err, indent(s.tail.String())), t.Close())
		}
		if err := sleepCtx(ctx, apiPoll); err != nil {
			return errors.Join(err, t.Close())
		}
	}
}

// exited returns an error describing the server's exit if it has exited.
func (t *cofferAPITool) exited() error {
	if t.srv == nil {
		return errors.New("coffer-api: Init was not called")
	}
	select {
	case <-t.srv.done:
		return fmt.Errorf("coffer-api: server exited (%v)\n%s", t.srv.waitErr, indent(t.srv.tail.String()))
	default:
		return nil
	}
}

// Close stops the server: SIGTERM, then SIGKILL after apiStopTimeout. It
// may be called more than once.
func (t *cofferAPITool) Close() error {
	s := t.srv
	if s == nil {
		return nil
	}
	t.srv, t.client = nil, nil
	select {
	case <-s.done:
		if s.waitErr != nil {
			return fmt.Errorf("coffer-api: server had exited: %w\n%s", s.waitErr, indent(s.tail.String()))
		}
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		<-s.done // it exited just now
		return nil
	}
	select {
	case <-s.done:
		if s.waitErr != nil {
			return fmt.Errorf("coffer-api: server stopped with %w\n%s", s.waitErr, indent(s.tail.String()))
		}
		return nil
	case <-time.After(apiStopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("coffer-api: server still ran %s after SIGTERM: killed\n%s", apiStopTimeout, indent(s.tail.String()))
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Backup backs up src through StartBackupJob and waits for the job.
func (t *cofferAPITool) Backup(ctx context.Context, src string) (Sample, error) {
	if err := t.exited(); err != nil {
		return Sample{}, err
	}
	fs, ok := t.fileSystem(src)
	if !ok {
		// Not known at Init: register it and restart (not measured; the
		// vault and its recovery points live on in data_dir).
		fs = t.register(src)
		if t.o.Logger != nil {
			t.o.Logger.Info("coffer-api: restarting the server to register a file system", "path", fs.Path, "id", fs.ID)
		}
		if err := t.Close(); err != nil {
			return Sample{}, err
		}
		if err := t.start(ctx); err != nil {
			return Sample{}, err
		}
	}
	var rp string
	s, err := t.measure(ctx, func() error {
		out, err := t.client.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String(apiVault),
			ResourceArn: aws.String(t.fsArn(fs)), IamRoleArn: aws.String(t.roleArn())})
		if err != nil {
			return fmt.Errorf("StartBackupJob: %w", err)
		}
		id := aws.ToString(out.BackupJobId)
		return t.poll(ctx, "backup job "+id, func() (string, string, error) {
			o, err := t.client.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(id)})
			if err != nil {
				return "", "", err
			}
			rp = aws.ToString(o.RecoveryPointArn)
			return string(o.State), aws.ToString(o.StatusMessage), nil
		}, "CREATED", "PENDING", "RUNNING", "ABORTING")
	})
	if err != nil {
		return s, err
	}
	if rp == "" {
		return s, errors.New("coffer-api: completed backup job names no recovery point")
	}
	t.lastRP, t.lastFS = rp, fs.ID
	return s, nil
}

// Restore restores the newest recovery point (that of the last backup) to
// a new file system, which the server creates under new_file_systems_dir,
// and renames that directory to dst (same file system; not measured).
// Coffer's TargetPath extension would restore straight to dst, but only
// inside an existing registered file system, i.e. one containing dst's
// parent, the round directory with every tool's repository in it.
func (t *cofferAPITool) Restore(ctx context.Context, dst string) (Sample, error) {
	if err := t.exited(); err != nil {
		return Sample{}, err
	}
	if t.lastRP == "" {
		return Sample{}, errors.New("coffer-api: no recovery point to restore")
	}
	var created string
	s, err := t.measure(ctx, func() error {
		out, err := t.client.StartRestoreJob(ctx, &backup.StartRestoreJobInput{RecoveryPointArn: aws.String(t.lastRP),
			IamRoleArn: aws.String(t.roleArn()), ResourceType: aws.String("EFS"),
			Metadata: map[string]string{"file-system-id": t.lastFS, "newFileSystem": "true"}})
		if err != nil {
			return fmt.Errorf("StartRestoreJob: %w", err)
		}
		id := aws.ToString(out.RestoreJobId)
		return t.poll(ctx, "restore job "+id, func() (string, string, error) {
			o, err := t.client.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: aws.String(id)})
			if err != nil {
				return "", "", err
			}
			created = aws.ToString(o.CreatedResourceArn)
			return string(o.Status), aws.ToString(o.StatusMessage), nil
		}, "PENDING", "RUNNING")
	})
	if err != nil {
		return s, err
	}
	id := created[strings.LastIndexByte(created, '/')+1:]
	if !fsIDRE.MatchString(id) {
		return s, fmt.Errorf("coffer-api: restore created %q, not a file system", created)
	}
	if err := os.Rename(filepath.Join(t.newFSDir, id), dst); err != nil {
		return s, fmt.Errorf("coffer-api: %w", err)
	}
	return s, nil
}

var fsIDRE = regexp.MustCompile(`^fs-[0-9a-f]{8,17}$`)

// poll describes a job every apiPoll until it is COMPLETED (nil), leaves
// the running states (an error with its status message), or the server
// exits.
func (t *cofferAPITool) poll(ctx context.Context, what string, describe func() (state, msg string, err error), running ...string) error {
	for {
		state, msg, err := describe()
		if err != nil {
			if e := t.exited(); e != nil {
				return e
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		if state == "COMPLETED" {
			return nil
		}
		found := false
		for _, r := range running {
			found = found || state == r
		}
		if !found {
			return fmt.Errorf("%s %s: %s", what, state, msg)
		}
		if err := sleepCtx(ctx, apiPoll); err != nil {
			return err
		}
	}
}

// measure runs op (a job from its Start call to the poll that sees it
// done) and measures the server over it: wall clock, CPU time from
// /proc/<pid>/stat, and the peak RSS VmHWM of /proc/<pid>/status after
// resetting it through /proc/<pid>/clear_refs.
func (t *cofferAPITool) measure(ctx context.Context, op func() error) (Sample, error) {
	pid := t.srv.cmd.Process.Pid
	if err := resetPeakRSS(pid); err != nil {
		return Sample{}, fmt.Errorf("coffer-api: %w", err)
	}
	before, err := readProcStat(pid)
	if err != nil {
		return Sample{}, fmt.Errorf("coffer-api: %w", err)
	}
	clk := t.o.Runner.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	start := clk.Now()
	err = op()
	wall := clk.Now().Sub(start)
	s := Sample{Wall: wall}
	after, perr := readProcStat(pid)
	hwm, herr := readVmHWM(pid)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return s, fmt.Errorf("coffer-api: %w", err)
	}
	if err := errors.Join(perr, herr); err != nil {
		return s, fmt.Errorf("coffer-api: %w", err)
	}
	s.User = ticks(after.utime - before.utime)
	s.Sys = ticks(after.stime - before.stime)
	s.MaxRSS = hwm
	return s, nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTicks }

// resetPeakRSS sets the process's VmHWM to its current RSS (Linux 4.0+).
func resetPeakRSS(pid int) error {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/clear_refs", pid), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	_, err = f.Write([]byte("5"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	return nil
}

func readVmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmHWM(string(b))
}

// parseVmHWM returns the "VmHWM:" line of /proc/<pid>/status in bytes.
func parseVmHWM(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: malformed VmHWM line %q", line)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("/proc status: malformed VmHWM line %q", line)
		}
		return n << 10, nil
	}
	return 0, errors.New("/proc status: no VmHWM line")
}

// procCPU is a process's CPU time in clock ticks (all its threads).
type procCPU struct{ utime, stime uint64 }

func readProcStat(pid int) (procCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime (fields 14 and 15) of
// /proc/<pid>/stat. Field 2, the command name in parentheses, may contain
// spaces and parentheses, so fields are counted from the last ')'.
func parseProcStat(stat string) (procCPU, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return procCPU{}, fmt.Errorf("/proc stat: no command name in %q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return procCPU{}, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procCPU{}, fmt.Errorf("/proc stat: malformed utime/stime %q %q", f[11], f[12])
	}
	return procCPU{utime: u, stime: s}, nil
}
