package pgdb_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/config"
	"coffer/internal/resource"
	"coffer/internal/resource/pgdb"
)

func TestARN(t *testing.T) {
	arn := pgdb.ARN("eu-west-1", "123456789012", "orders")
	if arn != "arn:aws:rds:eu-west-1:123456789012:db:orders" {
		t.Fatal(arn)
	}
	if r, a, id, ok := pgdb.ParseARN(arn); !ok || r != "eu-west-1" || a != "123456789012" || id != "orders" {
		t.Fatalf("%s %s %s %v", r, a, id, ok)
	}
	for _, bad := range []string{"", "arn:aws:rds:eu-west-1:123456789012:cluster:c", "arn:aws:rds:eu-west-1:123456789012:db:", "arn:aws:rds::123456789012:db:x",
		"arn:aws:rds:eu-west-1:123456789012:db:a/b", "arn:aws:rds:eu-west-1:123456789012:db:a:b", "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-1"} {
		if _, _, _, ok := pgdb.ParseARN(bad); ok {
			t.Errorf("ParseARN(%q) accepted", bad)
		}
	}
}

// The plugin and the config file apply one identifier rule.
func TestIdentifierRuleMatchesConfig(t *testing.T) {
	for _, id := range []string{"a", "orders", "Orders-2", "a-b-c", strings.Repeat("x", 63), strings.Repeat("x", 64), "", "1a", "a-", "a--b",
		"a_b", "a.b", "-a", "é", "a b", "A"} {
		if pgdb.ValidIdentifier(id) != config.ValidDBIdentifier(id) {
			t.Errorf("%q: plugin %v, config %v", id, pgdb.ValidIdentifier(id), config.ValidDBIdentifier(id))
		}
	}
}

// Metadata keys are case-insensitive; the identifier is lower-cased (RDS
// identifiers are); recorded keys keep their values; the encoded metadata
// decodes to the same spec.
func TestMetadata(t *testing.T) {
	p := &pgdb.Plugin{}
	spec, err := p.DecodeRestoreMetadata(map[string]string{"dbinstanceidentifier": "New-Orders", "ENGINE": "postgres", "TargetServer": "pg-2",
		"Port": "5433", "DBInstanceClass": "db.r6g.large", "MultiAZ": "False", "VpcSecurityGroupIds": `["sg-0123456789abcdef0"]`,
		"aws:backup:request-id": "abc", "PubliclyAccessible": "TRUE"})
	if err != nil {
		t.Fatal(err)
	}
	if !spec.Target.New || spec.Target.ID != "new-orders" || spec.Settings["TargetServer"] != "pg-2" || spec.Settings["Port"] != "5433" ||
		spec.Settings["DBInstanceClass"] != "db.r6g.large" || spec.Settings["MultiAZ"] != "false" || spec.Settings["PubliclyAccessible"] != "true" ||
		spec.Settings["Engine"] != "postgres" {
		t.Fatalf("spec %+v", spec)
	}
	rp := &backup.RecoveryPoint{ResourceArn: pgdb.ARN("us-east-1", "111111111111", "orders")}
	again, err := p.DecodeRestoreMetadata(p.EncodeRestoreMetadata(rp, spec))
	if err != nil || again.Target != spec.Target || len(again.Settings) != len(spec.Settings) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
	md := p.RestoreMetadata(rp)
	if md["DBInstanceIdentifier"] != "orders" || md["Engine"] != "postgres" {
		t.Fatalf("GetRecoveryPointRestoreMetadata: %v", md)
	}
	// A typed spec from another front end is held to the same rules.
	for _, bad := range []*backup.RestoreSpec{
		{Target: backup.RestoreTarget{ID: "x"}},
		{Target: backup.RestoreTarget{New: true, ID: "x", Path: "/a"}},
		{Target: backup.RestoreTarget{New: true, ID: "x"}, Items: []string{"/t"}},
		{Target: backup.RestoreTarget{New: true, ID: "1x"}},
		{Target: backup.RestoreTarget{New: true, ID: "x"}, Settings: map[string]string{"Bogus": "1"}},
	} {
		err := p.CheckRestore(context.Background(), resource.RestoreCheck{Spec: bad, RecoveryPoint: rp,
			Snapshot: func(context.Context) (resource.Snapshot, error) {
				t.Fatalf("spec %+v: checked against the snapshot", bad)
				return resource.Snapshot{}, nil
			}})
		if !backup.IsCode(err, backup.CodeInvalidParameter) {
			t.Errorf("spec %+v: %v", bad, err)
		}
	}
	var be *backup.Error
	_, err = pgdb.ParseMetadata(map[string]string{"DBInstanceIdentifier": "x", "Frobnicate": "1"})
	if !errors.As(err, &be) || be.Context != "Frobnicate" || !strings.Contains(be.Message, "DBInstanceIdentifier") {
		t.Errorf("unknown key: %v", err)
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add("DBInstanceIdentifier", "db", "Engine", "postgres")
	f.Add("dbinstanceidentifier", "A-b", "Port", "5432")
	f.Add("DBInstanceIdentifier", "db", "VpcSecurityGroupIds", `["sg-01234567"]`)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		md, err := pgdb.ParseMetadata(map[string]string{k1: v1, k2: v2})
		if err != nil {
			var be *backup.Error
			if !errors.As(err, &be) || be.Code != backup.CodeInvalidParameter || be.Context == "" {
				t.Fatalf("error %v is not an InvalidParameter naming a key", err)
			}
			return
		}
		if !pgdb.ValidIdentifier(md.Identifier) || md.Identifier != strings.ToLower(md.Identifier) {
			t.Fatalf("accepted identifier %q", md.Identifier)
		}
		if _, err := pgdb.ParseMetadata(map[string]string{"DBInstanceIdentifier": md.Identifier}); err != nil {
			t.Fatal(err)
		}
	})
}

