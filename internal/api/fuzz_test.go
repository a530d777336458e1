package api

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"coffer/internal/clock"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
)

type noAuth struct{}

func (noAuth) Authenticate(*http.Request, []byte) (string, error) {
	return "", &Error{Status: http.StatusForbidden, Code: "MissingAuthenticationTokenException", Message: "test"}
}

// FuzzDecodeRequest drives arbitrary method/path/query/body through the
// router, decoder and handlers (after authentication): never a panic,
// never a 5xx.
func FuzzDecodeRequest(f *testing.F) {
	seeds := []struct{ method, path, query, body string }{
		{"PUT", "/backup-vaults/v1", "", `{"BackupVaultTags":{"a":"b"},"CreatorRequestId":"r"}`},
		{"GET", "/backup-vaults/", "maxResults=5000&vaultType=BOGUS", ""},
		{"GET", "/backup-vaults/", "maxResults=2&nextToken=abc.def", ""},
		{"PUT", "/backup-vaults/v1/vault-lock", "", `{"MinRetentionDays":1.5,"ChangeableForDays":"3"}`},
		{"PUT", "/backup-vaults/v1/access-policy", "", `{"Policy":"{\"Version\":1}"}`},
		{"POST", "/tags/arn%3Aaws%3Abackup%3Aus-east-1%3A111111111111%3Abackup-vault%3Av1", "", `{"Tags":{"aws:x":"y"}}`},
		{"POST", "/untag/arn%3Aaws", "", `{"TagKeyList":[1,2,{}]}`},
		{"GET", "/tags/%ZZ/", "", ""},
		{"GET", "/backup-jobs/", "createdAfter=2024-01-02T03:04:05.678000Z&state=RUNNING", ""},
		{"GET", "/audit/backup-job-summaries", "MaxResults=0&AccountId=*", ""},
		{"PUT", "/backup-vaults/v2", "", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]"},
		{"PUT", "/backup-vaults/v2", "", "{\"BackupVaultTags\":{\"\xff\":\"x\"}}"},
		{"DELETE", "/backup-vaults/v1", "", ""},
		{"GET", "//", "%%%", "{"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, []byte(s.body))
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "meta.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	stk, err := stack.Build(stack.Options{Store: st, Clock: clk})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Region: "us-east-1", AccountOf: map[string]string{},
		TokenKey: bytes.Repeat([]byte{1}, 32)}, Deps{Clock: clk, Auth: noAuth{}, Service: stk.Service})
	if err != nil {
		f.Fatal(err)
	}
	id := Identity{AccountID: "111111111111", Region: "us-east-1"}
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		if len(body) > MaxBodyBytes {
			return
		}
		_, _, err := s.dispatch(context.Background(), id, method, path, query, body)
		if err != nil {
			e, ok := toError(err)
			if !ok || e.Status >= 500 {
				t.Fatalf("%s %s?%s %q: %v (status %d)", method, path, query, body, err, e.Status)
			}
		}
	})
}
