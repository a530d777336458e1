package fstree

import "coffer/internal/glob"

// Pattern is a compiled Include/Exclude glob pattern (package glob has
// the syntax).
type Pattern = glob.Pattern

// ErrBadPattern is wrapped by errors for malformed glob patterns.
var ErrBadPattern = glob.ErrBadPattern

// CompilePatterns compiles a list of patterns.
func CompilePatterns(list []string) ([]Pattern, error) { return glob.CompileAll(list) }
