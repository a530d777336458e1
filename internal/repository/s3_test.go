package repository_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/retry"
	"coffer/internal/repository/blob/s3"
	"coffer/internal/repository/maintenance"
	"coffer/internal/repository/snapshot"
	"coffer/internal/testutil/s3server"
)

// s3TestData returns n deterministic, incompressible bytes.
func s3TestData(seed byte, n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	block := sha256.Sum256([]byte{seed})
	for len(out) < n {
		out = append(out, block[:]...)
		block = sha256.Sum256(block[:])
	}
	return out[:n]
}

func openS3Storage(t *testing.T, srv *s3server.Server, bucket string) blob.Storage {
	t.Helper()
	st, err := s3.Open(context.Background(), s3.Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: bucket, Prefix: "repo",
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	return retry.New(st, retry.Options{})
}

// TestS3RoundTrip runs the engine on the S3 backend against a real
// versitygw: streams of a few MiB, trees and a manifest are written, the
// repository is reopened from the bucket, every blob loads back, and a
// full Check (reading all data) finds no damage.
func TestS3RoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	srv.CreateBucket(t, "engine")
	key := bytes.Repeat([]byte{0x42}, 32)
	opts := repository.Options{PackSize: 1 << 20}

	st := openS3Storage(t, srv, "engine")
	r, err := repository.Create(ctx, st, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"a.bin":   s3TestData(1, 3<<20+17),
		"b.bin":   s3TestData(2, 2<<20),
		"small":   []byte("hello from S3\n"),
		"a.again": s3TestData(1, 3<<20+17), // deduplicated with a.bin
	}
	content := map[string][]repository.ID{}
	var root repository.ID
	err = r.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		sub := &snapshot.Tree{}
		top := &snapshot.Tree{}
		for _, name := range []string{"a.again", "a.bin", "b.bin", "small"} {
			ids, n, err := w.SaveStream(ctx, bytes.NewReader(files[name]))
			if err != nil {
				return err
			}
			if n != int64(len(files[name])) {
				t.Errorf("%s: SaveStream stored %d bytes, want %d", name, n, len(files[name]))
			}
			content[name] = ids
			node := snapshot.Node{Name: name, Type: snapshot.TypeFile, Mode: 0o644, Size: n, Content: ids, MTimeNs: 1}
			if name == "small" {
				sub.Nodes = append(sub.Nodes, node)
			} else {
				top.Nodes = append(top.Nodes, node)
			}
		}
		subID, err := snapshot.SaveTree(ctx, w, sub)
		if err != nil {
			return err
		}
		top.Nodes = append(top.Nodes, snapshot.Node{Name: "sub", Type: snapshot.TypeDir, Mode: 0o755, Subtree: subID})
		root, err = snapshot.SaveTree(ctx, w, top)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	man, err := r.SaveManifest(ctx, repository.Manifest{Root: root, Labels: map[string]string{"test": "s3"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Reopen from the bucket alone.
	st2 := openS3Storage(t, srv, "engine")
	defer st2.Close()
	r2, err := repository.Open(ctx, st2, key, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	got, err := r2.LoadManifest(ctx, man.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Root != root || got.Labels["test"] != "s3" {
		t.Fatalf("manifest = %+v", got)
	}
	for name, want := range files {
		var data []byte
		for _, id := range content[name] {
			b, err := r2.LoadBlob(ctx, repository.DataBlob, id, nil)
			if err != nil {
				t.Fatalf("%s: LoadBlob %v: %v", name, id, err)
			}
			data = append(data, b...)
		}
		if !bytes.Equal(data, want) {
			t.Fatalf("%s: %d bytes loaded differ from the %d written", name, len(data), len(want))
		}
	}
	seen := map[string]bool{}
	err = snapshot.Walk(ctx, r2, root, func(path string, n *snapshot.Node) error {
		seen[path] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a.bin", "b.bin", "a.again", "sub", "sub/small"} {
		found := false
		for s := range seen {
			if s == p || s == "/"+p {
				found = true
			}
		}
		if !found {
			t.Errorf("walk of the reopened tree misses %s (saw %v)", p, seen)
		}
	}
	rep, err := maintenance.Check(ctx, r2, maintenance.CheckOptions{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Manifests != 1 || rep.Packs < 5 {
		t.Fatalf("check: %s", rep)
	}
}
