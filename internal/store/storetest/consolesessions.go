package storetest

import (
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// testConsoleSessions: a session is found by its hash with what was
// recorded, a hash is recorded once, deletion (of a session or of the
// expired ones) forgets it, and counts see only live sessions.
func testConsoleSessions(t *testing.T, s store.Store) {
	exp := t0.Add(12 * time.Hour)
	one := &store.ConsoleSession{IDHash: "aa01", AccountID: "111111111111", AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", Created: t0, Expires: exp}
	two := &store.ConsoleSession{IDHash: "bb02", AccountID: "222222222222", AccessKeyID: "AKIABBBBBBBBBBBBBBBB", Created: t0, Expires: t0.Add(time.Hour)}
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.CreateConsoleSession(ctx, one); err != nil {
			return err
		}
		return tx.CreateConsoleSession(ctx, two)
	})
	err := s.Write(ctx, func(tx store.Tx) error {
		return tx.CreateConsoleSession(ctx, &store.ConsoleSession{IDHash: "aa01", Expires: exp})
	})
	if !backup.IsCode(err, backup.CodeAlreadyExists) {
		t.Fatalf("a hash recorded twice: %v", err)
	}
	get := func(h string) (*store.ConsoleSession, error) {
		var out *store.ConsoleSession
		err := s.Read(ctx, func(tx store.Tx) (err error) { out, err = tx.GetConsoleSession(ctx, h); return err })
		return out, err
	}
	got, err := get("aa01")
	if err != nil || got.AccountID != one.AccountID || got.AccessKeyID != one.AccessKeyID || !got.Created.Equal(t0) || !got.Expires.Equal(exp) {
		t.Fatalf("get: %v %+v", err, got)
	}
	if _, err := get("cc03"); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	count := func(now time.Time) int64 {
		var n int64
		if err := s.Read(ctx, func(tx store.Tx) (err error) { n, err = tx.CountConsoleSessions(ctx, now); return err }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(t0); n != 2 {
		t.Fatalf("live at t0: %d", n)
	}
	if n := count(t0.Add(time.Hour)); n != 1 {
		t.Fatalf("live when two expires: %d", n)
	}
	// An expired session is still returned until deleted.
	if got, err := get("bb02"); err != nil || got.IDHash != "bb02" {
		t.Fatalf("expired session: %v %+v", err, got)
	}
	mustWrite(t, s, func(tx store.Tx) error {
		n, err := tx.DeleteExpiredConsoleSessions(ctx, t0.Add(time.Hour))
		if err == nil && n != 1 {
			t.Errorf("deleted %d expired sessions, want 1", n)
		}
		return err
	})
	if _, err := get("bb02"); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("deleted expired session: %v", err)
	}
	mustWrite(t, s, func(tx store.Tx) error {
		if err := tx.DeleteConsoleSession(ctx, "aa01"); err != nil {
			return err
		}
		return tx.DeleteConsoleSession(ctx, "aa01") // none: no error
	})
	if _, err := get("aa01"); !backup.IsCode(err, backup.CodeNotFound) {
		t.Fatalf("signed-out session: %v", err)
	}
	if n := count(t0); n != 0 {
		t.Fatalf("live after deletions: %d", n)
	}
}
