package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/config"
	"coffer/internal/repository"
	"coffer/internal/repository/blob"
	"coffer/internal/repository/maintenance"
	"coffer/internal/store"
)

const vaultUsage = `usage: coffer vault check --config FILE --vault NAME [--account ID] [--read-data]
       coffer vault repair-index --config FILE --vault NAME [--account ID] [--apply]
       coffer vault prune --config FILE --vault NAME [--account ID] [--dry-run]`

// Exit codes of the vault admin commands.
const (
	vaultExitClean    = 0 // no damage found (warnings allowed)
	vaultExitProblems = 1 // damage found or left, or the command failed
	vaultExitUsage    = 2 // bad usage or unknown vault
)

// usageError is a mistake of the caller (flags, vault name): exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// vaultAdmin runs `coffer vault SUBCOMMAND`: offline administration of one
// vault's repository, opened directly from the server's configuration
// (same data dir, master key and vault storage as `coffer serve`).
func vaultAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "coffer: "+vaultUsage)
		return vaultExitUsage
	}
	var (
		code int
		err  error
	)
	switch args[0] {
	case "check":
		code, err = vaultCheck(ctx, args[1:], stdout, stderr)
	case "repair-index":
		code, err = vaultRepairIndex(ctx, args[1:], stdout, stderr)
	case "prune":
		code, err = vaultPrune(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, vaultUsage)
		return vaultExitClean
	default:
		err = &usageError{fmt.Sprintf("unknown vault command %q", args[0])}
	}
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "coffer: vault %s: %s\n%s\n", args[0], ue.msg, vaultUsage)
		return vaultExitUsage
	case errors.Is(err, flag.ErrHelp):
		return vaultExitClean
	case err != nil:
		fmt.Fprintf(stderr, "coffer: vault %s: %v\n", args[0], err)
		return vaultExitProblems
	}
	return code
}

// vaultFlags are the flags every vault admin command takes.
type vaultFlags struct {
	fs      *flag.FlagSet
	config  string
	vault   string
	account string
}

func newVaultFlags(name string, stderr io.Writer) *vaultFlags {
	f := &vaultFlags{fs: flag.NewFlagSet("vault "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.config, "config", "", "YAML configuration file of the server (default: the zero-config data dir "+config.DefaultDataDir+")")
	f.fs.StringVar(&f.vault, "vault", "", "name of the backup vault")
	f.fs.StringVar(&f.account, "account", "", "account that owns the vault (needed when several accounts have a vault of that name)")
	return f
}

func (f *vaultFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{err.Error()}
	}
	if f.fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q", f.fs.Arg(0))}
	}
	if f.vault == "" {
		return &usageError{"--vault is required"}
	}
	return nil
}

// openedVault is one vault's repository, opened for administration.
type openedVault struct {
	vault    *backup.Vault
	location string
	repo     *repository.Repository
	close    func() error
}

// openVault loads the configuration, finds the vault in the metadata
// store and opens its repository the way `coffer serve` does, but
// creates nothing: a missing data dir, database or master key is an error.
func openVault(ctx context.Context, f *vaultFlags, stderr io.Writer) (*openedVault, error) {
	var cfg *config.Config
	if f.config == "" {
		// Zero-config mode's layout, without generating credentials.
		cfg = &config.Config{DataDir: config.DefaultDataDir, Region: config.DefaultRegion,
			Accounts: []config.Account{{ID: config.DefaultAccountID}}}
	} else {
		var err error
		if cfg, err = config.Load(f.config); err != nil {
			return nil, err
		}
	}
	if fi, err := os.Stat(cfg.DataDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("data_dir %s is not a directory (is --config right?)", cfg.DataDir)
	}
	if !cfg.UsesPostgres() {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, config.MetadataDBFile)); err != nil {
			return nil, fmt.Errorf("no metadata database: %w", err)
		}
	}
	keys, err := loadSecrets(cfg, false)
	if err != nil {
		return nil, err
	}
	master := keys.master
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	v, err := findVault(ctx, cfg, log, f.vault, f.account)
	if err != nil {
		return nil, err
	}
	repos, err := openVaultRepos(cfg, master, repository.Options{Clock: clock.Real{}, Logger: log}, log)
	if err != nil {
		return nil, err
	}
	loc, err := repos.Location(v)
	if err != nil {
		repos.Close()
		return nil, err
	}
	repo, err := repos.Open(ctx, v)
	if err != nil {
		repos.Close()
		var be *backup.Error
		if errors.As(err, &be) && be.Code == backup.CodeNotFound {
			return nil, fmt.Errorf("vault %s exists in the metadata store but has no repository at %s", v.Name, loc)
		}
		return nil, err
	}
	return &openedVault{vault: v, location: loc, repo: repo, close: repos.Close}, nil
}

