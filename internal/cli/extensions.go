package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
)

// Coffer's API extensions (docs/design/browse.md): POST requests signed
// like every AWS Backup request.
const (
	pathBrowse  = "/coffer/browse-recovery-point"
	pathPreview = "/coffer/preview-restore-job"
	// maxExtResponse bounds an extension's response body read.
	maxExtResponse = 64 << 20
)

// ext posts in as JSON to an extension path and decodes the answer into
// out. An error answer is a smithy.APIError (code and message).
func (c *cmd) ext(ctx context.Context, path string, in, out any) error {
	cn, err := ResolveConnection(c.endpoint, c.dataDir, c.env)
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cn.Endpoint, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: cn.AccessKeyID, SecretAccessKey: cn.SecretAccessKey, SessionToken: cn.SessionToken},
		req, hex.EncodeToString(sum[:]), "backup", cn.Region, c.opts.Clock.Now()); err != nil {
		return err
	}
	tr, err := c.transport()
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Minute, Transport: tr}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxExtResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e map[string]any
		_ = json.Unmarshal(b, &e)
		msg, _ := e["message"].(string)
		if msg == "" {
			msg, _ = e["Message"].(string)
		}
		if msg == "" {
			msg = strings.TrimSpace(string(b))
		}
		code := resp.Header.Get("X-Amzn-ErrorType")
		if code == "" {
			code = resp.Status
		}
		return &smithy.GenericAPIError{Code: code, Message: msg}
	}
	return json.Unmarshal(b, out)
}

// LsArgs are the arguments of `coffer ls`.
type LsArgs struct {
	RecoveryPoint, Path, Glob, Vault string
}

func (c *cmd) parseLs(args []string) (LsArgs, error) {
	var l LsArgs
	fs := c.flags("ls")
	fs.StringVar(&l.Glob, "glob", "", "search below PATH for entries matching this glob")
	fs.StringVar(&l.Vault, "vault", "", "vault of the recovery point")
	// Flags may follow the positional arguments.
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return l, usagef("ls: %v", err)
		}
		args = fs.Args()
		if len(args) > 0 {
			pos, args = append(pos, args[0]), args[1:]
		}
	}
	switch len(pos) {
	case 0:
		return l, usagef("ls: missing RECOVERY_POINT_ARN")
	case 1, 2:
	default:
		return l, usagef("ls: unexpected argument %q", pos[2])
	}
	l.RecoveryPoint = pos[0]
	if _, err := accountOfArn(l.RecoveryPoint); err != nil {
		return l, usagef("ls: %v", err)
	}
	if len(pos) == 2 {
		l.Path = pos[1]
	}
	return l, nil
}

type browseEntry struct {
	Path, Name, Type, Mode, LinkTarget string
	Size                               int64
	LastModified                       *float64
}

// ls prints a directory (or key prefix) of a recovery point, or the
// entries a glob finds, one line each: type, mode, size, time, path.
func (c *cmd) ls(ctx context.Context, args []string) error {
	l, err := c.parseLs(args)
	if err != nil {
		return err
	}
	in := map[string]any{"RecoveryPointArn": l.RecoveryPoint, "MaxResults": 1000}
	for k, v := range map[string]string{"Path": l.Path, "Glob": l.Glob, "BackupVaultName": l.Vault} {
		if v != "" {
			in[k] = v
		}
	}
	for {
		var out struct {
			Entries   []browseEntry
			NextToken *string
		}
		if err := c.ext(ctx, pathBrowse, in, &out); err != nil {
			return err
		}
		for _, e := range out.Entries {
			when := "-"
			if e.LastModified != nil {
				when = time.UnixMilli(int64(*e.LastModified * 1000)).UTC().Format("2006-01-02 15:04:05")
			}
			mode := e.Mode
			if mode == "" {
				mode = "-"
			}
			name := e.Path
			if e.LinkTarget != "" {
				name += " -> " + e.LinkTarget
			}
			fmt.Fprintf(c.stdout, "%-9s %5s %12d %19s  %s\n", e.Type, mode, e.Size, when, name)
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return nil
		}
		in["NextToken"] = *out.NextToken
	}
}

// previewOut is the preview extension's answer.
type previewOut struct {
	TargetArn                              string
	Location                               string
	CreateCount, OverwriteCount, SkipCount int64
	BytesToWrite                           int64
	CreatePaths, OverwritePaths, SkipPaths []string
	Problems                               []struct{ Path, Message string }
}

// dryRun prints what StartRestoreJob with md would do.
func (c *cmd) dryRun(ctx context.Context, rp string, md map[string]string, role string) error {
	in := map[string]any{"RecoveryPointArn": rp, "Metadata": md}
	if role != "" {
		in["IamRoleArn"] = role
	}
	var p previewOut
	if err := c.ext(ctx, pathPreview, in, &p); err != nil {
		return err
	}
	target := p.TargetArn
	if target == "" {
		target = "a new resource"
	}
	fmt.Fprintf(c.stdout, "dry run: restore %s into %s at %s (nothing written, no job created)\n", rp, target, p.Location)
	fmt.Fprintf(c.stdout, "create %d, overwrite %d, skip %d; %d bytes to write\n", p.CreateCount, p.OverwriteCount, p.SkipCount, p.BytesToWrite)
	for _, l := range []struct {
		what  string
		n     int64
		paths []string
	}{{"create", p.CreateCount, p.CreatePaths}, {"overwrite", p.OverwriteCount, p.OverwritePaths}, {"skip", p.SkipCount, p.SkipPaths}} {
		for _, path := range l.paths {
			fmt.Fprintf(c.stdout, "%-9s %s\n", l.what, path)
		}
		if more := l.n - int64(len(l.paths)); more > 0 {
			fmt.Fprintf(c.stdout, "%-9s … and %d more\n", l.what, more)
		}
	}
	for _, pr := range p.Problems {
		fmt.Fprintf(c.stdout, "problem   %s: %s\n", pr.Path, pr.Message)
	}
	return nil
}
