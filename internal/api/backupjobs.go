package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/backupjob"
	"coffer/internal/jobs"
	"coffer/internal/store"
)

// JobNotifier is woken after a job is created (the job runner).
type JobNotifier interface {
	Notify()
}

// RecoveryPointData removes the repository data (manifest) of a recovery
// point; the vault repository layer implements it.
type RecoveryPointData interface {
	DeleteRecoveryPointData(ctx context.Context, v *backup.Vault, manifestID string) error
}

var iamRoleArnRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)

// Window limits of StartBackupJob.
const (
	defaultStartWindowMinutes    = 480
	minStartWindowMinutes        = 60
	defaultCompleteWindowMinutes = 10080
	maxWindowMinutes             = 52_560_000
	idempotencyWindow            = time.Hour
	opStartBackupJob             = "StartBackupJob"
)

// LifecycleInput is the wire Lifecycle.
type LifecycleInput struct {
	MoveToColdStorageAfterDays          *int64  `json:",omitempty"`
	DeleteAfterDays                     *int64  `json:",omitempty"`
	OptInToArchiveForSupportedResources *bool   `json:",omitempty"`
	DeleteAfterEvent                    *string `json:",omitempty"`
}

func (l *LifecycleInput) toDomain(member string) (backup.Lifecycle, error) {
	if l == nil {
		return backup.Lifecycle{}, nil
	}
	if l.DeleteAfterEvent != nil {
		return backup.Lifecycle{}, invalidParam(member+".DeleteAfterEvent", "DeleteAfterEvent cannot be set on input")
	}
	for _, v := range []struct {
		name string
		p    *int64
	}{{"MoveToColdStorageAfterDays", l.MoveToColdStorageAfterDays}, {"DeleteAfterDays", l.DeleteAfterDays}} {
		if v.p != nil && (*v.p < 1 || *v.p > backup.MaxRetentionDays) {
			return backup.Lifecycle{}, invalidParam(member+"."+v.name, "%s must be between 1 and %d days", v.name, backup.MaxRetentionDays)
		}
	}
	if l.MoveToColdStorageAfterDays != nil && l.DeleteAfterDays != nil && *l.DeleteAfterDays < *l.MoveToColdStorageAfterDays+90 {
		return backup.Lifecycle{}, invalidParam(member+".DeleteAfterDays",
			"DeleteAfterDays must be at least 90 days greater than MoveToColdStorageAfterDays")
	}
	return backup.Lifecycle{MoveToColdStorageAfterDays: l.MoveToColdStorageAfterDays, DeleteAfterDays: l.DeleteAfterDays,
		OptInToArchiveForSupportedResources: l.OptInToArchiveForSupportedResources}, nil
}

func lifecycleOut(l backup.Lifecycle) *LifecycleInput {
	if l.MoveToColdStorageAfterDays == nil && l.DeleteAfterDays == nil && l.OptInToArchiveForSupportedResources == nil {
		return nil
	}
	return &LifecycleInput{MoveToColdStorageAfterDays: l.MoveToColdStorageAfterDays, DeleteAfterDays: l.DeleteAfterDays,
		OptInToArchiveForSupportedResources: l.OptInToArchiveForSupportedResources}
}

// StartBackupJobInput is the validated input of StartBackupJob.
type StartBackupJobInput struct {
	BackupVaultName                  string
	LogicallyAirGappedBackupVaultArn *string
	ResourceArn                      string
	IamRoleArn                       string
	IdempotencyToken                 *string
	StartWindowMinutes               *int64
	CompleteWindowMinutes            *int64
	Lifecycle                        *LifecycleInput
	RecoveryPointTags                map[string]string
	BackupOptions                    map[string]string
	Index                            *string
}

// StartBackupJobOutput is its output.
type StartBackupJobOutput struct {
	BackupJobId      string
	RecoveryPointArn string     `json:",omitempty"`
	CreationDate     *Timestamp `json:",omitempty"`
	IsParent         bool
}

