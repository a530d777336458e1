package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// StoredSession is what a SessionStore keeps of a session: never the
// session id (only the browser's cookie holds it) but a hash of it, and
// no CSRF token (it is derived from the id, see csrfOf).
type StoredSession struct {
	IDHash      string
	AccountID   string
	AccessKeyID string
	Created     time.Time
	Expires     time.Time
}

// SessionStore keeps console sessions. `coffer serve` keeps them in the
// metadata store, so that they survive a restart and every node sharing
// the store knows them; without one the console keeps them in memory.
type SessionStore interface {
	// CreateSession records s.
	CreateSession(ctx context.Context, s StoredSession) error
	// GetSession returns the session whose id hashes to idHash, or nil
	// when there is none (expired sessions may still be returned).
	GetSession(ctx context.Context, idHash string) (*StoredSession, error)
	// DeleteSession forgets a session (nothing when there is none).
	DeleteSession(ctx context.Context, idHash string) error
	// PruneSessions forgets the sessions expired at now and returns how
	// many remain.
	PruneSessions(ctx context.Context, now time.Time) (live int64, err error)
}

// Domain-separated hashes of the session id: what the store keeps, and
// the session's CSRF token. Knowing one tells nothing of the other, nor of
// the id (32 random bytes).
const (
	idHashDomain = "coffer console session id\x00"
	csrfDomain   = "coffer console csrf token\x00"
)

func hashOf(domain, id string) string {
	h := sha256.Sum256([]byte(domain + id))
	return hex.EncodeToString(h[:])
}

// idHash is the key a session is stored under.
func idHash(id string) string { return hashOf(idHashDomain, id) }

// csrfOf is the CSRF token of the session named id: a page that can
// read the session's answers gets it (sign-in, GET me), another site's
// page cannot compute it.
func csrfOf(id string) string { return hashOf(csrfDomain, id) }

// memSessions is the in-memory SessionStore.
type memSessions struct {
	mu sync.Mutex
	m  map[string]StoredSession
}

func newMemSessions() *memSessions { return &memSessions{m: map[string]StoredSession{}} }

func (m *memSessions) CreateSession(_ context.Context, s StoredSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.m[s.IDHash] = s
	return nil
}

func (m *memSessions) GetSession(_ context.Context, h string) (*StoredSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[h]
	if !ok {
		return nil, nil
	}
	return &s, nil
}

func (m *memSessions) DeleteSession(_ context.Context, h string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, h)
	return nil
}

func (m *memSessions) PruneSessions(_ context.Context, now time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, s := range m.m {
		if !now.Before(s.Expires) {
			delete(m.m, h)
		}
	}
	return int64(len(m.m)), nil
}
