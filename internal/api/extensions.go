package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"coffer/internal/service"
)

// Coffer's extensions of the AWS Backup API (docs/design/browse.md): on
// the same listener, signed with SigV4 for service "backup" like every
// request, answered as the API answers (JSON bodies, the same error
// shape). Their paths start with ExtensionPrefix, which no AWS Backup
// operation uses.
const ExtensionPrefix = "/coffer/"

// Extension operations: name → path (POST).
const (
	OpBrowseRecoveryPoint = "BrowseRecoveryPoint"
	OpPreviewRestoreJob   = "PreviewRestoreJob"

	PathBrowseRecoveryPoint = ExtensionPrefix + "browse-recovery-point"
	PathPreviewRestoreJob   = ExtensionPrefix + "preview-restore-job"
)

// extensions is the table of extension handlers by path.
func (s *Server) extensions() map[string]struct {
	name string
	h    handler
} {
	type ext = struct {
		name string
		h    handler
	}
	return map[string]ext{
		PathBrowseRecoveryPoint: {OpBrowseRecoveryPoint, strict(s.browseRecoveryPoint)},
		PathPreviewRestoreJob:   {OpPreviewRestoreJob, strict(s.previewRestoreJob)},
	}
}

// dispatchExtension runs an extension request (path under
// ExtensionPrefix); ok is false when the path names none.
func (s *Server) dispatchExtension(ctx context.Context, id Identity, method, rawPath string, body []byte) (out any, name string, err error) {
	e, ok := s.extensions()[rawPath]
	if !ok {
		return nil, "", apiErr(http.StatusNotFound, excUnknownOp, "no operation matches %s %s", method, truncate(rawPath, 200))
	}
	if method != http.MethodPost {
		return nil, e.name, apiErr(http.StatusMethodNotAllowed, excUnknownOp, "%s takes POST", e.name)
	}
	out, err = e.h(ctx, id, body)
	return out, e.name, err
}

// strict decodes a JSON body into In, refusing unknown members and
// trailing data (an empty body is an empty object).
func strict[In, Out any](f func(context.Context, Identity, *In) (*Out, error)) handler {
	return func(ctx context.Context, id Identity, raw []byte) (any, error) {
		var in In
		if len(bytes.TrimSpace(raw)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				return nil, apiErr(http.StatusBadRequest, excSerialization, "request body is not valid: %s", truncate(err.Error(), 200))
			}
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return nil, apiErr(http.StatusBadRequest, excSerialization, "request body has data after its JSON object")
			}
		}
		out, err := f(ctx, id, &in)
		if err != nil || out == nil {
			return nil, err
		}
		return out, nil
	}
}

// BrowseRecoveryPointInput lists a level of a recovery point (Path: a
// directory "/a/b" of a file system, a key prefix of a bucket) or, with
// Glob, searches below it.
type BrowseRecoveryPointInput struct {
	RecoveryPointArn string
	BackupVaultName  *string
	Path             *string
	Glob             *string
	MaxResults       *int64
	NextToken        *string
}

// BrowseEntry is one entry of a recovery point.
type BrowseEntry struct {
	Path         string
	Name         string
	Type         string // FILE, DIRECTORY, SYMLINK, OTHER, OBJECT, PREFIX
	Size         int64
	Mode         string     `json:",omitempty"` // octal permission bits, e.g. "0644"
	LastModified *Timestamp `json:",omitempty"`
	LinkTarget   string     `json:",omitempty"`
}

// BrowseRecoveryPointOutput is one page.
type BrowseRecoveryPointOutput struct {
	Entries   []BrowseEntry
	NextToken *string `json:",omitempty"`
}

