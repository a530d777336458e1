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

type fixture struct {
	st      *blobtest.Mem
	key     []byte
	r       *repository.Repository
	a, b    repository.Manifest
	filesA  map[string][]byte
	filesB  map[string][]byte
	packA   string // the data pack holding A's file
	packB   string
	indexes []string
	mtime   time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{st: blobtest.NewMem(nil), key: bytes.Repeat([]byte{3}, 32), mtime: time.Now()}
	var err error
	f.r, err = repository.Create(ctx, f.st, f.key, repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.filesA = map[string][]byte{"a1": randBytes(1, 2<<20+17), "a2": randBytes(2, 5000)}
	before := map[string]bool{}
	for _, n := range f.st.Names("data/") {
		before[n] = true
	}
	f.a = backup(t, f.r, f.filesA, "A")
	f.packA = largestNew(f.st, before)
	for _, n := range f.st.Names("data/") {
		before[n] = true
	}
	f.filesB = map[string][]byte{"b1": randBytes(3, 1<<20+3)}
	f.b = backup(t, f.r, f.filesB, "B")
	f.packB = largestNew(f.st, before)
	f.indexes = f.st.Names("index/")
	rep, err := maintenance.Check(ctx, f.r, maintenance.CheckOptions{ReadData: true})
	if err != nil || !rep.OK() {
		t.Fatalf("fresh repository does not check clean: %v\n%v", err, rep)
	}
	return f
}

func largestNew(st *blobtest.Mem, before map[string]bool) string {
	best, size := "", -1
	for _, n := range st.Names("data/") {
		if before[n] {
			continue
		}
		if b, _ := st.Raw(n); len(b) > size {
			best, size = n, len(b)
		}
	}
	return best
}

func (f *fixture) mutate(name string, fn func([]byte) []byte) {
	b, _ := f.st.Raw(name)
	f.st.SetRaw(name, fn(b), f.mtime)
}

func names(ps []maintenance.Problem) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Object)
	}
	return strings.Join(s, ",")
}

func TestCorruption(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// corrupt damages the fixture and returns whether structural check
		// (no data read) must already notice.
		corrupt    func(f *fixture)
		structural bool
		// blobsLost: A's data can no longer be read (LoadBlob must refuse).
		blobsLost bool
		// manifestA: manifest A must be reported damaged.
		manifestA bool
	}{
		{"bit flip in data area", func(f *fixture) { f.mutate(f.packA, func(b []byte) []byte { b[100] ^= 0x10; return b }) }, false, true, true},
		{"bit flip in header", func(f *fixture) {
			f.mutate(f.packA, func(b []byte) []byte { b[len(b)-30] ^= 1; return b })
		}, true, false, false},
		{"bit flip in trailer", func(f *fixture) {
			f.mutate(f.packA, func(b []byte) []byte { b[len(b)-6] ^= 4; return b })
		}, true, false, false},
		{"truncated pack", func(f *fixture) { f.mutate(f.packA, func(b []byte) []byte { return b[:len(b)/2] }) }, true, true, true},
		{"zero-length pack", func(f *fixture) { f.mutate(f.packA, func(b []byte) []byte { return nil }) }, true, true, true},
		{"missing pack", func(f *fixture) { _ = f.st.Delete(ctx, f.packA) }, true, true, true},
		{"two packs swapped", func(f *fixture) {
			a, _ := f.st.Raw(f.packA)
			b, _ := f.st.Raw(f.packB)
			f.st.SetRaw(f.packA, b, f.mtime)
			f.st.SetRaw(f.packB, a, f.mtime)
		}, true, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.corrupt(f)
			for _, readData := range []bool{false, true} {
				if !readData && !tc.structural {
					continue
				}
				rep, err := maintenance.Check(ctx, f.r, maintenance.CheckOptions{ReadData: readData})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(names(rep.DamagedPacks), f.packA) {
					t.Errorf("readData=%v: damaged packs %q do not name %s\n%v", readData, names(rep.DamagedPacks), f.packA, rep)
				}
				if tc.manifestA && !strings.Contains(names(rep.DamagedManifests), f.a.ID) {
					t.Errorf("readData=%v: manifest A not reported: %v", readData, rep)
				}
				if tc.name != "two packs swapped" && strings.Contains(names(rep.DamagedManifests), f.b.ID) {
					t.Errorf("readData=%v: manifest B wrongly reported: %v", readData, rep)
				}
				if readData && tc.name == "bit flip in data area" && len(rep.DamagedBlobs) != 1 {
					t.Errorf("want exactly one damaged blob: %v", rep)
				}
			}
			// Reads never return wrong bytes; they refuse when data is gone.
			got, err := restore(ctx, f.r, f.a)
			if tc.blobsLost && err == nil {
				t.Fatal("restore of damaged manifest succeeded")
			}
			if err == nil && !equalFiles(got, f.filesA) {
				t.Fatal("restore returned wrong bytes without an error")
			}
			if err != nil && !errors.Is(err, repository.ErrCorrupt) && !errors.Is(err, repository.ErrBlobNotFound) {
				t.Fatalf("restore error %v is neither ErrCorrupt nor ErrBlobNotFound", err)
			}
			// Reopening drops lost packs from the index, so the next backup
			// uploads the data again (self-heal).
			r2, err := repository.Open(ctx, f.st, f.key, repository.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.name == "missing pack" || tc.name == "truncated pack" || tc.name == "zero-length pack" {
				m := backup(t, r2, f.filesA, "A again")
				got, err := restore(ctx, r2, m)
				if err != nil || !equalFiles(got, f.filesA) {
					t.Fatalf("backup after losing a pack does not restore: %v", err)
				}
			}
		})
	}
}

