package backupjob_test

import (
	"errors"
	"strings"
	"testing"

	"coffer/internal/backupjob"
	"coffer/internal/resource"
)

func TestProblemMessage(t *testing.T) {
	var ps []resource.Problem
	for i := 0; i < 7; i++ {
		ps = append(ps, resource.Problem{Path: "/p" + string(rune('a'+i)), Err: errors.New("permission denied")})
	}
	msg := backupjob.ProblemMessage("file", ps)
	if !strings.HasPrefix(msg, "Completed with 7 file problem(s)") || !strings.Contains(msg, "/pa") || !strings.Contains(msg, "/pe") ||
		strings.Contains(msg, "/pf") || !strings.HasSuffix(msg, "...") {
		t.Fatalf("message %q", msg)
	}
}

func FuzzParseParams(f *testing.F) {
	f.Add(`{"startWindowMinutes":60,"completeWindowMinutes":120,"recoveryPointTags":{"a":"b"}}`)
	f.Add(`{}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := backupjob.ParseParams(s)
		if err != nil {
			return
		}
		if len(s) > 1<<20 {
			t.Fatal("oversized parameters accepted")
		}
		_ = p
	})
}
