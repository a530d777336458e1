package resource

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"coffer/internal/backup"
)

// MetadataKeys validates the keys of restore metadata m for resourceType:
// at most maxBytes of keys and values together; every key matched
// case-insensitively against known (the canonical spellings); an unknown
// key (the allowed ones are listed), two keys differing only in case, and
// a value that is not UTF-8 or holds NUL are *backup.Error
// InvalidParameter naming the key in the caller's spelling; so is a key of
// unsupported (canonical spelling → why it is not supported), which are
// matched like known keys but not listed as allowed. It returns the
// values by canonical key, and name, which gives the caller's spelling of
// a canonical key (the canonical one when absent) for later messages.
func MetadataKeys(m map[string]string, resourceType string, known []string, unsupported map[string]string, maxBytes int) (vals map[string]string, name func(string) string, err error) {
	size := 0
	for k, v := range m {
		size += len(k) + len(v)
	}
	if size > maxBytes {
		return nil, nil, &backup.Error{Code: backup.CodeInvalidParameter, Context: "Metadata",
			Message: fmt.Sprintf("Metadata is %d bytes, more than the %d-byte limit", size, maxBytes)}
	}
	vals = map[string]string{}
	spell := map[string]string{} // canonical key → caller's spelling
	for k, v := range m {
		canon := ""
		for _, kk := range known {
			if strings.EqualFold(k, kk) {
				canon = kk
				break
			}
		}
		for kk, why := range unsupported {
			if canon == "" && strings.EqualFold(k, kk) {
				return nil, nil, MetadataError(SanitizeKey(k), "not supported: %s", why)
			}
		}
		if canon == "" {
			return nil, nil, MetadataError(SanitizeKey(k), "unknown restore metadata key for resource type %s (allowed: %s)", resourceType, strings.Join(known, ", "))
		}
		if prev, dup := spell[canon]; dup {
			a, b := prev, k
			if b < a {
				a, b = b, a
			}
			return nil, nil, MetadataError(SanitizeKey(b), "duplicate of key %s (keys are case-insensitive)", SanitizeKey(a))
		}
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return nil, nil, MetadataError(SanitizeKey(k), "value must be valid UTF-8 without NUL")
		}
		vals[canon], spell[canon] = v, k
	}
	name = func(canon string) string {
		if s, ok := spell[canon]; ok {
			return s
		}
		return canon
	}
	return vals, name, nil
}

// MetadataError is an InvalidParameter error about restore metadata key
// key (in the caller's spelling).
func MetadataError(key, format string, args ...any) *backup.Error {
	return &backup.Error{Code: backup.CodeInvalidParameter, Context: key,
		Message: "Metadata key " + key + ": " + fmt.Sprintf(format, args...)}
}

// SanitizeKey makes a caller's key printable in a message: invalid UTF-8
// and NUL become "?", and it is cut at 80 bytes.
func SanitizeKey(k string) string {
	k = strings.ToValidUTF8(k, "?")
	k = strings.ReplaceAll(k, "\x00", "?")
	return backup.Truncate(k, 80)
}
