package sqlite

import (
	"io/fs"
	"strings"
	"testing"
)

// TestMigrationNumbers: the embedded migrations have distinct numbers, and
// a list where two share one (two branches each adding "the next"
// migration) is refused rather than one being skipped as applied.
func TestMigrationNumbers(t *testing.T) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrationNumbers(names); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		names []string
		err   string
	}{
		{[]string{"migrations/0001_a.sql", "migrations/0002_b.sql"}, ""},
		{[]string{"migrations/0007_plans.sql", "migrations/0001_a.sql", "migrations/0007_shared_state.sql"},
			"0007_plans.sql and 0007_shared_state.sql share number 7"},
		{[]string{"migrations/x_a.sql"}, "bad name"},
	} {
		_, err := migrationNumbers(tc.names)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: err = %v, want %q", tc.names, err, tc.err)
		}
	}
}
