package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"coffer/internal/store/sqlite"
)

// TestCheckKeys: the first node records the fingerprints of both keys; a
// node with the same keys starts, and one whose master key or page-token
// key differs is refused with a message naming that key and never showing
// a key.
func TestCheckKeys(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "meta.db"))
	must(t, err)
	defer st.Close()
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	cluster := secrets{master: key(1), token: key(2)}
	must(t, checkKeys(ctx, st, cluster))
	must(t, checkKeys(ctx, st, secrets{master: key(1), token: key(2)}))
	for _, tc := range []struct {
		name string
		k    secrets
		want string
	}{
		{"master", secrets{master: key(3), token: key(2)}, "this node's master key (master.key or master_key_env)"},
		{"token", secrets{master: key(1), token: key(4)}, "this node's page-token key (token.key or token_key_env)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkKeys(ctx, st, tc.k)
			if !errors.Is(err, errKeyMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a mismatch naming %q", err, tc.want)
			}
			for _, k := range [][]byte{tc.k.master, tc.k.token, cluster.master, cluster.token} {
				if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(k)) || strings.Contains(err.Error(), hex.EncodeToString(k)) ||
					strings.Contains(err.Error(), string(k)) {
					t.Fatalf("the refusal shows a key: %v", err)
				}
			}
		})
	}
}
