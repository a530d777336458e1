package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"coffer/internal/config"
	"coffer/internal/hbr"
	"coffer/internal/store"
	"coffer/internal/store/postgres"
	"coffer/internal/store/sqlite"
	"coffer/internal/vaultrepo"
)

// openMetadata opens the metadata store metadata.type names: SQLite in
// data_dir (the default) or PostgreSQL (several nodes share it).
func openMetadata(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	if !cfg.UsesPostgres() {
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, config.MetadataDBFile))
	}
	p := cfg.Metadata.Postgres
	log.Info("metadata store on PostgreSQL", "postgres", *p)
	st, err := postgres.Open(ctx, p.DSN, postgres.Options{MaxConns: cfg.PostgresMaxConns()})
	if err != nil {
		return nil, fmt.Errorf("metadata store: %w", err)
	}
	return st, nil
}

// secrets are the keys every node of a deployment must share.
type secrets struct {
	master, token []byte
}

// loadSecrets reads the master key and the page-token key from the
// environment variables master_key_env / token_key_env name, or from
// data_dir. Files are created when missing and create is set (a first
// start); with a PostgreSQL metadata store the first node creates them and
// the operator copies them to the others.
func loadSecrets(cfg *config.Config, create bool) (secrets, error) {
	var s secrets
	var err error
	if s.master, err = loadSecret(cfg.MasterKeyFromEnv, filepath.Join(cfg.DataDir, vaultrepo.MasterKeyFile), create); err != nil {
		return s, fmt.Errorf("master key: %w", err)
	}
	if s.token, err = loadSecret(cfg.TokenKeyFromEnv, filepath.Join(cfg.DataDir, config.TokenKeyFile), create); err != nil {
		return s, fmt.Errorf("page-token key: %w", err)
	}
	return s, nil
}

func loadSecret(fromEnv func() ([]byte, error), path string, create bool) ([]byte, error) {
	k, err := fromEnv()
	if err != nil || k != nil {
		return k, err
	}
	if create {
		return config.LoadOrCreateSecret(path, config.KeyBytes)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != config.KeyBytes {
		return nil, fmt.Errorf("%s: want %d bytes, found %d", path, config.KeyBytes, len(b))
	}
	return b, nil
}

// Names of the key fingerprints in the store's cluster facts.
const (
	metaMasterKeyFP = "master_key_fingerprint"
	metaTokenKeyFP  = "token_key_fingerprint"
)

// keyFingerprint identifies a key without revealing it: a truncated
// SHA-256 over a label and the key (the key is 32 random bytes, so the
// hash cannot be inverted).
func keyFingerprint(name string, key []byte) string {
	h := sha256.Sum256(append([]byte("coffer key fingerprint v1\x00"+name+"\x00"), key...))
	return "v1:" + hex.EncodeToString(h[:16])
}

// errKeyMismatch is wrapped by checkKeys' refusal.
var errKeyMismatch = errors.New("key mismatch")

// checkKeys records the fingerprints of the keys the first time the
// store is used and refuses to go on with keys whose fingerprint differs:
// a node with another master key could not read the vaults the others
// write (and would write data they cannot read), and one with another
// page-token key would refuse their page tokens. Only fingerprints are
// stored, never a key.
func checkKeys(ctx context.Context, st store.Store, k secrets) error {
	for _, c := range []struct {
		meta, what, where string
		key               []byte
	}{
		{metaMasterKeyFP, "master key", "master.key or master_key_env", k.master},
		{metaTokenKeyFP, "page-token key", "token.key or token_key_env", k.token},
	} {
		fp := keyFingerprint(c.meta, c.key)
		var stored string
		err := st.Write(ctx, func(tx store.Tx) error {
			var err error
			stored, err = tx.InitMeta(ctx, c.meta, fp)
			return err
		})
		if err != nil {
			return fmt.Errorf("metadata store: record the %s fingerprint: %w", c.what, err)
		}
		if stored != fp {
			return fmt.Errorf("this node's %s (%s) is not the one the metadata store was first used with "+
				"(fingerprint %s, this node's %s): every node must use the same key; copy it from a node of the deployment: %w",
				c.what, c.where, stored, fp, errKeyMismatch)
		}
	}
	return nil
}

// nodeID is node_id, or the host name and listen port.
func nodeID(cfg *config.Config, addr string) string {
	if cfg.NodeID != "" {
		return cfg.NodeID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "coffer"
	}
	if _, port, err := net.SplitHostPort(addr); err == nil {
		return host + ":" + port
	}
	return host
}

// nonceExpiryInterval is how often a node deletes expired HBR nonces from
// the store.
const nonceExpiryInterval = time.Minute

// storeNonces keeps the HBR API's signature nonces in the metadata store,
// so that a request replayed to any node sharing the store is refused.
type storeNonces struct {
	st store.Store
}

// UseNonce implements hbr.NonceStore.
func (n storeNonces) UseNonce(ctx context.Context, key string, now, expires time.Time) (bool, error) {
	fresh := false
	err := n.st.Write(ctx, func(tx store.Tx) error {
		var err error
		fresh, err = tx.UseNonce(ctx, key, now, expires)
		return err
	})
	return fresh, err
}

// expireNonces deletes expired nonces every interval until ctx ends.
func expireNonces(ctx context.Context, st store.Store, now func() time.Time, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.DeleteExpiredNonces(ctx, now())
			return err
		})
		if err != nil && ctx.Err() == nil {
			log.Warn("expired HBR nonces not deleted; retried later", "err", err)
		}
	}
}

// hbrNonces is where the HBR API remembers signature nonces: the shared
// store with PostgreSQL (several nodes), the front end's own memory with
// SQLite (one node).
func hbrNonces(cfg *config.Config, st store.Store) hbr.NonceStore {
	if !cfg.UsesPostgres() {
		return nil
	}
	return storeNonces{st: st}
}
