package s3bucket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"coffer/internal/repository"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
)

// listed is one object of a listing.
type listed struct {
	key          string
	size         int64
	etag         string
	lastModified time.Time
	storageClass string
}

// listObjects calls fn for every object of the bucket, in key order (the
// latest versions: a key whose latest version is a delete marker is not
// listed).
func (c *client) listObjects(ctx context.Context, bucket string, fn func(listed) error) error {
	pg := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1000)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return c.wrap("list objects of", bucket, err)
		}
		for _, o := range out.Contents {
			l := listed{key: aws.ToString(o.Key), size: aws.ToInt64(o.Size), etag: aws.ToString(o.ETag), storageClass: string(o.StorageClass)}
			if o.LastModified != nil {
				l.lastModified = o.LastModified.UTC()
			}
			if err := fn(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// item is one object on its way through a backup.
type item struct {
	l      listed
	parent *snapshot.Node // the parent's node of the same key, if any
	done   chan struct{}
	node   *snapshot.Node // result; nil when dropped
	prob   *resource.Problem
	kind   int // itemNew, itemChanged, itemUnchanged
	read   int64
}

const (
	itemNew = iota
	itemChanged
	itemUnchanged
)

// backupRun is the state of one backup.
type backupRun struct {
	p       *Plugin
	c       *client
	bucket  string
	opts    backupOptions
	session resource.Saver
	parentL resource.Loader
	m       *meter
	noTags  atomic.Bool // the server has no object tagging
	// large admits the streams of large objects: each holds the session's
	// chunk buffers (several MiB), small objects do not.
	large chan struct{}
}

// Backup lists the bucket and stores every object (the latest version of
// each key) into the session. With a parent snapshot, objects whose key,
// size, ETag and last-modified time match the parent's are not read again;
// their tags are. Objects that vanish or change while the backup runs are
// Problems; the snapshot holds whole object versions only.
func (p *Plugin) Backup(ctx context.Context, req resource.BackupRequest) (resource.BackupResult, error) {
	res, err := p.backup(ctx, req)
	return res, failure(err)
}

func (p *Plugin) backup(ctx context.Context, req resource.BackupRequest) (resource.BackupResult, error) {
	var res resource.BackupResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	opts, err := parseBackupOptions(req.Options)
	if err != nil {
		return res, fmt.Errorf("%w: %w", resource.ErrInvalid, err)
	}
	bucket := req.Resource.ID
	c, err := p.client(req.Resource.Attr(AttrEndpoint))
	if err != nil {
		return res, err
	}
	if _, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)}); err != nil {
		if isNoSuchBucket(err) || httpStatus(err) == http.StatusNotFound {
			return res, fmt.Errorf("%w: %w", resource.ErrSourceNotFound, c.wrap("open bucket", bucket, err))
		}
		return res, c.wrap("open bucket", bucket, err)
	}
	info, err := c.bucketInfo(ctx, bucket)
	if err != nil {
		return res, err
	}
	info.ObjectTags, info.ACLs = opts.tags, opts.acls

	run := &backupRun{p: p, c: c, bucket: bucket, opts: opts, session: req.Session, m: newMeter(req.Progress),
		large: make(chan struct{}, largeStreams)}
	var pcur *cursor
	if req.Parent != nil && !req.Parent.Root.IsZero() {
		// An unreadable or foreign parent only costs reading everything.
		if pr, err := readRoot(ctx, req.Parent.Loader, req.Parent.Root); err == nil {
			if cur, err := newCursor(ctx, req.Parent.Loader, pr.objects.Subtree, ""); err == nil {
				pcur, run.parentL = cur, req.Parent.Loader
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// A second listing sums the sizes so that progress has a total early.
	var sizer sync.WaitGroup
	sizer.Add(1)
	go func() {
		defer sizer.Done()
		var total int64
		if err := c.listObjects(ctx, bucket, func(l listed) error { total += l.size; return nil }); err == nil {
			run.m.setTotal(total)
		}
	}()
	defer sizer.Wait()

	b := newIndexBuilder(req.Session)
	work := make(chan *item)
	order := make(chan *item, 4*p.workers()+256)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { // lister: merge the listing with the parent
		defer close(work)
		defer close(order)
		var pnode *snapshot.Node
		if pcur != nil {
			var err error
			if pnode, err = pcur.next(gctx); err != nil {
				pcur = nil // read the rest in full
			}
		}
		last, first := "", true
		return c.listObjects(gctx, bucket, func(l listed) error {
			if !first && l.key <= last {
				return fmt.Errorf("s3 endpoint %s: bucket %s listed %q after %q: the server does not list keys in order", c.ep.ID, bucket, l.key, last)
			}
			first, last = false, l.key
			it := &item{l: l, done: make(chan struct{})}
			name := EncodeKey(l.key)
			for pcur != nil && pnode != nil && pnode.Name < name {
				var err error
				if pnode, err = pcur.next(gctx); err != nil {
					pcur, pnode = nil, nil
				}
			}
			if pnode != nil && pnode.Name == name {
				it.parent = pnode
			}
			select {
			case order <- it:
			case <-gctx.Done():
				return gctx.Err()
			}
			select {
			case work <- it:
			case <-gctx.Done():
				return gctx.Err()
			}
			return nil
		})
	})
	for range p.workers() {
		g.Go(func() error {
			for it := range work {
				err := run.process(gctx, it)
				close(it.done)
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error { // collector: the index in key order
		for it := range order {
			select {
			case <-it.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			res.BytesRead += it.read
			if it.prob != nil {
				res.Problems = append(res.Problems, *it.prob)
			}
			if it.node == nil {
				continue
			}
			if err := b.add(gctx, *it.node); err != nil {
				return err
			}
			res.Items++
			res.BytesTotal += it.node.Size
			switch it.kind {
			case itemNew:
				res.New++
			case itemChanged:
				res.Changed++
			default:
				res.Unchanged++
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return resource.BackupResult{}, err
		}
		return resource.BackupResult{}, err
	}
	if run.noTags.Load() {
		info.Unsupported = append(info.Unsupported, "object-tagging")
	}
	idx, err := b.finish(ctx)
	if err != nil {
		return resource.BackupResult{}, err
	}
	if res.Root, err = saveRoot(ctx, req.Session, info, idx); err != nil {
		return resource.BackupResult{}, err
	}
	run.m.finish()
	return res, nil
}

// bucketInfo reads the bucket's versioning state, tags, CORS and lifecycle
// configuration; what the server does not answer is recorded, not an
// error.
func (c *client) bucketInfo(ctx context.Context, bucket string) (*bucketInfo, error) {
	info := &bucketInfo{Format: layoutFormat, Endpoint: c.ep.ID, Bucket: bucket}
	missing := func(what string, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !isUnsupported(err) {
			info.Unsupported = append(info.Unsupported, what)
		}
		return nil
	}
	if v, err := c.s3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(bucket)}); err == nil {
		info.Versioning = string(v.Status)
	} else if err := missing("versioning", err); err != nil {
		return nil, err
	}
	if t, err := c.s3.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(bucket)}); err == nil {
		if len(t.TagSet) > 0 {
			info.Tags = map[string]string{}
			for _, tag := range t.TagSet {
				info.Tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
			}
		}
	} else if err := missing("tagging", err); err != nil {
		return nil, err
	}
	if cors, err := c.s3.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String(bucket)}); err == nil {
		if len(cors.CORSRules) > 0 {
			info.CORS, _ = json.Marshal(cors.CORSRules)
		}
	} else if err := missing("cors", err); err != nil {
		return nil, err
	}
	if lc, err := c.s3.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(bucket)}); err == nil {
		if len(lc.Rules) > 0 {
			info.Lifecycle, _ = json.Marshal(lc.Rules)
		}
	} else if err := missing("lifecycle", err); err != nil {
		return nil, err
	}
	sort.Strings(info.Unsupported)
	return info, nil
}

