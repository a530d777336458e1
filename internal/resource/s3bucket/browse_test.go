package s3bucket_test

import (
	"context"
	"reflect"
	"sort"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/s3bucket"
)

// s3Listing is what the S3 server lists under prefix with delimiter "/":
// objects and common prefixes in one sorted list.
func s3Listing(t *testing.T, c *s3.Client, bucket, prefix string) []string {
	t.Helper()
	var out []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctxT(t))
		must(t, err)
		for _, o := range page.Contents {
			out = append(out, "O:"+aws.ToString(o.Key))
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, "P:"+aws.ToString(cp.Prefix))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return out
}

func browse(t *testing.T, b resource.Browser, snap resource.Snapshot, prefix, glob string, limit int) []string {
	t.Helper()
	req := resource.BrowseRequest{Snapshot: snap, RecoveryPoint: &backup.RecoveryPoint{Arn: "rp"}, Path: prefix, Glob: glob, Limit: limit}
	var out []string
	for {
		page, err := b.Browse(context.Background(), req)
		must(t, err)
		for _, e := range page.Entries {
			kind := "O:"
			if e.Type == resource.EntryPrefix {
				kind = "P:"
			}
			out = append(out, kind+e.Path)
		}
		if page.Next == "" {
			return out
		}
		req.After = page.Next
	}
}

// TestBrowseMatchesListObjects: browsing a bucket recovery point at a
// prefix lists what the S3 server's ListObjectsV2 with delimiter "/"
// listed for the bucket backed up, whatever the page size, for keys with
// "//", leading "/", "." and ".." segments; a glob search finds objects
// at any depth.
func TestBrowseMatchesListObjects(t *testing.T) {
	srv := startMoto(t)
	c := srv.client()
	createBucket(t, c, "browse")
	keys := append([]string{"photos/2024/a.jpg", "photos/2024/b.png", "photos/c.jpg", "photos.txt", "readme"}, exactKeys...)
	for i, k := range keys {
		putObj(t, c, "browse", obj{key: k, data: pseudoRandom(byte(i), 10*i)})
	}
	p := &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{srv.endpoint()}, StateDir: t.TempDir(), Workers: 4, MaxAttempts: 2}
	snap, _, _ := backupBucket(t, p, newRepo(t), s3bucket.NewResource(sc.Region, sc.AccountID, "browse", srv.id, nil), nil)
	for _, prefix := range []string{"", "photos/", "photos", "a/", "/", "dir/", "seg/seg/", "nothing/"} {
		want := s3Listing(t, c, "browse", prefix)
		for _, limit := range []int{1, 2, 1000} {
			if got := browse(t, p, snap, prefix, "", limit); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("prefix %q by %d:\n%q\nwant\n%q", prefix, limit, got, want)
			}
		}
	}
	for _, limit := range []int{1, 1000} {
		if got := browse(t, p, snap, "", "*.jpg", limit); !reflect.DeepEqual(got, []string{"O:photos/2024/a.jpg", "O:photos/c.jpg"}) {
			t.Errorf("glob *.jpg by %s: %q", strconv.Itoa(limit), got)
		}
	}
	if got := browse(t, p, snap, "photos/", "photos/*/*", 10); !reflect.DeepEqual(got, []string{"O:photos/2024/a.jpg", "O:photos/2024/b.png"}) {
		t.Errorf("glob photos/*/*: %q", got)
	}
	if _, err := p.Browse(context.Background(), resource.BrowseRequest{Snapshot: snap, RecoveryPoint: &backup.RecoveryPoint{Arn: "rp"}, Glob: "["}); !backup.IsCode(err, backup.CodeInvalidParameter) {
		t.Errorf("bad glob: %v", err)
	}
}

