// Package pgdb is the resource plugin of PostgreSQL databases, AWS resource
// type RDS: a database is one PostgreSQL database on a configured server
// (config database_servers[] and databases[], or created by a restore).
//
// A backup is a consistent logical dump taken in one exported snapshot:
// the schema by pg_dump (custom format, pre-data and post-data sections)
// and every table's rows by COPY, one stream per table in primary-key
// order, chunked with small chunks so that a few changed rows dirty little;
// per-table row counts and content checksums are computed in the same
// snapshot. A restore creates the database under a temporary name, loads
// it, verifies every table against the recorded counts and checksums and
// renames it inside the transaction that completes the job. See
// docs/design/postgres-databases.md.
package pgdb

import (
	"strings"

	"coffer/internal/backup"
)

// ResourceType is the AWS resource type of databases.
const ResourceType = "RDS"

// Attributes of a database resource.
const (
	AttrServer   = "server"   // the database_servers[].id it lives on
	AttrDatabase = "database" // its PostgreSQL database name
)

// ARN is a database's ARN.
func ARN(region, account, id string) string {
	return "arn:aws:rds:" + region + ":" + account + ":db:" + id
}

// ParseARN splits arn:aws:rds:REGION:ACCOUNT:db:ID. The id is not checked
// against the identifier rule (an unknown id is a missing resource).
func ParseARN(arn string) (region, account, id string, ok bool) {
	rest, found := strings.CutPrefix(arn, "arn:aws:rds:")
	if !found {
		return "", "", "", false
	}
	p := strings.SplitN(rest, ":", 4)
	if len(p) != 4 || p[0] == "" || p[1] == "" || p[2] != "db" || p[3] == "" || strings.ContainsAny(p[3], ":/") {
		return "", "", "", false
	}
	return p[0], p[1], p[3], true
}

// ValidIdentifier reports whether id is an RDS DB identifier: 1 to 63
// letters, digits and hyphens, starting with a letter, without a trailing
// hyphen or two hyphens in a row (config.ValidDBIdentifier is the same
// rule for the config file).
func ValidIdentifier(id string) bool {
	if len(id) < 1 || len(id) > 63 || strings.HasSuffix(id, "-") || strings.Contains(id, "--") {
		return false
	}
	for i, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case (c >= '0' && c <= '9' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// NewResource is the resource of a database named database on server.
func NewResource(region, account, id, server, database string, tags map[string]string) *backup.Resource {
	return &backup.Resource{AccountID: account, Region: region, Type: ResourceType, ID: id, Arn: ARN(region, account, id),
		Name: id, Tags: tags, Attrs: map[string]string{AttrServer: server, AttrDatabase: database}}
}
