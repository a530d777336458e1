// Package resourcetest is the contract suite every resource plugin runs
// (as blobtest is for blob storage): a full round trip compared attribute
// by attribute, an unchanged second backup that stores nothing, an
// incremental backup, item-level restore, cancellation mid-backup and
// mid-restore that leaves nothing behind, progress that only grows and
// reaches 100 %, bad restore metadata rejected naming the key, and no write
// outside the target.
package resourcetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/repository/blob/blobtest"
	"coffer/internal/repository/crypto"
	"coffer/internal/repository/snapshot"
	"coffer/internal/resource"
)

// Harness adapts one resource type to the suite. Every method may fail the
// test; resources live in the scope the suite passes.
type Harness interface {
	// Plugin returns the plugin under test.
	Plugin(t *testing.T) resource.Plugin
	// NewSource creates a resource with varied content (every kind of
	// item and attribute the type has) and returns it.
	NewSource(t *testing.T, sc resource.Scope) *backup.Resource
	// Change changes a little of the source: adds, modifies and removes
	// items.
	Change(t *testing.T, src *backup.Resource)
	// NewTarget creates an empty resource to restore into.
	NewTarget(t *testing.T, sc resource.Scope) *backup.Resource
	// NewSpec is a spec that restores everything into a new resource.
	NewSpec() *backup.RestoreSpec
	// ExistingSpec is a spec that restores everything into target.
	ExistingSpec(target *backup.Resource) *backup.RestoreSpec
	// Equal fails the test unless the restored data (res of a restore
	// into target, or into res.Created when target is nil) equals the
	// source attribute by attribute; items, when not nil, restricts the
	// comparison to those items (and requires nothing else to be there).
	Equal(t *testing.T, src *backup.Resource, target *backup.Resource, res resource.RestoreResult, items []string)
	// Items is an item selection of the source for item-level restores
	// (nil when the type has none).
	Items(src *backup.Resource) []string
	// Outside returns a fingerprint of everything around the targets that
	// a restore must never touch; the suite compares it before and after.
	Outside(t *testing.T) string
	// Unrestored fails the test unless the restore of res left nothing
	// under a final name (target, when not nil, is as NewTarget made it).
	Unrestored(t *testing.T, target *backup.Resource, jobID string)
	// BadMetadata lists restore metadata maps that must be rejected with
	// InvalidParameter naming the given key (besides an unknown key, which
	// the suite adds).
	BadMetadata() []BadMetadata
	// ValidMetadata is one valid restore metadata map.
	ValidMetadata() map[string]string
}

// BadMetadata is a metadata map and the key its error must name.
type BadMetadata struct {
	Name     string
	Metadata map[string]string
	Key      string
}

var sc = resource.Scope{AccountID: "111111111111", Region: "us-east-1"}

// Run runs the contract suite against h.
func Run(t *testing.T, h Harness) {
	t.Run("RoundTripNewTarget", func(t *testing.T) { testRoundTrip(t, h, true) })
	t.Run("RoundTripExistingTarget", func(t *testing.T) { testRoundTrip(t, h, false) })
	t.Run("UnchangedBackupStoresNothing", func(t *testing.T) { testUnchanged(t, h) })
	t.Run("Incremental", func(t *testing.T) { testIncremental(t, h) })
	t.Run("ItemLevelRestore", func(t *testing.T) { testItems(t, h) })
	t.Run("CancelBackup", func(t *testing.T) { testCancelBackup(t, h) })
	t.Run("CancelRestore", func(t *testing.T) { testCancelRestore(t, h) })
	t.Run("Progress", func(t *testing.T) { testProgress(t, h) })
	t.Run("BadMetadata", func(t *testing.T) { testBadMetadata(t, h) })
	t.Run("MetadataRoundTrip", func(t *testing.T) { testMetadataRoundTrip(t, h) })
	runCapabilities(t, h)
}

