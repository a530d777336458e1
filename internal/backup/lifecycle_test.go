package backup_test

import (
	"testing"
	"time"

	"coffer/internal/backup"
)

func i64(v int64) *int64 { return &v }

func TestCheckLock(t *testing.T) {
	locked := func(minDays, maxDays *int64) *backup.Vault {
		return &backup.Vault{Name: "v", Locked: true, MinRetentionDays: minDays, MaxRetentionDays: maxDays}
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
		err := tc.v.CheckLock(backup.Lifecycle{DeleteAfterDays: tc.days})
		if (err != nil) != tc.fails {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestCalculatedLifecycle(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cold, del := backup.Lifecycle{MoveToColdStorageAfterDays: i64(10), DeleteAfterDays: i64(100)}.Schedule(t0)
	if !cold.Equal(t0.AddDate(0, 0, 10)) || !del.Equal(t0.AddDate(0, 0, 100)) {
		t.Fatalf("cold %v delete %v", cold, del)
	}
	if cold, del := (backup.Lifecycle{}).Schedule(t0); cold != nil || del != nil {
		t.Fatal("empty lifecycle has dates")
	}
}
