package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// paramsDigest is the digest an idempotency token is bound to: the request
// with its token member cleared by the caller.
func paramsDigest(in any) string {
	b, _ := json.Marshal(in)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// replayJob looks up an idempotent Start* request inside tx: the job that a
// live token (same account, region and operation) already created, nil when
// the token is new, or InvalidRequestException when the token was used with
// different parameters.
func replayJob(ctx context.Context, tx store.Tx, scope store.Scope, op, token, digest string, kind backup.JobKind, now time.Time) (*backup.Job, error) {
	if token == "" {
		return nil, nil
	}
	prev, err := tx.GetIdempotency(ctx, scope, op, token, now)
	if err != nil {
		if backup.IsCode(err, backup.CodeNotFound) {
			return nil, nil
		}
		return nil, err
	}
	if prev == nil {
		return nil, nil
	}
	if prev.ParamsDigest != digest {
		return nil, &backup.Error{Code: backup.CodeInvalidRequest, Context: "IdempotencyToken",
			Message: "IdempotencyToken was already used with different parameters"}
	}
	return tx.GetJob(ctx, scope, kind, prev.ResultID)
}
