package maintenance_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"coffer/internal/repository"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/maintenance"
)

// indexOf returns the index file that lists pack.
func (f *fixture) indexOf(t *testing.T, pack string) string {
	t.Helper()
	for _, n := range f.st.Names(repository.IndexPrefix) {
		fi, err := f.r.ReadIndexFile(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range fi.Packs {
			if repository.PackName(p.PackID) == pack {
				return n
			}
		}
	}
	t.Fatalf("no index file lists %s", pack)
	return ""
}

func (f *fixture) reopen(t *testing.T) *repository.Repository {
	t.Helper()
	r, err := repository.Open(context.Background(), f.st, f.key, repository.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func (f *fixture) mustRestoreAll(t *testing.T, r *repository.Repository) {
	t.Helper()
	mustRestore(t, r, f.a, f.filesA)
	mustRestore(t, r, f.b, f.filesB)
}

func flipMiddle(b []byte) []byte { b[len(b)/2] ^= 0x80; return b }

// Damage to index files only: the repository still opens, Check reports
// the damage, RebuildIndex repairs it from the pack headers, and
// afterwards Check is clean and every recovery point restores exactly.
// Prune then removes the superseded damaged files.
func TestRebuildIndexAfterIndexDamage(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// damage returns the index files Check must name as damaged.
		damage func(t *testing.T, f *fixture) []string
	}{
		{"one index file corrupt", func(t *testing.T, f *fixture) []string {
			n := f.indexOf(t, f.packA)
			f.mutate(n, flipMiddle)
			return []string{n}
		}},
		{"one index file truncated", func(t *testing.T, f *fixture) []string {
			n := f.indexOf(t, f.packB)
			f.mutate(n, func(b []byte) []byte { return b[:len(b)-7] })
			return []string{n}
		}},
		{"every index file corrupt", func(t *testing.T, f *fixture) []string {
			for _, n := range f.indexes {
				f.mutate(n, flipMiddle)
			}
			return f.indexes
		}},
		{"every index file zero-length", func(t *testing.T, f *fixture) []string {
			for _, n := range f.indexes {
				f.mutate(n, func([]byte) []byte { return nil })
			}
			return f.indexes
		}},
		{"every index file deleted", func(t *testing.T, f *fixture) []string {
			for _, n := range f.indexes {
				if err := f.st.Delete(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			packs := f.st.Names(repository.DataPrefix)
			wantDamaged := tc.damage(t, f)
			before := f.st.Names(repository.IndexPrefix)

			r := f.reopen(t) // must open whatever happened to the index
			rep, err := maintenance.Check(ctx, r, maintenance.CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("check is clean after damage:\n%v", rep)
			}
			if got := names(rep.DamagedIndexes); got != strings.Join(wantDamaged, ",") {
				t.Fatalf("damaged indexes %q, want %q", got, wantDamaged)
			}

			rr, err := maintenance.RebuildIndex(ctx, r, maintenance.RebuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rr.PacksRead != len(packs) || len(rr.UnreadablePacks) != 0 || rr.IndexFilesSuperseded != len(before) ||
				rr.IndexFilesWritten != 1 || rr.BlobsIndexed == 0 || len(rr.DamagedIndexes) != len(wantDamaged) {
				t.Fatalf("report %+v (packs %d, index files before %d)\n%v", rr, len(packs), len(before), rr)
			}
			// Nothing was deleted: every pack and every old index file is
			// still there.
			for _, n := range append(append([]string(nil), packs...), before...) {
				if _, ok := f.st.Raw(n); !ok {
					t.Fatalf("%s deleted by RebuildIndex", n)
				}
			}
			mustCheck(t, r)
			f.mustRestoreAll(t, r)
			r2 := f.reopen(t)
			mustCheck(t, r2)
			f.mustRestoreAll(t, r2)

			// Prune (nothing to reclaim: all packs are young) replaces the
			// index and deletes the superseded files, damaged ones included.
			if _, err := maintenance.Prune(ctx, r2, maintenance.PruneOptions{Grace: time.Hour}); err != nil {
				t.Fatalf("prune after rebuild: %v", err)
			}
			for _, n := range wantDamaged {
				if _, ok := f.st.Raw(n); ok {
					t.Errorf("prune kept the superseded damaged index file %s", n)
				}
			}
			rep, err = maintenance.Check(ctx, r2, maintenance.CheckOptions{ReadData: true})
			if err != nil || !rep.OK() || len(rep.Warnings) != 0 {
				t.Fatalf("check after prune: %v\n%v", err, rep)
			}
			f.mustRestoreAll(t, f.reopen(t))
		})
	}
}

// A pack whose header cannot be read is reported by name and left in
// place; every other pack is indexed. If an existing index file still
// vouches for the damaged pack, its entries are kept (the blobs are
// intact and authenticated one by one); otherwise they cannot be.
func TestRebuildIndexUnreadablePackHeader(t *testing.T) {
	ctx := context.Background()
	headerFlip := func(b []byte) []byte { b[len(b)-30] ^= 1; return b }
	cases := []struct {
		name      string
		damage    func(f *fixture)
		loseIndex bool
		// restorableA: A's data is intact and still indexed afterwards.
		restorableA bool
	}{
		{"bit flip in header, index intact", func(f *fixture) { f.mutate(f.packA, headerFlip) }, false, true},
		{"bit flip in trailer, index intact", func(f *fixture) {
			f.mutate(f.packA, func(b []byte) []byte { b[len(b)-6] ^= 4; return b })
		}, false, true},
		{"bit flip in header, index lost", func(f *fixture) { f.mutate(f.packA, headerFlip) }, true, false},
		{"truncated pack, index intact", func(f *fixture) {
			f.mutate(f.packA, func(b []byte) []byte { return b[:len(b)/2] })
		}, false, false},
		{"zero-length pack, index lost", func(f *fixture) { f.mutate(f.packA, func([]byte) []byte { return nil }) }, true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			packs := f.st.Names(repository.DataPrefix)
			tc.damage(f)
			if tc.loseIndex {
				for _, n := range f.indexes {
					_ = f.st.Delete(ctx, n)
				}
			}
			rawA, _ := f.st.Raw(f.packA)
			r := f.reopen(t)
			rr, err := maintenance.RebuildIndex(ctx, r, maintenance.RebuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if names(rr.UnreadablePacks) != f.packA || rr.PacksRead != len(packs)-1 || rr.OK() {
				t.Fatalf("unreadable %q, want %s; report %+v", names(rr.UnreadablePacks), f.packA, rr)
			}
			if kept := rr.PacksCarried == 1; kept != tc.restorableA || !strings.Contains(rr.String(), f.packA) {
				t.Fatalf("carried %d, want restorable=%v\n%v", rr.PacksCarried, tc.restorableA, rr)
			}
			if raw, ok := f.st.Raw(f.packA); !ok || !bytes.Equal(raw, rawA) {
				t.Fatal("the unreadable pack was changed or deleted")
			}
			// B never depended on the damaged pack.
			mustRestore(t, r, f.b, f.filesB)
			got, err := restore(ctx, r, f.a)
			if tc.restorableA {
				if err != nil || !equalFiles(got, f.filesA) {
					t.Fatalf("A does not restore: %v", err)
				}
			} else if err == nil {
				t.Fatal("A restored from a pack that lost its data or index")
			}
			rep, err := maintenance.Check(ctx, r, maintenance.CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || len(rep.DamagedIndexes) != 0 || strings.Contains(names(rep.DamagedManifests), f.b.ID) {
				t.Fatalf("check after rebuild:\n%v", rep)
			}
			if tc.restorableA != !strings.Contains(names(rep.DamagedManifests), f.a.ID) {
				t.Fatalf("manifest A reported=%v, want %v:\n%v", !tc.restorableA, !tc.restorableA, rep)
			}
		})
	}
}

// A failing listing, or a read that fails for a reason other than damage
// (the storage is unreachable), aborts before anything is written.
func TestRebuildIndexAbortsOnStorageErrors(t *testing.T) {
	cases := []struct {
		name  string
		fault func(mem *blobtest.Mem) blobtest.Fault
	}{
		{"listing index/ breaks", func(*blobtest.Mem) blobtest.Fault {
			return blobtest.Fault{Method: blobtest.MethodList, Name: repository.IndexPrefix, Err: errors.New("listing broke"), ListAfter: 1}
		}},
		{"listing data/ breaks", func(*blobtest.Mem) blobtest.Fault {
			return blobtest.Fault{Method: blobtest.MethodList, Name: repository.DataPrefix, Err: errors.New("listing broke"), ListAfter: 1}
		}},
		{"listing data/ fails", func(*blobtest.Mem) blobtest.Fault {
			return blobtest.Fault{Method: blobtest.MethodList, Name: repository.DataPrefix, Err: errors.New("connection refused")}
		}},
		{"reading a pack header fails", func(mem *blobtest.Mem) blobtest.Fault {
			return blobtest.Fault{Method: blobtest.MethodGet, Name: mem.Names(repository.DataPrefix)[0], Err: errors.New("connection reset")}
		}},
		{"reading an index file fails", func(mem *blobtest.Mem) blobtest.Fault {
			return blobtest.Fault{Method: blobtest.MethodGet, Name: mem.Names(repository.IndexPrefix)[0], Err: errors.New("connection reset")}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			mem := blobtest.NewMem(nil)
			faulty := blobtest.NewFaulty(t, mem)
			key := bytes.Repeat([]byte{7}, 32)
			r, err := repository.Create(ctx, faulty, key, repository.Options{})
			if err != nil {
				t.Fatal(err)
			}
			backup(t, r, map[string][]byte{"x": randBytes(40, 2<<20)}, "A")
			backup(t, r, map[string][]byte{"y": randBytes(41, 2<<20)}, "B")
			// An index file is damaged: the repair would be wanted.
			idx := mem.Names(repository.IndexPrefix)
			raw, _ := mem.Raw(idx[len(idx)-1])
			mem.SetRaw(idx[len(idx)-1], flipMiddle(raw), time.Now())
			objs := objectSet(mem)
			faulty.Add(tc.fault(mem))
			rr, err := maintenance.RebuildIndex(ctx, r, maintenance.RebuildOptions{})
			if err == nil {
				t.Fatalf("rebuild succeeded over a storage error: %+v", rr)
			}
			if !strings.Contains(err.Error(), "nothing written") {
				t.Errorf("error does not say nothing was written: %v", err)
			}
			if after := objectSet(mem); len(after) != len(objs) {
				t.Fatalf("objects changed %v -> %v (%v)", keys(objs), keys(after), err)
			}
			for n, v := range objectSet(mem) {
				if objs[n] != v {
					t.Fatalf("%s changed (%v)", n, err)
				}
			}
		})
	}
}

// RebuildIndex needs the exclusive lock: a running write session makes it
// refuse, and nothing is written.
func TestRebuildIndexRefusesWhileWriting(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	before := f.st.Names(repository.IndexPrefix)
	err := f.r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		_, err := maintenance.RebuildIndex(ctx, f.r, maintenance.RebuildOptions{})
		if !errors.Is(err, repository.ErrLocked) || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), "shared lock") {
			t.Errorf("rebuild during a write session: %v", err)
		}
		_, err = w.SaveBlob(ctx, repository.DataBlob, []byte("written while the rebuild was refused"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	after := f.st.Names(repository.IndexPrefix)
	if len(after) != len(before)+1 { // only the session's own index file
		t.Fatalf("index files %v -> %v", before, after)
	}
	if _, err := maintenance.RebuildIndex(ctx, f.r, maintenance.RebuildOptions{}); err != nil {
		t.Fatalf("rebuild after the session ended: %v", err)
	}
	mustCheck(t, f.r)
}

// A dry run reads and reports but writes nothing; running the rebuild
// twice is harmless.
func TestRebuildIndexDryRunAndRepeat(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.mutate(f.indexOf(t, f.packA), flipMiddle)
	objs := objectSet(f.st)
	r := f.reopen(t)
	dry, err := maintenance.RebuildIndex(ctx, r, maintenance.RebuildOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.IndexFilesWritten != 0 || dry.PacksRead == 0 || !strings.Contains(dry.String(), "dry run") {
		t.Fatalf("dry run report %+v", dry)
	}
	if after := objectSet(f.st); len(after) != len(objs) {
		t.Fatalf("dry run changed objects: %v -> %v", keys(objs), keys(after))
	}
	for i := 0; i < 2; i++ {
		rr, err := maintenance.RebuildIndex(ctx, r, maintenance.RebuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if rr.PacksRead != dry.PacksRead || rr.BlobsIndexed != dry.BlobsIndexed {
			t.Fatalf("run %d: %+v, dry run %+v", i, rr, dry)
		}
		mustCheck(t, r)
		f.mustRestoreAll(t, f.reopen(t))
	}
}
