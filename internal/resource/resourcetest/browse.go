package resourcetest

import (
	"context"
	"reflect"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/resource"
)

// runCapabilities runs the checks of the optional capabilities a plugin
// implements (resource.Browser, resource.RestorePreviewer).
func runCapabilities(t *testing.T, h Harness) {
	t.Run("Browse", func(t *testing.T) { testBrowse(t, h) })
	t.Run("PreviewRestore", func(t *testing.T) { testPreview(t, h) })
}

// browseAll pages through a listing with page size limit.
func browseAll(t *testing.T, b resource.Browser, req resource.BrowseRequest, limit int) []resource.Entry {
	t.Helper()
	req.Limit = limit
	var all []resource.Entry
	for pages := 0; ; pages++ {
		page, err := b.Browse(context.Background(), req)
		if err != nil {
			t.Fatalf("browse %q glob %q after %q: %v", req.Path, req.Glob, req.After, err)
		}
		if len(page.Entries) > limit {
			t.Fatalf("page of %d entries, limit %d", len(page.Entries), limit)
		}
		all = append(all, page.Entries...)
		if page.Next == "" {
			return all
		}
		if pages > 10000 {
			t.Fatal("endless listing")
		}
		req.After = page.Next
	}
}

// testBrowse: the top level of a backup lists the same entries in pages of
// one as in one page, and so does a search for "*" (every item); entries
// have a path, a name and a type; a path with NUL is InvalidParameter.
func testBrowse(t *testing.T, h Harness) {
	p := h.Plugin(t)
	b, ok := p.(resource.Browser)
	if !ok {
		t.Skip("the plugin does not browse recovery points")
	}
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	snap, res, _ := mustBackup(t, p, repo, src, nil)
	req := resource.BrowseRequest{Snapshot: snap, RecoveryPoint: recoveryPoint(src)}
	top := browseAll(t, b, req, resource.MaxBrowseLimit)
	if len(top) == 0 {
		t.Fatal("the top level of a backup lists nothing")
	}
	for _, e := range top {
		if e.Path == "" || e.Name == "" || e.Type == "" {
			t.Errorf("entry without path, name or type: %+v", e)
		}
	}
	if byOne := browseAll(t, b, req, 1); !reflect.DeepEqual(byOne, top) {
		t.Errorf("pages of one:\n%+v\nwant\n%+v", byOne, top)
	}
	req.Glob = "*"
	every := browseAll(t, b, req, resource.MaxBrowseLimit)
	if int64(len(every)) < res.Items {
		t.Errorf("search * found %d entries, the backup stored %d items", len(every), res.Items)
	}
	if byTwo := browseAll(t, b, req, 2); !reflect.DeepEqual(byTwo, every) {
		t.Errorf("search * by two differs from one page")
	}
	req.Glob = ""
	req.Path = "bad\x00path"
	if _, err := b.Browse(context.Background(), req); !backup.IsCode(err, backup.CodeInvalidParameter) {
		t.Errorf("path with NUL: %v, want InvalidParameter", err)
	}
}

// testPreview: the preview of a restore to a new resource creates every
// item and replaces none, and it writes nothing.
func testPreview(t *testing.T, h Harness) {
	p := h.Plugin(t)
	pv, ok := p.(resource.RestorePreviewer)
	if !ok {
		t.Skip("the plugin does not preview restores")
	}
	if !p.Capabilities().NewTarget {
		t.Skip("no restore to a new resource")
	}
	repo := newRepo(t)
	src := h.NewSource(t, sc)
	snap, res, _ := mustBackup(t, p, repo, src, nil)
	before := h.Outside(t)
	out, err := pv.PreviewRestore(context.Background(), resource.PreviewRequest{Scope: sc, Spec: h.NewSpec(), RecoveryPoint: recoveryPoint(src),
		Snapshot: snap, MaxPaths: 5})
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if out.Create < res.Items || out.Overwrite != 0 || out.Skip != 0 || len(out.CreatePaths) != int(min(out.Create, 5)) {
		t.Errorf("preview of a new resource: %+v (backup stored %d items)", out, res.Items)
	}
	if after := h.Outside(t); after != before {
		t.Errorf("a preview changed what is around the targets:\n%s\n→\n%s", before, after)
	}
}