// process backs one listed object up into it.node (or records why not).
func (r *backupRun) process(ctx context.Context, it *item) error {
	l := it.l
	if !storableKey(l.key) {
		it.prob = &resource.Problem{Path: l.key, Err: fmt.Errorf("key of %d bytes is too long to store", len(l.key))}
		r.m.add(l.size, true)
		return nil
	}
	if p := it.parent; p != nil {
		it.kind = itemChanged
		if r.unchanged(l, p) {
			return r.keep(ctx, it)
		}
	}
	return r.fetch(ctx, it)
}

// unchanged reports whether the parent's node p stands for the listed
// object: same size, ETag and last-modified time, content still stored.
func (r *backupRun) unchanged(l listed, p *snapshot.Node) bool {
	if p.Type != snapshot.TypeFile || p.Size != l.size || p.MTimeNs != l.lastModified.UnixNano() || l.etag == "" {
		return false
	}
	etag := ""
	for _, x := range p.Xattrs {
		if x.Name == xETag {
			etag = string(x.Value)
		}
	}
	if etag != l.etag {
		return false
	}
	for _, id := range p.Content {
		if !r.parentL.HasBlob(repository.DataBlob, id) {
			return false
		}
	}
	return true
}

// keep takes an unchanged object from the parent, with its tags read
// again.
func (r *backupRun) keep(ctx context.Context, it *item) error {
	o, err := objectOf(it.parent)
	if err != nil {
		return r.fetch(ctx, it)
	}
	o.StorageClass = it.l.storageClass
	o.Tags, o.HasTags = nil, false
	if r.opts.tags && !r.noTags.Load() {
		tags, ok, err := r.tags(ctx, o.Key, o.VersionID)
		if err != nil {
			if isNotFound(err) {
				it.prob = &resource.Problem{Path: o.Key, Err: errors.New("deleted while the backup ran; not stored")}
				r.m.add(o.Size, true)
				return nil
			}
			return err
		}
		o.Tags, o.HasTags = tags, ok
	}
	n := o.node()
	it.node, it.kind = &n, itemUnchanged
	r.m.add(o.Size, true)
	return nil
}

