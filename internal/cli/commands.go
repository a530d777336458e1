package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"
)

// Restore metadata keys (see docs/design/restore.md; the last four are
// Coffer extensions).
const (
	mdFileSystemID   = "file-system-id"
	mdNewFileSystem  = "newFileSystem"
	mdItemsToRestore = "ItemsToRestore"
	mdInclude        = "Include"
	mdExclude        = "Exclude"
	mdTargetPath     = "TargetPath"
	mdConflictPolicy = "ConflictPolicy"
)

var (
	conflictPolicies = []string{"SKIP_EXISTING", "OVERWRITE_EXISTING", "OVERWRITE_IF_NEWER"}
	fsIDRE           = regexp.MustCompile(`^fs-[0-9a-f]{8,17}$`)
)

func (c *cmd) vaultsList(ctx context.Context, args []string) error {
	if _, err := parse(c.flags("vaults list"), args); err != nil {
		return err
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tRECOVERY POINTS\tARN")
	p := backup.NewListBackupVaultsPaginator(cl, &backup.ListBackupVaultsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, v := range out.BackupVaultList {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", aws.ToString(v.BackupVaultName), v.NumberOfRecoveryPoints, aws.ToString(v.BackupVaultArn))
		}
	}
	return tw.Flush()
}

func (c *cmd) vaultsCreate(ctx context.Context, args []string) error {
	rest, err := parse(c.flags("vaults create"), args, "NAME")
	if err != nil {
		return err
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	out, err := cl.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String(rest[0])})
	if err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, aws.ToString(out.BackupVaultArn))
	return nil
}

// BackupArgs are the parsed arguments of `coffer backup`.
type BackupArgs struct {
	Vault, Resource, IamRoleArn string
	Wait                        bool
}

func (c *cmd) parseBackup(args []string) (BackupArgs, error) {
	var b BackupArgs
	fs := c.flags("backup")
	fs.StringVar(&b.Vault, "vault", "", "backup vault name")
	fs.StringVar(&b.Resource, "resource", "", "resource ARN to back up")
	fs.StringVar(&b.IamRoleArn, "iam-role-arn", "", "IAM role ARN (default: the account's AWSBackupDefaultServiceRole)")
	fs.BoolVar(&b.Wait, "wait", false, "show progress until the job ends")
	if _, err := parse(fs, args); err != nil {
		return b, err
	}
	if b.Vault == "" {
		return b, usagef("backup: --vault is required")
	}
	if b.Resource == "" {
		return b, usagef("backup: --resource is required")
	}
	acct, err := accountOfArn(b.Resource)
	if err != nil {
		return b, usagef("backup: --resource: %v", err)
	}
	if b.IamRoleArn == "" {
		b.IamRoleArn = "arn:aws:iam::" + acct + ":role/service-role/AWSBackupDefaultServiceRole"
	}
	return b, nil
}

