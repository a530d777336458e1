package backupjob_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/backupjob"
	"coffer/internal/resource/fstree"
)

func i64(v int64) *int64 { return &v }

func TestCheckLock(t *testing.T) {
	locked := func(min, max *int64) *backup.Vault {
		return &backup.Vault{Name: "v", Locked: true, MinRetentionDays: min, MaxRetentionDays: max}
	}
	tests := []struct {
		name  string
		v     *backup.Vault
		days  *int64
		fails bool
	}{
		{"unlocked, forever", &backup.Vault{Name: "v"}, nil, false},
		{"unlocked, 1 day", &backup.Vault{Name: "v"}, i64(1), false},
		{"min only, forever", locked(i64(7), nil), nil, false},
		{"min only, below", locked(i64(7), nil), i64(6), true},
		{"min only, at", locked(i64(7), nil), i64(7), false},
		{"max only, forever", locked(nil, i64(30)), nil, true},
		{"max only, at", locked(nil, i64(30)), i64(30), false},
		{"max only, above", locked(nil, i64(30)), i64(31), true},
		{"both, inside", locked(i64(7), i64(30)), i64(20), false},
		{"both, below", locked(i64(7), i64(30)), i64(1), true},
	}
	for _, tc := range tests {
		err := backupjob.CheckLock(tc.v, backup.Lifecycle{DeleteAfterDays: tc.days})
		if (err != nil) != tc.fails {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestCalculatedLifecycle(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cold, del := backupjob.CalculatedLifecycle(t0, backup.Lifecycle{MoveToColdStorageAfterDays: i64(10), DeleteAfterDays: i64(100)})
	if !cold.Equal(t0.AddDate(0, 0, 10)) || !del.Equal(t0.AddDate(0, 0, 100)) {
		t.Fatalf("cold %v delete %v", cold, del)
	}
	if cold, del := backupjob.CalculatedLifecycle(t0, backup.Lifecycle{}); cold != nil || del != nil {
		t.Fatal("empty lifecycle has dates")
	}
}

func TestProblemMessage(t *testing.T) {
	var ps []fstree.Problem
	for i := 0; i < 7; i++ {
		ps = append(ps, fstree.Problem{Path: "/p" + string(rune('a'+i)), Err: errors.New("permission denied")})
	}
	msg := backupjob.ProblemMessage(ps)
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