func TestCorruptIndexAndManifest(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	// Corrupt the index file of session A (the first one written).
	var target string
	for _, n := range f.indexes {
		fi, err := f.r.ReadIndexFile(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range fi.Packs {
			if repository.PackName(p.PackID) == f.packA {
				target = n
			}
		}
	}
	f.mutate(target, func(b []byte) []byte { b[len(b)/2] ^= 0x80; return b })
	f.mutate(repository.ManifestPrefix+f.b.ID, func(b []byte) []byte { b[20] ^= 1; return b })
	r2, err := repository.Open(ctx, f.st, f.key, repository.Options{})
	if err != nil {
		t.Fatalf("open with one damaged index file: %v", err)
	}
	rep, err := maintenance.Check(ctx, r2, maintenance.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if names(rep.DamagedIndexes) != target {
		t.Errorf("damaged indexes = %q, want %s", names(rep.DamagedIndexes), target)
	}
	dm := names(rep.DamagedManifests)
	if !strings.Contains(dm, f.a.ID) || !strings.Contains(dm, f.b.ID) {
		t.Errorf("damaged manifests = %q, want both", dm)
	}
	if _, err := r2.LoadManifest(ctx, f.b.ID); !errors.Is(err, repository.ErrCorrupt) {
		t.Errorf("LoadManifest of corrupt manifest: %v", err)
	}
	// Prune refuses to act on a damaged index.
	if _, err := maintenance.Prune(ctx, r2, maintenance.PruneOptions{Grace: time.Nanosecond}); err == nil {
		t.Error("prune ran over a damaged index")
	}
	if _, err := repository.Open(ctx, f.st, bytes.Repeat([]byte{4}, 32), repository.Options{}); !errors.Is(err, repository.ErrWrongKey) {
		t.Errorf("wrong master key: %v", err)
	}
	// A well-formed manifest sealed under another key is rejected.
	f.st.SetRaw(repository.ManifestPrefix+"00112233445566778899aabbccddeeff", []byte(`{"version":1}`), time.Now())
	f.st.SetRaw("stray/file.txt", []byte("hello"), time.Now())
	rep, _ = maintenance.Check(ctx, r2, maintenance.CheckOptions{})
	if !strings.Contains(names(rep.DamagedManifests), "00112233445566778899aabbccddeeff") {
		t.Errorf("forged manifest not reported: %v", rep)
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "unknown object stray/file.txt") {
		t.Errorf("unknown object not reported: %v", rep.Warnings)
	}
}
