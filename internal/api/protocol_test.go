package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/api"
)

// TestValidationRaw sends signed requests the SDKs would not pre-validate
// and checks each exception, and that none of them changed state.
func TestValidationRaw(t *testing.T) {
	e := start(t)
	_, err := e.client(acctA).CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("keep")})
	must(t, err)
	big := append([]byte(`{"BackupVaultTags":{"a":"`), bytes.Repeat([]byte("x"), 2<<20)...)
	big = append(big, `"}}`...)
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	wide := `{"Pad":[0` + strings.Repeat(",0", api.MaxJSONElements) + `]}`
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		status             int
		code               string
		mentions           string
	}{
		{"maxResults too big", "GET", "/backup-vaults/?maxResults=5000", nil, 400, "InvalidParameterValueException", "MaxResults"},
		{"maxResults zero", "GET", "/backup-vaults/?maxResults=0", nil, 400, "InvalidParameterValueException", "MaxResults"},
		{"maxResults not a number", "GET", "/backup-vaults/?maxResults=ten", nil, 400, "InvalidParameterValueException", "MaxResults"},
		{"bad enum", "GET", "/backup-vaults/?vaultType=BOGUS", nil, 400, "InvalidParameterValueException", "ByVaultType"},
		{"bad bool", "GET", "/backup-vaults/?shared=yes", nil, 400, "InvalidParameterValueException", "ByShared"},
		{"bad vault name", "PUT", "/backup-vaults/a%20b%20c%20%21%21", []byte(`{}`), 400, "InvalidParameterValueException", "BackupVaultName"},
		{"vault name too long", "PUT", "/backup-vaults/" + strings.Repeat("a", 51), []byte(`{}`), 400, "InvalidParameterValueException", "BackupVaultName"},
		{"missing required member", "POST", "/tags/" + url.PathEscape(vaultArn(acctA, "keep")), []byte(`{}`), 400, "MissingParameterValueException", "Tags"},
		{"missing required list", "POST", "/untag/" + url.PathEscape(vaultArn(acctA, "keep")), []byte(`{}`), 400, "MissingParameterValueException", "TagKeyList"},
		{"wrong JSON type", "PUT", "/backup-vaults/newvault", []byte(`{"BackupVaultTags":"not-a-map"}`), 400, "InvalidParameterValueException", "BackupVaultTags"},
		{"wrong type in map", "PUT", "/backup-vaults/newvault", []byte(`{"BackupVaultTags":{"a":1}}`), 400, "InvalidParameterValueException", "BackupVaultTags"},
		{"wrong number type", "PUT", "/backup-vaults/keep/vault-lock", []byte(`{"MinRetentionDays":"7"}`), 400, "InvalidParameterValueException", "MinRetentionDays"},
		{"fractional integer", "PUT", "/backup-vaults/keep/vault-lock", []byte(`{"MinRetentionDays":7.5}`), 400, "InvalidParameterValueException", "MinRetentionDays"},
		{"malformed JSON", "PUT", "/backup-vaults/newvault", []byte(`{"BackupVaultTags":`), 400, "SerializationException", "JSON"},
		{"JSON array body", "PUT", "/backup-vaults/newvault", []byte(`[1,2]`), 400, "SerializationException", "object"},
		{"trailing data", "PUT", "/backup-vaults/newvault", []byte(`{} {}`), 400, "SerializationException", "after"},
		{"invalid UTF-8", "PUT", "/backup-vaults/newvault", []byte("{\"CreatorRequestId\":\"\xff\xfe\"}"), 400, "SerializationException", "UTF-8"},
		{"deep nesting", "PUT", "/backup-vaults/newvault", []byte(deep), 400, "SerializationException", "deeper"},
		{"too many elements", "PUT", "/backup-vaults/newvault", []byte(wide), 400, "SerializationException", "elements"},
		{"oversized body", "PUT", "/backup-vaults/newvault", big, 413, "RequestEntityTooLargeException", "exceeds"},
		{"unknown route", "GET", "/no-such-thing", nil, 404, "UnknownOperationException", "no operation"},
		{"wrong method", "PATCH", "/backup-vaults/keep", nil, 404, "UnknownOperationException", "no operation"},
		{"policy missing", "PUT", "/backup-vaults/keep/access-policy", []byte(`{}`), 400, "MissingParameterValueException", "Policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code, body := e.raw(&acctA, tc.method, tc.path, tc.body, nil)
			if status != tc.status || code != tc.code {
				t.Fatalf("status %d code %q body %s; want %d %s", status, code, body, tc.status, tc.code)
			}
			var eb struct{ Code, Message, Type string }
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("error body %q: %v", body, err)
			}
			if eb.Code != tc.code || eb.Type != "User" || !strings.Contains(eb.Message, tc.mentions) {
				t.Fatalf("error body %+v does not mention %q", eb, tc.mentions)
			}
		})
	}
	if n := e.vaultCount(acctA); n != 1 {
		t.Fatalf("vault count %d after rejected requests, want 1", n)
	}
	d, err := e.client(acctA).DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("keep")})
	must(t, err)
	if aws.ToBool(d.Locked) {
		t.Fatal("rejected lock request changed the vault")
	}
	tags, err := e.client(acctA).ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(vaultArn(acctA, "keep"))})
	must(t, err)
	if len(tags.Tags) != 0 {
		t.Fatalf("rejected tag request changed tags: %v", tags.Tags)
	}
}

