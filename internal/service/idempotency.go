package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// IdempotencyWindow is how long an idempotency token is remembered.
const IdempotencyWindow = time.Hour

// Operation names under which tokens are remembered.
const (
	OpStartBackup  = "StartBackupJob"
	OpStartCopy    = "StartCopyJob"
	OpStartRestore = "StartRestoreJob"
)

// digest is the digest an idempotency token is bound to: the request's
// parameters (without the token) in a canonical JSON encoding (maps are
// encoded with sorted keys).
func digest(params any) string {
	b, _ := json.Marshal(params)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// errTokenReused is the answer to a token used again with other
// parameters.
func errTokenReused() error {
	return &backup.Error{Code: backup.CodeInvalidRequest, Context: "IdempotencyToken",
		Message: "IdempotencyToken was already used within the last hour with different parameters"}
}

// replay looks an idempotent request up inside tx: the job that a live
// token (same account, region and operation) already created, nil when
// the token is new or empty, or InvalidRequest when the token was used
// with different parameters.
func replay(ctx context.Context, tx store.Tx, sc store.Scope, op, token, dig string, kind backup.JobKind, now time.Time) (*backup.Job, error) {
	if token == "" {
		return nil, nil
	}
	prev, err := tx.GetIdempotency(ctx, sc, op, token, now)
	if backup.IsCode(err, backup.CodeNotFound) || (err == nil && prev == nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if prev.ParamsDigest != dig {
		return nil, errTokenReused()
	}
	return tx.GetJob(ctx, sc, kind, prev.ResultID)
}

// remember records token → jobID inside tx (nothing for an empty token).
func remember(ctx context.Context, tx store.Idempotencies, sc store.Scope, op, token, dig, jobID string, now time.Time) error {
	if token == "" {
		return nil
	}
	return tx.PutIdempotency(ctx, sc, &store.Idempotency{Operation: op, Token: token, ParamsDigest: dig, ResultID: jobID,
		ExpiresAt: now.Add(IdempotencyWindow)})
}

// idempotentRequest is one Start* request under an idempotency token.
type idempotentRequest struct {
	op, token string
	params    any // the request without its token: the digest's input
	kind      backup.JobKind
	// scheduleKey, when set, is the job's unique schedule key: a job
	// already created with it is returned instead of a new one.
	scheduleKey string
	// created, when set, runs in the transaction after the job's insert.
	created func(tx store.Tx, j *backup.Job) error
}

// createJob runs one idempotent Start* request: in one write transaction
// it returns the job an earlier request with the same token and parameters
// created, refuses the token with other parameters, or builds the job with
// build, inserts it and remembers the token. A new job wakes the runner.
func (s *Service) createJob(ctx context.Context, sc store.Scope, r idempotentRequest, now time.Time,
	build func(tx store.Tx) (*backup.Job, error)) (*backup.Job, error) {
	dig := digest(r.params)
	var out *backup.Job
	created := false
	err := s.st.Write(ctx, func(tx store.Tx) error {
		if r.scheduleKey != "" {
			j, err := tx.GetJobByScheduleKey(ctx, r.scheduleKey)
			if err == nil {
				out = j
				return nil
			}
			if !backup.IsCode(err, backup.CodeNotFound) {
				return err
			}
		}
		j, err := replay(ctx, tx, sc, r.op, r.token, dig, r.kind, now)
		if err != nil || j != nil {
			out = j
			return err
		}
		if j, err = build(tx); err != nil {
			return err
		}
		if err := tx.CreateJob(ctx, j); err != nil {
			return err
		}
		if r.created != nil {
			if err := r.created(tx, j); err != nil {
				return err
			}
		}
		out, created = j, true
		return remember(ctx, tx, sc, r.op, r.token, dig, j.ID, now)
	})
	if err != nil {
		return nil, err
	}
	if created {
		s.notify()
	}
	return out, nil
}
