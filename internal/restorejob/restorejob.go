package restorejob

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/clock"
	"coffer/internal/repository"
	"coffer/internal/resource/fstree"
	"coffer/internal/store"
)

// Operation is the idempotency-token operation name.
const Operation = "StartRestoreJob"

// IdempotencyWindow is how long a StartRestoreJob token is remembered.
const IdempotencyWindow = time.Hour

// RestoreDirPrefix starts the recovery directory of a restore into an
// existing file system (AWS EFS behaviour).
const RestoreDirPrefix = "aws-backup-restore_"

// RepoOpener opens the repository of a vault (vaultrepo.Manager). The
// returned repository is shared and is not closed by this package.
type RepoOpener interface {
	Open(ctx context.Context, v *backup.Vault) (*repository.Repository, error)
}

// Service validates and starts restore jobs and runs them (it is the
// RESTORE jobs.Handler).
type Service struct {
	Store store.Store
	Repos RepoOpener
	Clock clock.Clock
	// NewFileSystemsDir holds the file systems created by restores with
	// newFileSystem=true (config new_file_systems_dir); "" disables them.
	NewFileSystemsDir string
	// Log, when set, receives one line per restore written.
	Log *slog.Logger
	// Workers is passed to fstree.Restore (0 = its default).
	Workers int
	// Notifier, when set, is woken after a job is created (the runner).
	Notifier interface{ Notify() }
}

// StartRequest is a StartRestoreJob call.
type StartRequest struct {
	RecoveryPointArn                 string
	Metadata                         map[string]string
	IamRoleArn                       string // "" = default service role
	IdempotencyToken                 string
	ResourceType                     string
	CopySourceTagsToRestoredResource bool
}

// params is what a job stores in ParametersJSON.
type params struct {
	Metadata       map[string]string `json:"metadata"` // as run: caller's keys plus defaults
	CopySourceTags bool              `json:"copy_source_tags"`
	ManifestID     string            `json:"manifest_id"`
}

// result is what a job stores in ResultJSON.
type result struct {
	FileSystemID string `json:"file_system_id"`
	Path         string `json:"path"` // path of the restored data inside the file system ("/" for a new FS)
	Files        int64  `json:"files"`
	Dirs         int64  `json:"dirs"`
	Symlinks     int64  `json:"symlinks"`
	HardLinks    int64  `json:"hard_links"`
	Bytes        int64  `json:"bytes"`
	Skipped      int64  `json:"skipped"`
	Replaced     int64  `json:"replaced"`
	Problems     int    `json:"problems"`
}

var (
	rpArnRE      = regexp.MustCompile(`^arn:aws:backup:([a-z]{2}(?:-[a-z]+)+-[0-9]+):([0-9]{12}):recovery-point:([A-Za-z0-9-]{1,128})$`)
	iamRoleArnRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
	name50RE     = regexp.MustCompile(`^[a-zA-Z0-9\-\_\.]{1,50}$`)
)

func invalid(ctxName, format string, args ...any) *backup.Error {
	return &backup.Error{Code: backup.CodeInvalidParameter, Context: ctxName, Message: fmt.Sprintf(format, args...)}
}