func newRepo(t *testing.T) *repository.Repository {
	t.Helper()
	r, err := repository.Create(context.Background(), blobtest.NewMem(clock.Real{}), crypto.RandomKey(), repository.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// progress records every update.
type progress struct {
	mu      sync.Mutex
	updates [][2]int64
}

func (p *progress) Update(done, total int64) {
	p.mu.Lock()
	p.updates = append(p.updates, [2]int64{done, total})
	p.mu.Unlock()
}

// backupOnce stores the resource into repo; parent may be nil.
func backupOnce(ctx context.Context, t *testing.T, p resource.Plugin, repo *repository.Repository, r *backup.Resource,
	parent *resource.Snapshot, pr resource.Progress) (resource.BackupResult, repository.WriterStats, error) {
	t.Helper()
	if pr == nil {
		pr = &progress{}
	}
	var res resource.BackupResult
	var stats repository.WriterStats
	err := repo.WithWriter(ctx, func(ctx context.Context, w *repository.Writer) error {
		var err error
		res, err = p.Backup(ctx, resource.BackupRequest{Resource: r, Session: w, Parent: parent, Progress: pr})
		stats = w.Stats()
		return err
	})
	return res, stats, err
}

func mustBackup(t *testing.T, p resource.Plugin, repo *repository.Repository, r *backup.Resource, parent *resource.Snapshot) (resource.Snapshot, resource.BackupResult, repository.WriterStats) {
	t.Helper()
	res, stats, err := backupOnce(context.Background(), t, p, repo, r, parent, nil)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if len(res.Problems) > 0 {
		t.Fatalf("backup problems: %v", res.Problems)
	}
	return resource.Snapshot{Loader: repo, Root: res.Root}, res, stats
}

var jobSeq int

func jobID() string {
	jobSeq++
	return "JOB-" + time.Now().UTC().Format("150405") + "-" + string(rune('A'+jobSeq%26)) + string(rune('A'+(jobSeq/26)%26))
}

func restore(ctx context.Context, p resource.Plugin, snap resource.Snapshot, rp *backup.RecoveryPoint, spec *backup.RestoreSpec,
	target *backup.Resource, id string, pr resource.Progress) (resource.RestoreResult, error) {
	if pr == nil {
		pr = &progress{}
	}
	res, err := p.Restore(ctx, resource.RestoreRequest{JobID: id, Scope: sc, Spec: spec, RecoveryPoint: rp, Snapshot: snap,
		Target: target, Created: time.Now(), Progress: pr})
	if err == nil && res.Finish != nil {
		err = res.Finish(ctx)
	}
	if err == nil && res.Committed != nil {
		err = res.Committed(ctx)
	}
	return res, err
}

func recoveryPoint(src *backup.Resource) *backup.RecoveryPoint {
	return &backup.RecoveryPoint{Arn: backup.RecoveryPointArn(sc.Region, sc.AccountID, "rp-1"), AccountID: sc.AccountID, Region: sc.Region,
		ResourceArn: src.Arn, ResourceType: src.Type, Status: backup.RecoveryPointCompleted, CreationDate: time.Now(), Tags: map[string]string{"team": "a"}}
}

func testRoundTrip(t *testing.T, h Harness, newTarget bool) {
	p := h.Plugin(t)
	caps := p.Capabilities()
	if newTarget && !caps.NewTarget || !newTarget && !caps.ExistingTarget {
		t.Skip("the type does not restore this way")
	}
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	snap, _, _ := mustBackup(t, p, repo, src, nil)
	outside := h.Outside(t)
	var target *backup.Resource
	spec := h.NewSpec()
	if !newTarget {
		target = h.NewTarget(t, sc)
		spec = h.ExistingSpec(target)
	}
	res, err := restore(context.Background(), p, snap, recoveryPoint(src), spec, target, jobID(), nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if newTarget && res.Created == nil || !newTarget && res.Created != nil {
		t.Fatalf("Created = %+v for a restore to a new target = %v", res.Created, newTarget)
	}
	if res.TargetArn == "" || res.Summary == "" {
		t.Errorf("result lacks TargetArn or Summary: %+v", res)
	}
	h.Equal(t, src, target, res, nil)
	if got := h.Outside(t); got != outside {
		t.Errorf("restore wrote outside its target:\nbefore %s\nafter  %s", outside, got)
	}
}

func testUnchanged(t *testing.T, h Harness) {
	p := h.Plugin(t)
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	snap, first, _ := mustBackup(t, p, repo, src, nil)
	snap2, second, stats := mustBackup(t, p, repo, src, &snap)
	if stats.NewBlobs != 0 || stats.StoredBytes != 0 {
		t.Errorf("unchanged backup stored %d new blobs, %d bytes", stats.NewBlobs, stats.StoredBytes)
	}
	if snap2.Root != snap.Root {
		t.Errorf("unchanged backup has another root: %v vs %v", snap2.Root, snap.Root)
		for _, r := range []repository.ID{snap.Root, snap2.Root} {
			_ = snapshot.Walk(context.Background(), repo, r, func(p string, n *snapshot.Node) error {
				t.Logf("  %s a=%d m=%d c=%d x=%v sub=%v", p, n.ATimeNs, n.MTimeNs, n.CTimeNs, n.Xattrs, n.Subtree)
				return nil
			})
		}
	}
	if second.BytesRead != 0 || second.New != 0 || second.Changed != 0 || second.Unchanged == 0 || second.Items != first.Items {
		t.Errorf("unchanged backup read %d bytes; %d new, %d changed, %d unchanged of %d items (first: %d)",
			second.BytesRead, second.New, second.Changed, second.Unchanged, second.Items, first.Items)
	}
}

func testIncremental(t *testing.T, h Harness) {
	p := h.Plugin(t)
	if !p.Capabilities().NewTarget {
		t.Skip("no new targets")
	}
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	snap, _, _ := mustBackup(t, p, repo, src, nil)
	h.Change(t, src)
	snap2, res2, _ := mustBackup(t, p, repo, src, &snap)
	if res2.Unchanged == 0 || res2.New+res2.Changed == 0 {
		t.Errorf("incremental backup: %d new, %d changed, %d unchanged", res2.New, res2.Changed, res2.Unchanged)
	}
	res, err := restore(context.Background(), p, snap2, recoveryPoint(src), h.NewSpec(), nil, jobID(), nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	h.Equal(t, src, nil, res, nil)
}

func testItems(t *testing.T, h Harness) {
	p := h.Plugin(t)
	if !p.Capabilities().Items {
		t.Skip("no item-level restore")
	}
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	items := h.Items(src)
	if len(items) == 0 {
		t.Fatal("the harness gives no items for a type with item-level restore")
	}
	snap, _, _ := mustBackup(t, p, repo, src, nil)
	spec := h.NewSpec()
	spec.Items = items
	var target *backup.Resource
	if !p.Capabilities().NewTarget {
		target = h.NewTarget(t, sc)
		spec = h.ExistingSpec(target)
		spec.Items = items
	}
	rp := recoveryPoint(src)
	if err := p.CheckRestore(context.Background(), resource.RestoreCheck{Scope: sc, Spec: spec, RecoveryPoint: rp, JobID: "CHECK",
		Resources: lookup{target}, Snapshot: func(context.Context) (resource.Snapshot, error) { return snap, nil }}); err != nil {
		t.Fatalf("CheckRestore of items %q: %v", items, err)
	}
	res, err := restore(context.Background(), p, snap, rp, spec, target, jobID(), nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	h.Equal(t, src, target, res, items)
	// An item the recovery point lacks is refused before anything runs.
	spec.Items = []string{"/no-such-item-in-the-recovery-point"}
	err = p.CheckRestore(context.Background(), resource.RestoreCheck{Scope: sc, Spec: spec, RecoveryPoint: rp, JobID: "CHECK",
		Resources: lookup{target}, Snapshot: func(context.Context) (resource.Snapshot, error) { return snap, nil }})
	if !backup.IsCode(err, backup.CodeInvalidParameter) {
		t.Errorf("missing item: %v, want InvalidParameter", err)
	}
}

// lookup finds the one target resource.
type lookup struct{ r *backup.Resource }

func (l lookup) GetResource(_ context.Context, typ, id string) (*backup.Resource, error) {
	if l.r != nil && l.r.Type == typ && l.r.ID == id {
		return l.r, nil
	}
	return nil, backup.NotFound(id, "Resource %s does not exist", id)
}

// cancelAfter cancels ctx after the first n progress updates.
type cancelAfter struct {
	progress
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Update(done, total int64) {
	c.progress.Update(done, total)
	c.mu.Lock()
	n := len(c.updates)
	c.mu.Unlock()
	if n >= c.n {
		c.cancel()
	}
}

func testCancelBackup(t *testing.T, h Harness) {
	p := h.Plugin(t)
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr := &cancelAfter{n: 1, cancel: cancel}
	_, _, err := backupOnce(ctx, t, p, repo, src, nil, pr)
	if err == nil {
		// The backup may finish before it sees the cancellation; it must
		// never report success for a cancelled run that did not finish,
		// which the session's abandon below covers either way.
		t.Log("backup finished before noticing the cancellation")
	} else if !errors.Is(err, context.Canceled) {
		t.Logf("cancelled backup: %v", err)
	}
	n := 0
	if err := repo.ListManifests(context.Background(), func(repository.Manifest) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d manifests after a cancelled backup", n)
	}
	// A pre-cancelled backup fails at once.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, _, err := backupOnce(ctx2, t, p, repo, src, nil, nil); err == nil {
		t.Error("a backup under a cancelled context succeeded")
	}
}

func testCancelRestore(t *testing.T, h Harness) {
	p := h.Plugin(t)
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	snap, _, _ := mustBackup(t, p, repo, src, nil)
	outside := h.Outside(t)
	for _, newTarget := range []bool{true, false} {
		caps := p.Capabilities()
		if newTarget && !caps.NewTarget || !newTarget && !caps.ExistingTarget {
			continue
		}
		var target *backup.Resource
		spec := h.NewSpec()
		if !newTarget {
			target = h.NewTarget(t, sc)
			spec = h.ExistingSpec(target)
		}
		ctx, cancel := context.WithCancel(context.Background())
		id := jobID()
		res, err := p.Restore(ctx, resource.RestoreRequest{JobID: id, Scope: sc, Spec: spec, RecoveryPoint: recoveryPoint(src),
			Snapshot: snap, Target: target, Created: time.Now(), Progress: &cancelAfter{n: 1, cancel: cancel}})
		cancel()
		if err == nil {
			// Finished before it saw the cancellation: the core then
			// discards an uncommitted result.
			if res.Discard != nil {
				if err := res.Discard(context.Background()); err != nil {
					t.Fatalf("discard: %v", err)
				}
			}
			if res.Created == nil && target != nil {
				continue // written in place already (a completed restore)
			}
		}
		h.Unrestored(t, target, id)
	}
	if got := h.Outside(t); got != outside {
		t.Errorf("cancelled restore wrote outside its target:\nbefore %s\nafter  %s", outside, got)
	}
}

func testProgress(t *testing.T, h Harness) {
	p := h.Plugin(t)
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	for _, phase := range []string{"backup", "restore"} {
		pr := &progress{}
		if phase == "backup" {
			if _, _, err := backupOnce(context.Background(), t, p, repo, src, nil, pr); err != nil {
				t.Fatal(err)
			}
		} else {
			snap, _, _ := mustBackup(t, p, repo, src, nil)
			spec, target := h.NewSpec(), (*backup.Resource)(nil)
			if !p.Capabilities().NewTarget {
				target = h.NewTarget(t, sc)
				spec = h.ExistingSpec(target)
			}
			if _, err := restore(context.Background(), p, snap, recoveryPoint(src), spec, target, jobID(), pr); err != nil {
				t.Fatal(err)
			}
		}
		if len(pr.updates) == 0 {
			t.Fatalf("%s reported no progress", phase)
		}
		var last [2]int64
		for i, u := range pr.updates {
			if u[0] < last[0] {
				t.Fatalf("%s progress went back at update %d: %v after %v", phase, i, u, last)
			}
			if u[1] > 0 && u[0] > u[1] {
				t.Fatalf("%s progress beyond its total: %v", phase, u)
			}
			last = u
		}
		if last[1] <= 0 || last[0] != last[1] {
			t.Errorf("%s progress ended at %d of %d, not 100%%", phase, last[0], last[1])
		}
	}
}

func testBadMetadata(t *testing.T, h Harness) {
	p := h.Plugin(t)
	cases := append([]BadMetadata{{Name: "unknown key", Metadata: with(h.ValidMetadata(), "NoSuchRestoreKey", "x"), Key: "NoSuchRestoreKey"}},
		h.BadMetadata()...)
	for _, c := range cases {
		_, err := p.DecodeRestoreMetadata(c.Metadata)
		var be *backup.Error
		if !errors.As(err, &be) || be.Code != backup.CodeInvalidParameter || be.Context != c.Key {
			t.Errorf("%s: error %v, want InvalidParameter naming %q", c.Name, err, c.Key)
		}
	}
	if _, err := p.DecodeRestoreMetadata(h.ValidMetadata()); err != nil {
		t.Errorf("valid metadata rejected: %v", err)
	}
}

// testMetadataRoundTrip: what GetRecoveryPointRestoreMetadata gives can be
// sent back, and a spec's encoded metadata decodes to the same spec.
func testMetadataRoundTrip(t *testing.T, h Harness) {
	p := h.Plugin(t)
	src := h.NewSource(t, sc)
	rp := recoveryPoint(src)
	spec, err := p.DecodeRestoreMetadata(p.RestoreMetadata(rp))
	if err != nil {
		t.Fatalf("GetRecoveryPointRestoreMetadata's map is rejected: %v", err)
	}
	again, err := p.DecodeRestoreMetadata(p.EncodeRestoreMetadata(rp, spec))
	if err != nil {
		t.Fatalf("encoded metadata rejected: %v", err)
	}
	if a, b := specString(spec), specString(again); a != b {
		t.Errorf("metadata round trip changed the spec:\n%s\n%s", a, b)
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

func specString(s *backup.RestoreSpec) string {
	b, _ := json.Marshal(s)
	return string(b)
}
