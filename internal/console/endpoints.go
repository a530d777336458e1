package console

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// Times are RFC 3339 strings in UTC ("" when unset).
func rfc(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

type jobOut struct {
	Kind               string `json:"kind"`
	ID                 string `json:"id"`
	AccountID          string `json:"accountId"`
	State              string `json:"state"`
	StatusMessage      string `json:"statusMessage,omitempty"`
	PercentDone        string `json:"percentDone,omitempty"`
	BytesTransferred   int64  `json:"bytesTransferred"`
	BackupSizeBytes    int64  `json:"backupSizeBytes"`
	VaultName          string `json:"vaultName,omitempty"`
	ResourceArn        string `json:"resourceArn,omitempty"`
	ResourceType       string `json:"resourceType,omitempty"`
	RecoveryPointArn   string `json:"recoveryPointArn,omitempty"`
	CreatedResourceArn string `json:"createdResourceArn,omitempty"`
	Created            string `json:"created"`
	Completed          string `json:"completed,omitempty"`
}

func jobOf(j *backup.Job) jobOut {
	return jobOut{Kind: strings.ToLower(string(j.Kind)), ID: j.ID, AccountID: j.AccountID, State: string(j.State), StatusMessage: j.StatusMessage,
		PercentDone: j.PercentDone, BytesTransferred: j.BytesTransferred, BackupSizeBytes: j.BackupSizeBytes, VaultName: j.VaultName,
		ResourceArn: j.ResourceArn, ResourceType: j.ResourceType, RecoveryPointArn: j.RecoveryPointArn,
		CreatedResourceArn: j.CreatedResourceArn, Created: rfc(&j.CreationDate), Completed: rfc(j.CompletionDate)}
}

var jobKinds = map[string]backup.JobKind{"backup": backup.JobBackup, "restore": backup.JobRestore, "copy": backup.JobCopy}

// orgView is the account parameter of lists: the management account may
// ask for every account ("all=1").
func orgView(r *http.Request) *string {
	if r.URL.Query().Get("all") == "1" {
		all := "*"
		return &all
	}
	return nil
}

const listLimit = 100

func (c *Console) jobs(ctx context.Context, s *session, acct *string, f service.JobFilter, limit int) ([]jobOut, error) {
	out := []jobOut{}
	kinds := []backup.JobKind{backup.JobBackup, backup.JobRestore, backup.JobCopy}
	if f.Kind != "" {
		kinds = []backup.JobKind{f.Kind}
	}
	for _, k := range kinds {
		f.Kind = k
		js, _, err := c.svc.ListJobs(ctx, c.caller(s), acct, f, service.Page{Limit: limit})
		if err != nil {
			return nil, err
		}
		for _, j := range js {
			out = append(out, jobOf(j))
		}
	}
	return out, nil
}

type dashboardOut struct {
	Running  []jobOut         `json:"running"`
	Failures []jobOut         `json:"failures"`
	Summary  map[string]int64 `json:"summary"` // "backup COMPLETED" → count, last 24 h
}

// dashboard: running jobs with progress, failures of the last 24 h and
// the counts of the last 24 h by type and state.
func (c *Console) dashboard(ctx context.Context, s *session, r *http.Request) (any, error) {
	acct := orgView(r)
	out := dashboardOut{Summary: map[string]int64{}}
	var err error
	if out.Running, err = c.jobs(ctx, s, acct, service.JobFilter{State: backup.JobRunning}, listLimit); err != nil {
		return nil, err
	}
	since := c.cfg.Clock.Now().Add(-24 * time.Hour)
	recent, err := c.jobs(ctx, s, acct, service.JobFilter{CreatedAfter: &since}, 1000)
	if err != nil {
		return nil, err
	}
	out.Failures = []jobOut{}
	for _, j := range recent {
		out.Summary[j.Kind+" "+j.State]++
		switch backup.JobState(j.State) {
		case backup.JobFailed, backup.JobAborted, backup.JobExpired:
			out.Failures = append(out.Failures, j)
		}
	}
	return out, nil
}

type vaultOut struct {
	Name           string `json:"name"`
	Arn            string `json:"arn"`
	RecoveryPoints int64  `json:"recoveryPoints"`
	Locked         bool   `json:"locked"`
	MinRetention   *int64 `json:"minRetentionDays,omitempty"`
	MaxRetention   *int64 `json:"maxRetentionDays,omitempty"`
	Policy         string `json:"policy,omitempty"`
	Created        string `json:"created"`
}

func (c *Console) listVaults(ctx context.Context, s *session, _ *http.Request) (any, error) {
	out := []vaultOut{}
	after := ""
	for range 100 {
		vs, next, err := c.svc.ListVaults(ctx, c.caller(s), service.VaultFilter{}, service.Page{Limit: 1000, After: after})
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			vo := vaultOut{Name: v.Name, Arn: v.Arn, RecoveryPoints: v.RecoveryPoints, Locked: v.Locked, MinRetention: v.MinRetentionDays,
				MaxRetention: v.MaxRetentionDays, Created: rfc(&v.CreationDate)}
			if v.AccessPolicy != nil {
				vo.Policy = *v.AccessPolicy
			}
			out = append(out, vo)
		}
		if next == "" {
			break
		}
		after = next
	}
	return out, nil
}

