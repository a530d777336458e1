package store

import (
	"context"
	"time"
)

// ConsoleSession is a signed-in web console session. The store keeps a
// hash of the session id, never the id itself (only the browser's cookie
// holds it), so that reading the store does not let anyone sign in.
type ConsoleSession struct {
	IDHash      string // hex, unique
	AccountID   string
	AccessKeyID string
	Created     time.Time
	Expires     time.Time
}

// ConsoleSessions keep web console sessions, so that they survive a
// restart and every node sharing the store knows them.
type ConsoleSessions interface {
	// CreateConsoleSession records s (AlreadyExists when its hash is
	// recorded).
	CreateConsoleSession(ctx context.Context, s *ConsoleSession) error
	// GetConsoleSession returns the session of idHash (NotFound when
	// none; an expired one is returned: the caller decides).
	GetConsoleSession(ctx context.Context, idHash string) (*ConsoleSession, error)
	// DeleteConsoleSession forgets a session (no error when there is none).
	DeleteConsoleSession(ctx context.Context, idHash string) error
	// DeleteExpiredConsoleSessions forgets sessions whose expiry is at or
	// before now.
	DeleteExpiredConsoleSessions(ctx context.Context, now time.Time) (int64, error)
	// CountConsoleSessions counts the sessions whose expiry is after now.
	CountConsoleSessions(ctx context.Context, now time.Time) (int64, error)
}
