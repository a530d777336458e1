package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"

	"coffer/internal/testutil"
)

// botocoreWire signs each request with botocore's SigV4Auth as a (the
// sigv4 package's testdata/botocore_client.py) and sends it with the given
// transport ("raw": exactly as written; "urllib3": botocore's own session).
func botocoreWire(t *testing.T, e *env, a account, transport string, reqs [][2]string) []struct {
	Status   int    `json:"status"`
	Code     string `json:"code"`
	Response string `json:"response"`
} {
	t.Helper()
	py := testutil.RequireTool(t, "python3")
	if err := exec.Command(py, "-c", "import botocore").Run(); err != nil {
		testutil.SkipOrFail(t, "botocore is not importable: %v", err)
	}
	var cases []map[string]any
	for i, r := range reqs {
		path, query, _ := strings.Cut(r[1], "?")
		cases = append(cases, map[string]any{"name": string(rune('a' + i)), "method": r[0], "path": path, "query": query, "transport": transport})
	}
	in, err := json.Marshal(map[string]any{"url": e.url, "akid": a.akid, "secret": a.secret, "region": region,
		"service": "backup", "cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "sigv4/testdata/botocore_client.py")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("botocore_client.py: %v\n%s", err, stderr.String())
	}
	var res []struct {
		Status   int    `json:"status"`
		Code     string `json:"code"`
		Response string `json:"response"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		res = append(res, struct {
			Status   int    `json:"status"`
			Code     string `json:"code"`
			Response string `json:"response"`
		}{})
		if err := dec.Decode(&res[len(res)-1]); err != nil {
			t.Fatal(err)
		}
	}
	if len(res) != len(reqs) {
		t.Fatalf("got %d results for %d requests", len(res), len(reqs))
	}
	return res
}

// TestOddlyEncodedRequests: requests whose path or query is encoded in
// unusual but valid ways (issue 14) pass signature checking, whoever signs
// them, and then meet the same routing and validation as their plain
// spelling: "/backup-vaults/%61tk" is vault "atk", "%2e%2e" is a vault name
// that fails validation, "%35" is "5", and a '+' in the query is a space.
func TestOddlyEncodedRequests(t *testing.T) {
	e := start(t)
	c := e.client(acctA)
	if _, err := c.CreateBackupVault(context.Background(), &backup.CreateBackupVaultInput{BackupVaultName: aws.String("atk")}); err != nil {
		t.Fatal(err)
	}
	type want struct {
		status int
		code   string // X-Amzn-ErrorType, "" on success
		body   string // substring of the response body
	}
	cases := []struct {
		method, target string
		want           want
	}{
		{"GET", "/backup-vaults/%61tk", want{200, "", `"BackupVaultName":"atk"`}},
		{"GET", "/backup-vaults/%61%74%6b", want{200, "", `"BackupVaultName":"atk"`}},
		{"GET", "/backup-vaults/%61%74%6B", want{200, "", `"BackupVaultName":"atk"`}},
		// "%2e%2e" is no dot segment: the vault name "..".
		{"GET", "/backup-vaults/%2e%2e", want{400, "ResourceNotFoundException", `"Context":".."`}},
		{"GET", "/backup-vaults/?maxResults=%35", want{200, "", `"BackupVaultName":"atk"`}},
		{"GET", "/backup-vaults/?%6daxResults=0", want{400, "InvalidParameterValueException", "MaxResults"}},
		{"GET", "/backup-vaults/?maxResults=1&&", want{200, "", `"BackupVaultName":"atk"`}},
		// '+' is a space (" 1" is no integer), "%2B" a plus ("+1" is).
		{"GET", "/backup-vaults/?maxResults=+1", want{400, "InvalidParameterValueException", "MaxResults"}},
		{"GET", "/backup-vaults/?maxResults=%2B1", want{200, "", `"BackupVaultName":"atk"`}},
		{"GET", "/backup-vaults/?maxResults=%2b1", want{200, "", `"BackupVaultName":"atk"`}},
		{"GET", "/backup-vaults/?maxResults=%30%30%37", want{200, "", `"BackupVaultName":"atk"`}},
		{"GET", "/backup-jobs/?state=+CREATED", want{400, "InvalidParameterValueException", "State"}},
	}
	var reqs [][2]string
	for _, tc := range cases {
		reqs = append(reqs, [2]string{tc.method, tc.target})
	}
	check := func(who string, i int, status int, code, body string) {
		t.Helper()
		tc := cases[i]
		if status != tc.want.status || code != tc.want.code || !strings.Contains(body, tc.want.body) {
			t.Errorf("%s %s %s: %d %q %s; want %d %q containing %q", who, tc.method, tc.target, status, code, body, tc.want.status, tc.want.code, tc.want.body)
		}
	}
	for _, transport := range []string{"raw", "urllib3"} {
		for i, r := range botocoreWire(t, e, acctA, transport, reqs) {
			check("botocore/"+transport, i, r.Status, r.Code, r.Response)
		}
	}
	for i, tc := range cases {
		st, code, body := e.raw(&acctA, tc.method, tc.target, nil, func(r *http.Request) {})
		check("aws-sdk-go-v2", i, st, code, string(body))
	}
}
