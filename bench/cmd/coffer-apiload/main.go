// Command coffer-apiload measures the peak memory of `coffer serve` under
// API load: it starts the given coffer executable with a fresh data dir and
// -backups file systems that all point at -tree, starts one backup job of
// each, and while they run lets -clients goroutines (each with its own SDK
// client and connections) call List*/Describe* operations as fast as the
// server answers (with -pad-bytes N: DescribeBackupVault requests that
// carry an N-byte JSON body of small numbers under an unknown member, which
// the server decodes in full and then drops: the most memory a request of
// that size costs the decoder). When every job has ended (or, without backups, after
// -duration) it prints the server's peak RSS (VmHWM from /proc/PID/status),
// the highest VmRSS it sampled, request counts and error codes. It asserts
// nothing about time: it is a measurement, not a test. Linux only.
//
//	go build -o /tmp/coffer ./cmd/coffer
//	go run ./bench/cmd/coffer-apiload -coffer /tmp/coffer -tree DIR [-clients 50] [-backups 4]
//	go run ./bench/cmd/coffer-apiload -coffer /tmp/coffer -tree DIR -backups 0 -clients 200 -pad-bytes 1000000 -duration 30s
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/smithy-go"
	"gopkg.in/yaml.v3"

	"coffer/internal/config"
)

const (
	account = "111111111111"
	region  = "us-east-1"
	vault   = "load"
)

func main() {
	bin := flag.String("coffer", "", "coffer executable (required)")
	tree := flag.String("tree", "", "directory to back up (required)")
	clients := flag.Int("clients", 50, "concurrent API clients")
	backups := flag.Int("backups", 4, "backup jobs (one file system each, all on -tree)")
	workers := flag.Int("workers", 0, "workers key of the config (0: coffer's default)")
	extra := flag.String("config-extra", "", "YAML appended to the generated config (e.g. \"max_concurrent_requests: 32\")")
	work := flag.String("work", "", "work directory (default: a new temporary directory, removed afterwards)")
	duration := flag.Duration("duration", 30*time.Second, "how long to load the server when -backups is 0")
	padBytes := flag.Int("pad-bytes", 0, "if > 0, clients send DescribeBackupVault with a JSON body of this size instead of List*/Describe*")
	flag.Parse()
	if *bin == "" || *tree == "" {
		flag.Usage()
		os.Exit(2)
	}
	o := options{bin: *bin, tree: *tree, work: *work, extra: *extra, clients: *clients, backups: *backups,
		workers: *workers, duration: *duration, padBytes: *padBytes}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "coffer-apiload:", err)
		os.Exit(1)
	}
}

type options struct {
	bin, tree, work, extra    string
	clients, backups, workers int
	duration                  time.Duration
	padBytes                  int
}

