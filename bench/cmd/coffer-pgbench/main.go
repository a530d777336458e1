// Command coffer-pgbench measures Coffer's PostgreSQL database backups and
// restores side by side with pg_dump -Fc and pg_restore -j 2 on one
// generated database (bench/pg/gen.sql, seeded), driving Coffer through
// `coffer serve` and the AWS SDK as users do:
//
//   - day 1: a full backup by each (pg_dump -Fc to a file; a Coffer backup
//     job), timed;
//   - days 2..N: bench/pg/mutate.sql changes 1 % of the rows, then each
//     backs up again; Coffer's repository grows by what the day changed,
//     pg_dump writes a whole new file;
//   - the last day's backup restored into a new database by each
//     (pg_restore -j 2 of the file; a Coffer restore job, which also
//     verifies every table), timed;
//   - repository size against the sum of the N dump files, and the peak
//     resident memory of coffer serve over the whole run.
//
// It starts its own PostgreSQL server (internal/testutil/pgtest) in a
// temporary directory. See bench/README.md, "PostgreSQL databases".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	btypes "github.com/aws/aws-sdk-go-v2/service/backup/types"
	"github.com/jackc/pgx/v5"

	"coffer/internal/testutil/pgtest"
)

const (
	account = "111111111111"
	akid    = "AKIAPGBENCH000000001"
	secret  = "pgbench-secret-0123456789abcdef"
	region  = "us-east-1"
	role    = "arn:aws:iam::" + account + ":role/bench"
	dbName  = "bench"
)

type options struct {
	scale            float64
	seed, days       int
	mode, out, work  string
	cofferBin        string
	keep             bool
	sharedBuffersMiB int
}

func main() {
	var o options
	flag.Float64Var(&o.scale, "scale", 1, "database size (1 = about 1 GiB)")
	flag.IntVar(&o.seed, "seed", 1, "generator seed")
	flag.IntVar(&o.days, "days", 7, "daily backups (the first is full)")
	flag.StringVar(&o.mode, "mode", "mixed", "daily change: mixed, uniform or recent (bench/pg/mutate.sql)")
	flag.StringVar(&o.out, "out", "", "also write the report to this file")
	flag.StringVar(&o.work, "work", "", "work directory (default: a temporary one)")
	flag.StringVar(&o.cofferBin, "coffer-bin", "", "prebuilt coffer binary (default: built from the checkout)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work directory")
	flag.IntVar(&o.sharedBuffersMiB, "shared-buffers-mib", 128, "PostgreSQL shared_buffers")
	flag.Parse()
	if err := run(context.Background(), o); err != nil {
		log.Fatal(err)
	}
}

// report collects the figures.
type report struct {
	o                  options
	pgVersion          string
	dbSize             int64
	rows               int64
	dumpTime, cofTime  []time.Duration
	dumpSize, repoSize []int64
	cofStored          []int64
	restoreDump        time.Duration
	restoreCoffer      time.Duration
	peakRSS            int64
	cofferRestoreMsg   string
	// CPU time of each step: the client side (pg_dump or pg_restore and
	// their workers; coffer serve and the pg_dump/pg_restore it runs)
	// and the PostgreSQL server's (backends and their workers).
	dumpCPU, cofCPU                  []cpuPair
	restoreDumpCPU, restoreCofferCPU cpuPair
}

// cpuPair is the CPU time of one step.
type cpuPair struct{ client, server time.Duration }

