package fstree

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateItems(t *testing.T) {
	for _, tc := range []struct {
		items []string
		ok    bool
	}{
		{[]string{"/a"}, true},
		{[]string{"/a/b", "/a/c", "/d"}, true},
		{[]string{"/a b/\xff"}, true},
		{[]string{"/%2e%2e"}, true}, // literal name, never decoded; CheckItems finds it absent
		{[]string{""}, false},
		{[]string{"/"}, false},
		{[]string{"a/b"}, false},
		{[]string{"/.."}, false},
		{[]string{"/a/../../x"}, false},
		{[]string{"/a/./b"}, false},
		{[]string{"/a//b"}, false},
		{[]string{"/a/"}, false},
		{[]string{`/\..\`}, false},
		{[]string{"/a\x00b"}, false},
		{[]string{"/" + strings.Repeat("a/", MaxItemLen/2)}, false},
		{[]string{"/" + strings.Repeat("x", 256)}, false},
		{[]string{"/*.txt"}, false},
		{[]string{"/a?"}, false},
		{[]string{"/[ab]"}, false},
		{[]string{"/a", "/a"}, false},
		{[]string{"/a", "/a/b"}, false},
		{[]string{"/a/b", "/a"}, false},
		{[]string{"/a", "/ab"}, true},
	} {
		err := ValidateItems(tc.items)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateItems(%q) = %v, want ok=%v", tc.items, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidItem) {
			t.Errorf("ValidateItems(%q) error %v does not wrap ErrInvalidItem", tc.items, err)
		}
	}
}

func FuzzValidateItems(f *testing.F) {
	for _, s := range []string{"/a/b", "/..", "/a/../b", "//", "/a\x00", "/*", "/a/./b"} {
		f.Add(s, "/x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if ValidateItems([]string{a, b}) != nil {
			return
		}
		for _, it := range []string{a, b} {
			if it[0] != '/' || len(it) > MaxItemLen || strings.Contains(it, "/../") || strings.HasSuffix(it, "/..") ||
				strings.Contains(it, "//") || strings.ContainsAny(it, "\x00*?[\\") || strings.HasSuffix(it, "/") {
				t.Fatalf("accepted %q", it)
			}
		}
	})
}
