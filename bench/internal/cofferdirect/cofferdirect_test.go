package cofferdirect

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"coffer/internal/repository"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBackupRestoreLatest(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	cfg := Config{RepoDir: filepath.Join(dir, "repo"), Key: key}
	if err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := Init(ctx, cfg); !errors.Is(err, repository.ErrExists) {
		t.Errorf("second init: %v, want ErrExists", err)
	}
	src := filepath.Join(dir, "src")
	writeTree(t, src, map[string]string{"a": "one", "d/b": "two", "d/c": "three"})

	first, err := Backup(ctx, cfg, src, true)
	if err != nil {
		t.Fatal(err)
	}
	if first.Parent != "" || first.Files != 3 || first.NewFiles != 3 || first.StoredBytes == 0 {
		t.Errorf("first backup %+v", first)
	}
	second, err := Backup(ctx, cfg, src, true)
	if err != nil {
		t.Fatal(err)
	}
	if second.Parent != first.Manifest || second.UnchangedFiles != 3 || second.BytesRead != 0 {
		t.Errorf("second backup %+v, want parent %s and nothing read", second, first.Manifest)
	}
	noParent, err := Backup(ctx, cfg, src, false)
	if err != nil {
		t.Fatal(err)
	}
	if noParent.Parent != "" || noParent.BytesRead != int64(len("onetwothree")) {
		t.Errorf("backup without parent %+v", noParent)
	}

	// The newest snapshot is restored: change the source and back it up.
	writeTree(t, src, map[string]string{"d/b": "TWO!"})
	third, err := Backup(ctx, cfg, src, true)
	if err != nil {
		t.Fatal(err)
	}
	if third.ChangedFiles != 1 {
		t.Errorf("third backup %+v, want one changed file", third)
	}
	dst := filepath.Join(dir, "out")
	rs, err := Restore(ctx, cfg, "latest", dst)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Manifest != third.Manifest || rs.Files != 3 {
		t.Errorf("restore %+v, want manifest %s", rs, third.Manifest)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "d/b")); err != nil || string(b) != "TWO!" {
		t.Errorf("restored d/b = %q, %v", b, err)
	}
	// An older snapshot by ID.
	old := filepath.Join(dir, "old")
	if _, err := Restore(ctx, cfg, first.Manifest, old); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(old, "d/b")); err != nil || string(b) != "two" {
		t.Errorf("restored old d/b = %q, %v", b, err)
	}
	if _, err := Restore(ctx, cfg, "latest", dst); err == nil {
		t.Error("restore onto an existing directory succeeded")
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	key := make([]byte, 32)
	cfg := Config{RepoDir: filepath.Join(dir, "repo"), Key: key}
	if _, err := Backup(ctx, cfg, dir, true); err == nil {
		t.Error("backup into a missing repository succeeded")
	}
	if err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, cfg, "latest", filepath.Join(dir, "out")); err == nil {
		t.Error("restore from an empty repository succeeded")
	}
	wrong := Config{RepoDir: cfg.RepoDir, Key: make([]byte, 32)}
	wrong.Key[0] = 1
	if _, err := Backup(ctx, wrong, dir, true); !errors.Is(err, repository.ErrWrongKey) {
		t.Errorf("wrong key: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", true},
		{" 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", true},
		{"0011", false},
		{"zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", false},
		{"", false},
	}
	for _, tc := range tests {
		if _, err := ParseKey(tc.in); (err == nil) != tc.ok {
			t.Errorf("ParseKey(%q) error %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
