package s3bucket

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"coffer/internal/backup"
	"coffer/internal/glob"
	"coffer/internal/resource"
)

var _ resource.RestorePreviewer = (*Plugin)(nil)

// PreviewRestore reports what Restore would do: the selected objects (items,
// Include, Exclude, as Restore selects them) that would be created, and,
// in an existing bucket, those the conflict policy would replace or keep.
// The target's keys are listed (ListObjectsV2 under the destination
// prefix, merged in key order with the snapshot's index), so the preview
// reads one page of keys at a time and writes nothing.
func (p *Plugin) PreviewRestore(ctx context.Context, req resource.PreviewRequest) (resource.RestorePreview, error) {
	var out resource.RestorePreview
	spec := req.Spec
	rpArn := req.RecoveryPoint.Arn
	unavailable := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &backup.Error{Code: backup.CodeUnavailable, Context: rpArn, Message: "cannot preview the restore of " + rpArn + ": " + err.Error(), Err: err}
	}
	root, err := readRoot(ctx, req.Snapshot.Loader, req.Snapshot.Root)
	if err != nil {
		return out, unavailable(err)
	}
	r := &restoreRun{p: p, l: req.Snapshot.Loader, prefix: spec.Target.Path, newBucket: spec.Target.New, policy: spec.ConflictPolicy}
	if r.policy == backup.ConflictDefault {
		r.policy = backup.SkipExisting
	}
	if r.include, err = glob.CompileAll(spec.Include); err != nil {
		return out, paramErr("Include", "%v", err)
	}
	if r.exclude, err = glob.CompileAll(spec.Exclude); err != nil {
		return out, paramErr("Exclude", "%v", err)
	}
	maxPaths := req.MaxPaths
	if maxPaths <= 0 {
		maxPaths = resource.DefaultPreviewPaths
	}
	maxPaths = min(maxPaths, resource.MaxPreviewPaths)
	out.Location = "/" + r.prefix
	var target *targetKeys
	if !spec.Target.New {
		if req.Target == nil {
			return out, backup.Errorf(backup.CodeInvalidRequest, "no target bucket")
		}
		c, err := p.client(req.Target.Attr(AttrEndpoint))
		if err != nil {
			return out, err
		}
		bucket := req.Target.ID
		out.TargetArn = ARN(bucket)
		if _, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
			if isNoSuchBucket(err) || httpStatus(err) == http.StatusNotFound {
				return out, backup.NotFound(bucket, "Bucket %s does not exist", bucket)
			}
			return out, unavailable(c.wrap("open bucket", bucket, err))
		}
		target = &targetKeys{c: c, bucket: bucket, prefix: r.prefix}
	}
	add := func(list *[]string, n *int64, key string) {
		*n++
		if len(*list) < maxPaths {
			*list = append(*list, key)
		}
	}
	for _, pfx := range selection(itemKeys(spec)) {
		cur, err := newCursor(ctx, r.l, root.objects.Subtree, pfx)
		if err != nil {
			return out, unavailable(err)
		}
		for {
			n, err := cur.next(ctx)
			if err != nil {
				return out, unavailable(err)
			}
			if n == nil {
				break
			}
			if !r.wanted(n) {
				continue
			}
			o, err := objectOf(n)
			if err != nil {
				return out, unavailable(err)
			}
			key := r.prefix + o.Key
			var existing *types.Object
			if target != nil {
				if existing, err = target.find(ctx, key); err != nil {
					return out, unavailable(err)
				}
			}
			switch {
			case existing == nil:
				add(&out.CreatePaths, &out.Create, key)
				out.Bytes += o.Size
			case r.policy == backup.SkipExisting ||
				(r.policy == backup.OverwriteIfNewer && existing.LastModified != nil && !o.LastModified.After(*existing.LastModified)):
				add(&out.SkipPaths, &out.Skip, key)
			default:
				add(&out.OverwritePaths, &out.Overwrite, key)
				out.Bytes += o.Size
			}
		}
	}
	return out, nil
}

// targetKeys walks the keys of a bucket under a prefix in order, one
// ListObjectsV2 page at a time.
type targetKeys struct {
	c              *client
	bucket, prefix string
	page           []types.Object
	i              int
	token          *string
	started        bool
}

// find returns the object with key, or nil; keys are asked for in
// increasing order, and the keys before key are passed over.
func (t *targetKeys) find(ctx context.Context, key string) (*types.Object, error) {
	for {
		for t.i < len(t.page) {
			o := &t.page[t.i]
			k := aws.ToString(o.Key)
			switch {
			case k < key:
				t.i++
			case k == key:
				t.i++
				return o, nil
			default:
				return nil, nil
			}
		}
		if t.started && t.token == nil {
			return nil, nil
		}
		in := &s3.ListObjectsV2Input{Bucket: aws.String(t.bucket), ContinuationToken: t.token}
		if t.prefix != "" {
			in.Prefix = aws.String(t.prefix)
		}
		if !t.started {
			// Start at the first key asked for.
			in.StartAfter = aws.String(keyBefore(key))
		}
		resp, err := t.c.s3.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, t.c.wrap("list the keys of", t.bucket, err)
		}
		t.started = true
		t.page, t.i, t.token = resp.Contents, 0, nil
		if aws.ToBool(resp.IsTruncated) && resp.NextContinuationToken != nil {
			t.token = resp.NextContinuationToken
		}
		if len(t.page) == 0 && t.token == nil {
			return nil, nil
		}
	}
}

// keyBefore is a key that sorts before key and after every smaller key
// that is not a prefix of it ("" when key has one byte): key without its
// last byte. ListObjectsV2's StartAfter is exclusive, so the listing
// starts at key's prefix, which find passes over.
func keyBefore(key string) string {
	if len(key) <= 1 {
		return ""
	}
	return key[:len(key)-1]
}
