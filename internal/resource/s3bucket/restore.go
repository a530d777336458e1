package s3bucket

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"coffer/internal/backup"
	"coffer/internal/glob"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
)

// markerTag is the bucket tag a restore puts on the bucket it creates
// until it finishes (value: the job id).
const markerTag = "coffer-restore-job"

// DecodeRestoreMetadata parses S3 restore metadata (ParseMetadata).
func (p *Plugin) DecodeRestoreMetadata(m map[string]string) (*backup.RestoreSpec, error) {
	md, err := ParseMetadata(m)
	if err != nil {
		return nil, err
	}
	return md.Spec(), nil
}

// EncodeRestoreMetadata is the metadata spec runs with.
func (p *Plugin) EncodeRestoreMetadata(rp *backup.RecoveryPoint, spec *backup.RestoreSpec) map[string]string {
	src, _ := ParseARN(rp.ResourceArn)
	return encode(spec, src)
}

// RestoreMetadata restores into the source bucket, skipping the objects it
// still holds (AWS's behaviour: what was deleted comes back).
func (p *Plugin) RestoreMetadata(rp *backup.RecoveryPoint) map[string]string {
	src, _ := ParseARN(rp.ResourceArn)
	return map[string]string{KeyDestinationBucketName: src, KeyNewBucket: "false", KeyEncrypted: "false", KeyEncryptionType: EncryptionOriginal}
}

