// Package scaleout holds the metadata-store benchmarks of issue 20: the
// same list, filtered-list and summary queries over a million jobs on the
// embedded SQLite store and on PostgreSQL (a throw-away server from the
// installed binaries), side by side in one run. Nothing is asserted.
//
//	go test ./bench/scaleout -run '^$' -bench JobQueriesMillion -benchtime 20x -timeout 90m
//
// Each query reports its mean (ns/op) and its 99th percentile (p99-ms).
// Figures and how to read them: bench/README.md, "Several nodes".
package scaleout

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"coffer/internal/store/postgres"
	"coffer/internal/store/sqlite"
	"coffer/internal/store/storetest"
	"coffer/internal/testutil/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// BenchmarkJobQueriesMillion runs storetest.BenchJobQueriesMillion on
// each adapter: SQLite in a temporary directory, then PostgreSQL after
// VACUUM ANALYZE (as autovacuum would have run on a database that grew;
// the summaries then read the covering indexes only).
func BenchmarkJobQueriesMillion(b *testing.B) {
	ctx := context.Background()
	b.Run("SQLite", func(b *testing.B) {
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "meta.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		storetest.BenchJobQueriesMillion(b, st, nil)
	})
	b.Run("PostgreSQL", func(b *testing.B) {
		dsn := pgtest.Shared(b).SchemaDSN(b)
		st, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		storetest.BenchJobQueriesMillion(b, st, func() error {
			c, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer c.Close(ctx)
			_, err = c.Exec(ctx, "VACUUM ANALYZE")
			return err
		})
	})
}
