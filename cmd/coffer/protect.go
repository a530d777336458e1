package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/config"
	"coffer/internal/service"
)

// DefaultVaultName is the vault `coffer serve --protect` creates (AWS
// accounts have one by that name).
const DefaultVaultName = "Default"

// RestoresDir is where, inside data_dir, `coffer serve --protect` lets
// restores create new file systems (new_file_systems_dir).
const RestoresDir = "restores"

// pathList is a repeatable flag of paths.
type pathList []string

func (p *pathList) String() string { return strings.Join(*p, ",") }

func (p *pathList) Set(v string) error {
	if v == "" {
		return errors.New("empty path")
	}
	*p = append(*p, v)
	return nil
}

// protectedID is the file-system id of a directory protected with
// --protect: derived from its absolute path, so it is the same on every
// start.
func protectedID(abs string) string {
	sum := sha256.Sum256([]byte(abs))
	return "fs-" + hex.EncodeToString(sum[:])[:17]
}

// applyProtect registers each directory of paths as a file system of the
// zero-config account and lets restores create new file systems under
// <data_dir>/restores.
func applyProtect(cfg *config.Config, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	data, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("--protect: data dir: %w", err)
	}
	cfg.NewFileSystemsDir = filepath.Join(data, RestoresDir)
	seen := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return fmt.Errorf("--protect %s: %w", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("--protect %s: %w", p, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("--protect %s: not a directory", p)
		}
		if seen[abs] {
			return fmt.Errorf("--protect %s: given twice", p)
		}
		seen[abs] = true
		if within(data, abs) {
			// Its backups would hold the vaults and restores themselves.
			return fmt.Errorf("--protect %s: it holds the data directory %s; protect a directory outside it", p, cfg.DataDir)
		}
		cfg.FileSystems = append(cfg.FileSystems, config.FileSystem{ID: protectedID(abs), Account: cfg.Accounts[0].ID, Path: abs})
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("--protect: %w", err)
	}
	return nil
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// ensureDefaultVault creates the vault Default of the zero-config account
// when it is missing.
func ensureDefaultVault(ctx context.Context, svc *service.Service, cfg *config.Config) error {
	c := service.Caller{AccountID: cfg.Accounts[0].ID, Region: cfg.Region, Management: true}
	if _, err := svc.DescribeVault(ctx, c, DefaultVaultName); err == nil {
		return nil
	} else if !backup.IsCode(err, backup.CodeNotFound) {
		return err
	}
	_, err := svc.CreateVault(ctx, c, service.CreateVaultRequest{Name: DefaultVaultName})
	if err != nil && !backup.IsCode(err, backup.CodeAlreadyExists) {
		return fmt.Errorf("create vault %s: %w", DefaultVaultName, err)
	}
	return nil
}

// printProtectLines prints the ready-to-paste backup and restore commands
// of the first protected file system.
func printProtectLines(w io.Writer, cfg *config.Config, endpoint string) {
	if len(cfg.FileSystems) == 0 {
		return
	}
	arn := cfg.FileSystemArn(cfg.FileSystems[0])
	global := ""
	if endpoint != "http://"+config.DefaultListen {
		global = " --endpoint-url " + endpoint
	}
	fmt.Fprintf(w, "# protected %s as %s\n", cfg.FileSystems[0].Path, arn)
	fmt.Fprintf(w, "coffer%s backup --vault %s --resource %s --wait\n", global, DefaultVaultName, arn)
	fmt.Fprintf(w, "coffer%s restore --resource %s --latest --new-file-system --wait\n", global, arn)
}
