package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"coffer/internal/clock"
	"coffer/internal/repository/blob"
)

func TestCleanTempHonoursAge(t *testing.T) {
	ctx := context.Background()
	fake := clock.NewFake(time.Now())
	s, err := Open(t.TempDir(), Options{Clock: fake})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "d/obj", []byte("keep"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{tempPrefix + "a", "d/" + tempPrefix + "b"} {
		if err := os.WriteFile(filepath.Join(s.Root(), p), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.CleanTemp(ctx, time.Hour); err != nil || n != 0 {
		t.Fatalf("CleanTemp of fresh temp files = %d, %v; want 0 (a Put may still own them)", n, err)
	}
	fake.Advance(2 * time.Hour)
	if n, err := s.CleanTemp(ctx, time.Hour); err != nil || n != 2 {
		t.Fatalf("CleanTemp after 2h = %d, %v; want 2", n, err)
	}
	finals, temps := listFiles(t, s.Root())
	if len(temps) != 0 || len(finals) != 1 {
		t.Fatalf("after CleanTemp: objects %v, temps %v", finals, temps)
	}
	// Temp files never show up in List.
	if err := os.WriteFile(filepath.Join(s.Root(), "d", tempPrefix+"c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := s.List(ctx, "", func(in blob.Info) error { names = append(names, in.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "d/obj" {
		t.Fatalf("List = %v, want [d/obj]", names)
	}
}

// CleanTempIn and TempUsage see only the temp files under their prefix;
// olderThan 0 removes them whatever their age.
func TestCleanTempInPrefix(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir(), Options{Clock: clock.NewFake(time.Now().Add(-time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"data/ab/" + tempPrefix + "a", "data/cd/" + tempPrefix + "b", "locks/" + tempPrefix + "c"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(s.Root(), p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Root(), p), []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, size, err := s.TempUsage(ctx, "data/"); err != nil || n != 2 || size != 14 {
		t.Fatalf("TempUsage(data/) = %d, %d, %v; want 2, 14", n, size, err)
	}
	if n, err := s.CleanTempIn(ctx, "data/", 0); err != nil || n != 2 {
		t.Fatalf("CleanTempIn(data/, 0) = %d, %v; want 2", n, err)
	}
	if _, temps := listFiles(t, s.Root()); len(temps) != 1 {
		t.Fatalf("temps left: %v, want the one under locks/", temps)
	}
	if _, err := s.CleanTempIn(ctx, "../x/", 0); err == nil {
		t.Fatal("CleanTempIn accepted an invalid prefix")
	}
}
