package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"coffer/bench/internal/cofferdirect"
)

const testKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestRunRejectsBadInvocations(t *testing.T) {
	t.Setenv(cofferdirect.KeyEnv, testKey)
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no operation", nil, "usage"},
		{"unknown operation", []string{"prune", "-repo", repo}, `unknown operation "prune"`},
		{"no repo", []string{"init"}, "-repo is required"},
		{"flag of another operation", []string{"restore", "-repo", repo, "-dst", dir, "-src", dir}, "-src does not apply to restore"},
		{"backup without src", []string{"backup", "-repo", repo}, "-src is required"},
		{"bad parent", []string{"backup", "-repo", repo, "-src", dir, "-parent", "yesterday"}, "-parent must be latest or none"},
		{"restore without dst", []string{"restore", "-repo", repo}, "-dst is required"},
		{"stray argument", []string{"init", "-repo", repo, "extra"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
	t.Run("bad key", func(t *testing.T) {
		t.Setenv(cofferdirect.KeyEnv, "abcd")
		err := run(context.Background(), []string{"init", "-repo", repo}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), cofferdirect.KeyEnv) {
			t.Errorf("error %v", err)
		}
	})
}

func TestRunBackupRestore(t *testing.T) {
	t.Setenv(cofferdirect.KeyEnv, testKey)
	dir := t.TempDir()
	repo, src, dst := filepath.Join(dir, "repo"), filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o640); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, args := range [][]string{
		{"init", "-repo", repo},
		{"backup", "-repo", repo, "-src", src, "-parent", "none"},
	} {
		if err := run(ctx, args, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"restore", "-repo", repo, "-dst", dst}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	var sum cofferdirect.RestoreSummary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil || sum.Files != 1 || sum.Bytes != 4 {
		t.Errorf("summary %q: %+v, %v", out.String(), sum, err)
	}
	fi, err := os.Stat(filepath.Join(dst, "f"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("restored file: %v, %v", fi, err)
	}
}
