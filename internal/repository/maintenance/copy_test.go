package maintenance_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/maintenance"
	"coffer/internal/repository/repotest"
	"coffer/internal/repository/snapshot"
)

func TestCopy(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t)
	dst := repotest.New(t)
	files := map[string][]byte{"a": randBytes(40, 3<<20), "b": randBytes(41, 1000), "empty": {}}
	m := backup(t, src, files, "src")
	files2 := map[string][]byte{"a": files["a"], "c": randBytes(42, 2000)}
	m2 := backup(t, src, files2, "src2")

	out, rep, err := maintenance.Copy(ctx, src, dst, m.ID, maintenance.CopyOptions{
		Labels: map[string]string{"copied": "yes"}, KeepSourceLabels: true})
	if err != nil {
		t.Fatal(err)
	}
	mustRestore(t, dst, out, files)
	if out.Labels["name"] != "src" || out.Labels["copied"] != "yes" || !out.Time.Equal(m.Time) {
		t.Fatalf("manifest %+v", out)
	}
	// The second recovery point shares file a: only c and the tree cross.
	out2, rep, err := maintenance.Copy(ctx, src, dst, m2.ID, maintenance.CopyOptions{KeepSourceLabels: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SentBytes > 10000 || rep.SentBlobs != 1 {
		t.Fatalf("second copy transferred too much: %+v", rep)
	}
	mustRestore(t, dst, out2, files2)
	mustCheck(t, dst)
	// Copying again transfers nothing.
	_, rep, err = maintenance.Copy(ctx, src, dst, m2.ID, maintenance.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SentBlobs != 0 || rep.SentBytes != 0 || rep.SkippedBlobs != rep.DataBlobs {
		t.Fatalf("repeated copy stored %d blobs: %+v", rep.SentBlobs, rep)
	}
	// A failed copy writes no manifest.
	before, _ := dst.ListManifestIDs(ctx)
	if _, _, err := maintenance.Copy(ctx, src, dst, "00000000000000000000000000000000", maintenance.CopyOptions{}); !errors.Is(err, repository.ErrManifestNotFound) {
		t.Fatalf("copy of a missing manifest: %v", err)
	}
	after, _ := dst.ListManifestIDs(ctx)
	if len(after) != len(before) {
		t.Fatal("failed copy wrote a manifest")
	}
}

func TestCopyLabels(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t)
	dst := repotest.New(t)
	m := backup(t, src, map[string][]byte{"f": randBytes(50, 100)}, "src")
	cases := []struct {
		name string
		opts maintenance.CopyOptions
		want map[string]string
	}{
		{"given labels only", maintenance.CopyOptions{Labels: map[string]string{"k": "v"}}, map[string]string{"k": "v"}},
		{"no labels", maintenance.CopyOptions{}, nil},
		{"source labels kept", maintenance.CopyOptions{KeepSourceLabels: true}, map[string]string{"name": "src"}},
		{"given labels win", maintenance.CopyOptions{KeepSourceLabels: true, Labels: map[string]string{"name": "copy", "k": "v"}},
			map[string]string{"name": "copy", "k": "v"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := maintenance.Copy(ctx, src, dst, m.ID, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dst.LoadManifest(ctx, out.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Labels, c.want) {
				t.Fatalf("labels %v, want %v", got.Labels, c.want)
			}
		})
	}
}

// backupNested stores root{a, d1{sub{y}, x}} plus, with dup, d2 holding the
// same tree as d1, and returns the manifest and the files by path.
func backupNested(t *testing.T, r *repository.Repository, dup bool) (repository.Manifest, map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	a, x, y := randBytes(60, 300000), randBytes(61, 50000), randBytes(62, 70000)
	// restore lists directories too, with no content.
	files := map[string][]byte{"a": a, "d1": nil, "d1/sub": nil, "d1/x": x, "d1/sub/y": y}
	if dup {
		files["d2"], files["d2/sub"], files["d2/x"], files["d2/sub/y"] = nil, nil, x, y
	}
	var root repository.ID
	err := r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		file := func(name string, data []byte) (snapshot.Node, error) {
			ids, size, err := w.SaveStream(ctx, bytes.NewReader(data))
			return snapshot.Node{Name: name, Type: snapshot.TypeFile, Mode: 0o644, Size: size, Content: ids}, err
		}
		dir := func(name string, nodes ...snapshot.Node) (snapshot.Node, error) {
			id, err := snapshot.SaveTree(ctx, w, &snapshot.Tree{Nodes: nodes})
			return snapshot.Node{Name: name, Type: snapshot.TypeDir, Mode: 0o755, Subtree: id}, err
		}
		fy, err := file("y", y)
		if err != nil {
			return err
		}
		sub, err := dir("sub", fy)
		if err != nil {
			return err
		}
		fx, err := file("x", x)
		if err != nil {
			return err
		}
		fa, err := file("a", a)
		if err != nil {
			return err
		}
		nodes := []snapshot.Node{fa}
		dirs := []string{"d1"}
		if dup {
			dirs = append(dirs, "d2")
		}
		for _, name := range dirs {
			d, err := dir(name, sub, fx)
			if err != nil {
				return err
			}
			nodes = append(nodes, d)
		}
		root, err = snapshot.SaveTree(ctx, w, &snapshot.Tree{Nodes: nodes})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := r.SaveManifest(ctx, repository.Manifest{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	return m, files
}

// walkStats counts what Copy must report for m by walking every node.
func walkStats(t *testing.T, r *repository.Repository, m repository.Manifest) maintenance.CopyStats {
	t.Helper()
	st := maintenance.CopyStats{Dirs: 1}
	err := snapshot.Walk(context.Background(), r, m.Root, func(_ string, n *snapshot.Node) error {
		switch n.Type {
		case snapshot.TypeDir:
			st.Dirs++
		case snapshot.TypeFile:
			st.Files++
			st.DataBlobs += int64(len(n.Content))
			if len(n.Content) > 0 {
				st.LogicalBytes += n.Size
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sameCounts(a, b maintenance.CopyStats) bool {
	return a.Files == b.Files && a.Dirs == b.Dirs && a.DataBlobs == b.DataBlobs && a.LogicalBytes == b.LogicalBytes
}

// A directory met twice is counted twice but read once.
func TestCopyRepeatedSubtree(t *testing.T) {
	ctx := context.Background()
	copyCountingGets := func(dup bool) (int, maintenance.CopyStats, []int64) {
		faulty := blobtest.NewFaulty(t, blobtest.NewMem(nil))
		src, err := repository.Create(ctx, faulty, crypto.RandomKey(), repository.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		dst := repotest.New(t)
		m, files := backupNested(t, src, dup)
		want := walkStats(t, src, m)
		var progress []int64
		before := faulty.Calls(blobtest.MethodGet)
		out, st, err := maintenance.Copy(ctx, src, dst, m.ID, maintenance.CopyOptions{
			Progress: func(done int64) { progress = append(progress, done) }})
		if err != nil {
			t.Fatal(err)
		}
		gets := faulty.Calls(blobtest.MethodGet) - before
		mustRestore(t, dst, out, files)
		mustCheck(t, dst)
		if !sameCounts(st, want) {
			t.Fatalf("copy counted %+v, walking counts %+v", st, want)
		}
		if st.SentBlobs+st.SkippedBlobs != st.DataBlobs || st.StoredBytes == 0 || out.Stats.StoredBytes != st.StoredBytes || out.Stats.NewBlobs == 0 {
			t.Fatalf("stats %+v, manifest stats %+v", st, out.Stats)
		}
		return gets, st, progress
	}
	getsOnce, stOnce, _ := copyCountingGets(false)
	getsTwice, stTwice, progress := copyCountingGets(true)
	if getsTwice != getsOnce {
		t.Fatalf("the repeated directory cost %d source reads (once: %d)", getsTwice, getsOnce)
	}
	if stTwice.SentBlobs != stOnce.SentBlobs || stTwice.SkippedBlobs != stTwice.DataBlobs-stOnce.DataBlobs {
		t.Fatalf("sent %+v with the repeat, %+v without", stTwice, stOnce)
	}
	if len(progress) == 0 || progress[len(progress)-1] != stTwice.LogicalBytes {
		t.Fatalf("progress %v, want it to end at %d", progress, stTwice.LogicalBytes)
	}
	for i := 1; i < len(progress); i++ {
		if progress[i] < progress[i-1] {
			t.Fatalf("progress went back: %v", progress)
		}
	}
}

// With caches of one entry the copy drops them all the time and is still
// complete and counts the same.
func TestCopyCacheDrops(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t)
	m, files := backupNested(t, src, true)
	want := walkStats(t, src, m)
	restore := maintenance.SetCopyCacheMax(1)
	defer restore()
	dst := repotest.New(t)
	out, st, err := maintenance.Copy(ctx, src, dst, m.ID, maintenance.CopyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !sameCounts(st, want) {
		t.Fatalf("copy counted %+v, walking counts %+v", st, want)
	}
	mustRestore(t, dst, out, files)
	mustCheck(t, dst)
}

func TestCopyCorruptSource(t *testing.T) {
	ctx := context.Background()
	mem := blobtest.NewMem(nil)
	src, err := repository.Create(ctx, mem, crypto.RandomKey(), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	m := backup(t, src, map[string][]byte{"big": randBytes(70, 2<<20)}, "src")
	best, size := "", 0
	for _, n := range mem.Names(repository.DataPrefix) {
		if b, _ := mem.Raw(n); len(b) > size {
			best, size = n, len(b)
		}
	}
	raw, _ := mem.Raw(best)
	raw[len(raw)/3] ^= 1
	mem.SetRaw(best, raw, src.Clock().Now())
	dst := repotest.New(t)
	if _, _, err := maintenance.Copy(ctx, src, dst, m.ID, maintenance.CopyOptions{}); !errors.Is(err, repository.ErrCorrupt) {
		t.Fatalf("copy of a corrupt source: %v, want ErrCorrupt", err)
	}
	if ids, _ := dst.ListManifestIDs(ctx); len(ids) != 0 {
		t.Fatalf("failed copy wrote manifests %v", ids)
	}
}

func TestCopyCancelled(t *testing.T) {
	src := repotest.New(t)
	dst := repotest.New(t)
	m, _ := backupNested(t, src, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	_, _, err := maintenance.Copy(ctx, src, dst, m.ID, maintenance.CopyOptions{Progress: func(int64) { calls++; cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v", err)
	}
	if calls != 1 {
		t.Fatalf("progress called %d times after the cancel", calls)
	}
	if ids, _ := dst.ListManifestIDs(context.Background()); len(ids) != 0 {
		t.Fatalf("cancelled copy wrote manifests %v", ids)
	}
}

// A subtree met again deeper down must not nest past snapshot.MaxDepth,
// even though it is taken from the cache.
func TestCopyDepthOfRepeatedSubtree(t *testing.T) {
	ctx := context.Background()
	src := repotest.New(t)
	dst := repotest.New(t)
	var root repository.ID
	err := src.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		chain := func(id repository.ID, n int) (repository.ID, error) {
			for range n {
				var err error
				id, err = snapshot.SaveTree(ctx, w, &snapshot.Tree{Nodes: []snapshot.Node{{Name: "d", Type: snapshot.TypeDir, Mode: 0o755, Subtree: id}}})
				if err != nil {
					return id, err
				}
			}
			return id, nil
		}
		leaf, err := snapshot.SaveTree(ctx, w, &snapshot.Tree{})
		if err != nil {
			return err
		}
		deep, err := chain(leaf, snapshot.MaxDepth-100) // height MaxDepth-100
		if err != nil {
			return err
		}
		deeper, err := chain(deep, 200)
		if err != nil {
			return err
		}
		root, err = snapshot.SaveTree(ctx, w, &snapshot.Tree{Nodes: []snapshot.Node{
			{Name: "a", Type: snapshot.TypeDir, Mode: 0o755, Subtree: deep},
			{Name: "b", Type: snapshot.TypeDir, Mode: 0o755, Subtree: deeper},
		}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := src.SaveManifest(ctx, repository.Manifest{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := maintenance.Copy(ctx, src, dst, m.ID, maintenance.CopyOptions{}); err == nil || !strings.Contains(err.Error(), "deeper than") {
		t.Fatalf("copy of a too deep snapshot: %v", err)
	}
}