func (c *cmd) backup(ctx context.Context, args []string) error {
	b, err := c.parseBackup(args)
	if err != nil {
		return err
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	out, err := cl.StartBackupJob(ctx, &backup.StartBackupJobInput{BackupVaultName: aws.String(b.Vault),
		ResourceArn: aws.String(b.Resource), IamRoleArn: aws.String(b.IamRoleArn)})
	if err != nil {
		return err
	}
	id := aws.ToString(out.BackupJobId)
	fmt.Fprintln(c.stdout, id)
	if !b.Wait {
		return nil
	}
	return c.watch(ctx, backupPoller(cl, id))
}

// RestoreArgs are the parsed arguments of `coffer restore`.
type RestoreArgs struct {
	RecoveryPoint, Vault, FileSystemID, IamRoleArn string
	NewFileSystem, Wait                            bool
	// DryRun previews the restore (nothing written, no job created).
	DryRun bool
	// Resource with Latest restores the newest completed recovery point
	// of that resource in the caller's vaults.
	Resource string
	Latest   bool

	Items, Include, Exclude    []string
	TargetPath, ConflictPolicy string
}

func (c *cmd) parseRestore(args []string) (RestoreArgs, error) {
	var r RestoreArgs
	fs := c.flags("restore")
	fs.StringVar(&r.RecoveryPoint, "recovery-point", "", "recovery point ARN")
	fs.StringVar(&r.Resource, "resource", "", "with --latest: the resource whose newest recovery point to restore")
	fs.BoolVar(&r.Latest, "latest", false, "restore the newest completed recovery point of --resource")
	fs.StringVar(&r.Vault, "vault", "", "vault of the recovery point (default: looked up)")
	fs.BoolVar(&r.NewFileSystem, "new-file-system", false, "restore into a new file system")
	fs.StringVar(&r.FileSystemID, "file-system-id", "", "restore into this existing file system")
	fs.Var((*stringList)(&r.Items), "item", "restore only this path (repeatable)")
	fs.Var((*stringList)(&r.Include), "include", "include glob (repeatable)")
	fs.Var((*stringList)(&r.Exclude), "exclude", "exclude glob (repeatable)")
	fs.StringVar(&r.TargetPath, "target-path", "", "directory inside the target file system")
	fs.StringVar(&r.ConflictPolicy, "conflict-policy", "", "SKIP_EXISTING, OVERWRITE_EXISTING or OVERWRITE_IF_NEWER")
	fs.StringVar(&r.IamRoleArn, "iam-role-arn", "", "IAM role ARN (default: the service's default role)")
	fs.BoolVar(&r.Wait, "wait", false, "show progress until the job ends")
	fs.BoolVar(&r.DryRun, "dry-run", false, "show what the restore would create, overwrite and skip; start nothing")
	if _, err := parse(fs, args); err != nil {
		return r, err
	}
	switch {
	case r.Latest && r.RecoveryPoint != "":
		return r, usagef("restore: --latest and --recovery-point exclude each other")
	case r.Latest && r.Resource == "":
		return r, usagef("restore: --latest needs --resource ARN")
	case r.Resource != "" && !r.Latest:
		return r, usagef("restore: --resource needs --latest (or name the recovery point with --recovery-point)")
	case r.Latest:
		if _, err := accountOfArn(r.Resource); err != nil {
			return r, usagef("restore: --resource: %v", err)
		}
	case r.RecoveryPoint == "":
		return r, usagef("restore: --recovery-point is required (or --resource ARN --latest)")
	default:
		if _, err := accountOfArn(r.RecoveryPoint); err != nil {
			return r, usagef("restore: --recovery-point: %v", err)
		}
	}
	switch {
	case r.NewFileSystem && r.FileSystemID != "":
		return r, usagef("restore: --new-file-system and --file-system-id exclude each other")
	case !r.NewFileSystem && r.FileSystemID == "":
		return r, usagef("restore: one of --new-file-system or --file-system-id is required")
	case r.FileSystemID != "" && !fsIDRE.MatchString(r.FileSystemID):
		return r, usagef("restore: --file-system-id must be fs-<8 to 17 lower-case hex digits>, got %q", r.FileSystemID)
	case r.NewFileSystem && r.TargetPath != "":
		return r, usagef("restore: --target-path needs --file-system-id (it places the restore inside an existing file system)")
	case r.ConflictPolicy != "" && r.TargetPath == "":
		return r, usagef("restore: --conflict-policy needs --target-path")
	case r.ConflictPolicy != "" && !slices.Contains(conflictPolicies, r.ConflictPolicy):
		return r, usagef("restore: --conflict-policy must be one of %s, got %q", strings.Join(conflictPolicies, ", "), r.ConflictPolicy)
	case r.DryRun && r.Wait:
		return r, usagef("restore: --dry-run starts no job to --wait for")
	}
	return r, nil
}

// Metadata returns the StartRestoreJob metadata; sourceFS is the recovery
// point's file system (used with --new-file-system).
func (r RestoreArgs) Metadata(sourceFS string) (map[string]string, error) {
	m := map[string]string{}
	if r.NewFileSystem {
		m[mdFileSystemID], m[mdNewFileSystem] = sourceFS, "true"
	} else {
		m[mdFileSystemID], m[mdNewFileSystem] = r.FileSystemID, "false"
	}
	for _, l := range []struct {
		key  string
		vals []string
	}{{mdItemsToRestore, r.Items}, {mdInclude, r.Include}, {mdExclude, r.Exclude}} {
		if len(l.vals) == 0 {
			continue
		}
		b, err := json.Marshal(l.vals)
		if err != nil {
			return nil, fmt.Errorf("restore metadata %s: %w", l.key, err)
		}
		m[l.key] = string(b)
	}
	if r.TargetPath != "" {
		m[mdTargetPath] = r.TargetPath
	}
	if r.ConflictPolicy != "" {
		m[mdConflictPolicy] = r.ConflictPolicy
	}
	return m, nil
}

func (c *cmd) restore(ctx context.Context, args []string) error {
	r, err := c.parseRestore(args)
	if err != nil {
		return err
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	if r.Latest {
		rp, vault, created, err := latestRecoveryPoint(ctx, cl, r.Resource)
		if err != nil {
			return err
		}
		r.RecoveryPoint = rp
		if r.Vault == "" {
			r.Vault = vault
		}
		fmt.Fprintf(c.stderr, "coffer: latest recovery point of %s: %s (vault %s, created %s)\n", r.Resource, rp, vault, fmtTime(created))
	}
	sourceFS := ""
	if r.NewFileSystem {
		if sourceFS, err = c.sourceFileSystem(ctx, cl, r.RecoveryPoint, r.Vault); err != nil {
			return err
		}
	}
	md, err := r.Metadata(sourceFS)
	if err != nil {
		return err
	}
	if r.DryRun {
		return c.dryRun(ctx, r.RecoveryPoint, md, r.IamRoleArn)
	}
	in := &backup.StartRestoreJobInput{RecoveryPointArn: aws.String(r.RecoveryPoint), Metadata: md}
	if r.IamRoleArn != "" {
		in.IamRoleArn = aws.String(r.IamRoleArn)
	}
	out, err := cl.StartRestoreJob(ctx, in)
	if err != nil {
		return err
	}
	id := aws.ToString(out.RestoreJobId)
	fmt.Fprintln(c.stdout, id)
	if !r.Wait {
		return nil
	}
	return c.watch(ctx, restorePoller(cl, id))
}

// latestRecoveryPoint returns the newest COMPLETED recovery point of a
// resource in the caller's vaults, with its vault and creation time.
func latestRecoveryPoint(ctx context.Context, cl *backup.Client, resource string) (arn, vault string, created *time.Time, err error) {
	p := backup.NewListRecoveryPointsByResourcePaginator(cl, &backup.ListRecoveryPointsByResourceInput{ResourceArn: aws.String(resource)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return "", "", nil, err
		}
		for _, rp := range out.RecoveryPoints {
			if rp.Status != types.RecoveryPointStatusCompleted || rp.CreationDate == nil {
				continue
			}
			if created == nil || rp.CreationDate.After(*created) {
				arn, vault, created = aws.ToString(rp.RecoveryPointArn), aws.ToString(rp.BackupVaultName), rp.CreationDate
			}
		}
	}
	if arn == "" {
		return "", "", nil, fmt.Errorf("resource %s has no completed recovery point", resource)
	}
	return arn, vault, created, nil
}

// sourceFileSystem returns the file system a recovery point was taken of,
// from GetRecoveryPointRestoreMetadata. Without a vault name it asks each
// vault in turn (the recovery point ARN does not name its vault).
func (c *cmd) sourceFileSystem(ctx context.Context, cl *backup.Client, rp, vault string) (string, error) {
	vaults := []string{vault}
	if vault == "" {
		vaults = nil
		p := backup.NewListBackupVaultsPaginator(cl, &backup.ListBackupVaultsInput{})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return "", err
			}
			for _, v := range out.BackupVaultList {
				vaults = append(vaults, aws.ToString(v.BackupVaultName))
			}
		}
	}
	for _, v := range vaults {
		out, err := cl.GetRecoveryPointRestoreMetadata(ctx, &backup.GetRecoveryPointRestoreMetadataInput{
			BackupVaultName: aws.String(v), RecoveryPointArn: aws.String(rp)})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) && vault == "" {
			continue
		}
		if err != nil {
			return "", err
		}
		for k, val := range out.RestoreMetadata {
			if strings.EqualFold(k, mdFileSystemID) {
				return val, nil
			}
		}
		return "", fmt.Errorf("recovery point %s: restore metadata has no %s", rp, mdFileSystemID)
	}
	return "", fmt.Errorf("recovery point %s not found in any vault", rp)
}

