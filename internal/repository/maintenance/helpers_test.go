package maintenance_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"sort"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// backup stores files as one flat tree plus a manifest.
func backup(t testing.TB, r *repository.Repository, files map[string][]byte, label string) repository.Manifest {
	t.Helper()
	ctx := context.Background()
	var root repository.ID
	err := r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		var err error
		root, err = saveFlat(ctx, w, files)
		return err
	})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	m, err := r.SaveManifest(ctx, repository.Manifest{Root: root, Labels: map[string]string{"name": label}})
	if err != nil {
		t.Fatalf("save manifest: %v", err)
	}
	return m
}

// saveFlat stores files as one flat tree in w and returns its root.
func saveFlat(ctx context.Context, w *repository.Writer, files map[string][]byte) (repository.ID, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var tr snapshot.Tree
	for _, n := range names {
		ids, size, err := w.SaveStream(ctx, bytes.NewReader(files[n]))
		if err != nil {
			return repository.ID{}, err
		}
		tr.Nodes = append(tr.Nodes, snapshot.Node{Name: n, Type: snapshot.TypeFile, Mode: 0644, Size: size, Content: ids})
	}
	return snapshot.SaveTree(ctx, w, &tr)
}

// restore reads every file of a manifest back; it returns the first error.
func restore(ctx context.Context, r *repository.Repository, m repository.Manifest) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := snapshot.Walk(ctx, r, m.Root, func(p string, n *snapshot.Node) error {
		var buf []byte
		for _, id := range n.Content {
			b, err := r.LoadBlob(ctx, repository.DataBlob, id, nil)
			if err != nil {
				return err
			}
			buf = append(buf, b...)
		}
		out[p] = buf
		return nil
	})
	return out, err
}

func equalFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
