package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"coffer/internal/backup"
	"coffer/internal/config"
	"coffer/internal/resource"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/pgdb"
	"coffer/internal/resource/s3bucket"
	"coffer/internal/service"
	"coffer/internal/store"
)

// plugins is the resource plugin registry of this build: one line per
// resource type.
func plugins(cfg *config.Config, log *slog.Logger) (*resource.Registry, error) {
	return resource.NewRegistry(
		&filesystem.Plugin{NewFileSystemsDir: cfg.NewFileSystemsDir, Log: log},
		&s3bucket.Plugin{Endpoints: s3Endpoints(cfg), StateDir: filepath.Join(cfg.DataDir, S3RestoreStateDir), Log: log},
		&pgdb.Plugin{Servers: databaseServers(cfg), ReservedIDs: databaseIDs(cfg), BinDirs: cfg.PostgresBinDirs, Log: log},
	)
}

// S3RestoreStateDir holds, inside data_dir, the journals of running
// restores into buckets.
const S3RestoreStateDir = "s3-restores"

// s3Endpoints are the configured S3 endpoints.
func s3Endpoints(cfg *config.Config) []s3bucket.Endpoint {
	var out []s3bucket.Endpoint
	for _, e := range cfg.S3Endpoints {
		out = append(out, s3bucket.Endpoint{ID: e.ID, URL: e.URL, Region: e.Region, PathStyle: e.PathStyle,
			AccessKeyID: e.AccessKeyID, SecretAccessKey: e.SecretAccessKey})
	}
	return out
}

// databaseServers are the configured database servers.
func databaseServers(cfg *config.Config) []pgdb.Server {
	var out []pgdb.Server
	for _, s := range cfg.DatabaseServers {
		out = append(out, pgdb.Server{ID: s.ID, Host: s.Host, Port: s.Port, User: s.User, Password: s.Password, SSLMode: s.SSLMode})
	}
	return out
}

// databaseIDs are the configured databases' identifiers.
func databaseIDs(cfg *config.Config) []string {
	var out []string
	for _, d := range cfg.Databases {
		out = append(out, d.ID)
	}
	return out
}

// configuredResources are the resources the config declares, by type.
func configuredResources(cfg *config.Config) map[string][]*backup.Resource {
	out := map[string][]*backup.Resource{}
	for _, f := range cfg.FileSystems {
		out[filesystem.ResourceType] = append(out[filesystem.ResourceType],
			filesystem.NewResource(cfg.Region, f.Account, f.ID, f.Path, f.Tags))
	}
	for _, b := range cfg.Buckets {
		out[s3bucket.ResourceType] = append(out[s3bucket.ResourceType],
			s3bucket.NewResource(cfg.Region, b.Account, b.Name, b.Endpoint, b.Tags))
	}
	for _, d := range cfg.Databases {
		out[pgdb.ResourceType] = append(out[pgdb.ResourceType],
			pgdb.NewResource(cfg.Region, d.Account, d.ID, d.Server, d.Database, d.Tags))
	}
	return out
}

// scopes are the (account, region) pairs of every configured account.
func scopes(cfg *config.Config) []store.Scope {
	var out []store.Scope
	for _, a := range cfg.Accounts {
		out = append(out, store.Scope{AccountID: a.ID, Region: cfg.Region})
	}
	return out
}

// syncResources registers the configured resources of every plugin's type
// (see service.SyncResources).
func syncResources(ctx context.Context, svc *service.Service, reg *resource.Registry, cfg *config.Config) error {
	conf := configuredResources(cfg)
	for _, t := range reg.Types() {
		if err := svc.SyncResources(ctx, t, scopes(cfg), conf[t]); err != nil {
			return err
		}
	}
	return nil
}
