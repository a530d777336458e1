// Package crashtest holds the crash campaign (issue 14 defect 10,
// reliability note section 4 "Random kill -9"): one seeded run that kills
// `coffer serve` with SIGKILL at random moments while backups (full and
// incremental), restores (to a new and to an existing file system), copies,
// recovery point deletions and lifecycle expiry with prune run, restarts
// it, and after every kill checks that every vault verifies with
// `coffer vault check --read-data`, that no job of a killed server stays
// unfinished past its lease, and that every recovery point restores
// identical to the source it was taken from.
//
// The default run (go test ./..., CI) kills 25 times; COFFER_CRASH_KILLS
// sets another count (300 for the long run), COFFER_CRASH_SEED the seed:
//
//	COFFER_CRASH_KILLS=300 go test -run TestCrashCampaign -timeout 90m -v ./internal/crashtest/
//
// The package has no code outside its tests.
package crashtest
