package blob_test

import (
	"errors"
	"path"
	"strings"
	"testing"

	"coffer/internal/repository/blob"
)

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"a/b/c", true},
		{"data/00/0011aabb", true},
		{".hidden", true},
		{"..x", true},
		{"x..", true},
		{"a-b_c.d", true},
		{strings.Repeat("a", blob.MaxNameLen), true},
		{strings.Repeat("a", blob.MaxNameLen+1), false},
		{"", false},
		{"/a", false},
		{"a/", false},
		{"a//b", false},
		{".", false},
		{"..", false},
		{"a/../b", false},
		{"a/./b", false},
		{"a b", false},
		{"a\\b", false},
		{"é", false},
		{"a~", false},
	} {
		err := blob.ValidateName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !blob.IsPermanent(err) {
			t.Errorf("ValidateName(%q) error is not permanent", tc.name)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"", true},
		{"a", true},
		{"a/", true},
		{"a/b", true},
		{"a/.", true},
		{"/", false},
		{"a//", false},
		{"../", false},
		{"a/../", false},
		{"a/..", false},
		{"a b", false},
	} {
		if err := blob.ValidatePrefix(tc.prefix); (err == nil) != tc.ok {
			t.Errorf("ValidatePrefix(%q) = %v, want ok=%v", tc.prefix, err, tc.ok)
		}
	}
}

func TestCheckRange(t *testing.T) {
	for _, tc := range []struct {
		size, off, length, want int64
		err                     bool
	}{
		{100, 0, -1, 100, false},
		{100, 0, 100, 100, false},
		{100, 10, 20, 20, false},
		{100, 100, -1, 0, false},
		{100, 100, 0, 0, false},
		{0, 0, -1, 0, false},
		{100, 90, 11, 0, true},
		{100, 101, -1, 0, true},
		{100, -1, 1, 0, true},
		{0, 0, 1, 0, true},
		{100, 1, 1 << 62, 0, true},
	} {
		got, err := blob.CheckRange(tc.size, tc.off, tc.length)
		if tc.err {
			if !errors.Is(err, blob.ErrInvalidRange) {
				t.Errorf("CheckRange(%d,%d,%d) = %d, %v; want ErrInvalidRange", tc.size, tc.off, tc.length, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("CheckRange(%d,%d,%d) = %d, %v; want %d", tc.size, tc.off, tc.length, got, err, tc.want)
		}
	}
}

// FuzzValidateName checks that every accepted name is a clean relative path
// of allowed bytes, so no accepted name can escape a directory backend.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/..", "/a", "a//b", ".", "..x", "a/./b", "a\x00", "data/ab/cd.ef-gh_ij"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if blob.ValidateName(name) != nil {
			return
		}
		if path.Clean(name) != name || path.IsAbs(name) || name == "." || strings.HasPrefix(name, "../") || name == ".." {
			t.Fatalf("accepted unclean name %q", name)
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted name %q with segment %q", name, seg)
			}
		}
		for i := 0; i < len(name); i++ {
			c := name[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-/", c) >= 0) {
				t.Fatalf("accepted name %q with byte %q", name, c)
			}
		}
		if blob.ValidatePrefix(name) != nil {
			t.Fatalf("valid name %q rejected as a prefix", name)
		}
	})
}
