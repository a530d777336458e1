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
