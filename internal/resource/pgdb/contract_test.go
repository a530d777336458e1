package pgdb_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
	"coffer/internal/resource/resourcetest"
)

// contractRows is the size of the contract suite's databases.
const contractRows = 2000

// TestContract runs the resource plugin contract suite against PostgreSQL
// databases of the rich schema on a real server.
func TestContract(t *testing.T) {
	resourcetest.Run(t, &pgHarness{})
}

// pgHarness: sources are src-N databases on the shared server, restores
// create rst-N databases, and an "outside" database plus every other
// database name and role must survive every restore untouched.
type pgHarness struct {
	plugin *pgdb.Plugin
}

func (h *pgHarness) Plugin(t *testing.T) resource.Plugin {
	s := server(t)
	ctx := context.Background()
	c := s.Connect(t, "postgres")
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = 'outside'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		s.CreateDB(t, "outside")
		s.Exec(t, "outside", "CREATE TABLE keep (id int PRIMARY KEY, v text); INSERT INTO keep SELECT i, 'do not touch ' || i FROM generate_series(1, 100) i")
	}
	h.plugin = newPlugin(t)
	return h.plugin
}

func (h *pgHarness) NewSource(t *testing.T, sc resource.Scope) *backup.Resource {
	s := server(t)
	name := uniqueName("src")
	r := newDB(t, s, "pg", name, contractRows)
	r.AccountID, r.Region, r.Arn = sc.AccountID, sc.Region, pgdb.ARN(sc.Region, sc.AccountID, name)
	return r
}

// Change inserts, updates and deletes orders (and touches the audit
// table through the trigger); every other table stays as it was.
func (h *pgHarness) Change(t *testing.T, src *backup.Resource) {
	server(t).Exec(t, src.Attr(pgdb.AttrDatabase), `
		INSERT INTO app.orders (customer_id, amount, note) VALUES (1, 12.5, 'added');
		UPDATE app.orders SET amount = amount + 1 WHERE id % 100 = 7;
		DELETE FROM app.orders WHERE id % 250 = 3;`)
}

func (h *pgHarness) NewTarget(t *testing.T, _ resource.Scope) *backup.Resource {
	t.Fatal("RDS restores into new databases only")
	return nil
}

func (h *pgHarness) NewSpec() *backup.RestoreSpec {
	return &backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: uniqueName("rst")}, Settings: map[string]string{pgdb.KeyEngine: pgdb.EnginePostgres}}
}

func (h *pgHarness) ExistingSpec(*backup.Resource) *backup.RestoreSpec { return nil }

func (h *pgHarness) Equal(t *testing.T, src, target *backup.Resource, res resource.RestoreResult, items []string) {
	t.Helper()
	if target != nil || items != nil || res.Created == nil {
		t.Fatalf("unexpected comparison: target %v, items %v, created %v", target, items, res.Created)
	}
	c := res.Created
	if c.Type != pgdb.ResourceType || c.Attr(pgdb.AttrServer) != "pg" || c.Attr(pgdb.AttrDatabase) != c.ID || c.Arn != pgdb.ARN(c.Region, c.AccountID, c.ID) {
		t.Errorf("created resource %+v", c)
	}
	s := server(t)
	sameDatabase(t, s, src.Attr(pgdb.AttrDatabase), s, c.Attr(pgdb.AttrDatabase))
}

func (h *pgHarness) Items(*backup.Resource) []string { return nil }

func (h *pgHarness) Outside(t *testing.T) string {
	s := server(t)
	var lines []string
	for _, db := range s.Databases(t) {
		if strings.HasPrefix(db, "src-") || strings.HasPrefix(db, "rst-") {
			continue
		}
		lines = append(lines, "database "+db)
	}
	lines = append(lines, contentOf(t, s, "outside")...)
	c := s.Open(t, "postgres")
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(), "SELECT rolname::text FROM pg_roles")
	if err != nil {
		t.Fatal(err)
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		lines = append(lines, "role "+r)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// Unrestored: neither the job's staging database nor a database marked
// with the job exists.
func (h *pgHarness) Unrestored(t *testing.T, _ *backup.Resource, jobID string) {
	t.Helper()
	s := server(t)
	c := s.Open(t, "postgres")
	defer c.Close(context.Background())
	rows, err := c.Query(context.Background(),
		"SELECT datname::text FROM pg_database WHERE datname = $1 OR shobj_description(oid, 'pg_database') LIKE $2",
		pgdb.StagingName(jobID), "coffer-restore job="+jobID+" %")
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("cancelled restore %s left databases %q", jobID, left)
	}
}

func (h *pgHarness) BadMetadata() []resourcetest.BadMetadata {
	return []resourcetest.BadMetadata{
		{Name: "missing identifier", Metadata: map[string]string{"Engine": "postgres"}, Key: "DBInstanceIdentifier"},
		{Name: "identifier starts with a digit", Metadata: map[string]string{"DBInstanceIdentifier": "1db"}, Key: "DBInstanceIdentifier"},
		{Name: "identifier with double hyphen", Metadata: map[string]string{"dbinstanceidentifier": "a--b"}, Key: "dbinstanceidentifier"},
		{Name: "identifier too long", Metadata: map[string]string{"DBInstanceIdentifier": "a" + strings.Repeat("b", 63)}, Key: "DBInstanceIdentifier"},
		{Name: "other engine", Metadata: map[string]string{"DBInstanceIdentifier": "db", "Engine": "mysql"}, Key: "Engine"},
		{Name: "multi-AZ", Metadata: map[string]string{"DBInstanceIdentifier": "db", "MultiAZ": "true"}, Key: "MultiAZ"},
		{Name: "bad port", Metadata: map[string]string{"DBInstanceIdentifier": "db", "Port": "70000"}, Key: "Port"},
		{Name: "Aurora cluster", Metadata: map[string]string{"DBInstanceIdentifier": "db", "DBClusterIdentifier": "c"}, Key: "DBClusterIdentifier"},
		{Name: "database name", Metadata: map[string]string{"DBInstanceIdentifier": "db", "DBName": "x"}, Key: "DBName"},
		{Name: "bad class", Metadata: map[string]string{"DBInstanceIdentifier": "db", "DBInstanceClass": "large"}, Key: "DBInstanceClass"},
		{Name: "IAM auth", Metadata: map[string]string{"DBInstanceIdentifier": "db", "EnableIAMDatabaseAuthentication": "true"}, Key: "EnableIAMDatabaseAuthentication"},
		{Name: "bad target server", Metadata: map[string]string{"DBInstanceIdentifier": "db", "TargetServer": "Bad Server"}, Key: "TargetServer"},
		{Name: "duplicate key", Metadata: map[string]string{"DBInstanceIdentifier": "db", "engine": "postgres", "Engine": "postgres"}, Key: "engine"},
	}
}

func (h *pgHarness) ValidMetadata() map[string]string {
	return map[string]string{"DBInstanceIdentifier": "restored-db", "Engine": "postgres", "DBInstanceClass": "db.t3.micro",
		"MultiAZ": "false", "AvailabilityZone": "us-east-1a", "VpcSecurityGroupIds": "sg-0123456789abcdef0", "StorageType": "gp3"}
}
