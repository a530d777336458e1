package blobtest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
)

func TestMemContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Storage { return blobtest.NewMem(nil) })
}

func TestMemRaw(t *testing.T) {
	ctx := context.Background()
	m := blobtest.NewMem(nil)
	for _, n := range []string{"b/2", "a/1", "b/1"} {
		if err := m.Put(ctx, n, []byte(n), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Names("b/"); !slices.Equal(got, []string{"b/1", "b/2"}) {
		t.Fatalf("Names(b/) = %q", got)
	}
	if got := m.Names(""); len(got) != 3 {
		t.Fatalf("Names() = %q", got)
	}
	raw, ok := m.Raw("a/1")
	if !ok || string(raw) != "a/1" {
		t.Fatalf("Raw(a/1) = %q, %v", raw, ok)
	}
	raw[0] = 'X' // a copy: the object stays
	mod := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	m.SetRaw("a/1", []byte("changed"), mod)
	got, err := m.Get(ctx, "a/1", 0, -1)
	if err != nil || string(got) != "changed" {
		t.Fatalf("Get after SetRaw = %q, %v", got, err)
	}
	if info, err := m.Stat(ctx, "a/1"); err != nil || info.Size != 7 || !info.ModTime.Equal(mod) {
		t.Fatalf("Stat after SetRaw = %+v, %v", info, err)
	}
	if _, ok := m.Raw("missing"); ok {
		t.Fatal("Raw of a missing object reports it")
	}
}
