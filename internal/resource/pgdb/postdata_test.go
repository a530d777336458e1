package pgdb_test

import (
	"testing"

	"coffer/internal/resource/pgdb"
)

// TestPostDataByPgRestore restores a LATIN1 database: pg_restore's script
// of its tables' indexes and keys is in LATIN1, which Coffer's sessions
// (UTF8) do not send, so pg_restore builds them; the schema, names
// outside ASCII included, comes back the same.
func TestPostDataByPgRestore(t *testing.T) {
	s := server(t)
	p := newPlugin(t)
	name := uniqueName("latin1")
	s.Exec(t, "postgres", `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
	s.Exec(t, "postgres", `CREATE DATABASE "`+name+`" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'`)
	t.Cleanup(func() { s.Exec(t, "postgres", `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) })
	s.Exec(t, name, `
CREATE TABLE "café" (id int PRIMARY KEY, "crème" text UNIQUE, n int);
CREATE INDEX "café_n" ON "café" (n) WHERE "crème" <> 'brûlée';
COMMENT ON INDEX "café_n" IS 'à la carte';
INSERT INTO "café" SELECT i, 'crème ' || i, i % 7 FROM generate_series(1, 1000) i;`)
	src := pgdb.NewResource("us-east-1", "111111111111", name, "pg", name, nil)
	snap, _, _ := backupDB(t, p, memRepo(t), src, nil)
	id := uniqueName("latin1-copy")
	res, err := restoreDB(t, p, snap, src, id, nil)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	t.Cleanup(func() { s.Exec(t, "postgres", `DROP DATABASE IF EXISTS "`+id+`" WITH (FORCE)`) })
	sameDatabase(t, s, name, s, id)
	if n := builtWithTables(t, res); n != 3 {
		t.Errorf("%d post-data entries built with their table, want 3 (key, unique, index)", n)
	}
	if n := detailCount(t, res, "post_data_by_session"); n != 0 {
		t.Errorf("%d post-data entries of a LATIN1 database run over Coffer's sessions, want 0", n)
	}
}
