package s3bucket_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/resourcetest"
	"coffer/internal/resource/s3bucket"
	"coffer/internal/testutil/s3server"
)

// TestContract runs the resource plugin contract suite against buckets on
// a real versitygw.
func TestContract(t *testing.T) {
	srv := s3server.Start(t)
	resourcetest.Run(t, &s3Harness{srv: server{id: "vgw", url: srv.Endpoint, region: srv.Region, ak: srv.AccessKey, sk: srv.SecretKey}})
}

// s3Harness keeps every bucket of a test on one server: src-N sources,
// tgt-N targets, new-N buckets restores create, and a sentinel bucket
// "outside" no restore may touch.
type s3Harness struct {
	srv     server
	plugin  *s3bucket.Plugin
	n       int
	lastNew string
	test    string
}

func (h *s3Harness) Plugin(t *testing.T) resource.Plugin {
	h.test = fmt.Sprintf("%x", len(t.Name())*7919+int(t.Name()[len(t.Name())-1]))
	h.plugin = &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{h.srv.endpoint()}, StateDir: t.TempDir(), Workers: 4,
		PartSize: 5 << 20, MaxAttempts: 2}
	c := h.srv.client()
	if !bucketExists(t, c, "outside") {
		createBucket(t, c, "outside")
		putObj(t, c, "outside", obj{key: "keep/me", data: []byte("do not touch")})
	}
	return h.plugin
}

func (h *s3Harness) name(kind string) string {
	h.n++
	return fmt.Sprintf("%s-%s-%d", kind, h.test, h.n)
}

func (h *s3Harness) NewSource(t *testing.T, sc resource.Scope) *backup.Resource {
	c := h.srv.client()
	name := h.name("src")
	createBucket(t, c, name)
	_, err := c.PutBucketTagging(ctxT(t), &s3.PutBucketTaggingInput{Bucket: aws.String(name),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("team"), Value: aws.String("photos")}}}})
	must(t, err)
	for _, o := range []obj{
		{key: "empty"},
		{key: "small.txt", data: []byte("hello\n"), ct: "text/plain", meta: map[string]string{"owner": "ann", "note": "a b"},
			tags: map[string]string{"class": "public", "k y": "v+1"}, hdr: true},
		{key: "big.bin", data: pseudoRandom(1, 12<<20+17), ct: "application/octet-stream", tags: map[string]string{"size": "big"}},
		{key: "dir/a.go", data: pseudoRandom(2, 5000)},
		{key: "dir/sub/b.txt", data: []byte(strings.Repeat("x", 70000)), meta: map[string]string{"x": "1"}},
		{key: "dir/sub/c d+e%f.txt", data: []byte("odd")},
		{key: "docs/ünïcødé ✓.md", data: []byte("# docs\n"), ct: "text/markdown; charset=utf-8"},
		{key: "docs/readme.md", data: []byte("# readme\n")},
	} {
		putObj(t, c, name, o)
	}
	return s3bucket.NewResource(sc.Region, sc.AccountID, name, h.srv.id, map[string]string{"env": "test"})
}

func (h *s3Harness) Change(t *testing.T, src *backup.Resource) {
	c := h.srv.client()
	putObj(t, c, src.ID, obj{key: "added.txt", data: []byte("new object\n")})
	putObj(t, c, src.ID, obj{key: "dir/a.go", data: pseudoRandom(9, 6000)})
	_, err := c.DeleteObject(ctxT(t), &s3.DeleteObjectInput{Bucket: aws.String(src.ID), Key: aws.String("docs/readme.md")})
	must(t, err)
}

func (h *s3Harness) NewTarget(t *testing.T, sc resource.Scope) *backup.Resource {
	name := h.name("tgt")
	createBucket(t, h.srv.client(), name)
	return s3bucket.NewResource(sc.Region, sc.AccountID, name, h.srv.id, nil)
}

func (h *s3Harness) NewSpec() *backup.RestoreSpec {
	h.lastNew = h.name("new")
	return &backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: h.lastNew}}
}

func (h *s3Harness) ExistingSpec(target *backup.Resource) *backup.RestoreSpec {
	return &backup.RestoreSpec{Target: backup.RestoreTarget{ID: target.ID}}
}

