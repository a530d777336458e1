package pgdb

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// userNamespaces selects the namespaces a dump covers (n is pg_namespace).
const userNamespaces = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

// notExtensionMember excludes objects of extensions (their data is the
// extension's; pg_dump does not dump it either). obj is the object's oid
// expression, cls its catalog.
func notExtensionMember(obj, cls string) string {
	return fmt.Sprintf(`NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '%s'::regclass AND d.objid = %s AND d.deptype = 'e')`, cls, obj)
}

// dbFacts are the database-wide facts recorded with a backup.
type dbFacts struct {
	Encoding, Collate, CType string
	Size                     int64
}

func readFacts(ctx context.Context, c *pgx.Conn) (dbFacts, error) {
	var f dbFacts
	err := c.QueryRow(ctx, `SELECT pg_encoding_to_char(d.encoding), d.datcollate::text, d.datctype::text, pg_database_size(d.oid)
		FROM pg_database d WHERE d.datname = current_database()`).Scan(&f.Encoding, &f.Collate, &f.CType, &f.Size)
	return f, err
}

// tableInfo is a table to dump with its estimated size.
type tableInfo struct {
	Table
	estimate int64 // heap and TOAST bytes
}

// listTables lists the tables whose rows a dump holds: ordinary tables
// (leaf partitions included, partitioned parents hold none) and unlogged
// ones, of user schemas, not of extensions, sorted by schema and name
// (bytes).
func listTables(ctx context.Context, c *pgx.Conn) ([]tableInfo, error) {
	rows, err := c.Query(ctx, `SELECT n.nspname, c.relname,
		array(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum),
		array(SELECT a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
			FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
		coalesce((SELECT array(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
			JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord)
			FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), '{}'),
		pg_relation_size(c.oid) + coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0),
		array(SELECT ci.relname::text FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid WHERE i.indrelid = c.oid ORDER BY 1),
		array(SELECT k.conname::text FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype IN ('p', 'u', 'x') ORDER BY 1),
		`+streamCheckableSQL+`
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence <> 't' AND `+userNamespaces+` AND `+notExtensionMember("c.oid", "pg_class"))
	if err != nil {
		return nil, err
	}
	var out []tableInfo
	for rows.Next() {
		var t tableInfo
		var sig []string
		if err := rows.Scan(&t.Schema, &t.Name, &t.Columns, &sig, &t.Order, &t.estimate, &t.Indexes, &t.Constraints, &t.streamCheckable); err != nil {
			return nil, err
		}
		t.Signature = strings.Join(sig, ", ")
		if len(t.Order) == 0 {
			t.Order = nil
		}
		if t.Columns == nil {
			t.Columns = []string{}
		}
		if len(t.Indexes) == 0 {
			t.Indexes = nil
		}
		if len(t.Constraints) == 0 {
			t.Constraints = nil
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Schema != out[j].Schema {
			return out[i].Schema < out[j].Schema
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// streamCheckableSQL says whether a table's COPY stream can stand for its
// rows (Table.streamCheckable): no generated column (COPY leaves it out,
// the row's text has it), and every column's type, down through array
// elements, domains' base types, composites' fields and ranges' subtypes,
// read by a built-in input function (what COPY FROM stores is then what
// the source's output function wrote, under sessionSettings), money
// excepted (its text follows lc_monetary, which sessions do not fix) and
// multiranges (their range types are not followed).
const streamCheckableSQL = `NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> '')
		AND NOT EXISTS (WITH RECURSIVE ty(oid) AS (
			SELECT a.atttypid FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
			UNION
			SELECT x.oid FROM ty JOIN pg_type t ON t.oid = ty.oid, LATERAL (
				SELECT t.typelem UNION ALL SELECT t.typbasetype
				UNION ALL SELECT f.atttypid FROM pg_attribute f WHERE f.attrelid = t.typrelid AND f.attnum > 0 AND NOT f.attisdropped
				UNION ALL SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid) x(oid)
			WHERE x.oid <> 0)
		SELECT 1 FROM ty JOIN pg_type t ON t.oid = ty.oid
		WHERE t.typinput::oid >= 16384 OR t.oid = 'money'::regtype OR t.typtype = 'm')`

// listSequences reads every sequence's state in the transaction (as
// pg_dump does; sequences are not transactional, so a value may be ahead
// of the snapshot, never behind).
func listSequences(ctx context.Context, c *pgx.Conn) ([]Sequence, error) {
	rows, err := c.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'S' AND `+userNamespaces+` AND `+notExtensionMember("c.oid", "pg_class"))
	if err != nil {
		return nil, err
	}
	seqs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Sequence, error) {
		var s Sequence
		err := r.Scan(&s.Schema, &s.Name)
		return s, err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(seqs, func(i, j int) bool {
		if seqs[i].Schema != seqs[j].Schema {
			return seqs[i].Schema < seqs[j].Schema
		}
		return seqs[i].Name < seqs[j].Name
	})
	for i := range seqs {
		s := &seqs[i]
		if err := c.QueryRow(ctx, "SELECT last_value, is_called FROM "+ident(s.Schema, s.Name)).Scan(&s.LastValue, &s.IsCalled); err != nil {
			return nil, fmt.Errorf("sequence %s.%s: %w", s.Schema, s.Name, err)
		}
	}
	return seqs, nil
}

// listRoles lists the roles the dump's privileges name: grantees other
// than the grantor (an owner's own privileges are not dumped as grants)
// and owners of default privileges; built-in pg_ roles and PUBLIC are not
// listed.
func listRoles(ctx context.Context, c *pgx.Conn) ([]string, error) {
	rows, err := c.Query(ctx, `WITH acls AS (
		SELECT c.relacl AS acl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relacl IS NOT NULL AND `+userNamespaces+`
		UNION ALL SELECT a.attacl FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE a.attacl IS NOT NULL AND `+userNamespaces+`
		UNION ALL SELECT n.nspacl FROM pg_namespace n WHERE n.nspacl IS NOT NULL AND `+userNamespaces+`
		UNION ALL SELECT p.proacl FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proacl IS NOT NULL AND `+userNamespaces+`
		UNION ALL SELECT t.typacl FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typacl IS NOT NULL AND `+userNamespaces+`
		UNION ALL SELECT lomacl FROM pg_largeobject_metadata WHERE lomacl IS NOT NULL
		UNION ALL SELECT defaclacl FROM pg_default_acl
		UNION ALL SELECT fdwacl FROM pg_foreign_data_wrapper WHERE fdwacl IS NOT NULL
		UNION ALL SELECT srvacl FROM pg_foreign_server WHERE srvacl IS NOT NULL
	), grantees AS (
		SELECT e.grantee AS g, e.grantor AS gr FROM acls, aclexplode(acls.acl) e
	)
	SELECT r.rolname::text FROM grantees x JOIN pg_roles r ON r.oid = x.g WHERE x.g <> x.gr
	UNION SELECT r.rolname::text FROM pg_default_acl d JOIN pg_roles r ON r.oid = d.defaclrole`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, n := range names {
		if !strings.HasPrefix(n, "pg_") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Checksum methods of a table (Table.ChecksumMethod).
const (
	// ChecksumRecord hashes each row with the hash functions of its
	// columns' types (hash_record_extended), fast; tables with a column
	// type without hash support use ChecksumText.
	ChecksumRecord = "record"
	// ChecksumText hashes each row's text form (hashtextextended).
	ChecksumText = "text"
)

// checksumSQL computes a table's row count and content checksum: the
// count and the sum over the rows of a 64-bit hash of each row, mixed
// (hashint8extended) so that the sum is a multiset hash: independent of
// row order, sensitive to any change of a row (ChecksumAlgorithm).
func checksumSQL(t *Table, method string) string {
	row := "hash_record_extended(t, 0)"
	if method == ChecksumText {
		row = "hashtextextended(t::text, 0)"
	}
	return `SELECT count(*), coalesce(sum(hashint8extended(` + row + `, 1)), 0)::text FROM ONLY ` + ident(t.Schema, t.Name) + ` t`
}

// largeObjectsSQL is the count and checksum of every large object (its
// oid and content), as checksumSQL computes them for rows.
const largeObjectsSQL = `SELECT count(*), coalesce(sum(hashint8extended(hashtextextended(m.oid::text, 0) # hashtextextended(md5(lo_get(m.oid)), 0), 1)), 0)::text
	FROM pg_largeobject_metadata m`

// checksumProbesSQL computes the checksum methods' hashes of fixed values:
// equal on two servers, their checksums are comparable (hash functions
// depend on the byte order of the machine).
const checksumProbesSQL = `SELECT hashint8extended(hash_record_extended(ROW(1::int, 'coffer'::text, 1.5::numeric, '2000-01-01'::date, '{1,2}'::int[]), 0), 1)::text,
	hashint8extended(hashtextextended('coffer', 0), 1)::text`

// copyOutSQL copies a table's rows in the manifest's order.
func copyOutSQL(t *Table) string {
	if len(t.Columns) == 0 {
		return "COPY " + ident(t.Schema, t.Name) + " TO STDOUT"
	}
	cols := identList(t.Columns)
	if len(t.Order) == 0 {
		return "COPY " + ident(t.Schema, t.Name) + " (" + cols + ") TO STDOUT"
	}
	return "COPY (SELECT " + cols + " FROM ONLY " + ident(t.Schema, t.Name) + " ORDER BY " + identList(t.Order) + ") TO STDOUT"
}

// copyInSQL loads a table's rows.
func copyInSQL(t *Table) string {
	if len(t.Columns) == 0 {
		return "COPY " + ident(t.Schema, t.Name) + " FROM STDIN"
	}
	return "COPY " + ident(t.Schema, t.Name) + " (" + identList(t.Columns) + ") FROM STDIN"
}

func identList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = ident(n)
	}
	return strings.Join(q, ", ")
}
