package fstree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"coffer/internal/repository"
)

// countingLoader counts the tree blobs loaded.
type countingLoader struct {
	Loader
	trees atomic.Int64
}

func (c *countingLoader) LoadBlob(ctx context.Context, t repository.BlobType, id repository.ID, buf []byte) ([]byte, error) {
	if t == repository.TreeBlob {
		c.trees.Add(1)
	}
	return c.Loader.LoadBlob(ctx, t, id, buf)
}

// TestListPagesLargeDirectory: paging through a directory of 2500 entries
// returns each once, in name order, and decodes the directory's tree once
// (a large directory's tree is kept between pages), not once per page.
func TestListPagesLargeDirectory(t *testing.T) {
	src := t.TempDir()
	big := filepath.Join(src, "big")
	if err := os.Mkdir(big, 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 2500
	for i := range n {
		if err := os.WriteFile(filepath.Join(big, fmt.Sprintf("f%05d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo := newRepo(t)
	res := doBackup(t, repo, src, BackupOptions{})
	l := &countingLoader{Loader: repo}
	after, pages, seen := "", 0, 0
	for {
		es, more, err := List(context.Background(), l, res.Root, "/big", after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if want := fmt.Sprintf("/big/f%05d", seen); e.Path != want {
				t.Fatalf("entry %d: %s, want %s", seen, e.Path, want)
			}
			seen++
		}
		pages++
		if !more {
			break
		}
		after = es[len(es)-1].Node.Name
	}
	if seen != n || pages != n/100 {
		t.Fatalf("%d entries in %d pages", seen, pages)
	}
	// Each page loads the root tree to find /big; /big's own tree once.
	if got := l.trees.Load(); got != int64(pages)+1 {
		t.Errorf("tree blobs loaded: %d, want %d (the large directory's once)", got, pages+1)
	}
}
