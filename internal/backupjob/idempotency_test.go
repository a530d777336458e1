package backupjob_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/retention"
	"coffer/internal/store"
)

// putTokens stores one token that expired an hour before the fake clock's
// now and one that expires an hour after it.
func putTokens(t *testing.T, st store.Store, now time.Time) {
	t.Helper()
	ctx := context.Background()
	sc := store.Scope{AccountID: acct, Region: region}
	must(t, st.Write(ctx, func(tx store.Tx) error {
		for tok, exp := range map[string]time.Time{"old": now.Add(-time.Hour), "live": now.Add(time.Hour)} {
			if err := tx.PutIdempotency(ctx, sc, &store.Idempotency{Operation: "StartBackupJob", Token: tok, ParamsDigest: "d", ResultID: "r-" + tok, ExpiresAt: exp}); err != nil {
				return err
			}
		}
		return nil
	}))
}

// tokenRows reports which of the two tokens still have a row (asked at a
// time before both expiries, so an expired but undeleted row is found).
func tokenRows(t *testing.T, st store.Store, before time.Time) map[string]bool {
	t.Helper()
	ctx := context.Background()
	sc := store.Scope{AccountID: acct, Region: region}
	out := map[string]bool{}
	must(t, st.Read(ctx, func(tx store.Tx) error {
		for _, tok := range []string{"old", "live"} {
			_, err := tx.GetIdempotency(ctx, sc, "StartBackupJob", tok, before)
			if err != nil && !backup.IsCode(err, backup.CodeNotFound) {
				return err
			}
			out[tok] = err == nil
		}
		return nil
	}))
	return out
}

func TestSweeperExpiresIdempotencyTokens(t *testing.T) {
	ctx := context.Background()
	st, repos, _, clk := handlerEnv(t)
	putTokens(t, st, clk.Now())
	before := clk.Now().Add(-2 * time.Hour)
	if got := tokenRows(t, st, before); !got["old"] || !got["live"] {
		t.Fatalf("tokens before the sweep: %v", got)
	}
	sw := &retention.Sweeper{Store: st, Repos: repos, Clock: clk}
	n, err := sw.ExpireIdempotency(ctx)
	must(t, err)
	if n != 1 {
		t.Fatalf("deleted %d tokens, want 1", n)
	}
	if got := tokenRows(t, st, before); got["old"] || !got["live"] {
		t.Fatalf("tokens after the sweep: %v (want only live)", got)
	}
}

// TestSweeperRunExpiresIdempotencyTokens checks that the periodic loop
// (what `coffer serve` runs) calls the expiry: its first pass runs at once.
func TestSweeperRunExpiresIdempotencyTokens(t *testing.T) {
	st, repos, _, clk := handlerEnv(t)
	putTokens(t, st, clk.Now())
	before := clk.Now().Add(-2 * time.Hour)
	sw := &retention.Sweeper{Store: st, Repos: repos, Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sw.Run(ctx, time.Hour); close(done) }()
	defer func() { cancel(); <-done }()
	for tokenRows(t, st, before)["old"] {
		time.Sleep(5 * time.Millisecond) // wait for the first pass; the test's own timeout bounds it
	}
	if !tokenRows(t, st, before)["live"] {
		t.Fatal("Run deleted a token that has not expired")
	}
}
