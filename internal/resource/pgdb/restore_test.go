package pgdb_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
	"coffer/internal/testutil/pgtest"
)

// lookupOf finds the given resources.
type lookupOf []*backup.Resource

func (l lookupOf) GetResource(_ context.Context, typ, id string) (*backup.Resource, error) {
	for _, r := range l {
		if r.Type == typ && r.ID == id {
			return r, nil
		}
	}
	return nil, backup.NotFound(id, "Resource %s does not exist", id)
}

func checkRestore(p *pgdb.Plugin, snap resource.Snapshot, src *backup.Resource, md map[string]string, known ...*backup.Resource) error {
	spec, err := p.DecodeRestoreMetadata(md)
	if err != nil {
		return err
	}
	rp := &backup.RecoveryPoint{Arn: backup.RecoveryPointArn("us-east-1", src.AccountID, "rp"), ResourceArn: src.Arn, ResourceType: pgdb.ResourceType}
	return p.CheckRestore(context.Background(), resource.RestoreCheck{Scope: resource.Scope{AccountID: src.AccountID, Region: "us-east-1"},
		Spec: spec, RecoveryPoint: rp, Resources: lookupOf(known), JobID: "CHECK",
		Snapshot: func(context.Context) (resource.Snapshot, error) { return snap, nil }})
}

// CheckRestore refuses, naming the key, an identifier that is taken (a
// configured database, a database of the account, a database of the
// target server, compared case-insensitively), an unknown target server
// and a port that is not the server's; an unreachable server is left to
// the job.
func TestCheckRestore(t *testing.T) {
	s := server(t)
	down := pgdb.Server{ID: "down", Host: "127.0.0.1", Port: closedPort(t), User: "x", SSLMode: "disable"}
	p := newPlugin(t, down)
	p.ReservedIDs = []string{"Configured-DB"}
	src := newDB(t, s, "pg", uniqueName("check"), 100)
	snap, _, _ := backupDB(t, p, memRepo(t), src, nil)
	s.CreateDB(t, "Existing-On-Server")
	registered := pgdb.NewResource("us-east-1", "111111111111", "registered", "pg", "registered", nil)
	for _, tc := range []struct {
		name string
		md   map[string]string
		key  string // "" = accepted
	}{
		{"free", map[string]string{"DBInstanceIdentifier": "fresh-db"}, ""},
		{"source itself", map[string]string{"DBInstanceIdentifier": src.ID}, "DBInstanceIdentifier"},
		{"configured", map[string]string{"DBInstanceIdentifier": "configured-db"}, "DBInstanceIdentifier"},
		{"registered", map[string]string{"DBInstanceIdentifier": "registered"}, "DBInstanceIdentifier"},
		{"on the server, other case", map[string]string{"DBInstanceIdentifier": "existing-on-server"}, "DBInstanceIdentifier"},
		{"unknown server", map[string]string{"DBInstanceIdentifier": "fresh-db", "TargetServer": "nope"}, "TargetServer"},
		{"wrong port", map[string]string{"DBInstanceIdentifier": "fresh-db", "Port": "1"}, "Port"},
		{"right port", map[string]string{"DBInstanceIdentifier": "fresh-db", "Port": itoa(s.Port)}, ""},
		{"unreachable server", map[string]string{"DBInstanceIdentifier": "fresh-db", "TargetServer": "down"}, ""},
	} {
		err := checkRestore(p, snap, src, tc.md, registered)
		var be *backup.Error
		switch {
		case tc.key == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.key != "" && (!errors.As(err, &be) || be.Code != backup.CodeInvalidParameter || be.Context != tc.key):
			t.Errorf("%s: %v, want InvalidParameter naming %s", tc.name, err, tc.key)
		}
	}
}

// A restore whose identifier was taken after the check fails and leaves
// the existing database exactly as it was.
func TestRestoreNeverTouchesAnExistingDatabase(t *testing.T) {
	s := server(t)
	p := newPlugin(t)
	src := newDB(t, s, "pg", uniqueName("src"), 200)
	snap, _, _ := backupDB(t, p, memRepo(t), src, nil)
	taken := uniqueName("taken")
	s.CreateDB(t, taken)
	s.Exec(t, taken, "CREATE TABLE mine (v text); INSERT INTO mine VALUES ('precious')")
	before := contentOf(t, s, taken)
	_, err := restoreDB(t, p, snap, src, taken, nil)
	if !errors.Is(err, resource.ErrInvalid) || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("restore over an existing database: %v", err)
	}
	if after := contentOf(t, s, taken); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("existing database changed:\n%s", lineDiff(strings.Join(before, "\n"), strings.Join(after, "\n")))
	}
	for _, db := range s.Databases(t) {
		if strings.HasPrefix(db, pgdb.StagingPrefix) {
			t.Errorf("left %s", db)
		}
	}
}