// normalizeArchive fixes the creation time of custom-format archives of
// every supported version and passes anything else through.
func TestNormalizeArchive(t *testing.T) {
	header := func(vmin byte, comp []byte, ts byte) []byte {
		b := []byte("PGDMP")
		b = append(b, 1, vmin, 0, 4, 8, 1)
		b = append(b, comp...)
		for i := 0; i < 7; i++ {
			b = append(b, 0, ts+byte(i), 0, 0, 0)
		}
		return append(b, "rest of the archive"...)
	}
	for _, vmin := range []byte{14, 15, 16} {
		comp := []byte{0, 0, 0, 0, 0}
		if vmin >= 15 {
			comp = []byte{0}
		}
		a, b := header(vmin, comp, 10), header(vmin, comp, 40)
		na, nb := normalize(t, a), normalize(t, b)
		if !bytes.Equal(na, nb) || bytes.Equal(na, a) || len(na) != len(a) || !bytes.HasSuffix(na, []byte("rest of the archive")) {
			t.Errorf("version 1.%d: %x / %x", vmin, na, nb)
		}
	}
	for _, other := range [][]byte{[]byte("PGDMP\x01\x09\x00\x04\x08\x01rest"), []byte("PGDMP\x02\x00")} {
		if got := normalize(t, other); !bytes.Equal(got, other) {
			t.Errorf("%q changed to %q", other, got)
		}
	}
	if _, err := pgdb.NormalizeArchive(strings.NewReader("not an archive")); err == nil {
		t.Error("plain text accepted as an archive")
	}
}

func normalize(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := pgdb.NormalizeArchive(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzNormalizeArchive(f *testing.F) {
	f.Add([]byte("PGDMP\x01\x0e\x00\x04\x08\x01\x00\x00\x00\x00\x00"))
	f.Add([]byte("PGDMP\x01\x0f\x00\x04\x08\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := pgdb.NormalizeArchive(bytes.NewReader(b))
		if err != nil {
			return
		}
		out, err := io.ReadAll(r)
		if err == nil && len(out) != len(b) {
			t.Fatalf("length changed: %d to %d", len(b), len(out))
		}
	})
}