// CheckRestore validates the spec, the items against the snapshot and the
// target bucket.
func (p *Plugin) CheckRestore(ctx context.Context, req resource.RestoreCheck) error {
	spec := req.Spec
	src, _ := ParseARN(req.RecoveryPoint.ResourceArn)
	if err := checkSpec(spec, src); err != nil {
		return err
	}
	if b := spec.Settings[settingItemsBucket]; b != "" && b != src {
		return paramErr(KeyItemsToRestore, "names bucket %s, but the recovery point is of bucket %s", b, src)
	}
	var root *snapshotRoot
	snap := func() (*snapshotRoot, resource.Snapshot, error) {
		s, err := req.Snapshot(ctx)
		if err != nil {
			return nil, s, err
		}
		if root == nil {
			if root, err = readRoot(ctx, s.Loader, s.Root); err != nil {
				return nil, s, &backup.Error{Code: backup.CodeUnavailable, Message: "cannot read recovery point " + req.RecoveryPoint.Arn, Err: err}
			}
		}
		return root, s, nil
	}
	if len(spec.Items) > 0 {
		r, s, err := snap()
		if err != nil {
			return err
		}
		for _, k := range itemKeys(spec) {
			cur, err := newCursor(ctx, s.Loader, r.objects.Subtree, EncodeKey(k))
			if err != nil {
				return &backup.Error{Code: backup.CodeUnavailable, Message: "cannot read recovery point " + req.RecoveryPoint.Arn, Err: err}
			}
			n, err := cur.next(ctx)
			if err != nil {
				return &backup.Error{Code: backup.CodeUnavailable, Message: "cannot read recovery point " + req.RecoveryPoint.Arn, Err: err}
			}
			if n == nil {
				return paramErr(KeyItemsToRestore, "the recovery point holds no object with key or prefix %q", trunc(k))
			}
		}
	}
	name := spec.Target.ID
	if !spec.Target.New {
		t, err := req.Resources.GetResource(ctx, ResourceType, name)
		if err != nil {
			if backup.IsCode(err, backup.CodeNotFound) {
				return backup.NotFound(name, "Bucket %s does not exist (or is not a bucket of this account); use %s=true to create it", name, KeyNewBucket)
			}
			return err
		}
		if _, err := p.client(t.Attr(AttrEndpoint)); err != nil {
			return paramErr(KeyDestinationBucketName, "bucket %s is on s3 endpoint %q, which is not configured", name, t.Attr(AttrEndpoint))
		}
		return nil
	}
	if _, err := req.Resources.GetResource(ctx, ResourceType, name); err == nil {
		return paramErr(KeyDestinationBucketName, "bucket %s already exists; use %s=false to restore into it", name, KeyNewBucket)
	} else if !backup.IsCode(err, backup.CodeNotFound) {
		return err
	}
	r, _, err := snap()
	if err != nil {
		return err
	}
	c, err := p.client(r.info.Endpoint)
	if err != nil {
		return paramErr(KeyNewBucket, "the new bucket would be created on the source bucket's s3 endpoint %q, which is no longer configured", r.info.Endpoint)
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.s3.HeadBucket(hctx, &s3.HeadBucketInput{Bucket: aws.String(name)}, noRetry); err == nil {
		return paramErr(KeyDestinationBucketName, "bucket %s already exists on s3 endpoint %s; use %s=false to restore into an existing bucket", name, c.ep.ID, KeyNewBucket)
	}
	// Not found, or not answered: the job finds out (and fails cleanly).
	return nil
}

// noRetry makes one request try once.
func noRetry(o *s3.Options) { o.RetryMaxAttempts = 1 }

// restoreRun is the state of one restore.
type restoreRun struct {
	p         *Plugin
	c         *client
	l         resource.Loader
	bucket    string
	prefix    string
	newBucket bool
	policy    backup.ConflictPolicy
	sse       string // "", "original" or "AES256"
	j         *journal
	m         *meter
	sem       *semaphore.Weighted
	noINM     atomic.Bool // the server ignores or refuses If-None-Match
	// include and exclude filter object keys (Include/Exclude globs; a
	// pattern matching a key prefix ending at "/" selects all below it).
	include, exclude []glob.Pattern

	items, bytes, skipped, replaced atomic.Int64
	mu                              sync.Mutex
	problems                        []resource.Problem
}

// Restore writes the snapshot's objects (all, or those under the items'
// keys and prefixes) into a new bucket on the source bucket's endpoint or
// into an existing bucket, under DestinationPrefix when given. A journal
// records every change so that a failed or cancelled restore undoes itself
// and CleanStaging undoes one whose process died.
func (p *Plugin) Restore(ctx context.Context, req resource.RestoreRequest) (resource.RestoreResult, error) {
	res, err := p.restore(ctx, req)
	return res, failure(err)
}

func (p *Plugin) restore(ctx context.Context, req resource.RestoreRequest) (resource.RestoreResult, error) {
	var res resource.RestoreResult
	spec := req.Spec
	root, err := readRoot(ctx, req.Snapshot.Loader, req.Snapshot.Root)
	if err != nil {
		return res, fmt.Errorf("read recovery point: %w", err)
	}
	r := &restoreRun{p: p, l: req.Snapshot.Loader, prefix: spec.Target.Path, newBucket: spec.Target.New, policy: spec.ConflictPolicy,
		m: newMeter(req.Progress), sem: semaphore.NewWeighted(p.bufferBytes())}
	if r.policy == backup.ConflictDefault {
		r.policy = backup.SkipExisting
	}
	if r.include, err = glob.CompileAll(spec.Include); err != nil {
		return res, fmt.Errorf("%w: Include: %w", resource.ErrInvalid, err)
	}
	if r.exclude, err = glob.CompileAll(spec.Exclude); err != nil {
		return res, fmt.Errorf("%w: Exclude: %w", resource.ErrInvalid, err)
	}
	switch spec.Settings[KeyEncryptionType] {
	case EncryptionSSES3:
		r.sse = string(types.ServerSideEncryptionAes256)
	case EncryptionOriginal, "":
		r.sse = EncryptionOriginal
	}
	var endpoint string
	if spec.Target.New {
		endpoint, r.bucket = root.info.Endpoint, spec.Target.ID
	} else {
		if req.Target == nil {
			return res, fmt.Errorf("%w: no target bucket", resource.ErrInvalid)
		}
		endpoint, r.bucket = req.Target.Attr(AttrEndpoint), req.Target.ID
	}
	if r.c, err = p.client(endpoint); err != nil {
		return res, err
	}
	r.j, err = openJournal(p.StateDir, req.JobID, journalEntry{Op: opStart, Job: req.JobID, Endpoint: endpoint, Bucket: r.bucket,
		New: spec.Target.New, Time: time.Now().UTC()})
	if err != nil {
		return res, err
	}
	fail := func(err error) (resource.RestoreResult, error) {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		if uerr := p.undoJournal(uctx, r.j, req.JobID); uerr != nil {
			err = fmt.Errorf("%w (and undoing the partial restore failed: %v)", err, uerr)
		} else {
			r.j.remove()
		}
		return resource.RestoreResult{}, err
	}
	if spec.Target.New {
		if err := r.createBucket(ctx, req.JobID, &root.info); err != nil {
			return fail(err)
		}
	} else if _, err := r.c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(r.bucket)}); err != nil {
		if isNoSuchBucket(err) || httpStatus(err) == http.StatusNotFound {
			return fail(fmt.Errorf("%w: bucket %s does not exist on s3 endpoint %s", resource.ErrInvalid, r.bucket, endpoint))
		}
		return fail(r.c.wrap("open bucket", r.bucket, err))
	}
	if err := r.run(ctx, root, itemKeys(spec)); err != nil {
		return fail(err)
	}
	r.m.finish()

	res.Items, res.Bytes, res.Skipped, res.Replaced, res.Problems = r.items.Load(), r.bytes.Load(), r.skipped.Load(), r.replaced.Load(), r.problems
	res.TargetArn, res.Location = ARN(r.bucket), "/"+r.prefix
	if spec.Target.New {
		created := &backup.Resource{AccountID: req.Scope.AccountID, Region: req.Scope.Region, Type: ResourceType, ID: r.bucket,
			Arn: ARN(r.bucket), Name: r.bucket, Attrs: map[string]string{AttrEndpoint: endpoint}, CreatedByRestoreJob: req.JobID}
		var tags map[string]string
		if req.CopySourceTags && len(root.info.Tags) > 0 {
			tags = root.info.Tags
			created.Tags = map[string]string{}
			for k, v := range tags {
				created.Tags[k] = v
			}
		}
		res.Created = created
		res.Finish = func(ctx context.Context) error {
			// The bucket loses its restore marker (and gets the source's
			// tags) only inside the completing transaction.
			if err := r.finalTags(ctx, tags); err != nil {
				return err
			}
			r.j.remove()
			return nil
		}
	} else {
		res.Finish = func(context.Context) error { r.j.remove(); return nil }
	}
	res.Discard = func(ctx context.Context) error {
		if err := p.undoJournal(ctx, r.j, req.JobID); err != nil {
			return err
		}
		r.j.remove()
		return nil
	}
	where := "bucket " + r.bucket
	if r.prefix != "" {
		where += " under prefix " + quoteKey(r.prefix)
	}
	res.Summary = fmt.Sprintf("Restored %d objects (%d bytes) to %s", res.Items, res.Bytes, where)
	if !spec.Target.New {
		res.Summary += fmt.Sprintf("; %s kept %d and replaced %d existing objects", r.policy, res.Skipped, res.Replaced)
	}
	if len(res.Problems) > 0 {
		res.Summary += "; " + problemSummary(res.Problems)
	}
	res.Details = details{Endpoint: endpoint, Bucket: r.bucket, Prefix: r.prefix, NewBucket: spec.Target.New, Objects: res.Items,
		Bytes: res.Bytes, Skipped: res.Skipped, Replaced: res.Replaced, Problems: len(res.Problems)}
	if p.Log != nil {
		p.Log.Info("restore written", "job", req.JobID, "account", req.Scope.AccountID, "recovery_point", req.RecoveryPoint.Arn,
			"endpoint", endpoint, "bucket", r.bucket, "prefix", r.prefix, "objects", res.Items, "bytes", res.Bytes,
			"skipped", res.Skipped, "replaced", res.Replaced, "problems", len(res.Problems))
	}
	return res, nil
}

