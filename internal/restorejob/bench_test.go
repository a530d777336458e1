package restorejob_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"coffer/internal/resource/fstree/fstreetest"
	"coffer/internal/testutil"
)

// benchTree writes about 96 MiB: 64 files of 1 MiB (random), 2000 files of
// 16 KiB and 32 MiB of text-like data that compresses.
func benchTree(b testing.TB, root string) int64 {
	var total int64
	for i := range 64 {
		p := filepath.Join(root, fmt.Sprintf("big/%02d.bin", i))
		fstreetest.WriteFile(b, p, fstreetest.PseudoRandom(byte(i), 1<<20), 0o644)
		total += 1 << 20
	}
	for i := range 2000 {
		p := filepath.Join(root, fmt.Sprintf("small/%02d/%04d.dat", i%50, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, fstreetest.PseudoRandom(byte(i*7), 16<<10), 0o644); err != nil {
			b.Fatal(err)
		}
		total += 16 << 10
	}
	text := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog 0123456789\n", 1<<15))
	for i := range 16 {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("text%02d.log", i)), append(text, byte(i)), 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(text) + 1)
	}
	return total
}

// BenchmarkFullRestore restores the same tree with Coffer (StartRestoreJob
// validation, the RESTORE handler on the real vault repository, the
// completing transaction) and with `restic restore`; MB/s is of logical
// file bytes.
//
//	go test -run '^$' -bench FullRestore -benchtime 3x ./internal/restorejob/
func BenchmarkFullRestore(b *testing.B) {
	b.Run("coffer", func(b *testing.B) {
		e := newEnvWith(b, func(tb testing.TB, root string) { benchTree(tb, root) })
		b.SetBytes(e.size)
		b.ResetTimer()
		for range b.N {
			id, err := e.svc.Start(context.Background(), scA, StartRequest{RecoveryPointArn: e.rpArn,
				Metadata: map[string]string{"file-system-id": srcFS, "newFileSystem": "true"}})
			if err != nil {
				b.Fatal(err)
			}
			if j := e.drive(id); j.State != "COMPLETED" {
				b.Fatalf("%s: %s", j.State, j.StatusMessage)
			}
		}
	})
	b.Run("restic", func(b *testing.B) {
		restic := testutil.RequireTool(b, "restic")
		dir := b.TempDir()
		src := filepath.Join(dir, "src")
		size := benchTree(b, src)
		repo := filepath.Join(dir, "repo")
		env := append(os.Environ(), "RESTIC_PASSWORD=bench", "RESTIC_REPOSITORY="+repo, "RESTIC_CACHE_DIR="+filepath.Join(dir, "cache"))
		run := func(args ...string) {
			cmd := exec.Command(restic, args...)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("restic %v: %v\n%s", args, err, out)
			}
		}
		run("init")
		run("backup", "--quiet", src)
		b.SetBytes(size)
		b.ResetTimer()
		for i := range b.N {
			run("restore", "latest", "--target", filepath.Join(dir, fmt.Sprintf("out%d", i)))
		}
	})
}
