// Command coffer-s3bench measures Coffer's S3 bucket backups and restores
// side by side with rclone on one loopback versitygw: a bucket holding the
// shared mkdata tree (seed 1, scale 1 by default) as objects is backed up
// by `coffer serve` (StartBackupJob) and copied to a local directory by
// `rclone copy`; an unchanged and a 1 %-changed backup follow; the newest
// recovery point is restored into a new bucket (StartRestoreJob
// NewBucket=true) and compared with `rclone copy` of the tree into a new
// bucket; the vault repository's size is compared with restic's for the
// same tree, and the peak RSS of `coffer serve` is read from /proc. It
// prints a markdown table and the ratios the issue sets as goals; nothing
// is asserted. See bench/README.md, "Buckets".
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/bench/internal/harness"
)

const (
	account = "111111111111"
	akid    = "AKIAS3BENCH000000001"
	secret  = "s3bench-secret-0123456789abcdef"
	role    = "arn:aws:iam::111111111111:role/bench"
)

func main() {
	scale := flag.Float64("scale", 1, "mkdata -scale (1 = ~2 GiB)")
	seed := flag.Uint64("seed", 1, "mkdata -seed")
	pct := flag.Float64("pct", 1, "mkdata mutate -pct for the change step")
	mkdataDir := flag.String("mkdata", "", "mkdata generator directory (default ../shared/bench/mkdata)")
	work := flag.String("work", "", "work directory (default: a temporary one, removed)")
	out := flag.String("out", "", "also write the report to this file")
	transfers := flag.Int("transfers", 16, "rclone --transfers (Coffer runs 16 objects at once)")
	flag.Parse()
	log.SetFlags(log.Ltime)
	if err := run(*scale, *seed, *pct, *mkdataDir, *work, *out, *transfers); err != nil {
		log.Fatal(err)
	}
}

type step struct {
	name      string
	coffer    time.Duration
	peer      time.Duration
	peerName  string
	goal      float64
	cofferRSS int64
}