// newJobID returns an upper-case hex id in UUID layout.
func newJobID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// fileSystemOf resolves a resource ARN to a file system of the caller.
// Other accounts' file systems behave exactly like missing ones.
func (s *Server) fileSystemOf(ctx context.Context, tx store.Tx, id Identity, arn string) (*backup.FileSystem, error) {
	region, account, fsID, ok := backup.ParseFileSystemArn(arn)
	if !ok || !s.supports(backup.ResourceTypeEFS) {
		return nil, invalidParam("ResourceArn", "Unsupported resource type: %s", truncate(arn, 300))
	}
	notFound := &backup.Error{Code: backup.CodeNotFound, Message: "Resource " + truncate(arn, 300) + " does not exist", Context: arn}
	if region != id.Region || account != id.AccountID {
		return nil, notFound
	}
	fs, err := tx.GetFileSystem(ctx, id.scope(), fsID)
	if backup.IsCode(err, backup.CodeNotFound) {
		return nil, notFound
	}
	return fs, err
}

func (s *Server) supports(rt string) bool {
	for _, t := range s.cfg.ResourceTypes {
		if t == rt {
			return true
		}
	}
	return false
}

func (s *Server) startBackupJob(ctx context.Context, id Identity, in *StartBackupJobInput) (*StartBackupJobOutput, error) {
	if in.LogicallyAirGappedBackupVaultArn != nil {
		return nil, invalidParam("LogicallyAirGappedBackupVaultArn", "Coffer has no logically air-gapped vaults")
	}
	if !iamRoleArnRE.MatchString(in.IamRoleArn) {
		return nil, invalidParam("IamRoleArn", "IamRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), not %q", truncate(in.IamRoleArn, 300))
	}
	startWin := int64(defaultStartWindowMinutes)
	if in.StartWindowMinutes != nil {
		startWin = *in.StartWindowMinutes
		if startWin < minStartWindowMinutes || startWin > maxWindowMinutes {
			return nil, invalidParam("StartWindowMinutes", "StartWindowMinutes must be between %d and %d", minStartWindowMinutes, maxWindowMinutes)
		}
	}
	completeWin := int64(defaultCompleteWindowMinutes)
	if in.CompleteWindowMinutes != nil {
		completeWin = *in.CompleteWindowMinutes
		if completeWin < 1 || completeWin > maxWindowMinutes {
			return nil, invalidParam("CompleteWindowMinutes", "CompleteWindowMinutes must be between 1 and %d", maxWindowMinutes)
		}
	}
	lc, err := in.Lifecycle.toDomain("Lifecycle")
	if err != nil {
		return nil, err
	}
	if err := validateTags(in.RecoveryPointTags); err != nil {
		return nil, err
	}
	for k := range in.BackupOptions {
		// EFS has no backup options (AWS defines WindowsVSS for EC2 and
		// BackupACLs/BackupObjectTags for S3 only).
		return nil, invalidParam("BackupOptions", "Backup option %q is not supported for resource type EFS", k)
	}
	if in.Index != nil && *in.Index == "ENABLED" {
		return nil, invalidParam("Index", "Indexing is not supported for resource type EFS")
	}
	token := ""
	if in.IdempotencyToken != nil {
		token = *in.IdempotencyToken
	}
	digestIn := *in
	digestIn.IdempotencyToken = nil
	digest := paramsDigest(digestIn)
	params, _ := json.Marshal(backupjob.Params{StartWindowMinutes: startWin, CompleteWindowMinutes: completeWin, RecoveryPointTags: in.RecoveryPointTags})

	now := s.deps.Clock.Now()
	var out *StartBackupJobOutput
	err = s.deps.Store.Write(ctx, func(tx store.Tx) error {
		j, err := replayJob(ctx, tx, id.scope(), opStartBackupJob, token, digest, backup.JobBackup, now)
		if err != nil {
			return err
		}
		if j != nil {
			out = &StartBackupJobOutput{BackupJobId: j.ID, RecoveryPointArn: j.RecoveryPointArn, CreationDate: ts(j.CreationDate)}
			return nil
		}
		v, err := tx.GetVault(ctx, id.scope(), in.BackupVaultName)
		if err != nil {
			return err
		}
		fs, err := s.fileSystemOf(ctx, tx, id, in.ResourceArn)
		if err != nil {
			return err
		}
		jobID := newJobID()
		startBy := now.Add(time.Duration(startWin) * time.Minute)
		j = &backup.Job{Kind: backup.JobBackup, ID: jobID, AccountID: id.AccountID, Region: id.Region, State: jobs.StateCreated,
			CreationDate: now, StartBy: &startBy, VaultName: v.Name, VaultArn: v.Arn,
			RecoveryPointArn: backup.RecoveryPointArn(id.Region, id.AccountID, strings.ToLower(newJobID())),
			ResourceArn:      fs.Arn, ResourceType: backup.ResourceTypeEFS, ResourceName: fs.Name, IamRoleArn: in.IamRoleArn,
			Lifecycle: lc, BackupOptions: in.BackupOptions, IdempotencyToken: token, ParametersJSON: string(params)}
		if err := tx.CreateJob(ctx, j); err != nil {
			return err
		}
		if token != "" {
			if err := tx.PutIdempotency(ctx, id.scope(), &store.Idempotency{Operation: opStartBackupJob, Token: token,
				ParamsDigest: digest, ResultID: jobID, ExpiresAt: now.Add(idempotencyWindow)}); err != nil {
				return err
			}
		}
		out = &StartBackupJobOutput{BackupJobId: jobID, RecoveryPointArn: j.RecoveryPointArn, CreationDate: ts(now)}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.deps.Jobs != nil {
		s.deps.Jobs.Notify()
	}
	return out, nil
}

// BackupJobOutput is the wire BackupJob (DescribeBackupJob adds the child
// counters).
type BackupJobOutput struct {
	AccountId              string            `json:",omitempty"`
	BackupJobId            string            `json:",omitempty"`
	BackupVaultName        string            `json:",omitempty"`
	BackupVaultArn         string            `json:",omitempty"`
	VaultType              string            `json:",omitempty"`
	RecoveryPointArn       string            `json:",omitempty"`
	RecoveryPointLifecycle *LifecycleInput   `json:",omitempty"`
	EncryptionKeyArn       string            `json:",omitempty"`
	IsEncrypted            bool              `json:",omitempty"`
	ResourceArn            string            `json:",omitempty"`
	CreationDate           *Timestamp        `json:",omitempty"`
	CompletionDate         *Timestamp        `json:",omitempty"`
	State                  string            `json:",omitempty"`
	StatusMessage          string            `json:",omitempty"`
	PercentDone            string            `json:",omitempty"`
	BackupSizeInBytes      *int64            `json:",omitempty"`
	IamRoleArn             string            `json:",omitempty"`
	ExpectedCompletionDate *Timestamp        `json:",omitempty"`
	StartBy                *Timestamp        `json:",omitempty"`
	ResourceType           string            `json:",omitempty"`
	BytesTransferred       *int64            `json:",omitempty"`
	BackupOptions          map[string]string `json:",omitempty"`
	BackupType             string            `json:",omitempty"`
	ParentJobId            string            `json:",omitempty"`
	IsParent               bool
	ResourceName           string         `json:",omitempty"`
	InitiationDate         *Timestamp     `json:",omitempty"`
	MessageCategory        string         `json:",omitempty"`
	NumberOfChildJobs      *int64         `json:",omitempty"`
	ChildJobsInState       map[string]int `json:",omitempty"`
}

func backupJobOut(j *backup.Job) BackupJobOutput {
	size, sent := j.BackupSizeBytes, j.BytesTransferred
	o := BackupJobOutput{AccountId: j.AccountID, BackupJobId: j.ID, BackupVaultName: j.VaultName, BackupVaultArn: j.VaultArn,
		VaultType: backup.VaultTypeBackup, RecoveryPointArn: j.RecoveryPointArn, RecoveryPointLifecycle: lifecycleOut(j.Lifecycle),
		IsEncrypted: true, ResourceArn: j.ResourceArn, CreationDate: ts(j.CreationDate), CompletionDate: tsp(j.CompletionDate),
		State: j.State, StatusMessage: j.StatusMessage, PercentDone: j.PercentDone, BackupSizeInBytes: &size, IamRoleArn: j.IamRoleArn,
		ExpectedCompletionDate: tsp(j.ExpectedCompletionDate), StartBy: tsp(j.StartBy), ResourceType: j.ResourceType,
		BytesTransferred: &sent, BackupOptions: j.BackupOptions, BackupType: j.BackupType, ParentJobId: j.ParentJobID,
		IsParent: j.IsParent, ResourceName: j.ResourceName, InitiationDate: tsp(j.InitiationDate), MessageCategory: j.MessageCategory}
	if len(o.BackupOptions) == 0 {
		o.BackupOptions = nil
	}
	if o.PercentDone == "" {
		o.PercentDone = "0.0"
	}
	return o
}

// BackupJobIdInput names one backup job.
type BackupJobIdInput struct {
	BackupJobId string
}

func (s *Server) describeBackupJob(ctx context.Context, id Identity, in *BackupJobIdInput) (*BackupJobOutput, error) {
	var out BackupJobOutput
	err := s.deps.Store.Read(ctx, func(tx store.Tx) error {
		j, err := getJobOrg(ctx, tx, id, backup.JobBackup, in.BackupJobId) // management: any member's job
		if err != nil {
			return err
		}
		out = backupJobOut(j)
		if v, err := tx.GetVault(ctx, store.Scope{AccountID: j.AccountID, Region: j.Region}, j.VaultName); err == nil {
			out.EncryptionKeyArn = v.EncryptionKeyArn
			out.VaultType = v.VaultType
		}
		var zero int64
		out.NumberOfChildJobs = &zero
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (s *Server) stopBackupJob(ctx context.Context, id Identity, in *BackupJobIdInput) (*struct{}, error) {
	return nil, s.deps.Store.Write(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, id.scope(), backup.JobBackup, in.BackupJobId)
		if err != nil {
			return err
		}
		return jobs.Stop(ctx, tx, j, s.deps.Clock.Now())
	})
}

// ListBackupJobsInput is the validated input of ListBackupJobs.
type ListBackupJobsInput struct {
	NextToken         *string
	MaxResults        *int64
	ByResourceArn     *string
	ByState           *string
	ByBackupVaultName *string
	ByCreatedBefore   *Timestamp
	ByCreatedAfter    *Timestamp
	ByResourceType    *string
	ByAccountId       *string
	ByCompleteAfter   *Timestamp
	ByCompleteBefore  *Timestamp
	ByParentJobId     *string
	ByMessageCategory *string
}

// ListBackupJobsOutput is its output.
type ListBackupJobsOutput struct {
	BackupJobs []BackupJobOutput
	NextToken  *string `json:",omitempty"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func tptr(t *Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	x := t.Time()
	return &x
}

func (s *Server) listBackupJobs(ctx context.Context, id Identity, in *ListBackupJobsInput) (*ListBackupJobsOutput, error) {
	f := store.JobFilter{Kind: backup.JobBackup, State: str(in.ByState), ResourceArn: str(in.ByResourceArn),
		ResourceType: str(in.ByResourceType), VaultName: str(in.ByBackupVaultName), ParentJobID: str(in.ByParentJobId),
		MessageCategory: str(in.ByMessageCategory), CreatedAfter: tptr(in.ByCreatedAfter), CreatedBefore: tptr(in.ByCreatedBefore),
		CompleteAfter: tptr(in.ByCompleteAfter), CompleteBefore: tptr(in.ByCompleteBefore)}
	switch f.MessageCategory {
	case "AGGREGATE_ALL", "ANY", "*":
		f.MessageCategory = ""
	}
	items, next, err := listJobPage(ctx, s, id, "ListBackupJobs", in.ByAccountId, f, in.NextToken, in.MaxResults, backupJobOut)
	if err != nil {
		return nil, err
	}
	return &ListBackupJobsOutput{BackupJobs: items, NextToken: next}, nil
}

// jobInUse reports whether a restore or copy job still reads rpArn.
func jobInUse(ctx context.Context, tx store.Tx, sc store.Scope, rpArn string) (string, error) {
	for _, kind := range []backup.JobKind{backup.JobRestore, backup.JobCopy} {
		js, _, err := tx.ListJobs(ctx, sc, store.JobFilter{Kind: kind, RecoveryPointArn: rpArn}, store.Page{Limit: 1000})
		if err != nil {
			return "", err
		}
		for _, j := range js {
			if !jobs.IsTerminal(j.State) {
				return fmt.Sprintf("%s job %s", strings.ToLower(string(kind)), j.ID), nil
			}
		}
	}
	return "", nil
}