// Restoring to another server that lacks a role the backup grants to
// fails before anything is created, naming the role; once the role
// exists the restore succeeds and equals the source, grants included.
func TestRestoreToAnotherServerNeedsRoles(t *testing.T) {
	s := server(t)
	s2 := pgtest.Start(t, pgtest.Options{})
	p := newPlugin(t, serverConfig(s2, "pg2"))
	src := newDB(t, s, "pg", uniqueName("roles"), 500)
	snap, _, _ := backupDB(t, p, memRepo(t), src, nil)
	id := uniqueName("elsewhere")
	_, err := restoreDB(t, p, snap, src, id, map[string]string{pgdb.KeyTargetServer: "pg2"})
	if !errors.Is(err, resource.ErrInvalid) || !strings.Contains(err.Error(), readerRole) || !strings.Contains(err.Error(), "pg2") {
		t.Fatalf("restore without role %s: %v", readerRole, err)
	}
	if dbs := s2.Databases(t); len(dbs) != 0 {
		t.Fatalf("failed restore left databases %v", dbs)
	}
	s2.Exec(t, "postgres", "CREATE ROLE "+readerRole)
	res, err := restoreDB(t, p, snap, src, id, map[string]string{pgdb.KeyTargetServer: "pg2"})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Created; c.Attr(pgdb.AttrServer) != "pg2" || c.Attr(pgdb.AttrDatabase) != id || c.Tags["team"] != "db" || c.CreatedByRestoreJob != "JOB-"+id {
		t.Errorf("created %+v: want it on pg2 with the recovery point's tags", c)
	}
	sameDatabase(t, s, src.ID, s2, id)
}

// A restore whose loaded data does not verify fails as corrupt and leaves
// neither the staging database nor the final one: a trigger slipped into
// the staging database changes one value of every row of app.orders as it
// is loaded (same row count, different content), another drops one of its
// rows.
func TestRestoreVerificationFailure(t *testing.T) {
	s := server(t)
	src := newDB(t, s, "pg", uniqueName("verify"), 300)
	snap, _, _ := backupDB(t, newPlugin(t), memRepo(t), src, nil)
	for _, tc := range []struct {
		table, sql, want string
	}{
		{"app.orders", `CREATE FUNCTION app.meddle() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := 'meddled'; RETURN NEW; END $$;
			CREATE TRIGGER meddle BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.meddle()`, "checksum"},
		{"app.orders", `CREATE FUNCTION app.drop_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN CASE WHEN NEW.id = 1 THEN NULL ELSE NEW END; END $$;
			CREATE TRIGGER drop_one BEFORE INSERT ON app.orders FOR EACH ROW EXECUTE FUNCTION app.drop_one()`, "rows"},
	} {
		p := newPlugin(t)
		id := uniqueName("tampered")
		pgdb.SetHooks(p, nil, func(table string) {
			if table != tc.table {
				return
			}
			for _, db := range s.Databases(t) {
				if strings.HasPrefix(db, pgdb.StagingPrefix+"JOB-"+id) {
					s.Exec(t, db, tc.sql)
				}
			}
		})
		_, err := restoreDB(t, p, snap, src, id, nil)
		if !errors.Is(err, resource.ErrCorrupt) || !strings.Contains(err.Error(), tc.table) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("tampered restore (%s): %v", tc.table, err)
		}
		for _, db := range s.Databases(t) {
			if db == id || strings.HasPrefix(db, pgdb.StagingPrefix+"JOB-"+id) {
				t.Errorf("failed restore left %s", db)
			}
		}
	}
}

// CleanStaging drops staging databases of dead restores and databases a
// dead restore renamed but never registered; it keeps live restores'
// databases, registered ones, and everything else.
func TestCleanStaging(t *testing.T) {
	s := server(t)
	p := newPlugin(t)
	mark := func(db, job, final string) {
		s.CreateDB(t, db)
		s.Exec(t, "postgres", "COMMENT ON DATABASE \""+db+"\" IS 'coffer-restore job="+job+" name="+final+"'")
	}
	mark(pgdb.StagingName("DEAD-1"), "DEAD-1", "x1")
	s.CreateDB(t, pgdb.StagingName("DEAD-2")) // created, not marked yet
	mark(pgdb.StagingName("LIVE-1"), "LIVE-1", "x2")
	mark("orphan-x", "DEAD-3", "orphan-x")
	mark("kept-live", "LIVE-2", "kept-live")
	mark("kept-registered", "DONE-1", "kept-registered")
	mark("kept-renamed", "DEAD-4", "another-name")
	s.CreateDB(t, "kept-plain")
	s.Exec(t, "postgres", `COMMENT ON DATABASE "kept-plain" IS 'coffer-restore is a fine name'`)
	live := map[string]bool{"LIVE-1": true, "LIVE-2": true}
	err := p.CleanStaging(context.Background(), resource.CleanupRequest{
		Resources: []*backup.Resource{pgdb.NewResource("us-east-1", "111111111111", "kept-registered", "pg", "kept-registered", nil)},
		Live:      func(id string) bool { return live[id] }})
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, db := range s.Databases(t) {
		have[db] = true
	}
	for _, db := range []string{pgdb.StagingName("DEAD-1"), pgdb.StagingName("DEAD-2"), "orphan-x"} {
		if have[db] {
			t.Errorf("%s survived", db)
		}
	}
	for _, db := range []string{pgdb.StagingName("LIVE-1"), "kept-live", "kept-registered", "kept-renamed", "kept-plain"} {
		if !have[db] {
			t.Errorf("%s dropped", db)
		}
	}
	// A server that is down is skipped (Coffer must start without it),
	// the others still cleaned.
	p.Servers = append([]pgdb.Server{{ID: "down", Host: "127.0.0.1", Port: closedPort(t), User: "x", SSLMode: "disable"}}, p.Servers...)
	mark(pgdb.StagingName("DEAD-5"), "DEAD-5", "x5")
	if err := p.CleanStaging(context.Background(), resource.CleanupRequest{Live: func(id string) bool { return live[id] }}); err != nil {
		t.Errorf("unreachable server: %v", err)
	}
	for _, db := range s.Databases(t) {
		if db == pgdb.StagingName("DEAD-5") {
			t.Error("cleanup stopped at the unreachable server")
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