// tags reads an object's tags; ok is false when the server has no object
// tagging.
func (r *backupRun) tags(ctx context.Context, key, versionID string) (map[string]string, bool, error) {
	in := &s3.GetObjectTaggingInput{Bucket: aws.String(r.bucket), Key: aws.String(key)}
	if versionID != "" && versionID != "null" {
		in.VersionId = aws.String(versionID)
	}
	out, err := r.c.s3.GetObjectTagging(ctx, in)
	if err != nil {
		if isUnsupported(err) && errorCode(err) != "NoSuchTagSet" {
			r.noTags.Store(true)
			return nil, false, nil
		}
		if errorCode(err) == "NoSuchTagSet" {
			return map[string]string{}, true, nil
		}
		return nil, false, r.c.wrap("read tags of object "+quoteKey(key)+" in", r.bucket, err)
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return tags, true, nil
}

func quoteKey(k string) string {
	if len(k) > 200 {
		k = k[:200] + "..."
	}
	return fmt.Sprintf("%q", k)
}

// fetchAttempts is how often an object whose stream breaks is read again.
const fetchAttempts = 3

// Objects of largeObject bytes or more are read at most largeStreams at a
// time (memory: each stream fills chunk buffers of up to the chunker's
// maximum); smaller ones use every worker.
const (
	largeObject  = 1 << 20
	largeStreams = 4
)

// fetch reads the object and stores its bytes, headers, metadata and tags.
func (r *backupRun) fetch(ctx context.Context, it *item) error {
	if it.l.size >= largeObject {
		select {
		case r.large <- struct{}{}:
			defer func() { <-r.large }()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var err error
	for attempt := 0; attempt < fetchAttempts; attempt++ {
		var retry bool
		if retry, err = r.fetchOnce(ctx, it); !retry {
			return err
		}
	}
	it.prob = &resource.Problem{Path: it.l.key, Err: fmt.Errorf("read failed %d times; not stored: %w", fetchAttempts, err)}
	return nil
}

// fetchOnce is one try of fetch; retry reports a broken stream.
func (r *backupRun) fetchOnce(ctx context.Context, it *item) (retry bool, err error) {
	l := it.l
	in := &s3.GetObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(l.key), ChecksumMode: types.ChecksumModeEnabled}
	if l.etag != "" {
		in.IfMatch = aws.String(l.etag)
	}
	out, err := r.c.s3.GetObject(ctx, in)
	changed := false
	if err != nil && httpStatus(err) == http.StatusPreconditionFailed {
		// It changed since it was listed: store the version read now.
		changed = true
		in.IfMatch = nil
		out, err = r.c.s3.GetObject(ctx, in)
	}
	if err != nil {
		if isNotFound(err) {
			it.prob = &resource.Problem{Path: l.key, Err: errors.New("deleted while the backup ran; not stored")}
			r.m.add(l.size, true)
			return false, nil
		}
		return false, r.c.wrap("read object "+quoteKey(l.key)+" of", r.bucket, err)
	}
	defer out.Body.Close()
	o := &object{Key: l.key, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag),
		VersionID: aws.ToString(out.VersionId), ContentType: aws.ToString(out.ContentType),
		ContentEncoding: aws.ToString(out.ContentEncoding), ContentDisposition: aws.ToString(out.ContentDisposition),
		ContentLanguage: aws.ToString(out.ContentLanguage), CacheControl: aws.ToString(out.CacheControl),
		Expires: aws.ToString(out.ExpiresString), SSE: string(out.ServerSideEncryption), StorageClass: l.storageClass, Meta: out.Metadata}
	if out.LastModified != nil {
		o.LastModified = out.LastModified.UTC()
	}
	if o.ETag == l.etag && o.Size == l.size {
		// The listed version: keep the listing's finer time so that the
		// next backup recognises it.
		o.LastModified = l.lastModified
	} else {
		changed = true
	}
	cr := &countingReader{r: out.Body, m: r.m}
	ids, n, err := r.session.SaveStream(ctx, cr)
	it.read += cr.n
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if cr.err != nil {
			return true, r.c.wrap("read object "+quoteKey(l.key)+" of", r.bucket, cr.err)
		}
		return false, fmt.Errorf("store object %s: %w", quoteKey(l.key), err)
	}
	if n != o.Size {
		return true, fmt.Errorf("read %d bytes of %d", n, o.Size)
	}
	o.Content = ids
	if r.opts.tags && !r.noTags.Load() {
		// GetObject reports x-amz-tagging-count only for an object with
		// tags (AWS, MinIO, Ceph RGW, versitygw, moto): without it there
		// are none to read.
		if out.TagCount == nil || *out.TagCount == 0 {
			o.Tags, o.HasTags = map[string]string{}, true
		} else {
			tags, ok, err := r.tags(ctx, o.Key, o.VersionID)
			if err != nil {
				if isNotFound(err) {
					it.prob = &resource.Problem{Path: l.key, Err: errors.New("deleted while the backup ran; not stored")}
					return false, nil
				}
				return false, err
			}
			o.Tags, o.HasTags = tags, ok
		}
	}
	if changed {
		it.prob = &resource.Problem{Path: l.key, Err: fmt.Errorf("changed while the backup ran; stored the version of %s", o.LastModified.Format(time.RFC3339))}
	}
	node := o.node()
	it.node = &node
	if it.parent == nil {
		it.kind = itemNew
	}
	return false, nil
}