func (s *Server) browseRecoveryPoint(ctx context.Context, id Identity, in *BrowseRecoveryPointInput) (*BrowseRecoveryPointOutput, error) {
	if in.RecoveryPointArn == "" {
		return nil, missingParam("RecoveryPointArn")
	}
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 1000) {
		return nil, invalidParam("MaxResults", "MaxResults must be between 1 and 1000")
	}
	req := service.BrowseRequest{RecoveryPointArn: in.RecoveryPointArn, VaultName: optStr(in.BackupVaultName),
		Path: optStr(in.Path), Glob: optStr(in.Glob)}
	// The token is bound to the account and to this listing.
	filter := []string{req.RecoveryPointArn, req.VaultName, req.Path, req.Glob}
	pg, err := s.pager.page(id.AccountID, OpBrowseRecoveryPoint, filter, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	req.After, req.Limit = pg.After, pg.Limit
	page, err := s.svc.BrowseRecoveryPoint(ctx, id.caller(), req)
	if err != nil {
		return nil, err
	}
	out := &BrowseRecoveryPointOutput{Entries: make([]BrowseEntry, 0, len(page.Entries)),
		NextToken: s.pager.issue(id.AccountID, OpBrowseRecoveryPoint, filter, page.Next)}
	for _, e := range page.Entries {
		be := BrowseEntry{Path: e.Path, Name: e.Name, Type: e.Type, Size: e.Size, LinkTarget: e.Target}
		if !e.ModTime.IsZero() {
			be.LastModified = ts(e.ModTime)
		}
		if e.Type != "OBJECT" && e.Type != "PREFIX" {
			be.Mode = "0" + strings.TrimPrefix(octal(e.Mode), "0")
		}
		out.Entries = append(out.Entries, be)
	}
	return out, nil
}

func octal(m uint32) string {
	const digits = "01234567"
	b := []byte{'0', '0', '0', '0'}
	for i := 3; i >= 0; i-- {
		b[i] = digits[m&7]
		m >>= 3
	}
	return string(b)
}

// PreviewRestoreJobInput is StartRestoreJob's input plus MaxPaths (how
// many paths of each kind to list; default 100, at most 1000).
type PreviewRestoreJobInput struct {
	StartRestoreJobInput
	MaxPaths *int64
}

// PreviewProblem is an item the restore would leave out.
type PreviewProblem struct {
	Path    string
	Message string
}

// PreviewRestoreJobOutput is what the restore would do; nothing was
// written and no job was created.
type PreviewRestoreJobOutput struct {
	// TargetArn is the existing target ("" for a new resource).
	TargetArn string `json:",omitempty"`
	// Location is where in the target the data would go.
	Location                               string
	CreateCount, OverwriteCount, SkipCount int64
	BytesToWrite                           int64
	CreatePaths, OverwritePaths, SkipPaths []string
	Problems                               []PreviewProblem `json:",omitempty"`
}

func (s *Server) previewRestoreJob(ctx context.Context, id Identity, in *PreviewRestoreJobInput) (*PreviewRestoreJobOutput, error) {
	if in.Metadata == nil {
		return nil, missingParam("Metadata")
	}
	maxPaths := 0
	if in.MaxPaths != nil {
		if *in.MaxPaths < 0 || *in.MaxPaths > 1000 {
			return nil, invalidParam("MaxPaths", "MaxPaths must be between 0 and 1000")
		}
		maxPaths = int(*in.MaxPaths)
	}
	req := service.StartRestoreRequest{RecoveryPointArn: in.RecoveryPointArn, Metadata: in.Metadata, IamRoleArn: optStr(in.IamRoleArn),
		ResourceType: optStr(in.ResourceType)}
	if in.IamRoleArn != nil && *in.IamRoleArn == "" {
		return nil, invalidParam("IamRoleArn", "IamRoleArn must not be empty")
	}
	p, err := s.svc.PreviewRestore(ctx, id.caller(), req, maxPaths)
	if err != nil {
		return nil, err
	}
	out := &PreviewRestoreJobOutput{TargetArn: p.TargetArn, Location: p.Location, CreateCount: p.Create, OverwriteCount: p.Overwrite,
		SkipCount: p.Skip, BytesToWrite: p.Bytes, CreatePaths: nonNil(p.CreatePaths), OverwritePaths: nonNil(p.OverwritePaths),
		SkipPaths: nonNil(p.SkipPaths)}
	for _, pr := range p.Problems {
		out.Problems = append(out.Problems, PreviewProblem{Path: pr.Path, Message: pr.Err.Error()})
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
