package fstree

import (
	"errors"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, path string
		want      bool
	}{
		{"*.txt", "a.txt", true},
		{"*.txt", "dir/sub/a.txt", true},
		{"*.txt", "a.txt/child", false},
		{"/*.txt", "a.txt", true},
		{"/*.txt", "dir/a.txt", false},
		{"/dir", "dir", true},
		{"/dir", "dir/x", false},
		{"/dir/**", "dir/x/y", true},
		{"/dir/**", "dir", true},
		{"/**/x", "x", true},
		{"/**/x", "a/b/x", true},
		{"/a/**/b", "a/b", true},
		{"/a/**/b", "a/x/y/b", true},
		{"/a/**/b", "a/x/y/c", false},
		{"/a/**/**/b", "a/b", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "a/c", false},
		{"a?c", "aéc", true},
		{"[abc]x", "bx", true},
		{"[abc]x", "dx", false},
		{"[!abc]x", "dx", true},
		{"[^abc]x", "ax", false},
		{"[a-c]", "b", true},
		{"[a-c]", "d", false},
		{"[]]", "]", true},
		{`\*`, "*", true},
		{`\*`, "a", false},
		{"*", "", false},
		{"*a*b*", "xaybz", true},
		{"*a*b*", "xbya", false},
		{"/exact", "exact", true},
		{"/ex*ct", "exaaact", true},
		{"/\xff*", "\xff\xfe", true},
		{"?", "\xff", true},
		{"deep", "a/b/c/deep", true},
	} {
		p, err := CompilePattern(tc.pat)
		if err != nil {
			t.Fatalf("compile %q: %v", tc.pat, err)
		}
		if got := p.Match(tc.path); got != tc.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tc.pat, tc.path, got, tc.want)
		}
	}
}

func TestPatternManyDoubleStars(t *testing.T) {
	// Exponential backtracking would never finish this.
	p, err := CompilePattern("/" + strings.Repeat("**/a/", 200) + "b")
	if err != nil {
		t.Fatal(err)
	}
	if p.Match(strings.Repeat("a/", 1000) + "c") {
		t.Fatal("matched")
	}
	if !p.Match(strings.Repeat("a/", 1000) + "b") {
		t.Fatal("did not match")
	}
}

func TestCompilePatternErrors(t *testing.T) {
	for _, pat := range []string{"", "/", "a//b", "a/", "[abc", `abc\`, "a\x00b", strings.Repeat("a", maxPatternLen+1), "[!"} {
		if _, err := CompilePattern(pat); !errors.Is(err, ErrBadPattern) {
			t.Errorf("CompilePattern(%q) = %v, want ErrBadPattern", pat, err)
		}
	}
}

func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{{"/a/**/b/**/c", "a/x/b/y/b/c"}, {"**/x/**", "x"}, {"*.txt", "a/b.txt"}, {"/a/**/b", "a/x/b"}, {"[!a-z]?", "Zq"}, {`\[x`, "[x"}, {"**", ""}, {"[]-]", "-"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		p, err := CompilePattern(pat)
		if err != nil {
			return
		}
		if len(path) > 4096 {
			return
		}
		m := p.Match(path)
		if path != "" && strings.Count(pat, "**") <= 4 {
			if ref := refMatchSegs(p.segs, strings.Split(path, "/")); ref != m {
				t.Fatalf("%q.Match(%q) = %v, reference says %v", pat, path, m, ref)
			}
		}
		// A pattern without metacharacters matches exactly itself.
		if !strings.ContainsAny(pat, `*?[\`) && strings.HasPrefix(pat, "/") && pat[1:] == path && !m {
			t.Fatalf("%q does not match itself", pat)
		}
	})
}

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

// refMatchSegs is the plain recursive definition of segment matching, the
// reference for the linear algorithm.
func refMatchSegs(pat, path []string) bool {
	if len(pat) == 0 {
		return len(path) == 0
	}
	if pat[0] == "**" {
		for k := 0; k <= len(path); k++ {
			if refMatchSegs(pat[1:], path[k:]) {
				return true
			}
		}
		return false
	}
	return len(path) > 0 && matchSegment(pat[0], path[0]) && refMatchSegs(pat[1:], path[1:])
}