func (h *s3Harness) Equal(t *testing.T, src, target *backup.Resource, res resource.RestoreResult, items []string) {
	t.Helper()
	dest := ""
	if target != nil {
		dest = target.ID
	} else {
		if res.Created == nil {
			t.Fatal("no created bucket")
		}
		dest = res.Created.ID
		if res.Created.Arn != "arn:aws:s3:::"+dest || res.Created.Attr(s3bucket.AttrEndpoint) != h.srv.id {
			t.Errorf("created resource %+v", res.Created)
		}
	}
	keep := func(k string) bool {
		if items == nil {
			return true
		}
		for _, it := range items {
			if strings.HasPrefix(k, strings.TrimPrefix(it, "/")) {
				return true
			}
		}
		return false
	}
	c := h.srv.client()
	want := bucketState(t, c, src.ID, keep)
	got := bucketState(t, c, dest, nil)
	if d := diffStates(want, got); len(d) > 0 {
		t.Fatalf("restored bucket %s differs from %s:\n%s", dest, src.ID, strings.Join(d, "\n"))
	}
	if n := uploads(t, c, dest); n != 0 {
		t.Errorf("%d multipart uploads left in %s", n, dest)
	}
}

func (h *s3Harness) Items(src *backup.Resource) []string {
	return []string{"/dir/sub/", "/small.txt"}
}

func (h *s3Harness) Outside(t *testing.T) string {
	c := h.srv.client()
	out, err := c.ListBuckets(ctxT(t), &s3.ListBucketsInput{})
	must(t, err)
	var lines []string
	for _, b := range out.Buckets {
		n := aws.ToString(b.Name)
		if strings.HasPrefix(n, "src-") || strings.HasPrefix(n, "tgt-") || strings.HasPrefix(n, "new-") {
			continue
		}
		lines = append(lines, "bucket "+n)
	}
	for k, s := range bucketState(t, c, "outside", nil) {
		lines = append(lines, k+" "+s.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (h *s3Harness) Unrestored(t *testing.T, target *backup.Resource, jobID string) {
	t.Helper()
	c := h.srv.client()
	if target != nil {
		if keys := listKeys(t, c, target.ID); len(keys) != 0 {
			t.Errorf("cancelled restore left %q in bucket %s", keys, target.ID)
		}
		if n := uploads(t, c, target.ID); n != 0 {
			t.Errorf("cancelled restore left %d multipart uploads in %s", n, target.ID)
		}
		return
	}
	if bucketExists(t, c, h.lastNew) {
		t.Errorf("cancelled restore left bucket %s", h.lastNew)
	}
}

func (h *s3Harness) BadMetadata() []resourcetest.BadMetadata {
	return []resourcetest.BadMetadata{
		{Name: "missing DestinationBucketName", Metadata: map[string]string{"NewBucket": "true"}, Key: "DestinationBucketName"},
		{Name: "bad bucket name", Metadata: map[string]string{"DestinationBucketName": "Bad_Name"}, Key: "DestinationBucketName"},
		{Name: "bad NewBucket", Metadata: map[string]string{"DestinationBucketName": "abc", "NewBucket": "yes"}, Key: "NewBucket"},
		{Name: "too many items", Metadata: map[string]string{"DestinationBucketName": "abc",
			"ItemsToRestore": `["s3://b1x/a","s3://b1x/b","s3://b1x/c","s3://b1x/d","s3://b1x/e","s3://b1x/f"]`}, Key: "ItemsToRestore"},
		{Name: "not s3 uri", Metadata: map[string]string{"DestinationBucketName": "abc", "ItemsToRestore": `["/a/b"]`}, Key: "ItemsToRestore"},
		{Name: "two buckets", Metadata: map[string]string{"DestinationBucketName": "abc", "ItemsToRestore": `["s3://b1x/a","s3://b2x/b"]`}, Key: "ItemsToRestore"},
		{Name: "kms key", Metadata: map[string]string{"DestinationBucketName": "abc", "KMSKey": "arn:aws:kms:us-east-1:111111111111:key/x"}, Key: "KMSKey"},
		{Name: "sse-kms", Metadata: map[string]string{"DestinationBucketName": "abc", "EncryptionType": "SSE-KMS"}, Key: "EncryptionType"},
		{Name: "bad conflict policy", Metadata: map[string]string{"DestinationBucketName": "abc", "ConflictPolicy": "CLOBBER"}, Key: "ConflictPolicy"},
		{Name: "lower-case key kept", Metadata: map[string]string{"destinationbucketname": "abc", "newbucket": "maybe"}, Key: "newbucket"},
	}
}

func (h *s3Harness) ValidMetadata() map[string]string {
	return map[string]string{"DestinationBucketName": "photos-restored", "NewBucket": "true"}
}
