package storetest

import (
	"fmt"
	"testing"
	"time"

	"coffer/internal/store"
)

// testNonces: a nonce is fresh once, a replay before its expiry is
// refused and changes nothing, an expired one may be used again, and
// expired nonces are deleted.
func testNonces(t *testing.T, s store.Store) {
	use := func(key string, now, exp time.Time) bool {
		t.Helper()
		var fresh bool
		mustWrite(t, s, func(tx store.Tx) (err error) {
			fresh, err = tx.UseNonce(ctx, key, now, exp)
			return err
		})
		return fresh
	}
	exp := t0.Add(15 * time.Minute)
	if !use("a", t0, exp) {
		t.Fatal("first use of a nonce refused")
	}
	if use("a", t0.Add(time.Minute), exp.Add(time.Minute)) {
		t.Fatal("replay accepted")
	}
	if !use("b", t0, exp) {
		t.Fatal("another nonce refused")
	}
	// The replay did not extend the first use: at its expiry it is free.
	if !use("a", exp, exp.Add(15*time.Minute)) {
		t.Fatal("expired nonce refused")
	}
	if use("a", exp.Add(time.Minute), exp.Add(20*time.Minute)) {
		t.Fatal("replay of the renewed nonce accepted")
	}
	mustWrite(t, s, func(tx store.Tx) error {
		n, err := tx.DeleteExpiredNonces(ctx, exp)
		if err == nil && n != 1 {
			err = fmt.Errorf("deleted %d expired nonces, want 1 (b)", n)
		}
		return err
	})
	if !use("b", t0, exp) {
		t.Fatal("a deleted nonce is still remembered")
	}
}

// testRepoVersions: versions start at zero, every bump counts a
// generation, a re-creation also an epoch, keys are independent.
func testRepoVersions(t *testing.T, s store.Store) {
	get := func(key string) store.RepoVersion {
		t.Helper()
		var v store.RepoVersion
		if err := s.Read(ctx, func(tx store.Tx) (err error) { v, err = tx.GetRepoVersion(ctx, key); return err }); err != nil {
			t.Fatal(err)
		}
		return v
	}
	bump := func(key string, recreated bool) store.RepoVersion {
		t.Helper()
		var v store.RepoVersion
		mustWrite(t, s, func(tx store.Tx) (err error) { v, err = tx.BumpRepoVersion(ctx, key, recreated); return err })
		return v
	}
	const k = "111111111111/us-east-1/v1"
	if v := get(k); v != (store.RepoVersion{}) {
		t.Fatalf("unknown key: %+v", v)
	}
	steps := []struct {
		recreated bool
		want      store.RepoVersion
	}{
		{true, store.RepoVersion{Epoch: 1, Generation: 1}},
		{false, store.RepoVersion{Epoch: 1, Generation: 2}},
		{false, store.RepoVersion{Epoch: 1, Generation: 3}},
		{true, store.RepoVersion{Epoch: 2, Generation: 4}},
	}
	for i, st := range steps {
		if v := bump(k, st.recreated); v != st.want {
			t.Fatalf("bump %d returned %+v, want %+v", i, v, st.want)
		}
		if v := get(k); v != st.want {
			t.Fatalf("after bump %d: %+v, want %+v", i, v, st.want)
		}
	}
	if v := bump("222222222222/us-east-1/v1", false); v != (store.RepoVersion{Generation: 1}) {
		t.Fatalf("another key: %+v", v)
	}
	// A bump in a transaction that fails is not recorded.
	_ = s.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.BumpRepoVersion(ctx, k, true); err != nil {
			return err
		}
		return fmt.Errorf("abort")
	})
	if v := get(k); v != steps[len(steps)-1].want {
		t.Fatalf("a rolled-back bump counts: %+v", v)
	}
}

// testClusterMeta: the first value stored under a name stays.
func testClusterMeta(t *testing.T, s store.Store) {
	for i, tc := range []struct{ name, value, want string }{
		{"master_key_fingerprint", "fp-1", "fp-1"},
		{"master_key_fingerprint", "fp-2", "fp-1"},
		{"token_key_fingerprint", "fp-3", "fp-3"},
	} {
		var got string
		mustWrite(t, s, func(tx store.Tx) (err error) { got, err = tx.InitMeta(ctx, tc.name, tc.value); return err })
		if got != tc.want {
			t.Fatalf("step %d: InitMeta(%s, %s) = %s, want %s", i, tc.name, tc.value, got, tc.want)
		}
	}
}
