package s3vaults

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/internal/backup"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/blob/s3"
	"coffer/internal/testutil/s3server"
	"coffer/internal/vaultrepo"
)

func vault(acct, name string) *backup.Vault {
	return &backup.Vault{AccountID: acct, Region: "us-east-1", Name: name}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newS3Manager(t *testing.T, srv *s3server.Server, bucket, prefix string, master []byte) *vaultrepo.Manager {
	t.Helper()
	m, err := New(Options{S3: s3.Config{Endpoint: srv.Endpoint, Region: srv.Region, Bucket: bucket, Prefix: prefix,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true}}, master, repository.Options{})
	must(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// bucketKeys lists the bucket directly with the SDK.
func bucketKeys(t *testing.T, srv *s3server.Server, bucket, prefix string) []string {
	t.Helper()
	c := srv.Client()
	var keys []string
	var token *string
	for {
		out, err := c.ListObjectsV2(context.Background(), &s3sdk.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix, ContinuationToken: token})
		must(t, err)
		for _, o := range out.Contents {
			keys = append(keys, *o.Key)
		}
		if out.NextContinuationToken == nil {
			sort.Strings(keys)
			return keys
		}
		token = out.NextContinuationToken
	}
}

func TestS3CreateOpenListDelete(t *testing.T) {
	ctx := context.Background()
	srv := s3server.Start(t)
	srv.CreateBucket(t, "vaults")
	master := bytes.Repeat([]byte{9}, 32)
	m := newS3Manager(t, srv, "vaults", "tenant/x", master)

	a, b := vault("111111111111", "v1"), vault("222222222222", "v1")
	if _, err := m.Open(ctx, a); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("Open before create: %v", err)
	}
	for _, v := range []*backup.Vault{a, b} {
		must(t, m.CreateVaultStorage(ctx, v))
	}
	loc, err := m.Location(a)
	must(t, err)
	if loc != "s3://vaults/tenant/x/vaults/111111111111/us-east-1/v1/" {
		t.Fatalf("Location = %q", loc)
	}
	if _, err := m.Dir(a); err == nil {
		t.Fatal("Dir of an S3 manager returned a directory")
	}
	ra, err := m.Open(ctx, a)
	must(t, err)
	var root repository.ID
	must(t, ra.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		var err error
		root, err = w.SaveBlob(ctx, repository.TreeBlob, []byte(`{"nodes":[]}`))
		return err
	}))
	must(t, m.Close())

	// A restarted manager finds both vaults and the blob; another master
	// key opens neither.
	m2 := newS3Manager(t, srv, "vaults", "tenant/x/", master)
	vs, err := m2.Vaults(ctx)
	must(t, err)
	var names []string
	for _, v := range vs {
		names = append(names, v.AccountID+"/"+v.Region+"/"+v.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "111111111111/us-east-1/v1,222222222222/us-east-1/v1" {
		t.Fatalf("Vaults = %v", names)
	}
	ra2, err := m2.Open(ctx, a)
	must(t, err)
	if !ra2.HasBlob(repository.TreeBlob, root) {
		t.Fatal("blob lost across reopen")
	}
	if _, err := newS3Manager(t, srv, "vaults", "tenant/x", bytes.Repeat([]byte{8}, 32)).Open(ctx, a); err == nil {
		t.Fatal("wrong master key opened the repository")
	}

	// Deleting a removes all of a's objects and nothing of b's.
	bKeys := bucketKeys(t, srv, "vaults", "tenant/x/vaults/222222222222/")
	if len(bucketKeys(t, srv, "vaults", "tenant/x/vaults/111111111111/")) == 0 || len(bKeys) == 0 {
		t.Fatal("vault objects not in the bucket under the prefix")
	}
	must(t, m2.DeleteVaultStorage(ctx, a))
	if left := bucketKeys(t, srv, "vaults", "tenant/x/vaults/111111111111/"); len(left) != 0 {
		t.Fatalf("objects left after delete: %v", left)
	}
	if got := bucketKeys(t, srv, "vaults", "tenant/x/vaults/222222222222/"); strings.Join(got, ",") != strings.Join(bKeys, ",") {
		t.Fatalf("deleting a touched b: %v -> %v", bKeys, got)
	}
	if _, err := m2.Open(ctx, a); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("Open after delete: %v", err)
	}
	// Nothing outside the configured prefix was written.
	if all, under := bucketKeys(t, srv, "vaults", ""), bucketKeys(t, srv, "vaults", "tenant/x/vaults/"); len(all) != len(under) {
		t.Fatalf("objects outside the prefix: %v", all)
	}
}

func TestNewS3RejectsBadPrefix(t *testing.T) {
	for _, p := range []string{"/abs", "a//b", "a/../b", "sp ace"} {
		if _, err := New(Options{S3: s3.Config{Region: "us-east-1", Bucket: "b", Prefix: p}}, make([]byte, 32), repository.Options{}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

// listFails is a fault-injecting storage whose List fails after fn has
// seen failAfter objects (negative: never).
type listFails struct {
	*blobtest.Mem
	failAfter int
}

func (s listFails) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	n := 0
	err := s.Mem.List(ctx, prefix, func(i blob.Info) error {
		if s.failAfter >= 0 && n == s.failAfter {
			return errors.New("injected listing failure")
		}
		n++
		return fn(i)
	})
	return err
}

func fill(t *testing.T, st blob.Storage, n int) {
	t.Helper()
	must(t, st.Put(context.Background(), repository.ConfigName, []byte("cfg"), blob.PutOptions{}))
	for i := range n {
		must(t, st.Put(context.Background(), "data/"+strings.Repeat("ab", 1)+"/"+string(rune('a'+i%26))+strings.Repeat("x", i/26+1), []byte("p"), blob.PutOptions{}))
	}
}

func count(t *testing.T, st blob.Storage) (n int, config bool) {
	t.Helper()
	must(t, st.List(context.Background(), "", func(i blob.Info) error {
		n++
		config = config || i.Name == repository.ConfigName
		return nil
	}))
	return n, config
}

func TestClearStorage(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		objects   int
		batch     int
		failAfter int
		wantErr   bool
		wantLeft  int // objects left, config included
	}{
		{"empty", 0, 3, -1, false, 0},
		{"one batch", 2, 10, -1, false, 0},
		{"many batches", 40, 3, -1, false, 0},
		{"listing fails at once: nothing deleted", 10, 3, 0, true, 11},
		{"listing fails mid-page: config kept", 10, 100, 4, true, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := blobtest.NewMem(nil)
			if tc.objects > 0 || tc.name != "empty" {
				fill(t, mem, tc.objects)
			}
			st := listFails{Mem: mem, failAfter: tc.failAfter}
			err := clearStorage(ctx, st, tc.batch)
			if (err != nil) != tc.wantErr {
				t.Fatalf("clearStorage: %v (want error %v)", err, tc.wantErr)
			}
			n, cfg := count(t, mem)
			if n != tc.wantLeft {
				t.Fatalf("%d objects left, want %d", n, tc.wantLeft)
			}
			if tc.wantErr && !cfg {
				t.Fatal("failed removal deleted the configuration")
			}
		})
	}
}
