package blob

import (
	"fmt"
	"strings"
)

// MaxNameLen caps the length of an object name in bytes.
const MaxNameLen = 1024

// ValidateName checks that name is a relative, '/'-separated sequence of
// non-empty segments made of [A-Za-z0-9._-], none of them "." or "..". It
// returns a permanent error describing the first problem.
func ValidateName(name string) error {
	if err := checkName(name, false); err != nil {
		return Permanent(err)
	}
	return nil
}

// ValidatePrefix checks a List prefix: the empty prefix is allowed, and the
// last segment may be empty or partial (so "a/" and "a/b" are valid), but
// the characters and the "." / ".." rule are those of ValidateName.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	if err := checkName(prefix, true); err != nil {
		return Permanent(err)
	}
	return nil
}

func checkName(name string, prefix bool) error {
	what := "name"
	if prefix {
		what = "prefix"
	}
	if name == "" {
		return fmt.Errorf("blob: invalid %s: empty", what)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("blob: invalid %s: longer than %d bytes", what, MaxNameLen)
	}
	segs := strings.Split(name, "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		if seg == "" {
			if prefix && last {
				continue
			}
			return fmt.Errorf("blob: invalid %s %q: empty segment", what, name)
		}
		if (seg == "." || seg == "..") && !(prefix && last && seg == ".") {
			return fmt.Errorf("blob: invalid %s %q: segment %q", what, name, seg)
		}
		for j := 0; j < len(seg); j++ {
			if !nameByte(seg[j]) {
				return fmt.Errorf("blob: invalid %s %q: byte %q not in [A-Za-z0-9._-]", what, name, seg[j])
			}
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
