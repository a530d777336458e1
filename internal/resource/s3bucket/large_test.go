package s3bucket_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"coffer/internal/backup"
	"coffer/internal/resource/s3bucket"
	"coffer/internal/testutil/s3server"
)

// largeKey is the key of object i of the large bucket: every kind of
// character versitygw's POSIX backend stores as given, and keys of 1,000
// bytes (versitygw refuses 1,024-byte keys as too long; TestExactKeys
// covers those on moto).
func largeKey(i int) string {
	switch i % 10 {
	case 0:
		return fmt.Sprintf("ünïcødé/日本語/%05d ✓.txt", i)
	case 1:
		return fmt.Sprintf("spaces and +plus/%05d a+b c.txt", i)
	case 2:
		return fmt.Sprintf("percent%%25/%05d%%2F%%.bin", i)
	case 3:
		return fmt.Sprintf("query?and#hash/%05d?x=1#y", i)
	case 4:
		seg := strings.Repeat("L", 250)
		k := fmt.Sprintf("long/%s/%s/%s/%05d-", seg, seg, seg, i)
		return k + strings.Repeat("z", 1000-len(k))
	}
	return fmt.Sprintf("plain/%03d/%05d.dat", i%97, i)
}

func largeData(i, gen int) []byte {
	switch {
	case i%50 == 7:
		return nil // empty objects
	case i%1000 == 3:
		return pseudoRandom(byte(i+gen), 300<<10)
	}
	return pseudoRandom(byte(i+gen), 100+i%900)
}

func putMany(t *testing.T, c *s3.Client, bucket string, idx []int, gen int) {
	t.Helper()
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				var tags map[string]string
				in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(largeKey(i)), Body: bytes.NewReader(largeData(i, gen))}
				if i%10 == 5 {
					in.ContentType, in.Metadata = aws.String("application/x-coffer"), map[string]string{"n": fmt.Sprint(i)}
					tags = map[string]string{"gen": fmt.Sprint(gen)}
				}
				in.Tagging = tagging(tags)
				if _, err := c.PutObject(context.Background(), in); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("put %d: %w", i, err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, i := range idx {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d puts failed, first: %v", len(errs), errs[0])
	}
}

// TestLargeBucket backs up a bucket of 10,000 objects (empty objects, a
// multipart-size object, unicode, spaces, '+', '%', '?', '#' and
// 1,024-byte keys, metadata and tags), restores it into a new bucket and
// compares object by object; then changes 1 % of the objects, deletes and
// adds some, and checks that the incremental backup downloads only what
// changed and restores exactly. COFFER_S3_BIG=1 adds a 1 GiB object.
func TestLargeBucket(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 objects")
	}
	srv := s3server.Start(t)
	s := server{id: "vgw", url: srv.Endpoint, region: srv.Region, ak: srv.AccessKey, sk: srv.SecretKey}
	c := s.client()
	createBucket(t, c, "large")
	const n = 10000
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	start := time.Now()
	putMany(t, c, "large", all, 0)
	t.Logf("%v: filled", time.Since(start))
	bigSize := int64(12<<20 + 5)
	if os.Getenv("COFFER_S3_BIG") == "1" {
		bigSize = 1 << 30
	}
	bigObj := obj{key: "big/object.bin", data: pseudoRandom(42, int(bigSize)), ct: "application/octet-stream", tags: map[string]string{"size": "big"}}
	putObj(t, c, "large", bigObj)
	bigObj.data = nil

	p := &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{s.endpoint()}, StateDir: t.TempDir(), PartSize: 5 << 20, MaxAttempts: 3}
	src := s3bucket.NewResource(sc.Region, sc.AccountID, "large", s.id, nil)
	repo := newRepo(t)
	snap, res, _ := backupBucket(t, p, repo, src, nil)
	t.Logf("%v: backed up", time.Since(start))
	if res.Items != n+1 || len(res.Problems) > 0 || res.New != n+1 {
		t.Fatalf("first backup: %+v", res)
	}
	restoreBucket(t, p, snap, src, &backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: "large-copy"}}, nil)
	t.Logf("%v: restored", time.Since(start))
	want := bucketState(t, c, "large", nil)
	t.Logf("%v: source read", time.Since(start))
	if d := diffStates(want, bucketState(t, c, "large-copy", nil)); len(d) > 0 {
		t.Fatalf("large-copy differs (%d):\n%s", len(d), strings.Join(d[:min(len(d), 20)], "\n"))
	}

	// 1 % changed, 50 deleted, 50 added.
	var changed, deleted, added []int
	var changedBytes int64
	for i := 0; i < n; i += 100 {
		changed = append(changed, i+1)
		changedBytes += int64(len(largeData(i+1, 1)))
		if len(deleted) < 50 {
			deleted = append(deleted, i+2)
		}
	}
	for i := n; i < n+50; i++ {
		added = append(added, i)
		changedBytes += int64(len(largeData(i, 1)))
	}
	putMany(t, c, "large", append(changed, added...), 1)
	for _, i := range deleted {
		_, err := c.DeleteObject(ctxT(t), &s3.DeleteObjectInput{Bucket: aws.String("large"), Key: aws.String(largeKey(i))})
		must(t, err)
	}
	// A change of tags alone is captured too.
	_, err := c.PutObjectTagging(ctxT(t), &s3.PutObjectTaggingInput{Bucket: aws.String("large"), Key: aws.String(largeKey(15)),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("only"), Value: aws.String("tags")}}}})
	must(t, err)
	snap2, res2, _ := backupBucket(t, p, repo, src, &snap)
	t.Logf("incremental: %d new, %d changed, %d unchanged, %d bytes read of %d", res2.New, res2.Changed, res2.Unchanged, res2.BytesRead, res2.BytesTotal)
	if res2.New != int64(len(added)) || res2.Changed != int64(len(changed)) || res2.BytesRead != changedBytes ||
		res2.Unchanged != n+1-int64(len(changed)+len(deleted)) || len(res2.Problems) > 0 {
		t.Fatalf("incremental backup: %+v (want %d new, %d changed, %d bytes read)", res2, len(added), len(changed), changedBytes)
	}
	restoreBucket(t, p, snap2, src, &backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: "large-copy2"}}, nil)
	want = bucketState(t, c, "large", nil)
	if want[largeKey(15)].Tags["only"] != "tags" {
		t.Fatalf("tag change not in the source: %+v", want[largeKey(15)])
	}
	if d := diffStates(want, bucketState(t, c, "large-copy2", nil)); len(d) > 0 {
		t.Fatalf("large-copy2 differs (%d):\n%s", len(d), strings.Join(d[:min(len(d), 20)], "\n"))
	}
}
