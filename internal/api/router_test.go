package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"coffer/internal/api/model"
)

func loadModel(t *testing.T) *model.Model {
	t.Helper()
	m, err := model.Load()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEveryOperationRoutes builds a request path for every operation of
// the model (labels filled with values containing "/" and ":") and checks
// the router finds exactly that operation and decodes the labels.
func TestEveryOperationRoutes(t *testing.T) {
	m := loadModel(t)
	rt := newRouter(m)
	label := "arn:aws:x:us-east-1:111111111111:thing/a b"
	for name, op := range m.Operations {
		uri, q, _ := strings.Cut(op.HTTP.RequestURI, "?")
		var parts []string
		for _, p := range strings.Split(uri, "/") {
			if strings.HasPrefix(p, "{") {
				p = url.PathEscape(label)
				p = strings.ReplaceAll(p, ":", "%3A")
			}
			parts = append(parts, p)
		}
		query := url.Values{}
		if q != "" {
			query.Set(q, "")
		}
		got, labels := rt.match(op.HTTP.Method, strings.Join(parts, "/"), query)
		if got == nil || got.name != name {
			gotName := "<none>"
			if got != nil {
				gotName = got.name
			}
			t.Errorf("%s %s routed to %s, want %s", op.HTTP.Method, op.HTTP.RequestURI, gotName, name)
			continue
		}
		for k, v := range labels {
			if v != label {
				t.Errorf("%s: label %s = %q", name, k, v)
			}
		}
	}
}

func TestRouterTrailingSlash(t *testing.T) {
	rt := newRouter(loadModel(t))
	for _, tc := range []struct {
		method, path, want string
	}{
		{"GET", "/backup-vaults/", "ListBackupVaults"},
		{"GET", "/backup-vaults", "ListBackupVaults"},
		{"GET", "/backup-vaults/v1", "DescribeBackupVault"},
		{"GET", "/backup-vaults/v1/", "DescribeBackupVault"},
		{"PUT", "/backup-jobs", "StartBackupJob"},
		{"GET", "/backup-jobs/", "ListBackupJobs"},
		{"GET", "/backup-jobs/J1", "DescribeBackupJob"},
		{"POST", "/backup-jobs/J1", "StopBackupJob"},
		{"GET", "/tags/arn%3Ax/", "ListTags"},
		{"POST", "/tags/arn%3Ax", "TagResource"},
		{"POST", "/untag/arn%3Ax", "UntagResource"},
		{"GET", "/backup-vaults/v1/recovery-points/arn%3Aaws%3Abackup%3Aus-east-1%3A1%3Arecovery-point%3Ax", "DescribeRecoveryPoint"},
		{"GET", "/nope", ""},
		{"GET", "/backup-vaults/v1/unknown", ""},
		{"DELETE", "/backup-vaults/", ""},
	} {
		r, _ := rt.match(tc.method, tc.path, url.Values{})
		got := ""
		if r != nil {
			got = r.name
		}
		if got != tc.want {
			t.Errorf("%s %s = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestDecodeQueryTypes(t *testing.T) {
	m := loadModel(t)
	d := &decoder{m: m}
	op := m.Operations["ListBackupJobs"]
	for _, tc := range []struct {
		query string
		want  map[string]any
		code  string
	}{
		{"createdAfter=2024-01-02T03:04:05Z", map[string]any{"ByCreatedAfter": "1704164645"}, ""},
		{"createdAfter=2024-01-02T03:04:05.678000Z", map[string]any{"ByCreatedAfter": "1704164645.678"}, ""},
		{"createdAfter=2024-01-02T03:04:05.678%2B01:00", map[string]any{"ByCreatedAfter": "1704161045.678"}, ""},
		{"createdBefore=1704164645.5", map[string]any{"ByCreatedBefore": "1704164645.5"}, ""},
		{"createdBefore=yesterday", nil, excInvalidParam},
		{"state=RUNNING&maxResults=10", map[string]any{"ByState": "RUNNING", "MaxResults": "10"}, ""},
		{"state=running", nil, excInvalidParam},
		{"State=BOGUS&MaxResults=0", map[string]any{}, ""},        // capitalised names belong to other operations: ignored
		{"accountId=%2A", map[string]any{"ByAccountId": "*"}, ""}, // documented wildcard, despite the model's pattern
		{"accountId=ANY", map[string]any{"ByAccountId": "ANY"}, ""},
		{"accountId=12", nil, excInvalidParam},
		{"accountId=111111111111", map[string]any{"ByAccountId": "111111111111"}, ""},
		{"maxResults=1001", nil, excInvalidParam},
		{"maxResults=99999999999999999999", nil, excInvalidParam},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := d.decode(op, nil, q, nil)
		if tc.code != "" {
			e, _ := toError(err)
			if err == nil || e.Code != tc.code {
				t.Errorf("%s: err %v, want %s", tc.query, err, tc.code)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.query, got, tc.want)
		}
		for k, v := range tc.want {
			if g, ok := got[k]; !ok || jsonString(g) != v {
				t.Errorf("%s: %s = %v, want %v", tc.query, k, got[k], v)
			}
		}
	}
	// The summaries operations use capitalised query names.
	sum := m.Operations["ListBackupJobSummaries"]
	q, _ := url.ParseQuery("MaxResults=5000")
	if _, err := d.decode(sum, nil, q, nil); err == nil {
		t.Error("ListBackupJobSummaries MaxResults=5000 accepted")
	}
	q, _ = url.ParseQuery("AccountId=AGGREGATE_ALL")
	if got, err := d.decode(sum, nil, q, nil); err != nil || got["AccountId"] != "AGGREGATE_ALL" {
		t.Errorf("summaries AccountId=AGGREGATE_ALL: %v %v", got, err)
	}
	// BackupVaultAccountId has no wildcard.
	q, _ = url.ParseQuery("backupVaultAccountId=%2A")
	rp := m.Operations["ListRecoveryPointsByBackupVault"]
	if _, err := d.decode(rp, map[string]string{"backupVaultName": "v1"}, q, nil); err == nil {
		t.Error("backupVaultAccountId=* accepted")
	}
}

func jsonString(v any) string {
	switch x := v.(type) {
	case json.Number:
		return string(x)
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestDecodeBody(t *testing.T) {
	m := loadModel(t)
	d := &decoder{m: m}
	op := m.Operations["CreateBackupVault"]
	labels := map[string]string{"backupVaultName": "v1"}
	for _, tc := range []struct {
		body string
		code string
	}{
		{``, ""},
		{`   `, ""},
		{`{}`, ""},
		{`{"BackupVaultTags":{"a":"b"},"Unknown":[1,{"x":null}]}`, ""},
		{`{"BackupVaultTags":null}`, ""},
		{`{"BackupVaultTags":["a"]}`, excInvalidParam},
		{`{"CreatorRequestId":5}`, excInvalidParam},
		{`{"CreatorRequestId":"a"`, excSerialization},
		{`"str"`, excSerialization},
		{`{"a":"\ud800"}`, ""}, // lone surrogate escapes decode to U+FFFD
		{strings.Repeat("[", 33) + strings.Repeat("]", 33), excSerialization},
		{`{"x":"` + strings.Repeat("[", 40) + `"}`, ""}, // brackets inside strings do not count
	} {
		_, err := d.decode(op, labels, url.Values{}, []byte(tc.body))
		if tc.code == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.body, err)
			}
			continue
		}
		e, _ := toError(err)
		if err == nil || e.Code != tc.code {
			t.Errorf("%q: err %v, want %s", tc.body, err, tc.code)
		}
	}
	if _, err := d.decode(op, map[string]string{}, url.Values{}, nil); err == nil {
		t.Error("missing BackupVaultName accepted")
	} else if e, _ := toError(err); e.Code != excMissingParam {
		t.Errorf("missing label: %v", err)
	}
}
