package pgdb

// SetHooks installs test hooks: afterSnapshot runs once a backup's
// snapshot is taken, beforeTable before a backup dumps or a restore loads
// a table.
func SetHooks(p *Plugin, afterSnapshot func(), beforeTable func(table string)) {
	p.hooks = hooks{afterSnapshot: afterSnapshot, beforeTable: beforeTable}
}

// NormalizeArchive exposes normalizeArchive.
var NormalizeArchive = normalizeArchive
