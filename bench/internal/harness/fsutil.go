package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// WarmTree reads every regular file below root once, so that the measured
// operations that follow find it in the page cache. It returns the bytes read.
func WarmTree(ctx context.Context, root string) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, buf)
		f.Close()
		total += n
		return err
	})
	if err != nil {
		return total, fmt.Errorf("warm %s: %w", root, err)
	}
	return total, nil
}

// TreeSize is the total size of the regular files below root (what du -sb
// reports, minus directory and symlink sizes).
func TreeSize(root string) (int64, error) {
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", root, err)
	}
	return total, nil
}

// FindModuleRoot walks up from dir to the directory whose go.mod declares
// module coffer.
func FindModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if isCofferModule(filepath.Join(d, "go.mod")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of module coffer in %s or above", dir)
		}
	}
}

func isCofferModule(gomod string) bool {
	f, err := os.Open(gomod)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == "coffer"
		}
	}
	return false
}

// DefaultMkdataDir is where the dataset generator lives relative to the
// repository root.
const DefaultMkdataDir = "../shared/bench/mkdata"

// LocateMkdata returns the absolute directory of the mkdata generator: dir
// when given, else DefaultMkdataDir below repoRoot.
func LocateMkdata(repoRoot, dir string) (string, error) {
	if dir == "" {
		dir = filepath.Join(repoRoot, filepath.FromSlash(DefaultMkdataDir))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "main.go")); err != nil {
		return "", fmt.Errorf("mkdata generator not found at %s (pass -mkdata DIR): %w", abs, err)
	}
	return abs, nil
}

// goBuild builds a main package into out with the go tool, in dir.
func goBuild(ctx context.Context, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (in %s): %w\n%s", pkg, dir, err, b)
	}
	return nil
}

// BuildCoffer builds bench/cmd/coffer-direct from the module at repoRoot.
func BuildCoffer(ctx context.Context, repoRoot, out string) error {
	return goBuild(ctx, repoRoot, out, "./bench/cmd/coffer-direct")
}

// BuildCofferServer builds cmd/coffer (`coffer serve`, for coffer-api) from
// the module at repoRoot.
func BuildCofferServer(ctx context.Context, repoRoot, out string) error {
	return goBuild(ctx, repoRoot, out, "./cmd/coffer")
}

// BuildMkdata builds the generator (its own module) at mkdataDir.
func BuildMkdata(ctx context.Context, mkdataDir, out string) error {
	return goBuild(ctx, mkdataDir, out, ".")
}

// runQuiet runs a setup command (not measured), returning its output in the
// error when it fails.
func runQuiet(ctx context.Context, dir string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, indent(errb.String()))
	}
	return []byte(out.String()), nil
}

// removeAll deletes a directory tree, making read-only directories writable
// first (restored trees may contain 0500 directories).
func removeAll(p string) error {
	err := os.RemoveAll(p)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(q, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("remove %s: %w", p, err)
	}
	return nil
}
