package pgdb

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/repository/chunker"
	"coffer/internal/resource"
)

// Plugin is the PostgreSQL database resource plugin.
type Plugin struct {
	// Servers are the configured database servers.
	Servers []Server
	// ReservedIDs are the configured databases' identifiers (of every
	// account): a restore may not create a database under one.
	ReservedIDs []string
	// BinDirs are where pg_dump and pg_restore are looked for; empty:
	// DefaultBinDirs and PATH. The highest version found is used.
	BinDirs []string
	// Workers is how many tables a backup or restore moves at once, each
	// on its own connection (0: 2).
	Workers int
	// ChunkSize are the chunk sizes of new databases' streams (zero:
	// DefaultChunkSize). A database keeps the sizes of its first backup.
	ChunkSize chunker.Params
	// TempDir holds a restore's post-data schema archive (DDL only, no
	// rows) while pg_restore builds indexes and constraints from it in
	// parallel; "" is the system's temporary directory.
	TempDir string
	// Log, when set, receives one line per backup and restore.
	Log *slog.Logger

	hooks hooks
}

// hooks let tests act at fixed points of a backup or restore.
type hooks struct {
	// afterSnapshot runs once the backup's snapshot is taken.
	afterSnapshot func()
	// beforeTable runs before a backup dumps (or a restore loads) a table.
	beforeTable func(table string)
	// noStreamCheck makes backups as before Table.StreamCheck: the
	// per-column checksum method, no stream checked.
	noStreamCheck bool
}

var (
	_ resource.Plugin         = (*Plugin)(nil)
	_ resource.StagingCleaner = (*Plugin)(nil)
)

// Type returns RDS.
func (p *Plugin) Type() string { return ResourceType }

// ParseARN parses a database ARN.
func (p *Plugin) ParseARN(arn string) (resource.Ref, bool) {
	region, account, id, ok := ParseARN(arn)
	return resource.Ref{Region: region, Account: account, ID: id}, ok
}

// ARN formats a database ARN.
func (p *Plugin) ARN(region, account, id string) string { return ARN(region, account, id) }

// CheckBackupOptions rejects every option (AWS defines none for RDS).
func (p *Plugin) CheckBackupOptions(opts map[string]string) error {
	for k := range opts {
		return backup.InvalidParam("BackupOptions", "Backup option %q is not supported for resource type RDS", backup.Truncate(k, 80))
	}
	return nil
}

// Capabilities: whole databases into new databases.
func (p *Plugin) Capabilities() resource.Capabilities {
	return resource.Capabilities{NewTarget: true, ItemNoun: "table"}
}

// DecodeRestoreMetadata parses RDS restore metadata.
func (p *Plugin) DecodeRestoreMetadata(m map[string]string) (*backup.RestoreSpec, error) {
	md, err := ParseMetadata(m)
	if err != nil {
		return nil, err
	}
	return md.Spec(), nil
}

// EncodeRestoreMetadata is the metadata a restore of spec runs with.
func (p *Plugin) EncodeRestoreMetadata(_ *backup.RecoveryPoint, spec *backup.RestoreSpec) map[string]string {
	return encode(spec)
}

// RestoreMetadata is GetRecoveryPointRestoreMetadata: the source's
// identifier and engine; send it back with a new DBInstanceIdentifier.
func (p *Plugin) RestoreMetadata(rp *backup.RecoveryPoint) map[string]string {
	_, _, id, _ := ParseARN(rp.ResourceArn)
	return map[string]string{KeyDBInstanceIdentifier: id, KeyEngine: EnginePostgres}
}

func (p *Plugin) server(id string) (*Server, bool) {
	for i := range p.Servers {
		if p.Servers[i].ID == id {
			return &p.Servers[i], true
		}
	}
	return nil, false
}

func (p *Plugin) workers() int {
	if p.Workers > 0 {
		return p.Workers
	}
	return 2
}

func (p *Plugin) chunkSize() chunker.Params {
	if p.ChunkSize != (chunker.Params{}) {
		return p.ChunkSize
	}
	return DefaultChunkSize
}

func (p *Plugin) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

// reserved reports whether id is a configured database's identifier.
func (p *Plugin) reserved(id string) bool {
	for _, r := range p.ReservedIDs {
		if strings.EqualFold(r, id) {
			return true
		}
	}
	return false
}

// targetServer is the server a restore creates its database on.
func (p *Plugin) targetServer(md *Metadata, src *Manifest) (*Server, error) {
	id := md.TargetServer
	if id == "" {
		id = src.SourceServer
	}
	s, ok := p.server(id)
	if !ok {
		if md.TargetServer != "" {
			return nil, backup.InvalidParam(KeyTargetServer, "Metadata key %s: no database server %q is configured", KeyTargetServer, backup.Truncate(id, 40))
		}
		return nil, backup.InvalidParam(KeyTargetServer, "Metadata key %s: the recovery point's server %q is no longer configured; name a configured server with %s",
			KeyTargetServer, backup.Truncate(id, 40), KeyTargetServer)
	}
	if md.Port != 0 && md.Port != s.Port {
		return nil, backup.InvalidParam(KeyPort, "Metadata key %s: the database is created on server %s, which listens on port %d, not %d", KeyPort, s.ID, s.Port, md.Port)
	}
	return s, nil
}

// CheckRestore validates the metadata, the target server and that the
// identifier is free: no configured database, no resource of the caller
// and no database of the target server has it (case-insensitively). It
// reads the recovery point's manifest. A server that cannot be reached is
// not an error here: the job then fails naming it.
func (p *Plugin) CheckRestore(ctx context.Context, req resource.RestoreCheck) error {
	md, err := checkSpec(req.Spec)
	if err != nil {
		return err
	}
	snap, err := req.Snapshot(ctx)
	if err != nil {
		return err
	}
	st, err := load(ctx, snap.Loader, snap.Root)
	if err != nil {
		return &backup.Error{Code: backup.CodeUnavailable, Message: "cannot read recovery point " + req.RecoveryPoint.Arn, Err: err}
	}
	srv, err := p.targetServer(md, st.man)
	if err != nil {
		return err
	}
	taken := func(where string) error {
		return backup.InvalidParam(KeyDBInstanceIdentifier, "Metadata key %s: database %s already exists (%s); restores never replace a database, choose a new identifier",
			KeyDBInstanceIdentifier, md.Identifier, where)
	}
	if p.reserved(md.Identifier) {
		return taken("a configured database")
	}
	if _, err := req.Resources.GetResource(ctx, ResourceType, md.Identifier); err == nil {
		return taken("a database of this account")
	} else if !backup.IsCode(err, backup.CodeNotFound) {
		return err
	}
	exists, err := srv.databaseExists(ctx, md.Identifier)
	if err != nil {
		p.log().Warn("restore check: database server unreachable; the restore job will check again", "server", srv.ID, "err", err)
		return nil
	}
	if exists {
		return taken("on server " + srv.ID)
	}
	return nil
}

// databaseExists reports whether the server has a database named name,
// compared case-insensitively.
func (s *Server) databaseExists(ctx context.Context, name string) (bool, error) {
	c, err := s.maintenance(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE lower(datname) = lower($1)", name).Scan(&n); err != nil {
		return false, s.queryError(err, "list databases")
	}
	return n > 0, nil
}

// restoreError carries a failed restore's message and its kind.
type restoreError struct {
	kind error
	msg  string
}

func (e *restoreError) Error() string { return e.msg }
func (e *restoreError) Unwrap() error { return e.kind }

func failed(kind error, format string, args ...any) error {
	return &restoreError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