// findVault looks the vault up by name in the configured accounts (or in
// the one given) in the configured region.
func findVault(ctx context.Context, cfg *config.Config, log *slog.Logger, name, account string) (*backup.Vault, error) {
	accounts := []string{account}
	if account == "" {
		accounts = accounts[:0]
		for _, a := range cfg.Accounts {
			accounts = append(accounts, a.ID)
		}
	}
	st, err := openMetadata(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var found []*backup.Vault
	err = st.Read(ctx, func(tx store.Tx) error {
		for _, a := range accounts {
			v, err := tx.GetVault(ctx, store.Scope{AccountID: a, Region: cfg.Region}, name)
			var be *backup.Error
			if errors.As(err, &be) && be.Code == backup.CodeNotFound {
				continue
			}
			if err != nil {
				return err
			}
			found = append(found, v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up vault %q: %w", name, err)
	}
	switch len(found) {
	case 0:
		return nil, &usageError{fmt.Sprintf("vault %q not found in region %s (accounts %s)", name, cfg.Region, strings.Join(accounts, ", "))}
	case 1:
		return found[0], nil
	}
	var owners []string
	for _, v := range found {
		owners = append(owners, v.AccountID)
	}
	sort.Strings(owners)
	return nil, &usageError{fmt.Sprintf("vault %q exists in accounts %s; choose one with --account", name, strings.Join(owners, ", "))}
}

// open parses args (after the command defined its own flags), opens the
// vault and prints the report header.
func (f *vaultFlags) open(ctx context.Context, args []string, stdout, stderr io.Writer) (*openedVault, error) {
	if err := f.parse(args); err != nil {
		return nil, err
	}
	o, err := openVault(ctx, f, stderr)
	if err != nil {
		return nil, err
	}
	o.header(stdout)
	return o, nil
}

func (o *openedVault) header(w io.Writer) {
	fmt.Fprintf(w, "vault %s (account %s, region %s)\nrepository %s\n", o.vault.Name, o.vault.AccountID, o.vault.Region, o.location)
}

// checkVerdict prints the check report and its verdict and returns the
// exit code. hint is printed after the verdict when index files are
// damaged; affected lists the resources whose recovery points reference
// damaged blobs (for the hint on healing them).
func checkVerdict(w io.Writer, rep *maintenance.Report, readData bool, hint string, affected []string) int {
	_, _ = io.WriteString(w, rep.String())
	if rep.Recorded > 0 {
		fmt.Fprintf(w, "recorded %d damaged blob copies: the next backup that meets their content stores it again\n", rep.Recorded)
	}
	n := damageCount(rep)
	what := "structure"
	if readData {
		what = "structure and data"
	}
	if n == 0 {
		fmt.Fprintf(w, "OK: no damage found (%s checked)\n", what)
		if len(rep.HealedBlobs) > 0 {
			fmt.Fprintf(w, "note: %d damaged blob copies have intact copies (stored again by later backups); `coffer vault prune` removes the damaged copies once their packs are older than the 24 h grace period\n", len(rep.HealedBlobs))
		}
		return vaultExitClean
	}
	fmt.Fprintf(w, "PROBLEMS: %d damaged objects (%s checked)\n", n, what)
	if len(rep.DamagedIndexes) > 0 && hint != "" {
		fmt.Fprintln(w, "hint: "+hint)
	}
	if len(rep.DamagedBlobs) > 0 {
		fmt.Fprintln(w, "hint: damaged blobs are recorded in the vault, so the next backup of their content stores it again instead of referring to the damage.")
		fmt.Fprintln(w, "      To heal, back up the affected resources again: the new recovery points are complete, and older ones that")
		fmt.Fprintln(w, "      reference the same content read the intact copy. Then `coffer vault prune` removes the damaged packs once")
		fmt.Fprintln(w, "      nothing needs them (after the 24 h grace period). Content that no longer exists at the source stays lost.")
		for _, a := range affected {
			fmt.Fprintln(w, "      affected resource: "+a)
		}
	}
	return vaultExitProblems
}

// affectedResources returns the resource ARNs (from manifest labels) of the
// damaged manifests, each once, in order.
func affectedResources(ctx context.Context, repo *repository.Repository, rep *maintenance.Report) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range rep.DamagedManifests {
		m, err := repo.LoadManifest(ctx, strings.TrimPrefix(p.Object, repository.ManifestPrefix))
		if err != nil {
			continue
		}
		a := m.Labels[backup.LabelResourceArn]
		if a == "" {
			a = "(unlabelled recovery point " + m.ID + ")"
		} else if rp := m.Labels[backup.LabelRecoveryPointArn]; rp != "" {
			a += " (recovery point " + rp + ")"
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// damageCount counts the damaged objects of a check report (warnings are
// not damage).
func damageCount(rep *maintenance.Report) int {
	return len(rep.DamagedIndexes) + len(rep.DamagedPacks) + len(rep.DamagedBlobs) + len(rep.DamagedManifests)
}

const repairHint = "`coffer vault repair-index` shows what rebuilding the index from the packs would do; add --apply to write it"

// vaultCheck runs `coffer vault check`.
func vaultCheck(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	f := newVaultFlags("check", stderr)
	readData := f.fs.Bool("read-data", false, "also read, decrypt and verify every blob (reads the whole repository)")
	o, err := f.open(ctx, args, stdout, stderr)
	if err != nil {
		return 0, err
	}
	defer func() { _ = o.close() }()
	// Damaged blobs that reading finds are recorded, so that backups store
	// their content again (safe while coffer serve runs: a new object).
	rep, err := maintenance.Check(ctx, o.repo, maintenance.CheckOptions{ReadData: *readData, RecordDamage: *readData})
	if err != nil {
		return 0, err
	}
	return checkVerdict(stdout, rep, *readData, repairHint, affectedResources(ctx, o.repo, rep)), nil
}

// vaultRepairIndex runs `coffer vault repair-index`. By default it is a
// dry run: it reads every pack header, reports what a rebuild of the index
// would do, checks the current structure and writes no index file. With
// --apply it rebuilds the index from the pack headers, then checks the
// structure again.
func vaultRepairIndex(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	f := newVaultFlags("repair-index", stderr)
	apply := f.fs.Bool("apply", false, "write the rebuilt index (without it, only report what would be written)")
	o, err := f.open(ctx, args, stdout, stderr)
	if err != nil {
		return 0, err
	}
	defer func() { _ = o.close() }()
	rr, err := maintenance.RebuildIndex(ctx, o.repo, maintenance.RebuildOptions{DryRun: !*apply})
	if err != nil {
		return 0, err
	}
	if !*apply {
		return repairDryRunReport(ctx, stdout, o, rr)
	}
	fmt.Fprintf(stdout, "index rebuild: %s", rr)
	fmt.Fprintln(stdout, "check after the rebuild:")
	rep, err := maintenance.Check(ctx, o.repo, maintenance.CheckOptions{})
	if err != nil {
		return 0, err
	}
	code := checkVerdict(stdout, rep, false, "", affectedResources(ctx, o.repo, rep))
	if rr.IndexFilesWritten > 0 {
		fmt.Fprintln(stdout, "note: a running coffer serve keeps its old in-memory index until it restarts")
	}
	return code, nil
}

// repairDryRunReport prints what `repair-index --apply` would do, checks the
// repository as it is (nothing was written) and returns 1 when the check
// finds damage (a repair is needed), 0 when nothing needs repairing.
func repairDryRunReport(ctx context.Context, w io.Writer, o *openedVault, rr *maintenance.RebuildReport) (int, error) {
	fmt.Fprintf(w, "index rebuild (dry run): %d packs read, would index %d blobs, %d unreadable packs, would supersede %d index files\n",
		rr.PacksRead, rr.BlobsIndexed, len(rr.UnreadablePacks), rr.IndexFilesSuperseded)
	for _, p := range rr.DamagedIndexes {
		fmt.Fprintf(w, "damaged index (would be superseded): %s\n", p)
	}
	for _, p := range rr.UnreadablePacks {
		fmt.Fprintf(w, "unreadable pack (would be left in place): %s\n", p)
	}
	for _, m := range rr.Warnings {
		fmt.Fprintf(w, "warning: %s\n", m)
	}
	fmt.Fprintln(w, "check of the repository as it is:")
	rep, err := maintenance.Check(ctx, o.repo, maintenance.CheckOptions{})
	if err != nil {
		return 0, err
	}
	// The verdict is check's: damaged index files that a readable one
	// already supersedes (as after an applied rebuild) and unindexed packs
	// are warnings, not damage to repair.
	code := checkVerdict(w, rep, false, "", affectedResources(ctx, o.repo, rep))
	switch {
	case rr.PacksRead+rr.PacksCarried == 0 && rr.IndexFilesSuperseded == 0:
		fmt.Fprintln(w, "dry run: nothing written; the repository is empty, --apply would write nothing either")
	case code == vaultExitClean:
		fmt.Fprintln(w, "dry run: nothing written and nothing needs repairing; re-run with --apply to write the rebuilt index anyway")
	default:
		fmt.Fprintln(w, "dry run: nothing written; re-run with --apply to write the rebuilt index")
	}
	return code, nil
}

// vaultPrune runs `coffer vault prune`: it removes what no recovery point
// of the vault references — data of deleted recovery points, packs of
// failed, stopped or killed backups and copies, temporary files of
// interrupted writes — and reports what it freed (with --dry-run: what it
// would free, changing nothing). It takes the repository's exclusive lock,
// so it is safe while coffer serve runs: it fails, changing nothing, while
// a backup or copy writes into the vault, and backups wait while it runs.
func vaultPrune(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	f := newVaultFlags("prune", stderr)
	dryRun := f.fs.Bool("dry-run", false, "only report what would be removed and freed")
	o, err := f.open(ctx, args, stdout, stderr)
	if err != nil {
		return 0, err
	}
	defer func() { _ = o.close() }()
	beforeN, beforeBytes, err := packUsage(ctx, o.repo)
	if err != nil {
		return 0, err
	}
	rep, err := maintenance.Prune(ctx, o.repo, maintenance.PruneOptions{DryRun: *dryRun})
	if errors.Is(err, repository.ErrLocked) {
		return 0, fmt.Errorf("the vault is in use (a backup or copy is writing to it, or another prune runs), nothing changed; run prune again when it has finished: %w", err)
	}
	if err != nil {
		return 0, err
	}
	verb, freed := "would free", "freed"
	fmt.Fprintf(stdout, "recovery points (manifests) kept: %d, blobs they use: %d\n", rep.Manifests, rep.UsedBlobs)
	fmt.Fprintf(stdout, "packs of deleted data: %d deleted, %d rewritten (%d blobs kept)\n", rep.PacksDeleted, rep.PacksRewritten, rep.BlobsRewritten)
	fmt.Fprintf(stdout, "abandoned packs (failed, stopped or killed sessions): %d deleted\n", rep.OrphansDeleted)
	if rep.PacksKeptYoung > 0 {
		fmt.Fprintf(stdout, "packs kept because they are younger than the 24 h grace period: %d\n", rep.PacksKeptYoung)
	}
	for _, l := range rep.WritingLocks {
		fmt.Fprintf(stdout, "kept abandoned packs younger than the grace period: a session may still be writing its index (%s)\n", l)
	}
	if rep.DamagedPacksKept > 0 {
		fmt.Fprintf(stdout, "packs kept because they hold the only (damaged) copy of data a recovery point uses: %d (back the source up again to heal)\n", rep.DamagedPacksKept)
	}
	if rep.TempFilesRemoved > 0 {
		fmt.Fprintf(stdout, "temporary files of interrupted writes removed: %d\n", rep.TempFilesRemoved)
	}
	if rep.LocksRemoved > 0 {
		fmt.Fprintf(stdout, "stale locks of dead processes removed: %d\n", rep.LocksRemoved)
	}
	if *dryRun {
		fmt.Fprintf(stdout, "packs: %d (%s); prune %s %s\n", beforeN, fmtBytes(beforeBytes), verb, fmtBytes(rep.BytesFreed))
		fmt.Fprintln(stdout, "dry run: nothing changed")
		return vaultExitClean, nil
	}
	afterN, afterBytes, err := packUsage(ctx, o.repo)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(stdout, "packs: %d (%s) before, %d (%s) after\n", beforeN, fmtBytes(beforeBytes), afterN, fmtBytes(afterBytes))
	fmt.Fprintf(stdout, "done: %s %s\n", fmtBytes(rep.BytesFreed), freed)
	return vaultExitClean, nil
}

// packUsage counts the vault's packs and their bytes.
func packUsage(ctx context.Context, repo *repository.Repository) (int, int64, error) {
	n, size := 0, int64(0)
	err := repo.Storage().List(ctx, repository.DataPrefix, func(i blob.Info) error {
		n++
		size += i.Size
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list packs: %w", err)
	}
	return n, size, nil
}

// mib formats a byte count.
func fmtBytes(n int64) string {
	return fmt.Sprintf("%d bytes, %.1f MiB", n, float64(n)/(1<<20))
}
