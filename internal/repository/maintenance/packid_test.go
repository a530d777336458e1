package maintenance_test

import (
	"context"
	"strings"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/maintenance"
	"coffer/internal/repository/pack"
)

// toVersion1 rewrites every data pack of the fixture as a pack with header
// version 1 (named by the hash of all its bytes, as packs were written
// before version 2) and rebuilds the index over them.
func toVersion1(t *testing.T, f *fixture) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	for _, name := range f.st.Names(repository.DataPrefix) {
		raw, _ := f.st.Raw(name)
		hdr, err := pack.ParsePack(raw, f.r.AEAD())
		if err != nil {
			t.Fatal(err)
		}
		off, _, err := pack.ParseTrailer(raw[len(raw)-pack.TrailerSize:], int64(len(raw)))
		if err != nil {
			t.Fatal(err)
		}
		v1 := pack.AppendTail(append([]byte(nil), raw[:off]...), pack.Header{Version: pack.Version1, Entries: hdr.Entries}, f.r.AEAD())
		if err := f.st.Delete(ctx, name); err != nil {
			t.Fatal(err)
		}
		f.st.SetRaw(repository.PackName(crypto.Hash(v1)), v1, f.mtime)
	}
	r := f.reopen(t)
	rr, err := maintenance.RebuildIndex(ctx, r, maintenance.RebuildOptions{})
	if err != nil || !rr.OK() {
		t.Fatalf("rebuild over version-1 packs: %v\n%v", err, rr)
	}
	return r
}

// Repositories written before pack header version 2 keep working: their
// packs read, check clean and are named by the hash of the whole pack.
func TestVersion1PacksStillRead(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	r := toVersion1(t, f)
	for _, readData := range []bool{false, true} {
		rep, err := maintenance.Check(ctx, r, maintenance.CheckOptions{ReadData: readData})
		if err != nil || !rep.OK() {
			t.Fatalf("readData=%v: %v\n%v", readData, err, rep)
		}
	}
	f.mustRestoreAll(t, r)

	// A version-1 pack's name covers its blobs too: a flipped data byte
	// shows as a name mismatch as well as a damaged blob.
	var target string
	for _, n := range f.st.Names(repository.DataPrefix) {
		if b, _ := f.st.Raw(n); len(b) > 1<<20 {
			target = n
		}
	}
	f.mutate(target, func(b []byte) []byte { b[100] ^= 0x10; return b })
	rep, err := maintenance.Check(ctx, r, maintenance.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.String(), "does not match its name") || len(rep.DamagedBlobs) != 1 {
		t.Fatalf("damaged version-1 pack %s not reported:\n%v", target, rep)
	}
}

// A pack stored under another pack's name is recognised from its header
// alone (version 2 names cover the sealed header): structure-only Check
// and RebuildIndex report it without reading its data.
func TestRenamedPackDetectedFromHeader(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	rawA, _ := f.st.Raw(f.packA)
	rawB, _ := f.st.Raw(f.packB)
	// B's name now holds A's content and vice versa, and each index entry is
	// rewritten to the size now under its name, so only the names can tell.
	f.st.SetRaw(f.packA, rawB, f.mtime)
	f.st.SetRaw(f.packB, rawA, f.mtime)
	for _, n := range f.indexes {
		_ = f.st.Delete(ctx, n)
	}
	r := f.reopen(t)
	rr, err := maintenance.RebuildIndex(ctx, r, maintenance.RebuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := names(rr.UnreadablePacks)
	if !strings.Contains(got, f.packA) || !strings.Contains(got, f.packB) || !strings.Contains(rr.String(), "does not match its name") {
		t.Fatalf("rebuild did not report the swapped packs:\n%v", rr)
	}
	// Neither manifest can be restored from the swapped packs any more.
	if _, err := restore(ctx, r, f.a); err == nil {
		t.Fatal("A restored from a pack whose name does not match")
	}
}
