package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Tool is one backup program under test. The harness calls Init once per
// round, then Backup (several times) and Restore; each measured call runs
// the program's work in a child process so that time and peak memory are
// taken the same way for every tool. A tool that drives a server
// (coffer-api: StartBackupJob → COMPLETED) implements the same interface,
// measuring the server process over the operation.
type Tool interface {
	Name() string
	// Init creates an empty repository inside dir, a fresh directory that
	// belongs to the tool for the round (not measured).
	Init(ctx context.Context, dir string) error
	// Backup stores the tree at src (absolute) as a new snapshot, letting
	// the tool reuse what it knows from its previous backups of src.
	Backup(ctx context.Context, src string) (Sample, error)
	// Restore writes the newest snapshot so that its contents appear at dst
	// (absolute; dst does not exist, its parent does).
	Restore(ctx context.Context, dst string) (Sample, error)
	// RepoDir is the directory that holds only the repository: its size is
	// reported and it is read into the page cache before a restore.
	RepoDir() string
	// Close releases what Init set up (servers, ...); the harness calls it
	// at the end of every round, before it removes the round's
	// directories, and once more at the end of the run.
	Close() error
}

// ToolNames lists the tools NewTool knows.
var ToolNames = []string{"coffer", "coffer-api", "restic", "borg"}

// DefaultTools are the tools a run compares unless told otherwise, in
// order (the first is the subject of the ratios): Coffer as its users run
// it, `coffer serve` driven through the API, against restic and borg.
var DefaultTools = []string{"coffer-api", "restic", "borg"}

// ToolOptions configure the tools.
type ToolOptions struct {
	Runner Runner
	Logger *slog.Logger
	// CofferBin is the coffer-direct executable.
	CofferBin string
	// CofferServerBin is the coffer executable (cmd/coffer) that coffer-api
	// runs as `coffer serve`.
	CofferServerBin string
	// Source, when set, is the tree Backup will be given: coffer-api
	// registers it as a file system when it starts its server in Init. Run
	// sets it.
	Source string
	// ResticCompression is restic's --compression (auto, max, off).
	ResticCompression string
	// BorgCompression is borg create's --compression (e.g. zstd,1 or lz4).
	BorgCompression string
	// APIWorkers, when positive, is the `workers` setting of the server
	// coffer-api runs; 0 leaves the server's default (and with it the
	// default soft memory limit), as a user's configuration would.
	APIWorkers int
}

// NewTool returns the named tool, or an error saying how to get it when its
// program is not installed.
func NewTool(name string, o ToolOptions) (Tool, error) {
	secret, err := randomHex(32)
	if err != nil {
		return nil, err
	}
	switch name {
	case "coffer":
		if o.CofferBin == "" {
			return nil, fmt.Errorf("coffer: no coffer-direct executable given")
		}
		return &cofferTool{base: base{name: name, o: o, env: []string{"COFFER_BENCH_KEY=" + secret}}}, nil
	case "coffer-api":
		return newCofferAPITool(o)
	case "restic":
		bin, err := exec.LookPath("restic")
		if err != nil {
			return nil, fmt.Errorf("restic is not installed (apt-get install -y restic), or leave it out with -tools: %w", err)
		}
		comp := o.ResticCompression
		if comp == "" {
			comp = "auto"
		}
		return &resticTool{base: base{name: name, o: o, env: []string{"RESTIC_PASSWORD=" + secret}}, bin: bin, compression: comp}, nil
	case "borg":
		bin, err := exec.LookPath("borg")
		if err != nil {
			return nil, fmt.Errorf("borg is not installed (apt-get install -y borgbackup), or leave it out with -tools: %w", err)
		}
		comp := o.BorgCompression
		if comp == "" {
			comp = "zstd,1"
		}
		return &borgTool{base: base{name: name, o: o, env: []string{"BORG_PASSPHRASE=" + secret,
			"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes", "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes"}},
			bin: bin, compression: comp}, nil
	}
	return nil, fmt.Errorf("unknown tool %q (known: %s)", name, strings.Join(ToolNames, ", "))
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// base holds what the command-line tools share.
type base struct {
	name string
	o    ToolOptions
	env  []string // secrets, fixed for the run
	// roundEnv holds variables naming the round's directories (caches).
	roundEnv []string
	dir      string // the round's directory of the tool
}

func (b *base) Name() string    { return b.name }
func (b *base) RepoDir() string { return filepath.Join(b.dir, "repo") }
func (b *base) Close() error    { return nil }

// run measures one command; its stdout is logged at debug level.
func (b *base) run(ctx context.Context, cwd string, bin string, args ...string) (Sample, error) {
	if b.dir == "" {
		return Sample{}, fmt.Errorf("%s: Init was not called", b.name)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = cwd
	cmd.Env = append(append(os.Environ(), b.env...), b.roundEnv...)
	s, out, err := b.o.Runner.Run(ctx, cmd)
	if err != nil {
		return s, fmt.Errorf("%s: %w", b.name, err)
	}
	if b.o.Logger != nil && len(out) > 0 {
		b.o.Logger.Debug("child output", "tool", b.name, "op", args[0], "stdout", strings.TrimSpace(string(out)))
	}
	return s, nil
}

func (b *base) setDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("%s: tool directory %q is not absolute", b.name, dir)
	}
	b.dir = dir
	return nil
}

// cofferTool runs bench/cmd/coffer-direct: the engine itself, no server.
type cofferTool struct{ base }

func (t *cofferTool) Init(ctx context.Context, dir string) error {
	if err := t.setDir(dir); err != nil {
		return err
	}
	_, err := t.run(ctx, dir, t.o.CofferBin, "init", "-repo", t.RepoDir())
	return err
}