func TestProtocolDetails(t *testing.T) {
	e := start(t)
	// Unknown body members and query names are ignored; trailing slash tolerated.
	status, code, body := e.raw(&acctA, "PUT", "/backup-vaults/v1/", []byte(`{"SomeFutureMember":{"x":[1,2]},"CreatorRequestId":"r1"}`), nil)
	if status != 200 {
		t.Fatalf("create with unknown member: %d %s %s", status, code, body)
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	must(t, dec.Decode(&out))
	if _, ok := out["CreationDate"].(json.Number); !ok {
		t.Fatalf("CreationDate is not a JSON number: %s", body)
	}
	status, _, body = e.raw(&acctA, "GET", "/backup-vaults?unknownQuery=1&maxResults=5", nil, nil)
	if status != 200 || !strings.Contains(string(body), `"BackupVaultList":[`) {
		t.Fatalf("list without trailing slash: %d %s", status, body)
	}
	// Query names are case-sensitive: MaxResults is not maxResults here.
	status, _, body = e.raw(&acctA, "GET", "/backup-vaults/?MaxResults=5000", nil, nil)
	if status != 200 {
		t.Fatalf("capitalised query name should be ignored: %d %s", status, body)
	}
	// ARN labels with encoded "/" and ":" route as one segment.
	arn := "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-01234567"
	status, code, _ = e.raw(&acctA, "GET", "/tags/"+url.PathEscape(arn)+"/", nil, nil)
	if status != 400 || code != "InvalidParameterValueException" {
		t.Fatalf("ListTags on EFS ARN: %d %s", status, code)
	}
	// Delete answers an empty 200.
	status, _, body = e.raw(&acctA, "DELETE", "/backup-vaults/v1", nil, nil)
	if status != 200 || len(body) != 0 {
		t.Fatalf("delete: %d %q", status, body)
	}
}

// TestSigV4EndToEnd: wrong secret, unknown key, missing or broken auth and
// a foreign region are rejected before any side effect.
func TestSigV4EndToEnd(t *testing.T) {
	e := start(t)
	wrong := account{acctA.id, acctA.akid, strings.Repeat("z", 40)}
	unknown := account{"333333333333", "AKIAUNKNOWNUNKNOWN00", strings.Repeat("u", 40)}
	_, err := e.client(wrong).CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("x1")})
	if err == nil || !strings.Contains(err.Error(), "InvalidSignatureException") {
		t.Fatalf("wrong secret: %v", err)
	}
	_, err = e.client(unknown).CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("x2")})
	if err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Fatalf("unknown key: %v", err)
	}
	for _, tc := range []struct {
		name   string
		signer *account
		mutate func(*http.Request)
		code   string
	}{
		{"no auth", nil, nil, "MissingAuthenticationTokenException"},
		{"garbled auth", &acctA, func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 garbage") }, "IncompleteSignatureException"},
		{"body changed after signing", &acctA, func(r *http.Request) {
			r.Body = http.NoBody
			r.ContentLength = 0
		}, "InvalidSignatureException"},
	} {
		status, code, body := e.raw(tc.signer, "PUT", "/backup-vaults/x3", []byte(`{}`), tc.mutate)
		if status != 403 || code != tc.code {
			t.Errorf("%s: %d %s %s, want 403 %s", tc.name, status, code, body, tc.code)
		}
	}
	other := backup.New(backup.Options{Region: "eu-west-1", BaseEndpoint: aws.String(e.url),
		Credentials: e.client(acctA).Options().Credentials, RetryMaxAttempts: 1})
	_, err = other.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("x4")})
	if err == nil {
		t.Fatal("request signed for another region accepted")
	}
	if n := e.vaultCount(acctA); n != 0 {
		t.Fatalf("%d vaults created by rejected requests", n)
	}
}

