package main

import (
	"context"
	"time"

	"coffer/internal/backup"
	"coffer/internal/console"
	"coffer/internal/store"
)

// storeSessions keeps the web console's sessions in the metadata store
// (console.SessionStore): they survive a restart, and every node sharing
// the store knows them. The store holds the hash of each session id that
// the console computes, never the id.
type storeSessions struct{ st store.Store }

func (s storeSessions) CreateSession(ctx context.Context, cs console.StoredSession) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		return tx.CreateConsoleSession(ctx, &store.ConsoleSession{IDHash: cs.IDHash, AccountID: cs.AccountID, AccessKeyID: cs.AccessKeyID,
			Created: cs.Created, Expires: cs.Expires})
	})
}

func (s storeSessions) GetSession(ctx context.Context, idHash string) (*console.StoredSession, error) {
	var out *console.StoredSession
	err := s.st.Read(ctx, func(tx store.Tx) error {
		cs, err := tx.GetConsoleSession(ctx, idHash)
		if backup.IsCode(err, backup.CodeNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out = &console.StoredSession{IDHash: cs.IDHash, AccountID: cs.AccountID, AccessKeyID: cs.AccessKeyID, Created: cs.Created, Expires: cs.Expires}
		return nil
	})
	return out, err
}

func (s storeSessions) DeleteSession(ctx context.Context, idHash string) error {
	return s.st.Write(ctx, func(tx store.Tx) error { return tx.DeleteConsoleSession(ctx, idHash) })
}

func (s storeSessions) PruneSessions(ctx context.Context, now time.Time) (int64, error) {
	var live int64
	err := s.st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.DeleteExpiredConsoleSessions(ctx, now); err != nil {
			return err
		}
		var err error
		live, err = tx.CountConsoleSessions(ctx, now)
		return err
	})
	return live, err
}