// details are recorded as the job's ResultJSON.
type details struct {
	Endpoint  string `json:"endpoint"`
	Bucket    string `json:"bucket"`
	Prefix    string `json:"prefix,omitempty"`
	NewBucket bool   `json:"new_bucket"`
	Objects   int64  `json:"objects"`
	Bytes     int64  `json:"bytes"`
	Skipped   int64  `json:"skipped"`
	Replaced  int64  `json:"replaced"`
	Problems  int    `json:"problems"`
}

func problemSummary(ps []resource.Problem) string {
	return resource.ProblemSummary(ps, func(p resource.Problem) string { return quoteKey(p.Path) + ": " + p.Err.Error() })
}

// createBucket creates the new bucket, journalled and marked, and gives it
// the source's versioning state and CORS rules.
func (r *restoreRun) createBucket(ctx context.Context, jobID string, info *bucketInfo) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(r.bucket)}
	if reg := r.c.ep.Region; reg != "" && reg != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(reg)}
	}
	// In us-east-1, AWS answers 200 to a CreateBucket of a bucket its
	// caller owns: look first.
	if _, err := r.c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(r.bucket)}); err == nil {
		return fmt.Errorf("%w: bucket %s already exists on s3 endpoint %s", resource.ErrInvalid, r.bucket, r.c.ep.ID)
	}
	if _, err := r.c.s3.CreateBucket(ctx, in); err != nil {
		switch errorCode(err) {
		case "BucketAlreadyExists", "BucketAlreadyOwnedByYou":
			return fmt.Errorf("%w: bucket %s already exists on s3 endpoint %s", resource.ErrInvalid, r.bucket, r.c.ep.ID)
		case "InvalidBucketName":
			return fmt.Errorf("%w: s3 endpoint %s refuses the bucket name %s", resource.ErrInvalid, r.c.ep.ID, r.bucket)
		}
		return r.c.wrap("create bucket", r.bucket, err)
	}
	if err := r.j.append(journalEntry{Op: opBucketCreated}, true); err != nil {
		return err
	}
	_, err := r.c.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(r.bucket),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String(markerTag), Value: aws.String(jobID)}}}})
	if err != nil && !isUnsupported(err) {
		return r.c.wrap("tag new bucket", r.bucket, err)
	}
	if info.Versioning == string(types.BucketVersioningStatusEnabled) {
		_, err := r.c.s3.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(r.bucket),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
		if err != nil && !isUnsupported(err) && httpStatus(err) != http.StatusBadRequest {
			return r.c.wrap("enable versioning of", r.bucket, err)
		}
	}
	if len(info.CORS) > 0 {
		var rules []types.CORSRule
		if json.Unmarshal(info.CORS, &rules) == nil && len(rules) > 0 {
			_, err := r.c.s3.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(r.bucket), CORSConfiguration: &types.CORSConfiguration{CORSRules: rules}})
			if err != nil && !isUnsupported(err) {
				return r.c.wrap("set CORS rules of", r.bucket, err)
			}
		}
	}
	return nil
}

