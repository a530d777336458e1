package store

import (
	"context"
	"time"
)

// State that several `coffer serve` nodes sharing one metadata store must
// share, which a single node could keep in memory.

// Nonces remember request nonces (the HBR API's SignatureNonce) until
// they expire, so that a request replayed to any node is refused.
type Nonces interface {
	// UseNonce records key until expires and reports true, unless key is
	// recorded with an expiry after now (a replay): then it reports false
	// and changes nothing.
	UseNonce(ctx context.Context, key string, now, expires time.Time) (bool, error)
	// DeleteExpiredNonces forgets nonces whose expiry is at or before now.
	DeleteExpiredNonces(ctx context.Context, now time.Time) (int64, error)
}

// RepoVersion is what the store records about changes to one vault
// repository: Epoch counts creations and removals of the repository,
// Generation every recorded change (removals and creations included).
type RepoVersion struct {
	Epoch      int64
	Generation int64
}

// RepoVersions let nodes that cache vault repositories learn that another
// node changed one (wrote index files, pruned, deleted or re-created it).
// key names the repository ("<account>/<region>/<vault>").
type RepoVersions interface {
	// GetRepoVersion returns the key's version (zero when nothing was
	// recorded).
	GetRepoVersion(ctx context.Context, key string) (RepoVersion, error)
	// BumpRepoVersion records a change: Generation+1, and Epoch+1 when
	// recreated (the repository was created or removed). It returns the
	// new version.
	BumpRepoVersion(ctx context.Context, key string, recreated bool) (RepoVersion, error)
}

// ClusterMeta holds facts every node using the store must agree on, such
// as the fingerprints of the keys the data was written with.
type ClusterMeta interface {
	// InitMeta stores value under name unless a value is stored already,
	// and returns the stored value (value itself the first time).
	InitMeta(ctx context.Context, name, value string) (string, error)
}
