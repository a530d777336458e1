package pgdb

// SetHooks installs test hooks: afterSnapshot runs once a backup's
// snapshot is taken, beforeTable before a backup dumps or a restore loads
// a table.
func SetHooks(p *Plugin, afterSnapshot func(), beforeTable func(table string)) {
	p.hooks.afterSnapshot, p.hooks.beforeTable = afterSnapshot, beforeTable
}

// SetPreviousFormat makes p's backups as before Table.StreamCheck (the
// per-column checksum method, no stream checked): recovery points of the
// previous format.
func SetPreviousFormat(p *Plugin) { p.hooks.noStreamCheck = true }

// NormalizeArchive exposes normalizeArchive.
var NormalizeArchive = normalizeArchive
