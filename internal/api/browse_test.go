package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	sdk "github.com/aws/aws-sdk-go-v2/service/backup"

	"coffer/internal/api"
)

// ext posts a signed extension request as a and decodes the answer into
// out (when 200); it returns the status and the error type.
func (e *renv) ext(a account, path string, in any, out any) (int, string) {
	e.t.Helper()
	var body []byte
	switch v := in.(type) {
	case []byte:
		body = v
	default:
		var err error
		if body, err = json.Marshal(in); err != nil {
			e.t.Fatal(err)
		}
	}
	return e.extRaw(a, http.MethodPost, path, body, out)
}

func (e *renv) extRaw(a account, method, path string, body []byte, out any) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: a.akid, SecretAccessKey: a.secret},
		req, hex.EncodeToString(sum[:]), "backup", region, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s: %v\n%s", path, err, b)
		}
	}
	if resp.StatusCode != http.StatusOK && strings.Contains(string(b), e.outer) {
		e.t.Errorf("%s: error names a server path: %s", path, b)
	}
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
}

type browseIn struct {
	RecoveryPointArn string
	Path             string `json:",omitempty"`
	Glob             string `json:",omitempty"`
	MaxResults       int    `json:",omitempty"`
	NextToken        string `json:",omitempty"`
}

// browseAll pages through a listing and returns every entry.
func (e *renv) browseAll(in browseIn) []api.BrowseEntry {
	e.t.Helper()
	var all []api.BrowseEntry
	for pages := 0; ; pages++ {
		var out api.BrowseRecoveryPointOutput
		if code, typ := e.ext(acctA, api.PathBrowseRecoveryPoint, in, &out); code != 200 {
			e.t.Fatalf("browse %+v: %d %s", in, code, typ)
		}
		if in.MaxResults > 0 && len(out.Entries) > in.MaxResults {
			e.t.Fatalf("page of %d entries, MaxResults %d", len(out.Entries), in.MaxResults)
		}
		all = append(all, out.Entries...)
		if out.NextToken == nil {
			return all
		}
		if pages > 100 {
			e.t.Fatal("endless listing")
		}
		in.NextToken = *out.NextToken
	}
}

func paths(es []api.BrowseEntry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Path)
	}
	return out
}

