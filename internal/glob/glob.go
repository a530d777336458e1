// Package glob matches slash-separated paths (file-tree paths, object
// keys) against the glob patterns of restore Include/Exclude filters.
package glob

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxPatternLen caps a glob pattern (like an item path).
const maxPatternLen = 4096

// ErrBadPattern is wrapped by errors for malformed glob patterns.
var ErrBadPattern = errors.New("malformed glob pattern")

// Pattern is a compiled glob pattern for Include/Exclude filters.
//
// Syntax, matched against root-relative paths such as "dir/sub/file":
//   - "*" matches any run of bytes within one path segment, "?" one character,
//     "[abc]", "[a-z]", "[!a-z]" / "[^a-z]" one character of (not of) a class;
//     "\x" matches x literally.
//   - A segment that is exactly "**" matches any number (including zero) of
//     whole segments.
//   - A pattern starting with "/" is anchored at the snapshot root; any other
//     pattern matches at any depth (it behaves as if prefixed with "**/").
//
// A trailing "/" is not allowed; empty segments ("a//b") are rejected.
type Pattern struct {
	src  string
	segs []string
}

// String returns the pattern as given.
func (p Pattern) String() string { return p.src }

// Compile parses and validates a glob pattern.
func Compile(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, fmt.Errorf("%w: empty", ErrBadPattern)
	}
	if len(s) > maxPatternLen {
		return Pattern{}, fmt.Errorf("%w: longer than %d bytes", ErrBadPattern, maxPatternLen)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Pattern{}, fmt.Errorf("%w: contains NUL", ErrBadPattern)
	}
	body, anchored := strings.CutPrefix(s, "/")
	if body == "" {
		return Pattern{}, fmt.Errorf("%w: %q matches nothing", ErrBadPattern, s)
	}
	segs := strings.Split(body, "/")
	for _, seg := range segs {
		if seg == "" {
			return Pattern{}, fmt.Errorf("%w: %q has an empty segment", ErrBadPattern, s)
		}
		if seg == "**" {
			continue
		}
		if err := checkSegment(seg); err != nil {
			return Pattern{}, fmt.Errorf("%w: %q: %v", ErrBadPattern, s, err)
		}
	}
	if !anchored && segs[0] != "**" {
		segs = append([]string{"**"}, segs...)
	}
	return Pattern{src: s, segs: segs}, nil
}

// CompileAll compiles a list of patterns.
func CompileAll(list []string) ([]Pattern, error) {
	out := make([]Pattern, 0, len(list))
	for _, s := range list {
		p, err := Compile(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// checkSegment validates the bracket and escape syntax of one segment.
func checkSegment(seg string) error {
	for i := 0; i < len(seg); i++ {
		switch seg[i] {
		case '\\':
			if i+1 >= len(seg) {
				return errors.New("trailing backslash")
			}
			i++
		case '[':
			end, err := classEnd(seg, i)
			if err != nil {
				return err
			}
			i = end
		}
	}
	return nil
}

// classEnd returns the index of the ']' closing the class opened at seg[i].
func classEnd(seg string, i int) (int, error) {
	j := i + 1
	if j < len(seg) && (seg[j] == '!' || seg[j] == '^') {
		j++
	}
	first := true
	for ; j < len(seg); j++ {
		c := seg[j]
		if c == ']' && !first {
			return j, nil
		}
		first = false
		if c == '\\' {
			j++
			if j >= len(seg) {
				return 0, errors.New("trailing backslash in class")
			}
		}
	}
	return 0, errors.New("unterminated character class")
}

// Match reports whether the root-relative path (segments joined by "/",
// no leading "/") matches the pattern.
func (p Pattern) Match(relPath string) bool {
	if relPath == "" {
		return false
	}
	return matchSegs(p.segs, strings.Split(relPath, "/"))
}

// matchSegs matches segment patterns against path segments. "**" plays the
// role '*' plays in a string glob, with segments as characters, so the
// classic greedy algorithm with backtracking to the last "**" is exact and
// runs in O(len(pat)·len(path)) segment comparisons (no exponential blow-up
// on hostile patterns such as many "**").
func matchSegs(pat, path []string) bool {
	pi, si := 0, 0
	starPi, starSi := -1, -1
	for si < len(path) {
		if pi < len(pat) && pat[pi] == "**" {
			starPi, starSi = pi, si
			pi++
			continue
		}
		if pi < len(pat) && matchSegment(pat[pi], path[si]) {
			pi++
			si++
			continue
		}
		if starPi >= 0 {
			starSi++
			pi, si = starPi+1, starSi
			continue
		}
		return false
	}
	for pi < len(pat) && pat[pi] == "**" {
		pi++
	}
	return pi == len(pat)
}

// matchSegment matches one segment pattern against one name. Both are
// treated as UTF-8 where valid; invalid bytes are single "characters".
func matchSegment(pat, name string) bool {
	// Iterative matching with backtracking on the last '*'.
	px, nx := 0, 0
	starPx, starNx := -1, -1
	for nx < len(name) || px < len(pat) {
		if px < len(pat) {
			switch pat[px] {
			case '*':
				starPx, starNx = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					_, w := decodeChar(name[nx:])
					px++
					nx += w
					continue
				}
			case '[':
				if nx < len(name) {
					end, _ := classEnd(pat, px)
					r, w := decodeChar(name[nx:])
					if matchClass(pat[px+1:end], r) {
						px = end + 1
						nx += w
						continue
					}
				}
			case '\\':
				if nx < len(name) && name[nx] == pat[px+1] {
					px += 2
					nx++
					continue
				}
			default:
				if nx < len(name) && name[nx] == pat[px] {
					px++
					nx++
					continue
				}
			}
		}
		if starPx >= 0 && starNx < len(name) {
			_, w := decodeChar(name[starNx:])
			starNx += w
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}

// decodeChar returns the next character; an invalid byte counts as the rune
// 0xDC00+byte (never equal to a valid character) of width 1.
func decodeChar(s string) (rune, int) {
	r, w := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError && w <= 1 {
		return 0xDC00 + rune(s[0]), 1
	}
	return r, w
}

// matchClass matches r against the body of a class (between '[' and ']').
func matchClass(body string, r rune) bool {
	negate := false
	if body != "" && (body[0] == '!' || body[0] == '^') {
		negate = true
		body = body[1:]
	}
	matched := false
	for len(body) > 0 {
		lo, w := classChar(body)
		body = body[w:]
		hi := lo
		if len(body) >= 2 && body[0] == '-' {
			hi, w = classChar(body[1:])
			body = body[1+w:]
		}
		if lo <= r && r <= hi {
			matched = true
		}
	}
	return matched != negate
}

func classChar(s string) (rune, int) {
	if s[0] == '\\' && len(s) > 1 {
		r, w := decodeChar(s[1:])
		return r, w + 1
	}
	return decodeChar(s)
}

// MatchAny reports whether any pattern matches relPath.
func MatchAny(pats []Pattern, relPath string) bool {
	for _, p := range pats {
		if p.Match(relPath) {
			return true
		}
	}
	return false
}

// MatchAnyTree reports whether any pattern matches relPath or one of its
// ancestors ("a" and "a/b" for "a/b/c"): a matched directory (or key
// prefix ending at a "/") stands for its whole subtree.
func MatchAnyTree(pats []Pattern, relPath string) bool {
	for i := 0; i < len(relPath); i++ {
		if relPath[i] == '/' && MatchAny(pats, relPath[:i]) {
			return true
		}
	}
	return MatchAny(pats, relPath)
}
