package maintenance_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/local"
	"coffer/internal/repository/maintenance"
	"coffer/internal/repository/pack"
)

const (
	crashDirEnv  = "COFFER_CRASH_CHILD_DIR"
	crashSeedEnv = "COFFER_CRASH_CHILD_SEED"
)

var crashKey = bytes.Repeat([]byte{0x5a}, 32)

// TestMain lets the crash test re-execute this binary as a writer child.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
		if err := crashChild(dir, seed); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild runs write sessions and SaveManifest in a loop until killed.
func crashChild(dir string, seed uint64) error {
	ctx := context.Background()
	st, err := local.Open(dir, local.Options{})
	if err != nil {
		return err
	}
	r, err := repository.Open(ctx, st, crashKey, repository.Options{PackSize: 1 << 20})
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := 0; ; i++ {
		files := map[string][]byte{}
		for j := 0; j < 1+rng.IntN(4); j++ {
			n := rng.IntN(3 << 20)
			b := make([]byte, n)
			for k := range b {
				b[k] = byte(rng.Uint32() >> 24 & 0x3f) // somewhat compressible
			}
			files[fmt.Sprintf("f%d", j)] = b
		}
		backup(nopTB{}, r, files, fmt.Sprintf("child %d iteration %d", seed, i))
	}
}

// nopTB lets the child reuse the backup helper; a failure panics (exit != 0).
type nopTB struct{ testing.TB }

func (nopTB) Helper() {}
func (nopTB) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

func TestCrashDuringBackups(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("COFFER_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("crash test seed %d (rerun with COFFER_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	dir := t.TempDir()
	st, err := local.Open(dir, local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repository.Create(ctx, st, crashKey, repository.Options{}); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const iterations = 12
	for i := 0; i < iterations; i++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.FormatUint(seed+uint64(i), 10))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rng.IntN(600)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("iteration %d: child ended on its own (%v): %s", i, err, stderr.String())
		}
	}
	// Every manifest present checks clean, including every byte.
	r, err := repository.Open(ctx, st, crashKey, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := maintenance.Check(ctx, r, maintenance.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("seed %d: repository damaged after crashes:\n%v", seed, rep)
	}
	t.Logf("after %d kills: %d manifests, %d packs, %d warnings", iterations, rep.Manifests, rep.Packs, len(rep.Warnings))
	// No object is half-written under a final name: every pack, index file
	// and manifest parses completely, indexed or not.
	n := 0
	err = st.List(ctx, "", func(i blob.Info) error {
		n++
		b, err := st.Get(ctx, i.Name, 0, -1)
		if err != nil {
			return err
		}
		switch {
		case strings.HasPrefix(i.Name, repository.DataPrefix):
			id, ok := repository.ParsePackName(i.Name)
			if !ok {
				return fmt.Errorf("bad pack name %s", i.Name)
			}
			hdr, err := pack.ParsePack(b, r.AEAD())
			if err != nil {
				return fmt.Errorf("%s: %w", i.Name, err)
			}
			if got, err := pack.ID(hdr.Version, b); err != nil || got != id {
				return fmt.Errorf("%s: content does not match name", i.Name)
			}
			// The name covers the header; every blob must be whole too.
			var scratch []byte
			for _, e := range hdr.Entries {
				if scratch, err = pack.AuthBlob(b[e.Offset:e.Offset+e.Length], e, r.AEAD(), scratch); err != nil {
					return fmt.Errorf("%s: %w", i.Name, err)
				}
			}
		case strings.HasPrefix(i.Name, repository.IndexPrefix):
			if _, err := r.ReadIndexFile(ctx, i.Name); err != nil {
				return err
			}
		case strings.HasPrefix(i.Name, repository.ManifestPrefix):
			if _, err := r.LoadManifest(ctx, strings.TrimPrefix(i.Name, repository.ManifestPrefix)); err != nil {
				return err
			}
		case strings.HasPrefix(i.Name, repository.LocksPrefix):
			if _, err := r.ReadLock(ctx, i.Name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	// Leftover temporary files are not objects; count them for the log.
	tmp := 0
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "~") {
			tmp++
		}
		return nil
	})
	t.Logf("%d objects, %d temporary files left by killed children", n, tmp)
	// Stale locks of the killed children expire; a later backup proceeds
	// once they have (here: they are shared locks, so it proceeds at once).
	backup(t, r, map[string][]byte{"after": randBytes(77, 1000)}, "after crashes")
}