// TestBrowseRecoveryPoint: a file-system recovery point's directories are
// listed page by page (name, type, size, mode, mtime), searched by glob,
// and bad requests get the API's error shape: a path with "..", a missing
// path, a file as a directory, another account's recovery point, a forged
// token, an unknown member, a GET.
func TestBrowseRecoveryPoint(t *testing.T) {
	e := startRestoreEnv(t)
	root := []string{"/big.bin", "/dir", "/docs", "/empty", "/emptydir", "/small.txt", "/vendor"}
	whole := e.browseAll(browseIn{RecoveryPointArn: e.rpArn})
	if got := paths(whole); !reflect.DeepEqual(got, root) {
		t.Fatalf("root: %q, want %q", got, root)
	}
	if got := paths(e.browseAll(browseIn{RecoveryPointArn: e.rpArn, Path: "/", MaxResults: 3})); !reflect.DeepEqual(got, root) {
		t.Fatalf("root by 3: %q, want %q", got, root)
	}
	byPath := map[string]api.BrowseEntry{}
	for _, en := range whole {
		byPath[en.Path] = en
	}
	fi, err := os.Stat(filepath.Join(e.src, "big.bin"))
	mustDo(t, err)
	big := byPath["/big.bin"]
	if big.Type != "FILE" || big.Size != fi.Size() || big.Name != "big.bin" || big.Mode != "0640" || big.LastModified == nil ||
		!big.LastModified.Time().Equal(fi.ModTime().Truncate(time.Millisecond)) {
		t.Errorf("big.bin: %+v (size %d, mtime %v)", big, fi.Size(), fi.ModTime())
	}
	if d := byPath["/dir"]; d.Type != "DIRECTORY" {
		t.Errorf("dir: %+v", d)
	}
	sub := e.browseAll(browseIn{RecoveryPointArn: e.rpArn, Path: "/dir"})
	if got := paths(sub); !reflect.DeepEqual(got, []string{"/dir/a.go", "/dir/link", "/dir/sub"}) {
		t.Fatalf("/dir: %q", got)
	}
	if l := sub[1]; l.Type != "SYMLINK" || l.LinkTarget != "../small.txt" {
		t.Errorf("link: %+v", l)
	}
	goFiles := []string{"/dir/a.go", "/dir/sub/c.go", "/vendor/v.go"}
	for _, max := range []int{0, 1, 2} {
		if got := paths(e.browseAll(browseIn{RecoveryPointArn: e.rpArn, Glob: "*.go", MaxResults: max})); !reflect.DeepEqual(got, goFiles) {
			t.Errorf("glob *.go by %d: %q, want %q", max, got, goFiles)
		}
	}
	if got := paths(e.browseAll(browseIn{RecoveryPointArn: e.rpArn, Path: "/dir", Glob: "**/*.go"})); !reflect.DeepEqual(got, goFiles[:2]) {
		t.Errorf("glob under /dir: %q", got)
	}

	// A token belongs to its listing.
	var first api.BrowseRecoveryPointOutput
	if code, _ := e.ext(acctA, api.PathBrowseRecoveryPoint, browseIn{RecoveryPointArn: e.rpArn, MaxResults: 2}, &first); code != 200 || first.NextToken == nil {
		t.Fatalf("first page: %d %+v", code, first)
	}
	for _, tc := range []struct {
		name    string
		as      account
		in      any
		code    int
		errType string
	}{
		{"dot-dot", acctA, browseIn{RecoveryPointArn: e.rpArn, Path: "/dir/../dir"}, 400, "InvalidParameterValueException"},
		{"relative", acctA, browseIn{RecoveryPointArn: e.rpArn, Path: "dir"}, 400, "InvalidParameterValueException"},
		{"missing dir", acctA, browseIn{RecoveryPointArn: e.rpArn, Path: "/nope"}, 400, "ResourceNotFoundException"},
		{"file as dir", acctA, browseIn{RecoveryPointArn: e.rpArn, Path: "/small.txt"}, 400, "ResourceNotFoundException"},
		{"bad glob", acctA, browseIn{RecoveryPointArn: e.rpArn, Glob: "a//b"}, 400, "InvalidParameterValueException"},
		{"another account", acctB, browseIn{RecoveryPointArn: e.rpArn}, 400, "ResourceNotFoundException"},
		{"token of another listing", acctA, browseIn{RecoveryPointArn: e.rpArn, Path: "/dir", NextToken: *first.NextToken}, 400, "InvalidParameterValueException"},
		{"token of another account", acctB, browseIn{RecoveryPointArn: e.rpArn, MaxResults: 2, NextToken: *first.NextToken}, 400, "InvalidParameterValueException"},
		{"no arn", acctA, browseIn{}, 400, "MissingParameterValueException"},
		{"bad arn", acctA, browseIn{RecoveryPointArn: "arn:aws:backup:us-east-1:111111111111:vault:x"}, 400, "InvalidParameterValueException"},
		{"too many", acctA, browseIn{RecoveryPointArn: e.rpArn, MaxResults: 1001}, 400, "InvalidParameterValueException"},
		{"unknown member", acctA, []byte(`{"RecoveryPointArn":"` + e.rpArn + `","Evil":1}`), 400, "SerializationException"},
		{"not json", acctA, []byte(`{"RecoveryPointArn":`), 400, "SerializationException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, typ := e.ext(tc.as, api.PathBrowseRecoveryPoint, tc.in, nil)
			if code != tc.code || typ != tc.errType {
				t.Errorf("%d %s, want %d %s", code, typ, tc.code, tc.errType)
			}
		})
	}
	if code, _ := e.extRaw(acctA, http.MethodGet, api.PathBrowseRecoveryPoint, nil, nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", code)
	}
	if code, typ := e.extRaw(acctA, http.MethodPost, "/coffer/nothing", []byte("{}"), nil); code != 404 || typ != "UnknownOperationException" {
		t.Errorf("unknown extension: %d %s", code, typ)
	}
}

