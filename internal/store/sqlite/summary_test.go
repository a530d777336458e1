package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"coffer/internal/store/sqlite"
	"coffer/internal/store/storetest"
)

// BenchmarkJobQueriesMillion loads a million synthetic job rows once and
// measures list, filtered list and summary queries on them
// (storetest.BenchJobQueriesMillion; the PostgreSQL adapter runs the same).
// Run with
//
//	go test ./internal/store/sqlite -run '^$' -bench JobQueriesMillion -benchtime 20x
func BenchmarkJobQueriesMillion(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "meta.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	storetest.BenchJobQueriesMillion(b, st, nil)
}