func run(ctx context.Context, o options) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "coffer-pgbench-"); err != nil {
			return err
		}
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	log.Printf("work directory %s", work)
	srv, err := pgtest.New(pgtest.Options{Settings: map[string]string{"shared_buffers": strconv.Itoa(o.sharedBuffersMiB) + "MB",
		"max_wal_size": "4GB", "maintenance_work_mem": "256MB", "synchronous_commit": "off"}})
	if err != nil {
		return err
	}
	defer srv.Close()
	rep := &report{o: o, pgVersion: srv.Version}
	srvMeter := func() (*cpuMeter, error) { return startCPU(srv.Pid()) }
	env := append(os.Environ(), "PGPASSWORD="+pgtest.Password, "PGHOST="+srv.Host, "PGPORT="+strconv.Itoa(srv.Port), "PGUSER="+pgtest.Superuser)
	bin := func(name string) string { return filepath.Join(srv.BinDir, name) }
	psql := func(args ...string) error {
		cmd := exec.CommandContext(ctx, bin("psql"), append([]string{"-X", "-q", "-v", "ON_ERROR_STOP=1"}, args...)...)
		cmd.Env, cmd.Stderr = env, os.Stderr
		return cmd.Run()
	}
	if err := psql("-d", "postgres", "-c", "CREATE DATABASE "+dbName); err != nil {
		return err
	}
	start := time.Now()
	if err := psql("-d", dbName, "-v", fmt.Sprintf("scale=%g", o.scale), "-v", fmt.Sprintf("seed=%d", o.seed), "-f", filepath.Join(root, "bench/pg/gen.sql")); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	log.Printf("database generated in %v", time.Since(start).Round(time.Second))

	cofferBin := o.cofferBin
	if cofferBin == "" {
		cofferBin = filepath.Join(work, "coffer")
		build := exec.CommandContext(ctx, "go", "build", "-o", cofferBin, "./cmd/coffer")
		build.Dir, build.Stderr = root, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build coffer: %w", err)
		}
	}
	serve, err := startCoffer(ctx, cofferBin, work, srv)
	if err != nil {
		return err
	}
	defer serve.stop()
	cl := serve.client
	if _, err := cl.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("bench")}); err != nil {
		return err
	}
	dbArn := "arn:aws:rds:" + region + ":" + account + ":db:" + dbName
	var lastRP, lastDump string
	for day := 1; day <= o.days; day++ {
		if day > 1 {
			start := time.Now()
			if err := psql("-d", dbName, "-v", fmt.Sprintf("seed=%d", o.seed), "-v", fmt.Sprintf("day=%d", day), "-v", "mode="+o.mode,
				"-f", filepath.Join(root, "bench/pg/mutate.sql")); err != nil {
				return fmt.Errorf("mutate day %d: %w", day, err)
			}
			log.Printf("day %d: 1%% of rows changed (%s) in %v", day, o.mode, time.Since(start).Round(time.Second))
		}
		if err := sync(); err != nil {
			return err
		}
		dumpFile := filepath.Join(work, fmt.Sprintf("day%d.pgdump", day))
		steps := []func() error{
			func() error {
				sm, err := srvMeter()
				if err != nil {
					return err
				}
				start := time.Now()
				cmd := exec.CommandContext(ctx, bin("pg_dump"), "-Fc", "-f", dumpFile, "-d", dbName)
				cmd.Env, cmd.Stderr = env, os.Stderr
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("pg_dump: %w", err)
				}
				rep.dumpTime = append(rep.dumpTime, time.Since(start))
				scpu, err := sm.stop()
				if err != nil {
					return err
				}
				rep.dumpCPU = append(rep.dumpCPU, cpuPair{client: cmdCPU(cmd), server: scpu})
				st, err := os.Stat(dumpFile)
				if err != nil {
					return err
				}
				rep.dumpSize = append(rep.dumpSize, st.Size())
				return nil
			},
			func() error {
				sm, err := srvMeter()
				if err != nil {
					return err
				}
				cm, err := startCPU(serve.cmd.Process.Pid)
				if err != nil {
					return err
				}
				start := time.Now()
				out, err := cl.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String("bench"), ResourceArn: aws.String(dbArn), IamRoleArn: aws.String(role)})
				if err != nil {
					return err
				}
				d, err := waitBackup(ctx, cl, out.BackupJobId)
				if err != nil {
					return err
				}
				rep.cofTime = append(rep.cofTime, time.Since(start))
				ccpu, err := cm.stop()
				if err != nil {
					return err
				}
				scpu, err := sm.stop()
				if err != nil {
					return err
				}
				rep.cofCPU = append(rep.cofCPU, cpuPair{client: ccpu, server: scpu})
				rep.cofStored = append(rep.cofStored, aws.ToInt64(d.BytesTransferred))
				lastRP = aws.ToString(d.RecoveryPointArn)
				return nil
			},
		}
		if day%2 == 0 { // alternate who goes first
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return fmt.Errorf("day %d: %w", day, err)
			}
		}
		size, err := dirSize(filepath.Join(work, "coffer-data", "vaults"))
		if err != nil {
			return err
		}
		rep.repoSize = append(rep.repoSize, size)
		lastDump = dumpFile
		if day > 1 {
			_ = os.Remove(filepath.Join(work, fmt.Sprintf("day%d.pgdump", day-1)))
		}
		log.Printf("day %d: pg_dump %v (%d bytes), coffer %v (stored %d, repository %d)", day, rep.dumpTime[day-1].Round(10*time.Millisecond),
			rep.dumpSize[day-1], rep.cofTime[day-1].Round(10*time.Millisecond), rep.cofStored[day-1], size)
	}
	c, err := pgx.Connect(ctx, srv.DSN(dbName))
	if err != nil {
		return err
	}
	err = c.QueryRow(ctx, `SELECT pg_database_size(current_database()),
		(SELECT count(*) FROM customers) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM documents) + (SELECT count(*) FROM events)`).Scan(&rep.dbSize, &rep.rows)
	c.Close(ctx)
	if err != nil {
		return err
	}

	// Restores of the last day, alternating nothing: pg_restore first,
	// then Coffer, each into a new database.
	if err := sync(); err != nil {
		return err
	}
	// Creating the new database is part of restoring into one (Coffer's
	// restore creates its own).
	sm, err := srvMeter()
	if err != nil {
		return err
	}
	start = time.Now()
	if err := psql("-d", "postgres", "-c", "CREATE DATABASE pgrestored"); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin("pg_restore"), "-j", "2", "-d", "pgrestored", lastDump)
	cmd.Env, cmd.Stderr = env, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_restore: %w", err)
	}
	rep.restoreDump = time.Since(start)
	rep.restoreDumpCPU.client = cmdCPU(cmd)
	if rep.restoreDumpCPU.server, err = sm.stop(); err != nil {
		return err
	}
	if err := sync(); err != nil {
		return err
	}
	if sm, err = srvMeter(); err != nil {
		return err
	}
	cm, err := startCPU(serve.cmd.Process.Pid)
	if err != nil {
		return err
	}
	start = time.Now()
	rj, err := cl.StartRestoreJob(ctx, &backup.StartRestoreJobInput{RecoveryPointArn: aws.String(lastRP), ResourceType: aws.String("RDS"),
		Metadata: map[string]string{"DBInstanceIdentifier": "coffer-restored"}})
	if err != nil {
		return err
	}
	r, err := waitRestore(ctx, cl, rj.RestoreJobId)
	if err != nil {
		return err
	}
	rep.restoreCoffer = time.Since(start)
	if rep.restoreCofferCPU.client, err = cm.stop(); err != nil {
		return err
	}
	if rep.restoreCofferCPU.server, err = sm.stop(); err != nil {
		return err
	}
	rep.cofferRestoreMsg = aws.ToString(r.StatusMessage)
	if rep.peakRSS, err = readVmHWM(serve.cmd.Process.Pid); err != nil {
		return err
	}
	text := rep.markdown()
	fmt.Print(text)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(text), 0o644)
	}
	return nil
}

