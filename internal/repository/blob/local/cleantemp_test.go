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