// TestPreviewRestoreJob: a dry run of StartRestoreJob's request lists what
// would be created, replaced and kept under each conflict policy, writes
// nothing and creates no job; the real restore then does what it said.
func TestPreviewRestoreJob(t *testing.T) {
	e := startRestoreEnv(t)
	c := e.client(acctA)
	type previewIn struct {
		RecoveryPointArn string
		Metadata         map[string]string
		MaxPaths         *int64 `json:",omitempty"`
	}
	preview := func(as account, md map[string]string, maxPaths *int64) (api.PreviewRestoreJobOutput, int, string) {
		var out api.PreviewRestoreJobOutput
		code, typ := e.ext(as, api.PathPreviewRestoreJob, previewIn{RecoveryPointArn: e.rpArn, Metadata: md, MaxPaths: maxPaths}, &out)
		return out, code, typ
	}
	// Everything of the snapshot (files, directories, the symlink).
	const entries = 14
	p, code, typ := preview(acctA, map[string]string{"file-system-id": rSrcFS, "newFileSystem": "true"}, nil)
	if code != 200 {
		t.Fatalf("new file system: %d %s", code, typ)
	}
	if p.CreateCount != entries || p.OverwriteCount != 0 || p.SkipCount != 0 || p.Location != "/" || p.TargetArn != "" ||
		len(p.CreatePaths) != entries || p.CreatePaths[0] != "/big.bin" || p.BytesToWrite < 3<<20 {
		t.Fatalf("new file system: %+v", p)
	}
	one := int64(1)
	if p, _, _ := preview(acctA, map[string]string{"file-system-id": rSrcFS, "newFileSystem": "true"}, &one); p.CreateCount != entries || len(p.CreatePaths) != 1 {
		t.Errorf("MaxPaths 1: %+v", p)
	}
	if _, err := os.Stat(e.newDir); !os.IsNotExist(err) {
		t.Errorf("a preview created the new file systems' directory: %v", err)
	}

	// Into an existing directory holding an older small.txt and a newer
	// docs/readme.md.
	target := filepath.Join(e.dst, "restored")
	mustDo(t, os.MkdirAll(filepath.Join(target, "docs"), 0o755))
	mustDo(t, os.WriteFile(filepath.Join(target, "small.txt"), []byte("old\n"), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(target, "docs", "readme.md"), []byte("mine\n"), 0o644))
	old, future := time.Now().Add(-48*time.Hour), time.Now().Add(48*time.Hour)
	mustDo(t, os.Chtimes(filepath.Join(target, "small.txt"), old, old))
	mustDo(t, os.Chtimes(filepath.Join(target, "docs", "readme.md"), future, future))
	before := filesUnder(t, e.dst)
	md := func(policy string) map[string]string {
		return map[string]string{"file-system-id": rDstFS, "newFileSystem": "false", "TargetPath": "/restored", "ConflictPolicy": policy,
			"Include": `["*.txt","*.md"]`}
	}
	for _, tc := range []struct {
		policy                     string
		create, overwrite, skipped []string
	}{
		{"SKIP_EXISTING", []string{"/restored/dir", "/restored/dir/sub", "/restored/dir/sub/b.txt"}, nil, []string{"/restored/docs/readme.md", "/restored/small.txt"}},
		{"OVERWRITE_EXISTING", []string{"/restored/dir", "/restored/dir/sub", "/restored/dir/sub/b.txt"}, []string{"/restored/docs/readme.md", "/restored/small.txt"}, nil},
		{"OVERWRITE_IF_NEWER", []string{"/restored/dir", "/restored/dir/sub", "/restored/dir/sub/b.txt"}, []string{"/restored/small.txt"}, []string{"/restored/docs/readme.md"}},
	} {
		p, code, typ := preview(acctA, md(tc.policy), nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", tc.policy, code, typ)
		}
		if p.Location != "/restored" || p.TargetArn == "" || !same(p.CreatePaths, tc.create) || !same(p.OverwritePaths, tc.overwrite) || !same(p.SkipPaths, tc.skipped) ||
			p.CreateCount != int64(len(tc.create)) || p.OverwriteCount != int64(len(tc.overwrite)) || p.SkipCount != int64(len(tc.skipped)) {
			t.Errorf("%s: %+v", tc.policy, p)
		}
	}
	if after := filesUnder(t, e.dst); !reflect.DeepEqual(before, after) {
		t.Fatalf("previews changed the target: %q → %q", before, after)
	}
	if got, err := os.ReadFile(filepath.Join(target, "small.txt")); err != nil || string(got) != "old\n" {
		t.Fatalf("small.txt: %q %v", got, err)
	}
	jobs, err := c.ListRestoreJobs(context.Background(), &sdk.ListRestoreJobsInput{})
	mustDo(t, err)
	if len(jobs.RestoreJobs) != 0 {
		t.Fatalf("previews created %d restore jobs", len(jobs.RestoreJobs))
	}

	// The real restore does what the preview said.
	d, err := e.restore(c, md("OVERWRITE_IF_NEWER"))
	mustDo(t, err)
	if d.Status != "COMPLETED" {
		t.Fatalf("restore: %s %s", d.Status, aws.ToString(d.StatusMessage))
	}
	if got, _ := os.ReadFile(filepath.Join(target, "small.txt")); string(got) != "hello\n" {
		t.Errorf("small.txt after the restore: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(target, "docs", "readme.md")); string(got) != "mine\n" {
		t.Errorf("readme.md after the restore: %q", got)
	}

	// Bad input: StartRestoreJob's errors, and another account's
	// recovery point.
	for _, tc := range []struct {
		name    string
		as      account
		md      map[string]string
		code    int
		errType string
	}{
		{"no metadata", acctA, nil, 400, "MissingParameterValueException"},
		{"unknown key", acctA, map[string]string{"file-system-id": rSrcFS, "newFileSystem": "true", "Bogus": "1"}, 400, "InvalidParameterValueException"},
		{"missing item", acctA, map[string]string{"file-system-id": rSrcFS, "newFileSystem": "true", "ItemsToRestore": `["/nope"]`}, 400, "InvalidParameterValueException"},
		{"dot-dot target", acctA, map[string]string{"file-system-id": rDstFS, "newFileSystem": "false", "TargetPath": "/../x"}, 400, "InvalidParameterValueException"},
		{"another account", acctB, map[string]string{"file-system-id": rSrcFS, "newFileSystem": "true"}, 400, "ResourceNotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, code, typ := preview(tc.as, tc.md, nil); code != tc.code || typ != tc.errType {
				t.Errorf("%d %s, want %d %s", code, typ, tc.code, tc.errType)
			}
		})
	}
}

func same(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}
