package s3bucket

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"coffer/internal/resource"
)

// undoJournal undoes what the restore of j changed on the server.
func (p *Plugin) undoJournal(ctx context.Context, j *journal, jobID string) error {
	es, err := j.entries()
	if err != nil {
		return err
	}
	return p.undo(ctx, es, jobID)
}

// undo reverts a journalled restore: a bucket it created is emptied and
// deleted; in an existing bucket, the multipart uploads it began are
// aborted and the objects it created (still with the ETag it wrote) are
// deleted. Objects an OVERWRITE policy replaced stay replaced.
func (p *Plugin) undo(ctx context.Context, es []journalEntry, jobID string) error {
	start := es[0]
	c, err := p.client(start.Endpoint)
	if err != nil {
		return err
	}
	if start.New {
		created := false
		for _, e := range es {
			created = created || e.Op == opBucketCreated
		}
		if !created {
			// The process may have died between creating the bucket and
			// journalling it: the bucket is ours if it carries our marker.
			t, err := c.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(start.Bucket)})
			if err != nil {
				return nil
			}
			for _, tag := range t.TagSet {
				created = created || (aws.ToString(tag.Key) == markerTag && aws.ToString(tag.Value) == jobID)
			}
			if !created {
				return nil
			}
		}
		return c.deleteBucket(ctx, start.Bucket)
	}
	var errs []error
	for _, e := range es {
		switch e.Op {
		case opMPU:
			errs = append(errs, c.abortUploads(ctx, start.Bucket, e.Key, start.Time))
		case opPut:
			head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(start.Bucket), Key: aws.String(e.Key)})
			if err != nil {
				if !isNotFound(err) && httpStatus(err) != http.StatusNotFound {
					errs = append(errs, c.wrap("look up object "+quoteKey(e.Key)+" in", start.Bucket, err))
				}
				continue
			}
			if e.ETag != "" && aws.ToString(head.ETag) != e.ETag {
				continue // written again since: not ours any more
			}
			if _, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(start.Bucket), Key: aws.String(e.Key)}); err != nil {
				errs = append(errs, c.wrap("delete object "+quoteKey(e.Key)+" of", start.Bucket, err))
			}
		}
	}
	return errors.Join(errs...)
}

// abortUploads aborts the multipart uploads of key begun since since.
func (c *client) abortUploads(ctx context.Context, bucket, key string, since time.Time) error {
	in := &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)}
	for {
		out, err := c.s3.ListMultipartUploads(ctx, in)
		if err != nil {
			if isNoSuchBucket(err) {
				return nil
			}
			return c.wrap("list multipart uploads of", bucket, err)
		}
		for _, u := range out.Uploads {
			if (key != "" && aws.ToString(u.Key) != key) || (u.Initiated != nil && u.Initiated.Before(since.Add(-time.Minute))) {
				continue
			}
			if _, err := c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: u.Key, UploadId: u.UploadId}); err != nil && !isNotFound(err) {
				return c.wrap("abort multipart upload of "+quoteKey(key)+" in", bucket, err)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// deleteBucket empties a bucket (every version, every multipart upload)
// and deletes it. A missing bucket is not an error.
func (c *client) deleteBucket(ctx context.Context, bucket string) error {
	if err := c.abortUploads(ctx, bucket, "", time.Time{}); err != nil {
		return err
	}
	del := func(ids []types.ObjectIdentifier) error {
		if len(ids) == 0 {
			return nil
		}
		out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			// Servers without DeleteObjects: one by one.
			if !isUnsupported(err) {
				return c.wrap("delete objects of", bucket, err)
			}
			for _, id := range ids {
				if _, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: id.Key, VersionId: id.VersionId}); err != nil && !isNotFound(err) {
					return c.wrap("delete object of", bucket, err)
				}
			}
			return nil
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("s3 endpoint %s: delete objects of %s: %s: %s", c.ep.ID, bucket, aws.ToString(e.Code), aws.ToString(e.Message))
		}
		return nil
	}
	// Versions first (a versioned bucket keeps them after a delete), then
	// the plain listing for servers without versioning.
	vin := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)}
	for {
		out, err := c.s3.ListObjectVersions(ctx, vin)
		if err != nil {
			if isNoSuchBucket(err) {
				return nil
			}
			break
		}
		var ids []types.ObjectIdentifier
		for _, v := range out.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range out.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if err := del(ids); err != nil {
			return err
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		vin.KeyMarker, vin.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	for {
		out, err := c.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1000)})
		if err != nil {
			if isNoSuchBucket(err) {
				return nil
			}
			return c.wrap("list objects of", bucket, err)
		}
		if len(out.Contents) == 0 {
			break
		}
		ids := make([]types.ObjectIdentifier, 0, len(out.Contents))
		for _, o := range out.Contents {
			ids = append(ids, types.ObjectIdentifier{Key: o.Key})
		}
		if err := del(ids); err != nil {
			return err
		}
	}
	if _, err := c.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(bucket)}); err != nil && !isNoSuchBucket(err) {
		return c.wrap("delete bucket", bucket, err)
	}
	return nil
}

// CleanStaging undoes the restores whose journals remain in StateDir and
// whose jobs are not live (their process died): buckets they created are
// deleted, objects they created in existing buckets are deleted and their
// multipart uploads aborted. A journal whose undo fails is kept for the
// next start.
func (p *Plugin) CleanStaging(ctx context.Context, req resource.CleanupRequest) error {
	if p.StateDir == "" {
		return nil
	}
	ents, err := os.ReadDir(p.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("s3 restore cleanup: %w", err)
	}
	var errs []error
	for _, e := range ents {
		job, ok := strings.CutSuffix(e.Name(), journalSuffix)
		if !ok || !e.Type().IsRegular() || (req.Live != nil && req.Live(job)) {
			continue
		}
		path := filepath.Join(p.StateDir, e.Name())
		es, err := readJournal(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("s3 restore cleanup of job %s: %w", job, err))
			continue
		}
		if err := p.undo(ctx, es, job); err != nil {
			errs = append(errs, fmt.Errorf("s3 restore cleanup of job %s: %w", job, err))
			continue
		}
		if err := os.Remove(path); err != nil {
			errs = append(errs, fmt.Errorf("s3 restore cleanup of job %s: %w", job, err))
		}
		if p.Log != nil {
			p.Log.Info("undid an unfinished restore", "job", job, "endpoint", es[0].Endpoint, "bucket", es[0].Bucket, "new_bucket", es[0].New)
		}
	}
	return errors.Join(errs...)
}