// NewJobID returns an AWS-style restore job id (upper-case hex, UUID layout).
func NewJobID() string {
	var b [16]byte
	rand.Read(b[:])
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Start validates a StartRestoreJob request in the documented order and
// creates the job in PENDING (or returns the job of an earlier call with
// the same idempotency token and parameters). Every error leaves nothing
// behind.
func (s *Service) Start(ctx context.Context, sc store.Scope, req StartRequest) (string, error) {
	if req.RecoveryPointArn == "" {
		return "", &backup.Error{Code: backup.CodeMissingParameter, Context: "RecoveryPointArn", Message: "Missing required parameter RecoveryPointArn"}
	}
	if req.Metadata == nil {
		return "", &backup.Error{Code: backup.CodeMissingParameter, Context: "Metadata", Message: "Missing required parameter Metadata"}
	}
	if req.ResourceType != "" && !name50RE.MatchString(req.ResourceType) {
		return "", invalid("ResourceType", "ResourceType must match ^[a-zA-Z0-9\\-\\_\\.]{1,50}$")
	}
	if req.IamRoleArn != "" && !iamRoleArnRE.MatchString(req.IamRoleArn) {
		return "", invalid("IamRoleArn", "IamRoleArn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
	}
	m := rpArnRE.FindStringSubmatch(req.RecoveryPointArn)
	if m == nil {
		return "", invalid("RecoveryPointArn", "RecoveryPointArn is not a recovery point ARN (arn:aws:backup:<region>:<account>:recovery-point:<id>)")
	}
	notFound := &backup.Error{Code: backup.CodeNotFound, Context: req.RecoveryPointArn, Message: "Recovery point " + req.RecoveryPointArn + " does not exist"}
	if m[1] != sc.Region || m[2] != sc.AccountID {
		return "", notFound // another account's recovery point looks exactly like a missing one
	}
	var rp *backup.RecoveryPoint
	var vault *backup.Vault
	err := s.Store.Read(ctx, func(tx store.Tx) error {
		var err error
		if rp, err = tx.GetRecoveryPoint(ctx, sc, req.RecoveryPointArn); err != nil {
			return err
		}
		vault, err = tx.GetVault(ctx, sc, rp.VaultName)
		return err
	})
	if backup.IsCode(err, backup.CodeNotFound) {
		return "", notFound
	}
	if err != nil {
		return "", err
	}
	if rp.Status != "COMPLETED" && rp.Status != "AVAILABLE" {
		return "", &backup.Error{Code: backup.CodeInvalidRequest, Context: rp.Arn,
			Message: fmt.Sprintf("Recovery point %s is %s; only a COMPLETED recovery point can be restored", rp.Arn, rp.Status)}
	}
	if req.ResourceType != "" && req.ResourceType != rp.ResourceType {
		return "", invalid("ResourceType", "ResourceType %s does not match the recovery point's resource type %s", req.ResourceType, rp.ResourceType)
	}
	if rp.ResourceType != backup.ResourceTypeEFS {
		return "", invalid("ResourceType", "Coffer cannot restore recovery points of resource type %s", rp.ResourceType)
	}
	md, err := ParseMetadata(req.Metadata)
	if err != nil {
		return "", err
	}
	if md.NewFileSystem && s.NewFileSystemsDir == "" {
		return "", invalid(KeyNewFileSystem, "Metadata key %s: this server has no new_file_systems_dir configured, so restores cannot create file systems", KeyNewFileSystem)
	}
	if rp.ManifestID == "" {
		return "", &backup.Error{Code: backup.CodeInvalidRequest, Context: rp.Arn, Message: "Recovery point " + rp.Arn + " has no stored snapshot"}
	}
	if len(md.Items) > 0 {
		repo, err := s.Repos.Open(ctx, vault)
		if err != nil {
			return "", &backup.Error{Code: backup.CodeUnavailable, Message: "cannot open the repository of vault " + vault.Name, Err: err}
		}
		man, err := repo.LoadManifest(ctx, rp.ManifestID)
		if err != nil {
			return "", &backup.Error{Code: backup.CodeUnavailable, Message: "cannot read recovery point " + rp.Arn, Err: err}
		}
		if err := fstree.CheckItems(ctx, repo, man.Root, md.Items); err != nil {
			if errors.Is(err, fstree.ErrItemNotFound) || errors.Is(err, fstree.ErrInvalidItem) {
				return "", invalid(KeyItemsToRestore, "Metadata key %s: %v", KeyItemsToRestore, err)
			}
			return "", &backup.Error{Code: backup.CodeUnavailable, Message: "cannot read recovery point " + rp.Arn, Err: err}
		}
	}
	ranWith := withDefaults(req.Metadata, md)
	role := req.IamRoleArn
	if role == "" {
		role = "arn:aws:iam::" + sc.AccountID + ":role/service-role/AWSBackupDefaultServiceRole"
	}
	pj, err := json.Marshal(params{Metadata: ranWith, CopySourceTags: req.CopySourceTagsToRestoredResource, ManifestID: rp.ManifestID})
	if err != nil {
		return "", err
	}
	digest := requestDigest(req)
	now := s.Clock.Now().UTC()
	job := &backup.Job{Kind: backup.JobRestore, ID: NewJobID(), AccountID: sc.AccountID, Region: sc.Region, State: "PENDING",
		CreationDate: now, VaultName: rp.VaultName, VaultArn: rp.VaultArn, RecoveryPointArn: rp.Arn,
		ResourceArn: rp.ResourceArn, ResourceType: rp.ResourceType, ResourceName: rp.ResourceName, IamRoleArn: role,
		BackupSizeBytes: rp.BackupSizeBytes, PercentDone: "0.0", IdempotencyToken: req.IdempotencyToken, ParametersJSON: string(pj)}
	id := ""
	err = s.Store.Write(ctx, func(tx store.Tx) error {
		if !md.NewFileSystem {
			if _, err := tx.GetFileSystem(ctx, sc, md.FileSystemID); err != nil {
				if backup.IsCode(err, backup.CodeNotFound) {
					return &backup.Error{Code: backup.CodeNotFound, Context: md.FileSystemID,
						Message: "File system " + md.FileSystemID + " does not exist"}
				}
				return err
			}
		}
		if req.IdempotencyToken != "" {
			old, err := tx.GetIdempotency(ctx, sc, Operation, req.IdempotencyToken, now)
			switch {
			case err == nil:
				if old.ParamsDigest != digest {
					return &backup.Error{Code: backup.CodeInvalidRequest, Context: "IdempotencyToken",
						Message: "IdempotencyToken was already used within the last hour with different parameters"}
				}
				id = old.ResultID
				return nil
			case !backup.IsCode(err, backup.CodeNotFound):
				return err
			}
		}
		if md.NewFileSystem {
			fsID := NewFileSystemID(sc, job.ID, md.CreationToken)
			if _, err := tx.GetFileSystem(ctx, sc, fsID); err == nil {
				return invalid(KeyCreationToken, "Metadata key %s: file system %s was already created with this creation token", KeyCreationToken, fsID)
			} else if !backup.IsCode(err, backup.CodeNotFound) {
				return err
			}
		}
		if err := tx.CreateJob(ctx, job); err != nil {
			return err
		}
		if err := tx.SetRestoreJobExtra(ctx, sc, job.ID, store.RestoreJobExtra{RecoveryPointCreationDate: rp.CreationDate}); err != nil {
			return err
		}
		if req.IdempotencyToken != "" {
			if err := tx.PutIdempotency(ctx, sc, &store.Idempotency{Operation: Operation, Token: req.IdempotencyToken,
				ParamsDigest: digest, ResultID: job.ID, ExpiresAt: now.Add(IdempotencyWindow)}); err != nil {
				return err
			}
		}
		id = job.ID
		return nil
	})
	if err != nil {
		return "", err
	}
	if s.Notifier != nil {
		s.Notifier.Notify()
	}
	return id, nil
}

// withDefaults returns the metadata the job runs with: the caller's keys in
// the caller's spelling plus the defaults the service applied.
func withDefaults(in map[string]string, md *Metadata) map[string]string {
	out := make(map[string]string, len(in)+2)
	has := map[string]bool{}
	for k, v := range in {
		out[k] = v
		has[strings.ToLower(k)] = true
	}
	if md.NewFileSystem {
		if !has[strings.ToLower(KeyPerformanceMode)] {
			out[KeyPerformanceMode] = PerformanceGeneralPurpose
		}
		if !has[strings.ToLower(KeyEncrypted)] {
			out[KeyEncrypted] = "false"
		}
	}
	return out
}

// requestDigest is a canonical digest of the parameters that matter for
// idempotency.
func requestDigest(req StartRequest) string {
	h := sha256.New()
	w := func(s string) { fmt.Fprintf(h, "%d:%s;", len(s), s) }
	w(req.RecoveryPointArn)
	w(req.IamRoleArn)
	w(req.ResourceType)
	w(fmt.Sprint(req.CopySourceTagsToRestoredResource))
	keys := make([]string, 0, len(req.Metadata))
	for k := range req.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w(k)
		w(req.Metadata[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NewFileSystemID is the id of the file system a newFileSystem=true restore
// creates: derived from the CreationToken when one is given (so one token
// never yields two file systems), else from the job id; "fs-" and 17
// lower-case hex digits.
func NewFileSystemID(sc store.Scope, jobID, creationToken string) string {
	var sum [32]byte
	if creationToken != "" {
		sum = sha256.Sum256([]byte("coffer-fs-token\x00" + sc.AccountID + "\x00" + sc.Region + "\x00" + creationToken))
	} else {
		sum = sha256.Sum256([]byte("coffer-fs-job\x00" + jobID))
	}
	return "fs-" + hex.EncodeToString(sum[:])[:17]
}
