package pgdb_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"testing"

	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
)

// BenchmarkRestore restores the benchmark database (bench/pg/gen.sql at
// COFFER_PG_SCALE, default 0.05) backed up three times: a full backup
// and two days of bench/pg/mutate.sql (1 % of the rows, mixed), so that
// the restore applies two delta layers. COFFER_BENCH_CPUPROFILE names a
// file for a CPU profile of the restores alone (the client's side):
//
//	COFFER_BENCH_CPUPROFILE=cpu.out go test -run '^$' -bench Restore -benchtime 3x ./internal/resource/pgdb
func BenchmarkRestore(b *testing.B) {
	s := server(b)
	scale := "0.05"
	if v := os.Getenv("COFFER_PG_SCALE"); v != "" {
		scale = v
	}
	p := newPlugin(b)
	name := uniqueName("bench")
	s.CreateDB(b, name)
	psql := func(args ...string) {
		b.Helper()
		cmd := exec.Command(filepath.Join(s.BinDir, "psql"), append([]string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", s.DSN(name)}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("psql %v: %v\n%s", args, err, out)
		}
	}
	psql("-v", "scale="+scale, "-v", "seed=1", "-f", filepath.Join("..", "..", "..", "bench", "pg", "gen.sql"))
	src := pgdb.NewResource("us-east-1", "111111111111", name, "pg", name, nil)
	repo := memRepo(b)
	snap, _, _ := backupDB(b, p, repo, src, nil)
	for day := 2; day <= 3; day++ {
		psql("-v", "seed=1", "-v", "day="+strconv.Itoa(day), "-v", "mode=mixed", "-f", filepath.Join("..", "..", "..", "bench", "pg", "mutate.sql"))
		parent := snap
		snap, _, _ = backupDB(b, p, repo, src, &resource.Snapshot{Loader: parent.Loader, Root: parent.Root})
	}
	if f := os.Getenv("COFFER_BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = out.Close()
		}()
	}
	b.ResetTimer()
	for b.Loop() {
		id := uniqueName("bench-copy")
		res, err := restoreDB(b, p, snap, src, id, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("restore: %+v", res.Details)
		b.StopTimer()
		s.Exec(b, "postgres", `DROP DATABASE "`+id+`"`)
		b.StartTimer()
	}
}