func (c *cmd) recoveryPointsList(ctx context.Context, args []string) error {
	fs := c.flags("recovery-points list")
	vault := fs.String("vault", "", "backup vault name")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *vault == "" {
		return usagef("recovery-points list: --vault is required")
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ARN\tSTATUS\tCREATED\tSIZE\tRESOURCE")
	p := backup.NewListRecoveryPointsByBackupVaultPaginator(cl, &backup.ListRecoveryPointsByBackupVaultInput{BackupVaultName: vault})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, r := range out.RecoveryPoints {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", aws.ToString(r.RecoveryPointArn), r.Status, fmtTime(r.CreationDate),
				humanBytes(aws.ToInt64(r.BackupSizeInBytes)), aws.ToString(r.ResourceArn))
		}
	}
	return tw.Flush()
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// Job kinds.
const (
	kindBackup  = "backup"
	kindRestore = "restore"
	kindCopy    = "copy"
)

// JobsListArgs are the parsed arguments of `coffer jobs list`.
type JobsListArgs struct {
	Kinds []string // in listing order
	State string
}

// validStates lists the states a kind's list filter accepts.
func validStates(kind string) []string {
	var out []string
	switch kind {
	case kindBackup:
		for _, s := range types.BackupJobState("").Values() {
			out = append(out, string(s))
		}
	case kindRestore:
		for _, s := range types.RestoreJobStatus("").Values() {
			out = append(out, string(s))
		}
	case kindCopy:
		for _, s := range types.CopyJobState("").Values() {
			out = append(out, string(s))
		}
	}
	return out
}

