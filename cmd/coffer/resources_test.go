package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/config"
	"coffer/internal/resource/filesystem"
	"coffer/internal/resource/s3bucket"
	"coffer/internal/service"
	"coffer/internal/store"
	"coffer/internal/store/sqlite"
)

func TestSyncFileSystems(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	sc := store.Scope{AccountID: "111111111111", Region: "us-east-1"}
	cfg := &config.Config{Region: "us-east-1", Accounts: []config.Account{{ID: sc.AccountID}},
		FileSystems: []config.FileSystem{
			{ID: "fs-00000001", Account: sc.AccountID, Path: "/a", Tags: map[string]string{"Name": "app"}},
			{ID: "fs-00000002", Account: sc.AccountID, Path: "/b"},
		}}
	reg, err := plugins(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(service.Deps{Store: st, Clock: clk, Plugins: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := syncResources(ctx, svc, reg, cfg); err != nil {
		t.Fatal(err)
	}
	// A restore-created file system survives; a dropped config entry goes;
	// a changed path is updated and the creation date kept.
	restored := filesystem.NewResource(sc.Region, sc.AccountID, "fs-00000009", "/r", nil)
	restored.CreationDate, restored.CreatedByRestoreJob = clk.Now(), "R1"
	if err := st.Write(ctx, func(tx store.Tx) error { return tx.UpsertResource(ctx, restored) }); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	cfg.FileSystems = []config.FileSystem{{ID: "fs-00000001", Account: sc.AccountID, Path: "/a2", Tags: map[string]string{"Name": "app"}}}
	if err := syncResources(ctx, svc, reg, cfg); err != nil {
		t.Fatal(err)
	}
	var got []*backup.Resource
	if err := st.Read(ctx, func(tx store.Tx) error {
		var err error
		got, err = tx.ListResources(ctx, sc, filesystem.ResourceType)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "fs-00000001" || got[0].Attr(filesystem.AttrPath) != "/a2" || got[0].Name != "app" ||
		!got[0].CreationDate.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		got[0].Arn != "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-00000001" || got[1].ID != "fs-00000009" {
		t.Fatalf("file systems %+v", got)
	}
}

// TestSyncBuckets: configured buckets become S3 resources of their
// accounts (ARN arn:aws:s3:::name, endpoint attribute), restore-created
// ones survive a sync, and every plugin is registered.
func TestSyncBuckets(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	sc := store.Scope{AccountID: "111111111111", Region: "us-east-1"}
	cfg := &config.Config{Region: "us-east-1", DataDir: t.TempDir(), Accounts: []config.Account{{ID: sc.AccountID}},
		S3Endpoints: []config.S3Endpoint{{ID: "minio", URL: "http://127.0.0.1:9", Region: "us-east-1", AccessKeyID: "a", SecretAccessKey: "b"}},
		Buckets:     []config.Bucket{{Name: "photos", Account: sc.AccountID, Endpoint: "minio", Tags: map[string]string{"env": "prod"}}}}
	reg, err := plugins(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.Types(); len(got) != 3 || got[0] != "EFS" || got[1] != "RDS" || got[2] != "S3" {
		t.Fatalf("registered types %v", got)
	}
	svc, err := service.New(service.Deps{Store: st, Clock: clk, Plugins: reg})
	if err != nil {
		t.Fatal(err)
	}
	restored := s3bucket.NewResource(sc.Region, sc.AccountID, "photos-restored", "minio", nil)
	restored.CreationDate, restored.CreatedByRestoreJob = clk.Now(), "R1"
	if err := st.Write(ctx, func(tx store.Tx) error { return tx.UpsertResource(ctx, restored) }); err != nil {
		t.Fatal(err)
	}
	if err := syncResources(ctx, svc, reg, cfg); err != nil {
		t.Fatal(err)
	}
	var got []*backup.Resource
	if err := st.Read(ctx, func(tx store.Tx) error {
		var err error
		got, err = tx.ListResources(ctx, sc, s3bucket.ResourceType)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "photos" || got[0].Arn != "arn:aws:s3:::photos" || got[0].Attr(s3bucket.AttrEndpoint) != "minio" ||
		got[0].Tags["env"] != "prod" || got[1].ID != "photos-restored" {
		t.Fatalf("buckets %+v", got)
	}
}
