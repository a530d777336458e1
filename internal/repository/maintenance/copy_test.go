package maintenance_test

import (
	"context"
	"errors"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/maintenance"
)

func TestCopy(t *testing.T) {
	ctx := context.Background()
	src := repository.NewTestRepository(t)
	dst := repository.NewTestRepository(t)
	files := map[string][]byte{"a": randBytes(40, 3<<20), "b": randBytes(41, 1000), "empty": {}}
	m := backup(t, src, files, "src")
	files2 := map[string][]byte{"a": files["a"], "c": randBytes(42, 2000)}
	m2 := backup(t, src, files2, "src2")

	out, rep, err := maintenance.Copy(ctx, src, dst, m.ID, map[string]string{"copied": "yes"})
	if err != nil {
		t.Fatal(err)
	}
	mustRestore(t, dst, out, files)
	if out.Labels["name"] != "src" || out.Labels["copied"] != "yes" || !out.Time.Equal(m.Time) {
		t.Fatalf("manifest %+v", out)
	}
	// The second recovery point shares file a: only c and the tree cross.
	out2, rep, err := maintenance.Copy(ctx, src, dst, m2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BytesCopied > 10000 || rep.BlobsCopied != 1 {
		t.Fatalf("second copy transferred too much: %+v", rep)
	}
	mustRestore(t, dst, out2, files2)
	mustCheck(t, dst)
	// Copying again transfers nothing.
	_, rep, err = maintenance.Copy(ctx, src, dst, m2.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsCopied != 0 {
		t.Fatalf("repeated copy stored %d blobs", rep.BlobsCopied)
	}
	// A failed copy writes no manifest.
	before, _ := dst.ListManifestIDs(ctx)
	if _, _, err := maintenance.Copy(ctx, src, dst, "00000000000000000000000000000000", nil); !errors.Is(err, repository.ErrManifestNotFound) {
		t.Fatalf("copy of a missing manifest: %v", err)
	}
	after, _ := dst.ListManifestIDs(ctx)
	if len(after) != len(before) {
		t.Fatal("failed copy wrote a manifest")
	}
}