type nameIn struct {
	Name string `json:"name"`
}

func (c *Console) createVault(ctx context.Context, s *session, r *http.Request) (any, error) {
	var in nameIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if !backup.ValidVaultName(in.Name) {
		return nil, fail(http.StatusBadRequest, "a vault name has 2 to 50 letters, digits, '-' or '_'")
	}
	v, err := c.svc.CreateVault(ctx, c.caller(s), service.CreateVaultRequest{Name: in.Name})
	if err != nil {
		return nil, err
	}
	return vaultOut{Name: v.Name, Arn: v.Arn, Created: rfc(&v.CreationDate)}, nil
}

func (c *Console) deleteVault(ctx context.Context, s *session, r *http.Request) (any, error) {
	var in nameIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if err := c.svc.DeleteVault(ctx, c.caller(s), in.Name); err != nil {
		return nil, err
	}
	return map[string]string{"deleted": in.Name}, nil
}

type resourceOut struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Arn  string `json:"arn"`
}

func (c *Console) listResources(ctx context.Context, s *session, _ *http.Request) (any, error) {
	rs, err := c.svc.Resources(ctx, c.caller(s))
	if err != nil {
		return nil, err
	}
	out := []resourceOut{}
	for _, r := range rs {
		out = append(out, resourceOut{Type: r.Type, ID: r.ID, Arn: r.Arn})
	}
	return out, nil
}

type rpOut struct {
	Arn          string `json:"arn"`
	VaultName    string `json:"vaultName"`
	ResourceArn  string `json:"resourceArn"`
	ResourceType string `json:"resourceType"`
	Status       string `json:"status"`
	Size         int64  `json:"size"`
	Created      string `json:"created"`
}

func (c *Console) listRecoveryPoints(ctx context.Context, s *session, r *http.Request) (any, error) {
	q := r.URL.Query()
	rps, _, err := c.svc.ListRecoveryPoints(ctx, c.caller(s), service.RecoveryPointQuery{VaultName: q.Get("vault"), ResourceArn: q.Get("resource")},
		service.Page{Limit: 1000})
	if err != nil {
		return nil, err
	}
	out := []rpOut{}
	for _, rp := range rps {
		out = append(out, rpOut{Arn: rp.Arn, VaultName: rp.VaultName, ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType,
			Status: string(rp.Status), Size: rp.BackupSizeBytes, Created: rfc(&rp.CreationDate)})
	}
	return out, nil
}

