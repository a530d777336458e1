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
