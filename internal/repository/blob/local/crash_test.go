package local

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
)

const crashEnv = "COFFER_BLOB_LOCAL_CRASH_CHILD"

// crashName and crashSize derive everything about object i from i, so the
// parent can check any file it finds by its name alone.
func crashName(i int) string { return fmt.Sprintf("c/%02d/obj-%d", i%17, i) }

func crashSize(name string) (int, bool) {
	i, err := strconv.Atoi(name[strings.LastIndexByte(name, '-')+1:])
	if err != nil {
		return 0, false
	}
	return (i * 7919) % (192 << 10), true
}

// TestCrashChild is the child process of TestCrashKill9: it Puts objects
// forever and prints "ok <name>" after each acknowledged Put.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestCrashKill9")
	}
	start, err := strconv.Atoi(os.Getenv(crashEnv + "_START"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := start; ; i++ {
		// Every fourth Put rewrites an older name (same content, IfAbsent
		// or replace), so commits race with existing files too.
		n := i
		if i%4 == 3 && i > 0 {
			n = i / 2
		}
		name := crashName(n)
		size, _ := crashSize(name)
		err := s.Put(ctx, name, blobtest.Content(name, size), blob.PutOptions{IfAbsent: i%2 == 0})
		if err != nil && !errors.Is(err, blob.ErrAlreadyExists) {
			t.Fatalf("Put %s: %v", name, err)
		}
		fmt.Fprintf(os.Stdout, "ok %s\n", name)
	}
}

func TestCrashKill9(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the child")
	}
	iterations := 12
	if testing.Short() {
		iterations = 4
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	dir := t.TempDir()
	acked := map[string]bool{}
	ctx := context.Background()
	for it := range iterations {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, fmt.Sprintf("%s_START=%d", crashEnv, it*100000))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		killAfter := 1 + rng.IntN(60)
		got := 0
		for got < killAfter && sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "ok "); ok {
				acked[name] = true
				got++
			}
		}
		if got < killAfter {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("iteration %d: child stopped after %d acks: %v\n%s", it, got, sc.Err(), stderr.String())
		}
		// Land the kill at a random point of the next Put.
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Acks printed before the kill landed are acknowledged too.
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "ok "); ok {
				acked[name] = true
			}
		}
		_ = cmd.Wait()

		temps := verifyCrashDir(t, dir, acked)
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.CleanTemp(ctx, 0)
		if err != nil {
			t.Fatalf("CleanTemp: %v", err)
		}
		if n != temps {
			t.Fatalf("CleanTemp removed %d temp files, %d were there", n, temps)
		}
		if left := verifyCrashDir(t, dir, acked); left != 0 {
			t.Fatalf("%d temp files left after CleanTemp", left)
		}
		t.Logf("iteration %d: killed after %d acks; %d temp files cleaned", it, got, temps)
	}
}

// verifyCrashDir checks that every object under dir has its complete
// content and that every acknowledged name exists; it returns the number of
// temp files.
func verifyCrashDir(t *testing.T, dir string, acked map[string]bool) int {
	t.Helper()
	temps := 0
	present := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			temps++
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		name := filepath.ToSlash(rel)
		size, ok := crashSize(name)
		if !ok {
			return fmt.Errorf("unexpected file %s", name)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(data, blobtest.Content(name, size)) {
			return fmt.Errorf("object %s: %d bytes, not its complete content (%d bytes)", name, len(data), size)
		}
		present[name] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range acked {
		if !present[name] {
			t.Fatalf("acknowledged object %s is missing", name)
		}
	}
	return temps
}
