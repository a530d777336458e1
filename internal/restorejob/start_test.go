package restorejob_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/resource/filesystem"
	"coffer/internal/service"
	"coffer/internal/store"
)

func countJobs(t *testing.T, e *env, sc store.Scope) int {
	t.Helper()
	var n int
	must(t, e.st.Read(context.Background(), func(tx store.Tx) error {
		js, _, err := tx.ListJobs(context.Background(), sc, store.JobFilter{Kind: backup.JobRestore}, store.Page{Limit: 1000})
		n = len(js)
		return err
	}))
	return n
}

func TestStartValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	creating := e.backup(e.src, "CREATING")
	md := func(kv ...string) map[string]string {
		m := map[string]string{"file-system-id": dstFS, "newFileSystem": "false"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	scB := store.Scope{AccountID: acctB, Region: region}
	// A file system of account B with the id account A names.
	must(t, e.st.Write(ctx, func(tx store.Tx) error {
		return upsertFS(ctx, tx, &fileSystem{AccountID: acctB, Region: region, ID: "fs-00000000000000bbb",
			Arn: filesystem.ARN(region, acctB, "fs-00000000000000bbb"), Path: t.TempDir(), CreationDate: e.clock.Now()})
	}))
	for _, tc := range []struct {
		name string
		sc   store.Scope
		req  StartRequest
		code backup.Code
		ctx  string
	}{
		{"missing arn", scA, StartRequest{Metadata: md()}, backup.CodeMissingParameter, "RecoveryPointArn"},
		{"missing metadata", scA, StartRequest{RecoveryPointArn: e.rpArn}, backup.CodeMissingParameter, "Metadata"},
		{"resource type pattern", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md(), ResourceType: "E F S"}, backup.CodeInvalidParameter, "ResourceType"},
		{"iam role", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md(), IamRoleArn: "role/x"}, backup.CodeInvalidParameter, "IamRoleArn"},
		{"arn parse", scA, StartRequest{RecoveryPointArn: "arn:aws:ec2:us-east-1::snapshot/snap-1", Metadata: md()}, backup.CodeInvalidParameter, "RecoveryPointArn"},
		{"unknown rp", scA, StartRequest{RecoveryPointArn: backup.RecoveryPointArn(region, acctA, "nope"), Metadata: md()}, backup.CodeNotFound, ""},
		{"other region", scA, StartRequest{RecoveryPointArn: backup.RecoveryPointArn("eu-west-1", acctA, "x"), Metadata: md()}, backup.CodeNotFound, ""},
		{"other account restores A's rp", scB, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md()}, backup.CodeNotFound, ""},
		{"rp not usable", scA, StartRequest{RecoveryPointArn: creating, Metadata: md()}, backup.CodeInvalidRequest, ""},
		{"resource type mismatch", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md(), ResourceType: "S3"}, backup.CodeInvalidParameter, "ResourceType"},
		{"metadata unknown key", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md("newFilesystem", "true")}, backup.CodeInvalidParameter, "newFilesystem"},
		{"metadata empty", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: map[string]string{}}, backup.CodeInvalidParameter, "file-system-id"},
		{"item traversal", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md("ItemsToRestore", `["/dir/../../etc/passwd"]`)}, backup.CodeInvalidParameter, "ItemsToRestore"},
		{"item absent", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md("ItemsToRestore", `["/no/such/file"]`)}, backup.CodeInvalidParameter, "ItemsToRestore"},
		{"item below a file", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md("ItemsToRestore", `["/small.txt/x"]`)}, backup.CodeInvalidParameter, "ItemsToRestore"},
		{"item through symlink", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md("ItemsToRestore", `["/dir/link/x"]`)}, backup.CodeInvalidParameter, "ItemsToRestore"},
		{"target path traversal", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md("TargetPath", "/../../tmp")}, backup.CodeInvalidParameter, "TargetPath"},
		{"target fs missing", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md("file-system-id", "fs-0000000000000dead")}, backup.CodeNotFound, "fs-0000000000000dead"},
		{"target fs of other account", scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: md("file-system-id", "fs-00000000000000bbb")}, backup.CodeNotFound, "fs-00000000000000bbb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Start(ctx, tc.sc, tc.req)
			if !backup.IsCode(err, tc.code) {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
			var be *backup.Error
			if errors.As(err, &be) && tc.ctx != "" && be.Context != tc.ctx {
				t.Errorf("context %q, want %q", be.Context, tc.ctx)
			}
			if n := countJobs(t, e, scA) + countJobs(t, e, scB); n != 0 {
				t.Fatalf("%d jobs left behind", n)
			}
		})
	}
	// Without new_file_systems_dir a new file system cannot be created.
	svc := *e.svc
	svc.NewFileSystemsDir = ""
	if _, err := svc.Start(ctx, scA, StartRequest{RecoveryPointArn: e.rpArn, Metadata: map[string]string{"file-system-id": srcFS, "newFileSystem": "true"}}); !backup.IsCode(err, backup.CodeInvalidParameter) {
		t.Fatalf("new FS without new_file_systems_dir: %v", err)
	}
}

func TestStartIdempotency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	req := StartRequest{RecoveryPointArn: e.rpArn, IdempotencyToken: "tok-A", Metadata: map[string]string{"file-system-id": dstFS, "newFileSystem": "false"}}
	id1, err := e.svc.Start(ctx, scA, req)
	must(t, err)
	id2, err := e.svc.Start(ctx, scA, req)
	must(t, err)
	if id1 != id2 || countJobs(t, e, scA) != 1 {
		t.Fatalf("same token and parameters: %s, %s, %d jobs", id1, id2, countJobs(t, e, scA))
	}
	var j *backup.Job
	must(t, e.st.Read(ctx, func(tx store.Tx) error {
		var err error
		j, err = tx.GetJob(ctx, scA, backup.JobRestore, id1)
		return err
	}))
	if j.State != "PENDING" {
		t.Fatalf("new job is %s", j.State)
	}
	diff := req
	diff.Metadata = map[string]string{"file-system-id": dstFS, "newFileSystem": "false", "TargetPath": "/x"}
	if _, err := e.svc.Start(ctx, scA, diff); !backup.IsCode(err, backup.CodeInvalidRequest) {
		t.Fatalf("same token, different parameters: %v", err)
	}
	if n := countJobs(t, e, scA); n != 1 {
		t.Fatalf("%d jobs after a mismatched token", n)
	}
	// Another account's identical token is its own.
	scB := store.Scope{AccountID: acctB, Region: region}
	if _, err := e.svc.Start(ctx, scB, req); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("account B with A's token and RP: %v", err)
	}
	// After the one-hour window the token starts a new job.
	e.clock.Advance(service.IdempotencyWindow + time.Second)
	id3, err := e.svc.Start(ctx, scA, req)
	must(t, err)
	if id3 == id1 || countJobs(t, e, scA) != 2 {
		t.Fatalf("after the window: %s vs %s", id3, id1)
	}
	// A completed job still answers its token.
	e.drive(id3)
	id4, err := e.svc.Start(ctx, scA, req)
	must(t, err)
	if id4 != id3 {
		t.Fatalf("token of a completed job: %s vs %s", id4, id3)
	}
}
