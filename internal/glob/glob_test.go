package glob

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
		p, err := Compile(tc.pat)
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
	p, err := Compile("/" + strings.Repeat("**/a/", 200) + "b")
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
		if _, err := Compile(pat); !errors.Is(err, ErrBadPattern) {
			t.Errorf("Compile(%q) = %v, want ErrBadPattern", pat, err)
		}
	}
}

func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{{"/a/**/b/**/c", "a/x/b/y/b/c"}, {"**/x/**", "x"}, {"*.txt", "a/b.txt"}, {"/a/**/b", "a/x/b"}, {"[!a-z]?", "Zq"}, {`\[x`, "[x"}, {"**", ""}, {"[]-]", "-"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		p, err := Compile(pat)
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

func TestMatchAnyTree(t *testing.T) {
	pats, err := CompileAll([]string{"/docs", "*.md", "vendor/**/x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"docs", true}, {"docs/a/b.txt", true}, {"docs/", true}, {"a/docs/b", false},
		{"x/y.md", true}, {"y.md/z", true}, {"md", false},
		{"vendor/x", true}, {"a/vendor/b/x/c", true}, {"vendor/y", false},
		{"", false}, {"/docs", false}, {"other", false},
	} {
		if got := MatchAnyTree(pats, tc.path); got != tc.want {
			t.Errorf("MatchAnyTree(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}