// TestTenancy: account B cannot see, describe, delete, tag or lock A's
// vault; the answers are identical to those for a missing vault.
func TestTenancy(t *testing.T) {
	e := start(t)
	a, b := e.client(acctA), e.client(acctB)
	_, err := a.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("secret-vault")})
	must(t, err)
	l, err := b.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{})
	must(t, err)
	if len(l.BackupVaultList) != 0 {
		t.Fatalf("B lists %d vaults", len(l.BackupVaultList))
	}
	msgOf := func(err error) string {
		nf := wantErr[*types.ResourceNotFoundException](t, err)
		return strings.ReplaceAll(aws.ToString(nf.Message), "secret-vault", "NAME")
	}
	for _, name := range []string{"secret-vault", "never-existed"} {
		_, err = b.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String(name)})
		expectErr[*types.ResourceNotFoundException](t, err)
		_, err = b.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String(name), BackupVaultAccountId: aws.String(acctA.id)})
		expectErr[*types.ResourceNotFoundException](t, err)
		_, err = b.DeleteBackupVault(ctx, &backup.DeleteBackupVaultInput{BackupVaultName: aws.String(name)})
		expectErr[*types.ResourceNotFoundException](t, err)
		_, err = b.PutBackupVaultAccessPolicy(ctx, &backup.PutBackupVaultAccessPolicyInput{BackupVaultName: aws.String(name), Policy: aws.String(policy)})
		expectErr[*types.ResourceNotFoundException](t, err)
		_, err = b.PutBackupVaultLockConfiguration(ctx, &backup.PutBackupVaultLockConfigurationInput{BackupVaultName: aws.String(name), MinRetentionDays: aws.Int64(1)})
		expectErr[*types.ResourceNotFoundException](t, err)
		_, err = b.TagResource(ctx, &backup.TagResourceInput{ResourceArn: aws.String(vaultArn(acctA, name)), Tags: map[string]string{"x": "y"}})
		expectErr[*types.ResourceNotFoundException](t, err)
		_, err = b.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(vaultArn(acctA, name))})
		expectErr[*types.ResourceNotFoundException](t, err)
	}
	_, e1 := b.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("secret-vault")})
	_, e2 := b.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("NAME")})
	if m1, m2 := msgOf(e1), msgOf(e2); m1 != m2 {
		t.Fatalf("foreign and missing differ: %q vs %q", m1, m2)
	}
	// B may create its own vault of the same name; A's is untouched.
	_, err = b.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("secret-vault")})
	must(t, err)
	d, err := a.DescribeBackupVault(ctx, &backup.DescribeBackupVaultInput{BackupVaultName: aws.String("secret-vault")})
	must(t, err)
	if aws.ToString(d.BackupVaultArn) != vaultArn(acctA, "secret-vault") || aws.ToBool(d.Locked) {
		t.Fatalf("A's vault changed: %+v", d)
	}
	tags, err := a.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(vaultArn(acctA, "secret-vault"))})
	must(t, err)
	if len(tags.Tags) != 0 {
		t.Fatalf("B tagged A's vault: %v", tags.Tags)
	}
}