func (c *cmd) parseJobsList(args []string) (JobsListArgs, error) {
	var a JobsListArgs
	fs := c.flags("jobs list")
	kind := fs.String("kind", "", "backup, restore or copy (default: all)")
	fs.StringVar(&a.State, "state", "", "only jobs in this state")
	if _, err := parse(fs, args); err != nil {
		return a, err
	}
	switch *kind {
	case "":
		a.Kinds = []string{kindBackup, kindRestore, kindCopy}
	case kindBackup, kindRestore, kindCopy:
		a.Kinds = []string{*kind}
	default:
		return a, usagef("jobs list: --kind must be backup, restore or copy, got %q", *kind)
	}
	if a.State != "" {
		// Without --kind, list the kinds that have the state.
		var kinds, all []string
		for _, k := range a.Kinds {
			if slices.Contains(validStates(k), a.State) {
				kinds = append(kinds, k)
			}
			for _, s := range validStates(k) {
				if !slices.Contains(all, s) {
					all = append(all, s)
				}
			}
		}
		if len(kinds) == 0 {
			return a, usagef("jobs list: --state must be one of %s, got %q", strings.Join(all, ", "), a.State)
		}
		a.Kinds = kinds
	}
	return a, nil
}

func (c *cmd) jobsList(ctx context.Context, args []string) error {
	a, err := c.parseJobsList(args)
	if err != nil {
		return err
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tID\tSTATE\tPERCENT\tCREATED\tRESOURCE")
	row := func(kind, id, state string, pct *string, created *time.Time, res *string) {
		p := aws.ToString(pct)
		if p == "" {
			p = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", kind, id, state, p, fmtTime(created), aws.ToString(res))
	}
	for _, k := range a.Kinds {
		switch k {
		case kindBackup:
			p := backup.NewListBackupJobsPaginator(cl, &backup.ListBackupJobsInput{ByState: types.BackupJobState(a.State)})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, j := range out.BackupJobs {
					row(k, aws.ToString(j.BackupJobId), string(j.State), j.PercentDone, j.CreationDate, j.ResourceArn)
				}
			}
		case kindRestore:
			p := backup.NewListRestoreJobsPaginator(cl, &backup.ListRestoreJobsInput{ByStatus: types.RestoreJobStatus(a.State)})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, j := range out.RestoreJobs {
					row(k, aws.ToString(j.RestoreJobId), string(j.Status), j.PercentDone, j.CreationDate, j.RecoveryPointArn)
				}
			}
		case kindCopy:
			p := backup.NewListCopyJobsPaginator(cl, &backup.ListCopyJobsInput{ByState: types.CopyJobState(a.State)})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, j := range out.CopyJobs {
					row(k, aws.ToString(j.CopyJobId), string(j.State), nil, j.CreationDate, j.SourceRecoveryPointArn)
				}
			}
		}
	}
	return tw.Flush()
}