type entryOut struct {
	Path     string `json:"path"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Size     int64  `json:"size"`
	Mode     string `json:"mode,omitempty"`
	Modified string `json:"modified,omitempty"`
	Target   string `json:"target,omitempty"`
}

type browseOut struct {
	Entries []entryOut `json:"entries"`
	Next    string     `json:"next,omitempty"`
}

// browse lists a level of a recovery point (or searches it). The
// continuation is the plugin's own (the request names the caller's own
// recovery point, so a forged one only lists that).
func (c *Console) browse(ctx context.Context, s *session, r *http.Request) (any, error) {
	q := r.URL.Query()
	limit := 200
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, fail(http.StatusBadRequest, "limit must be 1 to 1000")
		}
		limit = n
	}
	page, err := c.svc.BrowseRecoveryPoint(ctx, c.caller(s), service.BrowseRequest{RecoveryPointArn: q.Get("rp"), Path: q.Get("path"),
		Glob: q.Get("glob"), After: q.Get("next"), Limit: limit})
	if err != nil {
		return nil, err
	}
	out := browseOut{Entries: []entryOut{}, Next: page.Next}
	for _, e := range page.Entries {
		eo := entryOut{Path: e.Path, Name: e.Name, Type: e.Type, Size: e.Size, Target: e.Target}
		if !e.ModTime.IsZero() {
			eo.Modified = e.ModTime.UTC().Format(time.RFC3339)
		}
		if e.Type != "OBJECT" && e.Type != "PREFIX" {
			eo.Mode = "0" + strconv.FormatUint(uint64(e.Mode), 8)
		}
		out.Entries = append(out.Entries, eo)
	}
	return out, nil
}

type backupIn struct {
	VaultName   string `json:"vaultName"`
	ResourceArn string `json:"resourceArn"`
}

func (c *Console) startBackup(ctx context.Context, s *session, r *http.Request) (any, error) {
	var in backupIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	// The account's default service role, as the AWS console picks.
	j, err := c.svc.StartBackup(ctx, c.caller(s), service.StartBackupRequest{VaultName: in.VaultName, ResourceArn: in.ResourceArn,
		IamRoleArn: backup.DefaultServiceRole(s.account)})
	if err != nil {
		return nil, err
	}
	return jobOf(j), nil
}

// restoreMetadata is the recovery point's own restore metadata
// (GetRecoveryPointRestoreMetadata): the restore wizard starts from it.
func (c *Console) restoreMetadata(ctx context.Context, s *session, r *http.Request) (any, error) {
	q := r.URL.Query()
	_, rp, md, err := c.svc.RecoveryPointRestoreMetadata(ctx, c.caller(s), q.Get("vault"), q.Get("rp"))
	if err != nil {
		return nil, err
	}
	if md == nil {
		md = map[string]string{}
	}
	return map[string]any{"resourceType": rp.ResourceType, "resourceArn": rp.ResourceArn, "metadata": md}, nil
}

type restoreIn struct {
	RecoveryPointArn string            `json:"recoveryPointArn"`
	Metadata         map[string]string `json:"metadata"`
}

func (in restoreIn) request() service.StartRestoreRequest {
	return service.StartRestoreRequest{RecoveryPointArn: in.RecoveryPointArn, Metadata: in.Metadata}
}

type previewOut struct {
	TargetArn      string   `json:"targetArn,omitempty"`
	Location       string   `json:"location"`
	Create         int64    `json:"create"`
	Overwrite      int64    `json:"overwrite"`
	Skip           int64    `json:"skip"`
	Bytes          int64    `json:"bytes"`
	CreatePaths    []string `json:"createPaths"`
	OverwritePaths []string `json:"overwritePaths"`
	SkipPaths      []string `json:"skipPaths"`
	Problems       []string `json:"problems"`
}

func (c *Console) previewRestore(ctx context.Context, s *session, r *http.Request) (any, error) {
	var in restoreIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if in.Metadata == nil {
		return nil, fail(http.StatusBadRequest, "metadata is required")
	}
	p, err := c.svc.PreviewRestore(ctx, c.caller(s), in.request(), 50)
	if err != nil {
		return nil, err
	}
	out := previewOut{TargetArn: p.TargetArn, Location: p.Location, Create: p.Create, Overwrite: p.Overwrite, Skip: p.Skip, Bytes: p.Bytes,
		CreatePaths: orEmpty(p.CreatePaths), OverwritePaths: orEmpty(p.OverwritePaths), SkipPaths: orEmpty(p.SkipPaths), Problems: []string{}}
	for _, pr := range p.Problems {
		out.Problems = append(out.Problems, pr.String())
	}
	return out, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (c *Console) startRestore(ctx context.Context, s *session, r *http.Request) (any, error) {
	var in restoreIn
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	if in.Metadata == nil {
		return nil, fail(http.StatusBadRequest, "metadata is required")
	}
	j, err := c.svc.StartRestore(ctx, c.caller(s), in.request())
	if err != nil {
		return nil, err
	}
	return jobOf(j), nil
}

func (c *Console) listJobs(ctx context.Context, s *session, r *http.Request) (any, error) {
	q := r.URL.Query()
	var f service.JobFilter
	if k := q.Get("kind"); k != "" {
		kind, ok := jobKinds[k]
		if !ok {
			return nil, fail(http.StatusBadRequest, "kind must be backup, restore or copy")
		}
		f.Kind = kind
	}
	if st := q.Get("state"); st != "" {
		if !validState(st) {
			return nil, fail(http.StatusBadRequest, "unknown job state")
		}
		f.State = backup.JobState(st)
	}
	js, err := c.jobs(ctx, s, orgView(r), f, listLimit)
	if err != nil {
		return nil, err
	}
	return js, nil
}

func validState(s string) bool {
	switch backup.JobState(s) {
	case backup.JobCreated, backup.JobPending, backup.JobRunning, backup.JobAborting, backup.JobAborted,
		backup.JobCompleted, backup.JobFailed, backup.JobExpired:
		return true
	}
	return false
}

func (c *Console) describeJob(ctx context.Context, s *session, r *http.Request) (any, error) {
	q := r.URL.Query()
	kind, ok := jobKinds[q.Get("kind")]
	if !ok {
		return nil, fail(http.StatusBadRequest, "kind must be backup, restore or copy")
	}
	j, err := c.svc.DescribeJob(ctx, c.caller(s), kind, q.Get("id"))
	if err != nil {
		return nil, err
	}
	return jobOf(j), nil
}