func run(o options) error {
	bin, work, extra, clients, backups, workers := o.bin, o.work, o.extra, o.clients, o.backups, o.workers
	tree, err := filepath.Abs(o.tree)
	if err != nil {
		return err
	}
	if work == "" {
		if work, err = os.MkdirTemp("", "coffer-apiload-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	key, err := config.GenerateAccessKey()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	// Only the keys every coffer version knows, so that older builds can
	// be measured too; -config-extra adds others.
	cfg := struct {
		Listen      string              `yaml:"listen"`
		DataDir     string              `yaml:"data_dir"`
		Region      string              `yaml:"region"`
		Workers     int                 `yaml:"workers,omitempty"`
		Accounts    []config.Account    `yaml:"accounts"`
		FileSystems []config.FileSystem `yaml:"file_systems"`
	}{Listen: addr, DataDir: filepath.Join(work, "data"), Region: region, Workers: workers,
		Accounts: []config.Account{{ID: account, AccessKeys: []config.AccessKey{key}}}}
	for i := range backups {
		cfg.FileSystems = append(cfg.FileSystems, config.FileSystem{ID: fmt.Sprintf("fs-%017x", i+1), Account: account, Path: tree})
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	b = append(b, []byte("\n"+extra+"\n")...)
	cfgPath := filepath.Join(work, "coffer.yaml")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return err
	}
	logPath := filepath.Join(work, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stderr = logf
	// The server dies with this process, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{}) // closed when the server has exited, after waitErr is set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			<-exited // it has exited already
			return
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			if err := cmd.Process.Kill(); err != nil {
				fmt.Fprintln(os.Stderr, "coffer-apiload: kill server:", err)
			}
			<-exited
		}
	}()

	ctx := context.Background()
	newClient := func() *backup.Client {
		return backup.New(backup.Options{Region: region, BaseEndpoint: aws.String("http://" + addr),
			Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")})
	}
	admin := newClient()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		_, err := admin.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{})
		if err == nil {
			break
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("server exited (%v):\n%s", waitErr, b)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server does not answer: %w", err)
		}
	}
	if _, err := admin.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String(vault)}); err != nil {
		return err
	}
	var pad []byte
	if o.padBytes > 0 {
		pad = append(pad, `{"Pad":[0`...)
		for len(pad) < o.padBytes-2 {
			pad = append(pad, ",0"...)
		}
		pad = append(pad, "]}"...)
	}
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey}
	padSum := sha256.Sum256(pad)
	idle := readStatus(pid)
	role := "arn:aws:iam::" + account + ":role/service-role/AWSBackupDefaultServiceRole"
	var jobIDs []string
	for _, fs := range cfg.FileSystems {
		out, err := admin.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String(vault),
			ResourceArn: aws.String((&config.Config{Region: region}).FileSystemArn(fs)), IamRoleArn: aws.String(role)})
		if err != nil {
			return fmt.Errorf("StartBackupJob: %w", err)
		}
		jobIDs = append(jobIDs, aws.ToString(out.BackupJobId))
	}
	start := time.Now()

	loadCtx, stopLoad := context.WithCancel(ctx)
	var (
		wg       sync.WaitGroup
		requests atomic.Int64
		mu       sync.Mutex
		errCodes = map[string]int{}
	)
	for range clients {
		wg.Go(func() {
			c := newClient()
			hc := &http.Client{Transport: &http.Transport{}} // its own connection, like c
			for loadCtx.Err() == nil {
				var err error
				if pad != nil {
					err = callPadded(loadCtx, hc, signer, creds, "http://"+addr, pad, hex.EncodeToString(padSum[:]))
				} else {
					err = call(loadCtx, c, jobIDs)
				}
				if loadCtx.Err() != nil {
					return
				}
				requests.Add(1)
				if err != nil {
					code := "other"
					var ae smithy.APIError
					if errors.As(err, &ae) {
						code = ae.ErrorCode()
					}
					mu.Lock()
					errCodes[code]++
					mu.Unlock()
				}
			}
		})
	}

	var maxRSS int64
	var atMax map[string]int64
	states := map[string]string{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastPoll := time.Time{}
	for {
		<-tick.C
		if st := readStatus(pid); st["VmRSS"] > maxRSS {
			maxRSS, atMax = st["VmRSS"], st
		}
		select {
		case <-exited:
			stopLoad()
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("server exited (%v):\n%s", waitErr, b)
		default:
		}
		if time.Since(lastPoll) < 2*time.Second {
			continue
		}
		lastPoll = time.Now()
		done := 0
		for _, id := range jobIDs {
			out, err := admin.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(id)})
			if err != nil {
				continue
			}
			states[id] = string(out.State)
			switch out.State {
			case "COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL":
				done++
			}
		}
		if backups > 0 && done == len(jobIDs) || backups == 0 && time.Since(start) >= o.duration {
			break
		}
	}
	elapsed := time.Since(start)
	stopLoad()
	wg.Wait()
	end := readStatus(pid)

	fmt.Printf("clients=%d backups=%d tree=%s elapsed=%s\n", clients, backups, tree, elapsed.Round(time.Second))
	fmt.Printf("server: VmHWM=%.1f MiB  max sampled VmRSS=%.1f MiB  idle VmRSS (before jobs)=%.1f MiB  end VmRSS=%.1f MiB\n",
		mib(end["VmHWM"]), mib(maxRSS), mib(idle["VmRSS"]), mib(end["VmRSS"]))
	fmt.Printf("at the max sample: RssAnon=%.1f MiB RssFile=%.1f MiB\n", mib(atMax["RssAnon"]), mib(atMax["RssFile"]))
	fmt.Printf("requests=%d (%.0f/s)\n", requests.Load(), float64(requests.Load())/elapsed.Seconds())
	codes := make([]string, 0, len(errCodes))
	for c := range errCodes {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		fmt.Printf("  error %s: %d\n", c, errCodes[c])
	}
	for _, id := range jobIDs {
		fmt.Printf("  job %s: %s\n", id, states[id])
	}
	if mem := grepLog(logPath, "memory limit"); mem != "" {
		fmt.Println("server log:", mem)
	}
	return nil
}

// callPadded sends DescribeBackupVault with the padded body, signed, and
// returns the answer's error code as an error (retrying a
// ThrottlingException up to twice, as the SDKs would).
func callPadded(ctx context.Context, hc *http.Client, signer *v4.Signer, creds aws.Credentials, base string, body []byte, sum string) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/backup-vaults/"+vault, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if err := signer.SignHTTP(ctx, creds, req, sum, "backup", region, time.Now()); err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		code := resp.Header.Get("X-Amzn-ErrorType")
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case code == "ThrottlingException" && attempt < 2:
			time.Sleep(time.Duration(rand.IntN(1000<<attempt)) * time.Millisecond)
			continue
		}
		return &smithy.GenericAPIError{Code: code, Message: resp.Status}
	}
}

// call makes one randomly chosen List*/Describe* request (none about jobs
// when there are none).
func call(ctx context.Context, c *backup.Client, jobIDs []string) error {
	var err error
	n := 7
	if len(jobIDs) == 0 {
		n = 3
	}
	switch rand.IntN(n) {
	case 0:
		_, err = c.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{})
	case 1:
		_, err = c.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String(vault)})
	case 2:
		_, err = c.ListBackupJobs(ctx, &backup.ListBackupJobsInput{})
	case 3:
		_, err = c.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(jobIDs[rand.IntN(len(jobIDs))])})
	case 4:
		_, err = c.ListRecoveryPointsByBackupVault(ctx, &backup.ListRecoveryPointsByBackupVaultInput{BackupVaultName: aws.String(vault)})
	case 5:
		_, err = c.ListProtectedResources(ctx, &backup.ListProtectedResourcesInput{})
	case 6:
		_, err = c.GetSupportedResourceTypes(ctx, &backup.GetSupportedResourceTypesInput{})
	}
	return err
}

// readStatus returns the Vm* and Rss* fields of /proc/PID/status in bytes.
func readStatus(pid int) map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !(strings.HasPrefix(k, "Vm") || strings.HasPrefix(k, "Rss")) {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 2 && fields[1] == "kB" {
			n, _ := strconv.ParseInt(fields[0], 10, 64)
			out[k] = n << 10
		}
	}
	return out
}

func grepLog(path, s string) string {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