// findJob detects a job's kind by trying DescribeBackupJob,
// DescribeRestoreJob and DescribeCopyJob in turn; it returns the kind and
// the Describe output.
func findJob(ctx context.Context, cl *backup.Client, id string) (string, any, error) {
	var nf *types.ResourceNotFoundException
	var inv *types.InvalidParameterValueException
	notThis := func(err error) bool { return errors.As(err, &nf) || errors.As(err, &inv) }
	b, err := cl.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(id)})
	if err == nil {
		return kindBackup, b, nil
	} else if !notThis(err) {
		return "", nil, err
	}
	r, err := cl.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: aws.String(id)})
	if err == nil {
		return kindRestore, r, nil
	} else if !notThis(err) {
		return "", nil, err
	}
	cp, err := cl.DescribeCopyJob(ctx, &backup.DescribeCopyJobInput{CopyJobId: aws.String(id)})
	if err == nil {
		return kindCopy, cp.CopyJob, nil
	} else if !notThis(err) {
		return "", nil, err
	}
	return "", nil, fmt.Errorf("ResourceNotFoundException: no backup, restore or copy job %q", id)
}

func (c *cmd) jobsDescribe(ctx context.Context, args []string) error {
	rest, err := parse(c.flags("jobs describe"), args, "ID")
	if err != nil {
		return err
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	kind, out, err := findJob(ctx, cl, rest[0])
	if err != nil {
		return err
	}
	// Drop the SDK's ResultMetadata and unset fields; add the kind.
	raw, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("jobs describe: %w", err)
	}
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("jobs describe: %w", err)
	}
	delete(m, "ResultMetadata")
	for k, v := range m {
		if s := string(v); s == "null" || s == `""` {
			delete(m, k) // fields the server did not send
		}
	}
	m["JobKind"], _ = json.Marshal(strings.ToUpper(kind))
	pretty, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("jobs describe: %w", err)
	}
	_, err = fmt.Fprintf(c.stdout, "%s\n", pretty)
	return err
}

func (c *cmd) jobsWatch(ctx context.Context, args []string) error {
	rest, err := parse(c.flags("jobs watch"), args, "ID")
	if err != nil {
		return err
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	kind, _, err := findJob(ctx, cl, rest[0])
	if err != nil {
		return err
	}
	switch kind {
	case kindBackup:
		return c.watch(ctx, backupPoller(cl, rest[0]))
	case kindRestore:
		return c.watch(ctx, restorePoller(cl, rest[0]))
	default:
		return c.watch(ctx, copyPoller(cl, rest[0]))
	}
}
