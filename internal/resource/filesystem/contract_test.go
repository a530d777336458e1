package filesystem_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/fstree"
	"coffer/internal/resource/fstree/fstreetest"
	"coffer/internal/resource/resourcetest"
)

// TestContract runs the resource plugin contract suite against the
// file-system plugin.
func TestContract(t *testing.T) {
	resourcetest.Run(t, &fsHarness{})
}

// fsHarness keeps every file system of a test below one world directory:
// world/src-N, world/target-N, world/new (new_file_systems_dir) and a
// sentinel directory world/outside that no restore may touch.
type fsHarness struct {
	world  string
	plugin *filesystem.Plugin
	n      int
}

func (h *fsHarness) Plugin(t *testing.T) resource.Plugin {
	h.world = t.TempDir()
	h.n = 0
	must(t, os.MkdirAll(filepath.Join(h.world, "outside", "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(h.world, "outside", "sub", "keep"), []byte("do not touch"), 0o644))
	h.plugin = &filesystem.Plugin{NewFileSystemsDir: filepath.Join(h.world, "new")}
	return h.plugin
}

func (h *fsHarness) next(kind string) (string, string) {
	h.n++
	id := "fs-" + strings.Repeat("0", 16) + string(rune('a'+h.n%6))
	id = id[:len(id)-2] + string(rune('0'+h.n/10%10)) + string(rune('0'+h.n%10))
	return id, filepath.Join(h.world, kind+"-"+id)
}

func (h *fsHarness) NewSource(t *testing.T, sc resource.Scope) *backup.Resource {
	id, dir := h.next("src")
	fstreetest.MakeTree(t, dir)
	return filesystem.NewResource(sc.Region, sc.AccountID, id, dir, map[string]string{"Name": "src"})
}

func (h *fsHarness) Change(t *testing.T, src *backup.Resource) {
	root := src.Attr(filesystem.AttrPath)
	fstreetest.WriteFile(t, filepath.Join(root, "added.txt"), []byte("new file\n"), 0o644)
	fstreetest.WriteFile(t, filepath.Join(root, "dir", "a.go"), fstreetest.PseudoRandom(9, 6000), 0o644)
	must(t, os.Remove(filepath.Join(root, "docs", "readme.md")))
}

func (h *fsHarness) NewTarget(t *testing.T, sc resource.Scope) *backup.Resource {
	id, dir := h.next("target")
	must(t, os.MkdirAll(dir, 0o755))
	return filesystem.NewResource(sc.Region, sc.AccountID, id, dir, nil)
}

func (h *fsHarness) NewSpec() *backup.RestoreSpec {
	return &backup.RestoreSpec{Target: backup.RestoreTarget{New: true}}
}

func (h *fsHarness) ExistingSpec(target *backup.Resource) *backup.RestoreSpec {
	return &backup.RestoreSpec{Target: backup.RestoreTarget{ID: target.ID, Path: "/restored"}}
}

// restoredDir is where a restore's data is.
func restoredDir(t *testing.T, target *backup.Resource, res resource.RestoreResult) string {
	t.Helper()
	if target == nil {
		if res.Created == nil {
			t.Fatal("no created resource")
		}
		return res.Created.Attr(filesystem.AttrPath)
	}
	return filepath.Join(target.Attr(filesystem.AttrPath), filepath.FromSlash(strings.TrimPrefix(res.Location, "/")))
}

func (h *fsHarness) Equal(t *testing.T, src, target *backup.Resource, res resource.RestoreResult, items []string) {
	t.Helper()
	dir := restoredDir(t, target, res)
	opts := fstreetest.CompareOptions{ModeMask: 0o7777, MTime: true, Xattrs: []string{"user."}}
	if items != nil {
		// Only the items (and the directories leading to them) are there.
		want := map[string]bool{}
		for _, it := range items {
			rel := strings.TrimPrefix(it, "/")
			for p := rel; p != "."; p = filepath.Dir(p) {
				want[p] = true
			}
		}
		srcEntries, err := fstreetest.Walk(src.Attr(filesystem.AttrPath))
		must(t, err)
		for rel := range srcEntries {
			if rel == "" || want[rel] || underAny(rel, items) {
				continue
			}
			opts.Skip = append(opts.Skip, rel)
		}
		// Parent directories of items are created, not restored: their
		// times and modes are not the source's.
		opts.MTime = false
	}
	diffs, err := fstreetest.CompareTrees(src.Attr(filesystem.AttrPath), dir, opts)
	must(t, err)
	if items != nil {
		diffs = dropParents(diffs, items)
	}
	if len(diffs) > 0 {
		t.Fatalf("restored tree differs from the source:\n%s", strings.Join(diffs, "\n"))
	}
}

func underAny(rel string, items []string) bool {
	for _, it := range items {
		it = strings.TrimPrefix(it, "/")
		if rel == it || strings.HasPrefix(rel, it+"/") {
			return true
		}
	}
	return false
}

// dropParents ignores mode differences of the directories leading to items.
func dropParents(diffs, items []string) []string {
	var out []string
	for _, d := range diffs {
		parent := false
		for _, it := range items {
			for p := strings.TrimPrefix(filepath.Dir(it), "/"); p != "." && p != ""; p = filepath.Dir(p) {
				if strings.HasPrefix(d, p+":") {
					parent = true
				}
			}
		}
		if !parent {
			out = append(out, d)
		}
	}
	return out
}

func (h *fsHarness) Items(src *backup.Resource) []string {
	return []string{"/dir/sub", "/small.txt"}
}

func (h *fsHarness) Outside(t *testing.T) string {
	ents, err := fstreetest.Walk(filepath.Join(h.world, "outside"))
	must(t, err)
	var lines []string
	for rel, e := range ents {
		lines = append(lines, rel+" "+e.Hash+" "+string(rune(e.Mode)))
	}
	// Nothing but file systems appears next to them either.
	top, err := os.ReadDir(h.world)
	must(t, err)
	for _, e := range top {
		n := e.Name()
		if n == "new" || strings.HasPrefix(n, "src-") || strings.HasPrefix(n, "target-") {
			continue
		}
		lines = append(lines, "/"+n)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func (h *fsHarness) Unrestored(t *testing.T, target *backup.Resource, jobID string) {
	t.Helper()
	if target != nil {
		ents, err := os.ReadDir(target.Attr(filesystem.AttrPath))
		must(t, err)
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("cancelled restore left %q in the target", names)
		}
		return
	}
	ents, err := os.ReadDir(h.plugin.NewFileSystemsDir)
	if os.IsNotExist(err) {
		return
	}
	must(t, err)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), fstree.StagingPrefix) && !strings.HasPrefix(e.Name(), filesystem.NewFSStagingPrefix) {
			continue
		}
		t.Errorf("cancelled restore left %s in new_file_systems_dir", e.Name())
	}
	id := filesystem.NewFileSystemID(resource.Scope{}, jobID, "")
	if _, err := os.Lstat(filepath.Join(h.plugin.NewFileSystemsDir, id)); err == nil {
		t.Errorf("cancelled restore created file system %s", id)
	}
}

func (h *fsHarness) BadMetadata() []resourcetest.BadMetadata {
	return []resourcetest.BadMetadata{
		{Name: "missing file-system-id", Metadata: map[string]string{"newFileSystem": "true"}, Key: "file-system-id"},
		{Name: "bad newFileSystem", Metadata: map[string]string{"file-system-id": "fs-12345678", "newFileSystem": "yes"}, Key: "newFileSystem"},
		{Name: "item traversal", Metadata: map[string]string{"file-system-id": "fs-12345678", "newFileSystem": "true",
			"ItemsToRestore": `["/a/../../etc"]`}, Key: "ItemsToRestore"},
		{Name: "target path outside", Metadata: map[string]string{"file-system-id": "fs-12345678", "newFileSystem": "false",
			"TargetPath": "/../x"}, Key: "TargetPath"},
		{Name: "bad conflict policy", Metadata: map[string]string{"file-system-id": "fs-12345678", "newFileSystem": "false",
			"TargetPath": "/x", "ConflictPolicy": "CLOBBER"}, Key: "ConflictPolicy"},
	}
}

func (h *fsHarness) ValidMetadata() map[string]string {
	return map[string]string{"file-system-id": "fs-12345678", "newFileSystem": "true"}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