func (r *report) markdown() string {
	var b strings.Builder
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	fmt.Fprintf(&b, "## Coffer PostgreSQL benchmark\n\nPostgreSQL %s, scale %g (seed %d): %s in %d rows (pg_database_size after day %d); change mode %q; %d CPUs; Go %s.\n\n",
		r.pgVersion, r.o.scale, r.o.seed, mib(r.dbSize), r.rows, r.o.days, r.o.mode, runtime.NumCPU(), runtime.Version())
	cpu := func(c cpuPair) string { return fmt.Sprintf("%.1f + %.1f s", c.client.Seconds(), c.server.Seconds()) }
	b.WriteString("Wall clock time; CPU time as client + PostgreSQL server (pg_dump/pg_restore and their workers, or coffer serve with the pg_dump/pg_restore it runs; + the server's backends).\n\n")
	b.WriteString("| day | pg_dump -Fc | CPU | dump file | Coffer backup | CPU | Coffer stored | Coffer repository |\n|---|---|---|---|---|---|---|---|\n")
	var sumDump int64
	for i := range r.dumpTime {
		sumDump += r.dumpSize[i]
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s |\n", i+1, sec(r.dumpTime[i]), cpu(r.dumpCPU[i]), mib(r.dumpSize[i]),
			sec(r.cofTime[i]), cpu(r.cofCPU[i]), mib(r.cofStored[i]), mib(r.repoSize[i]))
	}
	last := len(r.repoSize) - 1
	fmt.Fprintf(&b, "\n| measure | pg_dump / pg_restore | Coffer | ratio Coffer/peer | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| full backup (day 1), wall | %s | %s | %.2f | ≤ 1.10 |\n", sec(r.dumpTime[0]), sec(r.cofTime[0]), r.cofTime[0].Seconds()/r.dumpTime[0].Seconds())
	fmt.Fprintf(&b, "| full backup (day 1), CPU client + server | %s | %s | %.2f | |\n", cpu(r.dumpCPU[0]), cpu(r.cofCPU[0]), r.cofCPU[0].total()/r.dumpCPU[0].total())
	var dumpW, cofW time.Duration
	var dumpC, cofC float64
	for i := 1; i < len(r.dumpTime); i++ {
		dumpW, cofW = dumpW+r.dumpTime[i], cofW+r.cofTime[i]
		dumpC, cofC = dumpC+r.dumpCPU[i].total(), cofC+r.cofCPU[i].total()
	}
	if len(r.dumpTime) > 1 {
		fmt.Fprintf(&b, "| daily backups (days 2-%d), wall | %s | %s | %.2f | |\n", last+1, sec(dumpW), sec(cofW), cofW.Seconds()/dumpW.Seconds())
		fmt.Fprintf(&b, "| daily backups (days 2-%d), CPU total | %.1f s | %.1f s | %.2f | |\n", last+1, dumpC, cofC, cofC/dumpC)
	}
	fmt.Fprintf(&b, "| restore of day %d (pg_restore -j 2), wall | %s | %s | %.2f | ≤ 1.10 |\n", last+1, sec(r.restoreDump), sec(r.restoreCoffer), r.restoreCoffer.Seconds()/r.restoreDump.Seconds())
	fmt.Fprintf(&b, "| restore of day %d, CPU client + server | %s | %s | %.2f | |\n", last+1, cpu(r.restoreDumpCPU), cpu(r.restoreCofferCPU), r.restoreCofferCPU.total()/r.restoreDumpCPU.total())
	fmt.Fprintf(&b, "| storage after %d days (sum of dump files) | %s | %s | %.3f | ≤ 0.25 |\n", last+1, mib(sumDump), mib(r.repoSize[last]), float64(r.repoSize[last])/float64(sumDump))
	fmt.Fprintf(&b, "| peak RSS of coffer serve | | %s | | ≤ 150 MiB |\n", mib(r.peakRSS))
	fmt.Fprintf(&b, "\nCoffer's restore verifies every table (row count and checksum) before it renames the database; pg_restore verifies nothing. Restore job: %q\n", r.cofferRestoreMsg)
	return b.String()
}

