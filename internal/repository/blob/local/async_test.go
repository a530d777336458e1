package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"coffer/internal/repository/blob"
)

// tempFiles lists the temporary files under root.
func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPutAsync checks the two halves of an asynchronous Put: nothing is
// visible under the name before commit, commit makes it durable and
// visible, and a commit that fails or is cancelled leaves neither the
// object nor a temporary file.
func TestPutAsync(t *testing.T) {
	errBoom := errors.New("injected")
	for _, tc := range []struct {
		name     string
		existing bool   // the name exists before the Put (IfAbsent)
		failOp   string // operation failing inside commit
		cancel   bool   // commit with a cancelled context
		wantErr  error
		visible  bool
	}{
		{name: "commit", visible: true},
		{name: "cancelled", cancel: true, wantErr: context.Canceled},
		{name: "fsync fails", failOp: opFsync, wantErr: errBoom},
		{name: "rename fails", failOp: opCommitNR, wantErr: errBoom},
		{name: "exists", existing: true, wantErr: blob.ErrAlreadyExists, visible: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			root := t.TempDir()
			s, err := Open(root, Options{})
			if err != nil {
				t.Fatal(err)
			}
			const name = "data/ab/obj"
			old := []byte("old content")
			if tc.existing {
				if err := s.Put(ctx, name, old, blob.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			data := bytes.Repeat([]byte("new content "), 1000)
			commit, err := s.PutAsync(ctx, name, data, blob.PutOptions{IfAbsent: true})
			if err != nil {
				t.Fatal(err)
			}
			// Before commit: not visible (or still the old object), one temp file.
			if got, err := s.Get(ctx, name, 0, -1); tc.existing {
				if err != nil || !bytes.Equal(got, old) {
					t.Fatalf("before commit: Get = %q, %v; want the old object", got, err)
				}
			} else if !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("before commit: Get = %d bytes, %v; want not found", len(got), err)
			}
			if n := len(tempFiles(t, root)); n != 1 {
				t.Fatalf("before commit: %d temporary files, want 1", n)
			}
			rec := &recorder{failOp: tc.failOp, failNth: 1, failErr: errBoom}
			s.ops.hook = rec.hook
			cctx := ctx
			if tc.cancel {
				c, cancel := context.WithCancel(ctx)
				cancel()
				cctx = c
			}
			err = commit(cctx)
			s.ops.hook = nil
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("commit = %v, want %v", err, tc.wantErr)
			}
			got, gerr := s.Get(ctx, name, 0, -1)
			switch {
			case tc.visible && tc.existing:
				if gerr != nil || !bytes.Equal(got, old) {
					t.Fatalf("after commit: Get = %d bytes, %v; want the old object kept", len(got), gerr)
				}
			case tc.visible:
				if gerr != nil || !bytes.Equal(got, data) {
					t.Fatalf("after commit: Get = %d bytes, %v; want the new object", len(got), gerr)
				}
			default:
				if !errors.Is(gerr, blob.ErrNotFound) {
					t.Fatalf("after failed commit: Get = %d bytes, %v; want not found", len(got), gerr)
				}
			}
			if left := tempFiles(t, root); len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
}