func run(scale float64, seed uint64, pct float64, mkdataDir, work, outFile string, transfers int) error {
	ctx := context.Background()
	for _, tool := range []string{"rclone", "restic", "versitygw"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not on PATH (apt-get install -y rclone restic; versitygw: scripts/test installs it)", tool)
		}
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if work == "" {
		if work, err = os.MkdirTemp("", "coffer-s3bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	mk, err := harness.LocateMkdata(root, mkdataDir)
	if err != nil {
		return err
	}
	bin := func(name string) string { return filepath.Join(work, "bin", name) }
	log.Print("building coffer and mkdata")
	if err := harness.BuildCofferServer(ctx, root, bin("coffer")); err != nil {
		return err
	}
	if err := harness.BuildMkdata(ctx, mk, bin("mkdata")); err != nil {
		return err
	}
	data := filepath.Join(work, "data")
	log.Printf("mkdata gen -seed %d -scale %g", seed, scale)
	if err := quiet(bin("mkdata"), "gen", "-out", data, "-seed", fmt.Sprint(seed), "-scale", fmt.Sprint(scale)); err != nil {
		return err
	}

	// versitygw on loopback.
	vgwAK, vgwSK := "AK"+randHex(8), randHex(20)
	vgwAddr, err := freeAddr()
	if err != nil {
		return err
	}
	vgwDir := filepath.Join(work, "vgw")
	if err := os.MkdirAll(vgwDir, 0o700); err != nil {
		return err
	}
	vgw := exec.Command("versitygw", "--port", vgwAddr, "--access", vgwAK, "--secret", vgwSK, "--region", "us-east-1", "--quiet", "posix", vgwDir)
	if err := vgw.Start(); err != nil {
		return err
	}
	defer func() { _ = vgw.Process.Kill(); _ = vgw.Wait() }()
	url := "http://" + vgwAddr
	s3c := s3.New(s3.Options{BaseEndpoint: aws.String(url), Region: "us-east-1", UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(vgwAK, vgwSK, "")})
	for i := 0; ; i++ {
		if _, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
			break
		} else if i > 300 {
			return fmt.Errorf("versitygw does not answer: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rcloneEnv := append(withoutAWS(), "RCLONE_CONFIG_VGW_TYPE=s3", "RCLONE_CONFIG_VGW_PROVIDER=Other",
		"RCLONE_CONFIG_VGW_ENDPOINT="+url, "RCLONE_CONFIG_VGW_ACCESS_KEY_ID="+vgwAK, "RCLONE_CONFIG_VGW_SECRET_ACCESS_KEY="+vgwSK,
		"RCLONE_CONFIG_VGW_REGION=us-east-1", "RCLONE_CONFIG_VGW_FORCE_PATH_STYLE=true")
	rclone := func(args ...string) (time.Duration, error) {
		cmd := exec.Command("rclone", append(args, "--transfers", strconv.Itoa(transfers), "--checkers", strconv.Itoa(transfers))...)
		cmd.Env = rcloneEnv
		var errb strings.Builder
		cmd.Stderr = &errb
		start := time.Now()
		err := cmd.Run()
		if err != nil {
			return 0, fmt.Errorf("rclone %s: %w\n%s", strings.Join(args, " "), err, errb.String())
		}
		return time.Since(start), nil
	}
	log.Print("filling the bucket (rclone copy, not measured)")
	if _, err := rclone("mkdir", "vgw:bench"); err != nil {
		return err
	}
	if _, err := rclone("copy", data, "vgw:bench"); err != nil {
		return err
	}

	// coffer serve.
	cfg := filepath.Join(work, "coffer.yaml")
	cofferData := filepath.Join(work, "coffer-data")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
accounts:
  - id: "%s"
    access_keys:
      - access_key_id: %s
        secret_access_key: %s
s3_endpoints:
  - id: vgw
    url: %s
    region: us-east-1
    path_style: true
    access_key_id: %s
    secret_access_key: %s
buckets:
  - name: bench
    account: "%s"
    endpoint: vgw
`, cofferData, account, akid, secret, url, vgwAK, vgwSK, account)), 0o600); err != nil {
		return err
	}
	srv := exec.Command(bin("coffer"), "serve", "--config", cfg)
	stderr, err := srv.StderrPipe()
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	addr, err := listenAddr(stderr)
	if err != nil {
		return err
	}
	bc := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
		Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")})
	if _, err := bc.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("bench")}); err != nil {
		return err
	}
	rss := func() int64 { return vmHWM(srv.Process.Pid) }
	var steps []step
	var lastRP string
	var backupOptions map[string]string
	backupStep := func(name string) (time.Duration, error) {
		start := time.Now()
		j, err := bc.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("bench"), ResourceArn: aws.String("arn:aws:s3:::bench"),
			IamRoleArn: aws.String(role), BackupOptions: backupOptions})
		if err != nil {
			return 0, err
		}
		for {
			d, err := bc.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: j.BackupJobId})
			if err != nil {
				return 0, err
			}
			switch d.State {
			case btypes.BackupJobStateCompleted:
				lastRP = aws.ToString(d.RecoveryPointArn)
				log.Printf("%s: %v, %d bytes, %s", name, time.Since(start).Round(time.Millisecond), aws.ToInt64(d.BackupSizeInBytes), aws.ToString(d.StatusMessage))
				return time.Since(start), nil
			case btypes.BackupJobStateFailed, btypes.BackupJobStateAborted:
				return 0, fmt.Errorf("%s: %s: %s", name, d.State, aws.ToString(d.StatusMessage))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	log.Print("initial backup vs rclone copy bucket → local dir")
	peer, err := rclone("copy", "vgw:bench", filepath.Join(work, "rclone-down"))
	if err != nil {
		return err
	}
	first, err := backupStep("initial backup")
	if err != nil {
		return err
	}
	steps = append(steps, step{name: "initial backup", coffer: first, peer: peer, peerName: "rclone copy bucket → dir", goal: 1.0, cofferRSS: rss()})
	unch, err := backupStep("unchanged backup")
	if err != nil {
		return err
	}
	steps = append(steps, step{name: "unchanged backup", coffer: unch, peer: first, peerName: "Coffer initial backup", goal: 0.1, cofferRSS: rss()})
	log.Printf("mkdata mutate -pct %g; rclone sync to the bucket (not measured)", pct)
	if err := quiet(bin("mkdata"), "mutate", "-dir", data, "-seed", fmt.Sprint(seed), "-gen", "1", "-pct", fmt.Sprint(pct)); err != nil {
		return err
	}
	if _, err := rclone("sync", data, "vgw:bench"); err != nil {
		return err
	}
	changed, err := backupStep("changed backup")
	if err != nil {
		return err
	}
	changedRP := lastRP
	steps = append(steps, step{name: fmt.Sprintf("%g %%-changed backup", pct), coffer: changed, peer: first, peerName: "Coffer initial backup", goal: 0.2, cofferRSS: rss()})

	// What the tag reads of unchanged objects cost: the same unchanged
	// backup without them (the first run drops the tags from the index).
	backupOptions = map[string]string{"BackupObjectTags": "disabled"}
	if _, err := backupStep("backup without tags"); err != nil {
		return err
	}
	noTags, err := backupStep("unchanged backup without tags")
	if err != nil {
		return err
	}
	steps = append(steps, step{name: "unchanged backup, BackupObjectTags=disabled", coffer: noTags, peer: first, peerName: "Coffer initial backup", goal: 0.1, cofferRSS: rss()})
	backupOptions = nil

	log.Print("full restore to a new bucket vs rclone copy dir → new bucket")
	if _, err := rclone("mkdir", "vgw:rclone-up"); err != nil {
		return err
	}
	peer, err = rclone("copy", data, "vgw:rclone-up")
	if err != nil {
		return err
	}
	start := time.Now()
	rj, err := bc.StartRestoreJob(ctx, &backup.StartRestoreJobInput{RecoveryPointArn: aws.String(changedRP), ResourceType: aws.String("S3"),
		Metadata: map[string]string{"DestinationBucketName": "coffer-restored", "NewBucket": "true"}})
	if err != nil {
		return err
	}
	for {
		d, err := bc.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: rj.RestoreJobId})
		if err != nil {
			return err
		}
		if d.Status == btypes.RestoreJobStatusCompleted {
			break
		}
		if d.Status == btypes.RestoreJobStatusFailed || d.Status == btypes.RestoreJobStatusAborted {
			return fmt.Errorf("restore: %s: %s", d.Status, aws.ToString(d.StatusMessage))
		}
		time.Sleep(50 * time.Millisecond)
	}
	restore := time.Since(start)
	steps = append(steps, step{name: "full restore to a new bucket", coffer: restore, peer: peer, peerName: "rclone copy dir → new bucket", goal: 1.0, cofferRSS: rss()})
	// Check: the restored bucket lists the same keys and sizes.
	if _, err := rclone("check", "--size-only", "vgw:bench", "vgw:coffer-restored"); err != nil {
		return fmt.Errorf("restored bucket differs from the source: %w", err)
	}

	log.Print("repository sizes: Coffer's vault vs restic of the same tree")
	cofferSize, err := dirSize(filepath.Join(cofferData, "vaults"))
	if err != nil {
		return err
	}
	resticRepo := filepath.Join(work, "restic")
	renv := append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_REPOSITORY="+resticRepo, "RESTIC_CACHE_DIR="+filepath.Join(work, "restic-cache"))
	// The vault holds the tree before and after the change: so does
	// restic's repository.
	for _, args := range [][]string{{"init"}, {"backup", "-q", filepath.Join(work, "rclone-down")}, {"backup", "-q", data}} {
		cmd := exec.Command("restic", args...)
		cmd.Env = renv
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("restic %v: %w\n%s", args, err, b)
		}
	}
	resticSize, err := dirSize(resticRepo)
	if err != nil {
		return err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Coffer S3 buckets vs rclone (mkdata seed %d, scale %g, one loopback versitygw, %d rclone transfers)\n\n", seed, scale, transfers)
	fmt.Fprintf(&b, "| step | Coffer | peer | peer time | ratio | goal | coffer serve peak RSS |\n|---|---|---|---|---|---|---|\n")
	for _, s := range steps {
		ratio := s.coffer.Seconds() / s.peer.Seconds()
		fmt.Fprintf(&b, "| %s | %.2fs | %s | %.2fs | %.3f× | ≤ %.1f× | %d MiB |\n", s.name, s.coffer.Seconds(), s.peerName, s.peer.Seconds(), ratio, s.goal, s.cofferRSS>>20)
	}
	fmt.Fprintf(&b, "| repository size (tree before and after the change) | %d MiB | restic, same two trees | %d MiB | %.3f× | ≤ 1.0× | |\n", cofferSize>>20, resticSize>>20, float64(cofferSize)/float64(resticSize))
	fmt.Fprintf(&b, "\nPeak RSS of coffer serve over the run (VmHWM): %d MiB (goal ≤ 150 MiB).\n", rss()>>20)
	fmt.Print(b.String())
	if outFile != "" {
		return os.WriteFile(outFile, []byte(b.String()), 0o644)
	}
	return nil
}

// withoutAWS is the environment without AWS_* variables (a CA bundle or
// profile meant for AWS would reach rclone's S3 client).
func withoutAWS() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "RCLONE_CONFIG="+os.DevNull)
}

func quiet(name string, args ...string) error {
	if b, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, b)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

var servingRE = regexp.MustCompile(`msg="coffer serving" listen=(\S+)`)

// listenAddr reads coffer serve's log until it names its address, then
// drains the rest in the background.
func listenAddr(r interface{ Read([]byte) (int, error) }) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := servingRE.FindStringSubmatch(sc.Text()); m != nil {
			go func() {
				for sc.Scan() {
				}
			}()
			return m[1], nil
		}
	}
	return "", errors.New("coffer serve exited before listening")
}

// vmHWM is a process's peak resident set size in bytes.
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