// finalTags replaces the restore marker by the bucket's final tags.
func (r *restoreRun) finalTags(ctx context.Context, tags map[string]string) error {
	var err error
	if len(tags) == 0 {
		_, err = r.c.s3.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: aws.String(r.bucket)})
	} else {
		set := make([]types.Tag, 0, len(tags))
		for k, v := range tags {
			set = append(set, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		sort.Slice(set, func(i, j int) bool { return *set[i].Key < *set[j].Key })
		_, err = r.c.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(r.bucket), Tagging: &types.Tagging{TagSet: set}})
	}
	if err != nil && !isUnsupported(err) {
		return r.c.wrap("tag restored bucket", r.bucket, err)
	}
	return nil
}

// selection turns item keys into disjoint encoded prefixes, sorted; none
// is the whole index.
func selection(items []string) []string {
	if len(items) == 0 {
		return []string{""}
	}
	ps := make([]string, 0, len(items))
	for _, k := range items {
		ps = append(ps, EncodeKey(k))
	}
	sort.Strings(ps)
	out := ps[:0]
	for _, p := range ps {
		if len(out) > 0 && strings.HasPrefix(p, out[len(out)-1]) {
			continue // inside an earlier prefix
		}
		out = append(out, p)
	}
	return out
}

// run restores the selected objects with the plugin's workers.
func (r *restoreRun) run(ctx context.Context, root *snapshotRoot, items []string) error {
	prefixes := selection(items)
	var total int64
	if len(prefixes) == 1 && prefixes[0] == "" && !r.filtered() {
		total = root.objects.Size
	} else {
		for _, pfx := range prefixes {
			cur, err := newCursor(ctx, r.l, root.objects.Subtree, pfx)
			if err != nil {
				return err
			}
			for {
				n, err := cur.next(ctx)
				if err != nil {
					return err
				}
				if n == nil {
					break
				}
				if r.wanted(n) {
					total += n.Size
				}
			}
		}
	}
	r.m.setTotal(total)
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *snapshot.Node, 2*r.p.workers())
	g.Go(func() error {
		defer close(work)
		for _, pfx := range prefixes {
			cur, err := newCursor(gctx, r.l, root.objects.Subtree, pfx)
			if err != nil {
				return err
			}
			for {
				n, err := cur.next(gctx)
				if err != nil {
					return err
				}
				if n == nil {
					break
				}
				if !r.wanted(n) {
					continue
				}
				select {
				case work <- n:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})
	for range r.p.workers() {
		g.Go(func() error {
			for n := range work {
				if err := r.object(gctx, n); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// filtered reports whether Include/Exclude patterns select the objects.
func (r *restoreRun) filtered() bool { return len(r.include) > 0 || len(r.exclude) > 0 }

// wanted applies Include and Exclude to an index entry's key: excluded
// when an Exclude pattern matches the key or a prefix of it ending at a
// "/", else included when there is no Include or one matches likewise.
// An entry whose key cannot be decoded is left to object, which reports
// it.
func (r *restoreRun) wanted(n *snapshot.Node) bool {
	if !r.filtered() {
		return true
	}
	key, err := DecodeKey(n.Name)
	if err != nil {
		return true
	}
	if glob.MatchAnyTree(r.exclude, key) {
		return false
	}
	return len(r.include) == 0 || glob.MatchAnyTree(r.include, key)
}

// object restores one object node under the conflict policy.
func (r *restoreRun) object(ctx context.Context, n *snapshot.Node) error {
	o, err := objectOf(n)
	if err != nil {
		return err
	}
	key := r.prefix + o.Key
	existed := false
	if !r.newBucket {
		head, err := r.c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key)})
		switch {
		case err == nil:
			existed = true
			skip := r.policy == backup.SkipExisting ||
				(r.policy == backup.OverwriteIfNewer && head.LastModified != nil && !o.LastModified.After(*head.LastModified))
			if skip {
				r.skipped.Add(1)
				r.m.add(o.Size, true)
				return nil
			}
		case isNotFound(err) || httpStatus(err) == http.StatusNotFound:
		default:
			return r.c.wrap("look up object "+quoteKey(key)+" in", r.bucket, err)
		}
	}
	// Only the absent case may use If-None-Match: a key created since the
	// look-up is then kept, as SKIP_EXISTING promises.
	ifAbsent := !r.newBucket && !existed && r.policy == backup.SkipExisting
	var record func(etag string) error
	if !r.newBucket && !existed {
		record = func(etag string) error { return r.j.append(journalEntry{Op: opPut, Key: key, ETag: etag}, false) }
	}
	etag, err := r.put(ctx, key, o, ifAbsent, record)
	if err != nil {
		if ifAbsent && httpStatus(err) == http.StatusPreconditionFailed {
			r.skipped.Add(1)
			r.m.add(o.Size, true)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var pe *objectProblem
		if errors.As(err, &pe) {
			r.mu.Lock()
			r.problems = append(r.problems, resource.Problem{Path: o.Key, Err: pe.err})
			r.mu.Unlock()
			return nil
		}
		return err
	}
	if record != nil && etag != "" {
		if err := record(etag); err != nil {
			return err
		}
	}
	if existed {
		r.replaced.Add(1)
	}
	r.items.Add(1)
	r.bytes.Add(o.Size)
	return nil
}

// objectProblem is a refusal of one object by the server (a 4xx other
// than access and existence errors): recorded, the restore goes on.
type objectProblem struct{ err error }

func (e *objectProblem) Error() string { return e.err.Error() }

// classifyPut turns a failed upload into an objectProblem when only the
// object is at fault.
func (r *restoreRun) classifyPut(key string, err error) error {
	st := httpStatus(err)
	if st >= 400 && st < 500 && st != http.StatusForbidden && st != http.StatusNotFound && st != http.StatusPreconditionFailed &&
		st != http.StatusUnauthorized && st != http.StatusNotImplemented {
		return &objectProblem{err: r.c.wrap("write object "+quoteKey(key)+" to", r.bucket, err)}
	}
	if isUnsupported(err) && r.sse != EncryptionOriginal {
		return fmt.Errorf("%w: s3 endpoint %s does not support server-side encryption (%s): %w", resource.ErrInvalid, r.c.ep.ID, EncryptionSSES3, err)
	}
	return r.c.wrap("write object "+quoteKey(key)+" to", r.bucket, err)
}

// sseOf is the server-side encryption to ask for o.
func (r *restoreRun) sseOf(o *object) types.ServerSideEncryption {
	switch {
	case r.sse == EncryptionOriginal && o.SSE != "":
		// aws:kms objects come back with SSE-S3: Coffer has no KMS.
		return types.ServerSideEncryptionAes256
	case r.sse == string(types.ServerSideEncryptionAes256):
		return types.ServerSideEncryptionAes256
	}
	return ""
}

// put uploads o as key: one PUT up to the part size, multipart above, each
// request with the Content-MD5 of its body (which the server checks) and
// a signed payload hash. record, when set, journals the object before a
// single PUT is sent (with the ETag it will have). It returns the new
// object's ETag.
func (r *restoreRun) put(ctx context.Context, key string, o *object, ifAbsent bool, record func(etag string) error) (string, error) {
	ps := r.p.partSize()
	if o.Size > ps {
		return r.putMultipart(ctx, key, o, ifAbsent)
	}
	w := max(o.Size, 1)
	if err := r.sem.Acquire(ctx, w); err != nil {
		return "", err
	}
	defer r.sem.Release(w)
	buf := bytes.NewBuffer(make([]byte, 0, o.Size))
	cr := newContentReader(ctx, r.l, o.Content)
	if _, err := io.Copy(buf, cr); err != nil {
		return "", err
	}
	if int64(buf.Len()) != o.Size {
		return "", fmt.Errorf("%w: object %s has %d bytes stored, %d recorded", resource.ErrCorrupt, quoteKey(o.Key), buf.Len(), o.Size)
	}
	sum := md5.Sum(buf.Bytes())
	if record != nil {
		if err := record(`"` + hex.EncodeToString(sum[:]) + `"`); err != nil {
			return "", err
		}
	}
	in := &s3.PutObjectInput{Bucket: aws.String(r.bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes()),
		ContentLength: aws.Int64(o.Size), ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))}
	r.headers(o, &in.ContentType, &in.ContentEncoding, &in.ContentDisposition, &in.ContentLanguage, &in.CacheControl, &in.Expires, &in.Tagging)
	in.Metadata, in.ServerSideEncryption = o.Meta, r.sseOf(o)
	if ifAbsent && !r.noINM.Load() {
		in.IfNoneMatch = aws.String("*")
	}
	out, err := r.c.s3.PutObject(ctx, in)
	if err != nil && in.IfNoneMatch != nil && isUnsupported(err) {
		r.noINM.Store(true)
		in.IfNoneMatch = nil
		in.Body = bytes.NewReader(buf.Bytes())
		out, err = r.c.s3.PutObject(ctx, in)
	}
	if err != nil {
		if httpStatus(err) == http.StatusPreconditionFailed {
			return "", err
		}
		return "", r.classifyPut(key, err)
	}
	r.m.add(o.Size, true)
	return aws.ToString(out.ETag), nil
}

// headers sets o's content headers and tags on a request.
func (r *restoreRun) headers(o *object, ct, ce, cd, cl, cc **string, exp **time.Time, tagging **string) {
	set := func(dst **string, v string) {
		if v != "" {
			*dst = aws.String(v)
		}
	}
	set(ct, o.ContentType)
	set(ce, o.ContentEncoding)
	set(cd, o.ContentDisposition)
	set(cl, o.ContentLanguage)
	set(cc, o.CacheControl)
	if o.Expires != "" {
		if t, err := http.ParseTime(o.Expires); err == nil {
			*exp = &t
		}
	}
	if len(o.Tags) > 0 {
		*tagging = aws.String(encodeTags(o.Tags))
	}
}

// partUploads is how many parts of one object are in flight at once.
const partUploads = 4

// putMultipart uploads o in parts of the plugin's part size.
func (r *restoreRun) putMultipart(ctx context.Context, key string, o *object, ifAbsent bool) (string, error) {
	if err := r.j.append(journalEntry{Op: opMPU, Key: key, Time: time.Now().UTC()}, true); err != nil {
		return "", err
	}
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(r.bucket), Key: aws.String(key)}
	r.headers(o, &in.ContentType, &in.ContentEncoding, &in.ContentDisposition, &in.ContentLanguage, &in.CacheControl, &in.Expires, &in.Tagging)
	in.Metadata, in.ServerSideEncryption = o.Meta, r.sseOf(o)
	cmu, err := r.c.s3.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", r.classifyPut(key, err)
	}
	uploadID := cmu.UploadId
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, _ = r.c.s3.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(r.bucket), Key: aws.String(key), UploadId: uploadID})
	}
	ps := r.p.partSize()
	nparts := int((o.Size + ps - 1) / ps)
	parts := make([]types.CompletedPart, nparts)
	cr := newContentReader(ctx, r.l, o.Content)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(partUploads)
	var readErr error
	for i := 0; i < nparts && gctx.Err() == nil; i++ {
		size := min(ps, o.Size-int64(i)*ps)
		if err := r.sem.Acquire(gctx, size); err != nil {
			break
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(cr, buf); err != nil {
			r.sem.Release(size)
			readErr = err
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("%w: object %s is shorter than its recorded %d bytes", resource.ErrCorrupt, quoteKey(o.Key), o.Size)
			}
			break
		}
		num := int32(i + 1)
		g.Go(func() error {
			defer r.sem.Release(size)
			sum := md5.Sum(buf)
			out, err := r.c.s3.UploadPart(gctx, &s3.UploadPartInput{Bucket: aws.String(r.bucket), Key: aws.String(key), UploadId: uploadID,
				PartNumber: aws.Int32(num), Body: bytes.NewReader(buf), ContentLength: aws.Int64(size),
				ContentMD5: aws.String(base64.StdEncoding.EncodeToString(sum[:]))})
			if err != nil {
				return r.classifyPut(key, err)
			}
			parts[num-1] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}
			r.m.add(size, true)
			return nil
		})
	}
	err = g.Wait()
	if err == nil {
		err = readErr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		abort()
		return "", err
	}
	if extra, _ := cr.Read(make([]byte, 1)); extra > 0 {
		abort()
		return "", fmt.Errorf("%w: object %s is longer than its recorded %d bytes", resource.ErrCorrupt, quoteKey(o.Key), o.Size)
	}
	cin := &s3.CompleteMultipartUploadInput{Bucket: aws.String(r.bucket), Key: aws.String(key), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}
	if ifAbsent && !r.noINM.Load() {
		cin.IfNoneMatch = aws.String("*")
	}
	out, err := r.c.s3.CompleteMultipartUpload(ctx, cin)
	if err != nil && cin.IfNoneMatch != nil && isUnsupported(err) {
		r.noINM.Store(true)
		cin.IfNoneMatch = nil
		out, err = r.c.s3.CompleteMultipartUpload(ctx, cin)
	}
	if err != nil {
		abort()
		if httpStatus(err) == http.StatusPreconditionFailed {
			return "", err
		}
		return "", r.classifyPut(key, err)
	}
	return aws.ToString(out.ETag), nil
}