// TestPreviewMatchesRestore: the preview of a restore into a new bucket
// creates every selected object; into an existing bucket under a prefix it
// names the keys each conflict policy replaces or keeps, writes nothing,
// and the restore then does exactly what it said.
func TestPreviewMatchesRestore(t *testing.T) {
	srv := startMoto(t)
	c := srv.client()
	createBucket(t, c, "prev-src")
	for i, k := range []string{"a.txt", "b/1.jpg", "b/2.jpg", "c.md"} {
		putObj(t, c, "prev-src", obj{key: k, data: pseudoRandom(byte(i), 100+i)})
	}
	p := &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{srv.endpoint()}, StateDir: t.TempDir(), Workers: 2, MaxAttempts: 2}
	src := s3bucket.NewResource(sc.Region, sc.AccountID, "prev-src", srv.id, nil)
	snap, _, _ := backupBucket(t, p, newRepo(t), src, nil)
	rp := &backup.RecoveryPoint{Arn: "rp", ResourceArn: src.Arn, ResourceType: "S3"}
	preview := func(spec *backup.RestoreSpec, target *backup.Resource) resource.RestorePreview {
		t.Helper()
		out, err := p.PreviewRestore(context.Background(), resource.PreviewRequest{Scope: sc, Spec: spec, RecoveryPoint: rp, Snapshot: snap, Target: target})
		must(t, err)
		return out
	}
	if pv := preview(&backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: "prev-new"}, Include: []string{"*.jpg"}}, nil); pv.Create != 2 ||
		!reflect.DeepEqual(pv.CreatePaths, []string{"b/1.jpg", "b/2.jpg"}) || pv.Bytes != 101+102 {
		t.Errorf("new bucket: %+v", pv)
	}
	if bucketExists(t, c, "prev-new") {
		t.Fatal("a preview created the bucket")
	}
	createBucket(t, c, "prev-dst")
	for _, k := range []string{"other", "r/a.txt", "r/b/1.jpg", "r/zzz"} {
		putObj(t, c, "prev-dst", obj{key: k, data: []byte("existing " + k)})
	}
	before := bucketState(t, c, "prev-dst", nil)
	dst := s3bucket.NewResource(sc.Region, sc.AccountID, "prev-dst", srv.id, nil)
	spec := func(policy backup.ConflictPolicy) *backup.RestoreSpec {
		return &backup.RestoreSpec{Target: backup.RestoreTarget{ID: "prev-dst", Path: "r/"}, ConflictPolicy: policy}
	}
	skip := preview(spec(backup.SkipExisting), dst)
	if skip.Create != 2 || skip.Skip != 2 || skip.Overwrite != 0 || !reflect.DeepEqual(skip.SkipPaths, []string{"r/a.txt", "r/b/1.jpg"}) ||
		!reflect.DeepEqual(skip.CreatePaths, []string{"r/b/2.jpg", "r/c.md"}) || skip.TargetArn != dst.Arn || skip.Location != "/r/" {
		t.Errorf("SKIP_EXISTING: %+v", skip)
	}
	over := preview(spec(backup.OverwriteExisting), dst)
	if over.Create != 2 || over.Overwrite != 2 || !reflect.DeepEqual(over.OverwritePaths, []string{"r/a.txt", "r/b/1.jpg"}) {
		t.Errorf("OVERWRITE_EXISTING: %+v", over)
	}
	if d := diffStates(before, bucketState(t, c, "prev-dst", nil)); len(d) > 0 {
		t.Fatalf("previews changed the bucket: %v", d)
	}
	res := restoreBucket(t, p, snap, src, spec(backup.SkipExisting), dst)
	if res.Skipped != skip.Skip || res.Items != skip.Create || res.Replaced != 0 {
		t.Errorf("restore did %d new, %d kept, %d replaced; the preview said %+v", res.Items, res.Skipped, res.Replaced, skip)
	}
	if again := preview(spec(backup.OverwriteExisting), dst); again.Overwrite != 4 || again.Create != 0 {
		t.Errorf("after the restore: %+v", again)
	}
}
