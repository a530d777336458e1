package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"stray"}, 2, "unexpected arguments"},
		{[]string{"-rounds", "0"}, 1, "rounds must be at least 1"},
		{[]string{"-pct", "0"}, 1, "change percentage"},
		{[]string{"-budget", "-1s"}, 1, "budget must not be negative"},
		{[]string{"-scale", "-1"}, 1, "scale must be positive"},
		{[]string{"-tools", "coffer,coffer"}, 1, `tool "coffer" named twice`},
		{[]string{"-tools", ","}, 1, "no tools"},
		{[]string{"-data", "/nonexistent-coffer-bench-data"}, 1, "is not a directory"},
	}
	for _, tc := range tests {
		var out, errb bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed %q", tc.args, out.String())
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(" coffer, restic,,borg ")
	if strings.Join(got, "|") != "coffer|restic|borg" {
		t.Errorf("splitList = %q", got)
	}
}