func (t *cofferTool) Backup(ctx context.Context, src string) (Sample, error) {
	return t.run(ctx, t.dir, t.o.CofferBin, "backup", "-repo", t.RepoDir(), "-src", src, "-parent", "latest")
}

func (t *cofferTool) Restore(ctx context.Context, dst string) (Sample, error) {
	return t.run(ctx, t.dir, t.o.CofferBin, "restore", "-repo", t.RepoDir(), "-dst", dst)
}

// resticTool runs restic. Its cache lives in the tool's directory (not in
// the repository), so every round starts cold like the other tools.
type resticTool struct {
	base
	bin         string
	compression string
}

func (t *resticTool) Init(ctx context.Context, dir string) error {
	if err := t.setDir(dir); err != nil {
		return err
	}
	t.roundEnv = []string{"RESTIC_CACHE_DIR=" + filepath.Join(dir, "cache")}
	_, err := t.run(ctx, dir, t.bin, "init", "--repository-version", "2", "-r", t.RepoDir())
	return err
}

// Backup runs in src and backs up ".", so the snapshot holds the tree's
// contents at its root; restic picks the previous snapshot of the same
// path as parent by itself.
func (t *resticTool) Backup(ctx context.Context, src string) (Sample, error) {
	return t.run(ctx, src, t.bin, "backup", "-r", t.RepoDir(), "--compression", t.compression, "--quiet", ".")
}

func (t *resticTool) Restore(ctx context.Context, dst string) (Sample, error) {
	return t.run(ctx, t.dir, t.bin, "restore", "-r", t.RepoDir(), "latest", "--target", dst)
}

// borgTool runs borg 1.x with a repokey-blake2 repository. BORG_BASE_DIR
// (cache, security and config directories) lives in the tool's directory.
type borgTool struct {
	base
	bin         string
	compression string
	archives    int
}

func (t *borgTool) Init(ctx context.Context, dir string) error {
	if err := t.setDir(dir); err != nil {
		return err
	}
	t.archives = 0
	t.roundEnv = []string{"BORG_BASE_DIR=" + filepath.Join(dir, "base")}
	_, err := t.run(ctx, dir, t.bin, "init", "--encryption=repokey-blake2", t.RepoDir())
	return err
}

// Backup runs in src and archives ".", so paths are stored relative to it.
func (t *borgTool) Backup(ctx context.Context, src string) (Sample, error) {
	t.archives++
	return t.run(ctx, src, t.bin, "create", "--compression", t.compression,
		fmt.Sprintf("%s::b%d", t.RepoDir(), t.archives), ".")
}

// Restore extracts into dst, which borg needs to exist and be the working
// directory; creating it is not measured.
func (t *borgTool) Restore(ctx context.Context, dst string) (Sample, error) {
	if t.archives == 0 {
		return Sample{}, fmt.Errorf("borg: no archive to restore")
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return Sample{}, fmt.Errorf("borg: %w", err)
	}
	return t.run(ctx, dst, t.bin, "extract", fmt.Sprintf("%s::b%d", t.RepoDir(), t.archives))
}

// Baseline is a reference operation on the plain tree.
type Baseline interface {
	Name() string
	// Run measures the baseline on src; dst is a path that does not exist
	// and that the baseline may create.
	Run(ctx context.Context, src, dst string) (Sample, error)
}

// Baselines returns the copy and read baselines: "cp -r" as is (what a
// restore must compete with; GNU cp 9 copies data with copy_file_range(2),
// inside the kernel, and on a copy-on-write file system it clones instead of
// copying), "cp -r --reflink=never" (a plain read/write copy in user space,
// the same kind of work as a restore, on every file system) and "tar read"
// (every file read once, the I/O floor of a full backup).
func Baselines(r Runner) ([]Baseline, error) {
	for _, p := range []string{"cp", "tar"} {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("baselines need %s: %w", p, err)
		}
	}
	return []Baseline{
		cmdBaseline{name: "cp -r", r: r, args: func(src, dst string) []string {
			return []string{"cp", "-r", src, dst}
		}},
		cmdBaseline{name: "cp -r --reflink=never", r: r, args: func(src, dst string) []string {
			return []string{"cp", "-r", "--reflink=never", src, dst}
		}},
		// tar's archive goes to a pipe the harness drains: GNU tar skips
		// reading file data when the archive is /dev/null.
		cmdBaseline{name: "tar read", r: r, toDiscard: true,
			args: func(src, _ string) []string { return []string{"tar", "-C", src, "-cf", "-", "."} }},
	}, nil
}

type cmdBaseline struct {
	name      string
	r         Runner
	args      func(src, dst string) []string
	toDiscard bool
}

func (b cmdBaseline) Name() string { return b.name }

func (b cmdBaseline) Run(ctx context.Context, src, dst string) (Sample, error) {
	a := b.args(src, dst)
	cmd := exec.CommandContext(ctx, a[0], a[1:]...)
	if b.toDiscard {
		cmd.Stdout = struct{ io.Writer }{io.Discard} // a pipe, never /dev/null
	}
	s, _, err := b.r.Run(ctx, cmd)
	if err != nil {
		return s, fmt.Errorf("%s: %w", b.name, err)
	}
	return s, nil
}

func (t *resticTool) Version(ctx context.Context) (string, error) {
	out, err := runQuiet(ctx, "", t.bin, "version")
	return strings.TrimSpace(string(out)), err
}

func (t *borgTool) Version(ctx context.Context) (string, error) {
	out, err := runQuiet(ctx, "", t.bin, "--version")
	return strings.TrimSpace(string(out)), err
}
