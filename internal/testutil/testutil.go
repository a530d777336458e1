// Package testutil holds helpers shared by the test suites.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (the CI environment variable is
// set to a true value). In CI a missing tool is a failure, never a skip.
func InCI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// SkipOrFail skips the test on a developer machine and fails it in CI.
func SkipOrFail(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("required in CI: "+format, args...)
	}
	tb.Skipf(format, args...)
}

// RequireTool returns the path of an executable on PATH, skipping the test
// when it is missing outside CI and failing it in CI.
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(tb, "%s not found on PATH", name)
	}
	return p
}