func (c cpuPair) total() float64 { return (c.client + c.server).Seconds() }

// coffer is a running coffer serve.
type coffer struct {
	cmd    *exec.Cmd
	client *backup.Client
	done   chan struct{}
}

func startCoffer(ctx context.Context, bin, work string, srv *pgtest.Server) (*coffer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`listen: %s
data_dir: %s
region: %s
accounts:
  - id: "%s"
    access_keys:
      - access_key_id: %s
        secret_access_key: %s
database_servers:
  - id: pg
    engine: postgres
    host: %s
    port: %d
    user: %s
    password_env: COFFER_PGBENCH_PASSWORD
    sslmode: disable
databases:
  - id: %s
    account: "%s"
    server: pg
    database: %s
`, addr, filepath.Join(work, "coffer-data"), region, account, akid, secret, srv.Host, srv.Port, pgtest.Superuser, dbName, account, dbName)
	path := filepath.Join(work, "coffer.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), "COFFER_PGBENCH_PASSWORD="+pgtest.Password)
	logf, err := os.Create(filepath.Join(work, "coffer.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr, cmd.Stdout = logf, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &coffer{cmd: cmd, done: make(chan struct{}),
		client: backup.New(backup.Options{Region: region, BaseEndpoint: aws.String("http://" + addr),
			Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")})}
	go func() { _ = cmd.Wait(); logf.Close(); close(c.done) }()
	for i := 0; ; i++ {
		_, err := c.client.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{}, func(o *backup.Options) { o.RetryMaxAttempts = 1 })
		if err == nil {
			return c, nil
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("coffer serve exited; see %s", filepath.Join(work, "coffer.log"))
		case <-time.After(100 * time.Millisecond):
		}
		if i > 600 {
			c.stop()
			return nil, fmt.Errorf("coffer serve does not answer: %w", err)
		}
	}
}

func (c *coffer) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

const poll = 20 * time.Millisecond

func waitBackup(ctx context.Context, cl *backup.Client, id *string) (*backup.DescribeBackupJobOutput, error) {
	for {
		d, err := cl.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: id})
		if err != nil {
			return nil, err
		}
		switch d.State {
		case btypes.BackupJobStateCompleted:
			return d, nil
		case btypes.BackupJobStateFailed, btypes.BackupJobStateAborted, btypes.BackupJobStateExpired:
			return nil, fmt.Errorf("backup job %s: %s", d.State, aws.ToString(d.StatusMessage))
		}
		time.Sleep(poll)
	}
}

func waitRestore(ctx context.Context, cl *backup.Client, id *string) (*backup.DescribeRestoreJobOutput, error) {
	for {
		d, err := cl.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: id})
		if err != nil {
			return nil, err
		}
		switch d.Status {
		case btypes.RestoreJobStatusCompleted:
			return d, nil
		case btypes.RestoreJobStatusFailed, btypes.RestoreJobStatusAborted:
			return nil, fmt.Errorf("restore job %s: %s", d.Status, aws.ToString(d.StatusMessage))
		}
		time.Sleep(poll)
	}
}

// sync flushes dirty pages so that no tool pays for the previous one's
// writes.
func sync() error {
	syscall.Sync()
	return nil
}

func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}

func readVmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n << 10, err
			}
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// repoRoot is the module root (where go.mod is), from the working
// directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "bench/pg/gen.sql")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run coffer-pgbench inside the Coffer checkout (bench/pg/gen.sql not found)")
		}
		dir = parent
	}
}