// TestPagination pages ~300 vaults with several page sizes through the
// SDK paginator and checks tokens are bound to account and filters.
func TestPagination(t *testing.T) {
	e := start(t)
	a := e.client(acctA)
	const n = 301
	for i := 0; i < n; i++ {
		_, err := a.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String(fmt.Sprintf("vault-%03d", i))})
		must(t, err)
	}
	for _, size := range []int32{7, 50, 1000} {
		p := backup.NewListBackupVaultsPaginator(a, &backup.ListBackupVaultsInput{MaxResults: aws.Int32(size)})
		seen := map[string]bool{}
		prevToken := ""
		pages := 0
		var last string
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			must(t, err)
			pages++
			if len(page.BackupVaultList) > int(size) {
				t.Fatalf("page of %d > %d", len(page.BackupVaultList), size)
			}
			for _, v := range page.BackupVaultList {
				name := aws.ToString(v.BackupVaultName)
				if seen[name] {
					t.Fatalf("size %d: %s repeated", size, name)
				}
				if name <= last {
					t.Fatalf("size %d: order broken at %s", size, name)
				}
				last = name
				seen[name] = true
			}
			if tok := aws.ToString(page.NextToken); tok != "" && tok == prevToken {
				t.Fatalf("same token twice")
			} else {
				prevToken = tok
			}
			if size == 7 && pages == 3 {
				// Concurrent inserts must not cause repeats or skips of
				// the existing vaults (new ones may or may not appear).
				_, err := a.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("aaa-early")})
				must(t, err)
				_, err = a.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("zzz-late")})
				must(t, err)
			}
		}
		for i := 0; i < n; i++ {
			if !seen[fmt.Sprintf("vault-%03d", i)] {
				t.Fatalf("size %d: vault-%03d skipped", size, i)
			}
		}
		want := (n + 2 + int(size) - 1) / int(size)
		if size == 7 {
			want = -1
		}
		if want > 0 && pages != want {
			t.Fatalf("size %d: %d pages, want %d", size, pages, want)
		}
	}
	first, err := a.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{MaxResults: aws.Int32(5)})
	must(t, err)
	tok := first.NextToken
	if tok == nil {
		t.Fatal("no token")
	}
	// Same token, different filter.
	_, err = a.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{MaxResults: aws.Int32(5), NextToken: tok, ByVaultType: types.VaultTypeBackupVault})
	expectErr[*types.InvalidParameterValueException](t, err)
	// Another account.
	_, err = e.client(acctB).ListBackupVaults(ctx, &backup.ListBackupVaultsInput{MaxResults: aws.Int32(5), NextToken: tok})
	expectErr[*types.InvalidParameterValueException](t, err)
	// Another operation.
	_, err = a.ListTags(ctx, &backup.ListTagsInput{ResourceArn: aws.String(vaultArn(acctA, "vault-000")), NextToken: tok})
	expectErr[*types.InvalidParameterValueException](t, err)
	// Edited tokens.
	edited := []string{"x" + *tok, (*tok)[:len(*tok)-2], strings.Replace(*tok, ".", "", 1), "garbage", "Zm9v.YmFy"}
	for _, bad := range edited {
		_, err = a.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{MaxResults: aws.Int32(5), NextToken: aws.String(bad)})
		expectErr[*types.InvalidParameterValueException](t, err)
	}
	// The genuine token still works.
	second, err := a.ListBackupVaults(ctx, &backup.ListBackupVaultsInput{MaxResults: aws.Int32(5), NextToken: tok})
	must(t, err)
	if aws.ToString(second.BackupVaultList[0].BackupVaultName) <= aws.ToString(first.BackupVaultList[4].BackupVaultName) {
		t.Fatal("second page does not follow the first")
	}
}

// TestChunkedOversizedBody: without a Content-Length the limit is enforced
// while reading (MaxBytesReader), still 413 and nothing created.
func TestChunkedOversizedBody(t *testing.T) {
	e := start(t)
	big := append([]byte(`{"BackupVaultTags":{"a":"`), bytes.Repeat([]byte("y"), 1<<20)...)
	big = append(big, `"}}`...)
	status, code, body := e.raw(&acctA, "PUT", "/backup-vaults/chunked", big, func(r *http.Request) {
		r.ContentLength = -1
		r.Header.Del("Content-Length")
		r.TransferEncoding = []string{"chunked"}
	})
	if status != 413 || code != "RequestEntityTooLargeException" {
		t.Fatalf("chunked oversized: %d %s %.200s", status, code, body)
	}
	if n := e.vaultCount(acctA); n != 0 {
		t.Fatalf("%d vaults", n)
	}
}

// TestAccountWildcardReachesHandler: the documented ByAccountId "*" is not
// rejected by the model's 12-digit pattern, so the management account can
// list every account's jobs.
func TestAccountWildcardReachesHandler(t *testing.T) {
	e := start(t)
	for _, path := range []string{"/backup-jobs/?accountId=%2A", "/restore-jobs/?accountId=%2A", "/copy-jobs/?accountId=%2A"} {
		status, code, body := e.raw(&acctA, "GET", path, nil, nil)
		if status != 200 {
			t.Errorf("%s as management account: %d %s %s", path, status, code, body)
		}
	}
	status, code, _ := e.raw(&acctA, "GET", "/backup-jobs/?accountId=12345", nil, nil)
	if status != 400 || code != "InvalidParameterValueException" {
		t.Errorf("accountId=12345: %d %s", status, code)
	}
}
