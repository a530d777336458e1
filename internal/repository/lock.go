package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"coffer/internal/repository/blob"
)

// LockKind distinguishes shared (write session) and exclusive (maintenance) locks.
type LockKind string

const (
	// LockShared is held by write sessions; many may coexist.
	LockShared LockKind = "shared"
	// LockExclusive is held by prune; it excludes every other lock.
	LockExclusive LockKind = "exclusive"
	lockAAD                = "coffer lock v1"
	maxLockSize            = 16 << 10
)

// LockInfo is the sealed content of a lock object.
type LockInfo struct {
	Kind    LockKind  `json:"kind"`
	Holder  string    `json:"holder"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// The holder's process identity (added later; absent in older locks):
	// with it a process on the same machine can prove that the holder is
	// gone (see holderDead) instead of waiting for the lease to expire.
	BootID string `json:"boot_id,omitempty"`
	PIDNS  string `json:"pid_ns,omitempty"`
	PID    int    `json:"pid,omitempty"`
	Start  uint64 `json:"start,omitempty"`
}

// HolderDead reports whether the lock's holder provably no longer runs (a
// process of this machine, boot and pid namespace that has exited).
func (li LockInfo) HolderDead() bool { return holderDead(li) }

// Lock is a lease held in storage. Refresh it before it expires; Release it
// when done.
type Lock struct {
	r       *Repository
	mu      sync.Mutex
	name    string
	info    LockInfo
	stop    chan struct{}
	done    chan struct{}
	lost    error
	release sync.Once
}

func (r *Repository) writeLock(ctx context.Context, info LockInfo) (string, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return "", err
	}
	name := LocksPrefix + randomName(16)
	if err := r.st.Put(ctx, name, r.aead.Seal(nil, b, []byte(lockAAD)), blob.PutOptions{IfAbsent: true}); err != nil {
		return "", fmt.Errorf("write lock: %w", err)
	}
	return name, nil
}

// ReadLock reads and authenticates a lock object.
func (r *Repository) ReadLock(ctx context.Context, name string) (LockInfo, error) {
	var li LockInfo
	b, err := r.st.Get(ctx, name, 0, -1)
	if err != nil {
		return li, err
	}
	li, err = r.decodeLock(b)
	if err != nil {
		return li, fmt.Errorf("%s: %w", name, err)
	}
	return li, nil
}

func (r *Repository) decodeLock(b []byte) (LockInfo, error) {
	var li LockInfo
	if len(b) > maxLockSize {
		return li, fmt.Errorf("%w: lock too large", ErrCorrupt)
	}
	p, err := r.aead.Open(nil, b, []byte(lockAAD))
	if err != nil {
		return li, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := json.Unmarshal(p, &li); err != nil {
		return li, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if li.Kind != LockShared && li.Kind != LockExclusive {
		return li, fmt.Errorf("%w: unknown lock kind %q", ErrCorrupt, li.Kind)
	}
	return li, nil
}

// AcquireLock takes a shared or exclusive lock: it writes its lock object,
// then lists all locks; a conflicting unexpired lock (any other lock for an
// exclusive request, an exclusive one for a shared request) makes it remove
// its own object and fail with ErrLocked. Unreadable lock objects count as
// conflicting. A lock whose holder is provably dead (HolderDead: a process
// of this machine that has exited) does not conflict, so a restart after a
// crash need not wait for the dead process's lease to expire. The lock
// refreshes itself every LeaseDuration/3 until Release.
func (r *Repository) AcquireLock(ctx context.Context, kind LockKind) (*Lock, error) {
	host, _ := os.Hostname()
	now := r.opts.Clock.Now()
	me := selfIdentity()
	info := LockInfo{Kind: kind, Holder: fmt.Sprintf("%s pid %d", host, os.Getpid()), Created: now, Expires: now.Add(r.opts.LeaseDuration),
		BootID: me.BootID, PIDNS: me.PIDNS, PID: me.PID, Start: me.Start}
	name, err := r.writeLock(ctx, info)
	if err != nil {
		return nil, err
	}
	var names []string
	err = r.st.List(ctx, LocksPrefix, func(i blob.Info) error {
		if i.Name != name {
			names = append(names, i.Name)
		}
		return nil
	})
	var conflict error
	if err != nil {
		conflict = fmt.Errorf("list locks: %w", err)
	}
	for _, n := range names {
		if conflict != nil {
			break
		}
		li, err := r.ReadLock(ctx, n)
		if errors.Is(err, blob.ErrNotFound) {
			continue
		}
		if err != nil {
			conflict = fmt.Errorf("%w: unreadable lock %s: %w", ErrLocked, n, err)
			break
		}
		if !li.Expires.After(r.opts.Clock.Now()) || holderDead(li) {
			continue
		}
		if kind == LockExclusive || li.Kind == LockExclusive {
			conflict = fmt.Errorf("%w: %s lock %s held by %s until %s", ErrLocked, li.Kind, strings.TrimPrefix(n, LocksPrefix), li.Holder, li.Expires.Format(time.RFC3339))
		}
	}
	if conflict != nil {
		_ = r.st.Delete(context.WithoutCancel(ctx), name)
		return nil, conflict
	}
	l := &Lock{r: r, name: name, info: info, stop: make(chan struct{}), done: make(chan struct{})}
	go l.refreshLoop()
	return l, nil
}

func (l *Lock) refreshLoop() {
	defer close(l.done)
	t := time.NewTicker(l.r.opts.LeaseDuration / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if err := l.Refresh(context.Background()); err != nil {
				l.r.opts.Logger.Warn("repository: lock refresh failed", "lock", l.name, "err", err)
			}
		}
	}
}

// Refresh extends the lease by writing a new lock object and removing the old one.
func (l *Lock) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if !l.info.Expires.After(l.r.opts.Clock.Now()) {
		l.lost = fmt.Errorf("%w: lease expired at %s before refresh", ErrLocked, l.info.Expires.Format(time.RFC3339))
		return l.lost
	}
	info := l.info
	info.Expires = l.r.opts.Clock.Now().Add(l.r.opts.LeaseDuration)
	// A refresh that lands after the old lease ended could revive a lease
	// that prune already treated as over: give up at the old expiry.
	wctx, cancel := context.WithTimeout(ctx, l.info.Expires.Sub(l.r.opts.Clock.Now()))
	defer cancel()
	name, err := l.r.writeLock(wctx, info)
	if err != nil {
		return err
	}
	old := l.name
	l.name, l.info = name, info
	if err := l.r.st.Delete(ctx, old); err != nil && !errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("remove old lock: %w", err)
	}
	return nil
}

// Remaining returns how long the current lease lasts unless it is
// refreshed (negative once it ended).
func (l *Lock) Remaining() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info.Expires.Sub(l.r.opts.Clock.Now())
}

// Valid returns nil while the lease is unexpired.
func (l *Lock) Valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if !l.info.Expires.After(l.r.opts.Clock.Now()) {
		return fmt.Errorf("%w: lease expired at %s", ErrLocked, l.info.Expires.Format(time.RFC3339))
	}
	return nil
}

// Release stops refreshing and removes the lock object.
func (l *Lock) Release(ctx context.Context) error {
	var err error
	l.release.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		if e := l.r.st.Delete(ctx, l.name); e != nil && !errors.Is(e, blob.ErrNotFound) {
			err = fmt.Errorf("release lock: %w", e)
		}
	})
	return err
}

// RemoveExpiredLocks deletes lock objects whose lease ended more than
// margin ago (left by crashed holders) and those whose holder is provably
// dead (HolderDead). Call it only under the exclusive lock.
func (r *Repository) RemoveExpiredLocks(ctx context.Context, own *Lock, margin time.Duration) (int, error) {
	if own == nil || own.info.Kind != LockExclusive {
		return 0, fmt.Errorf("repository: removing expired locks needs the exclusive lock")
	}
	var names []string
	if err := r.st.List(ctx, LocksPrefix, func(i blob.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("list locks: %w", err)
	}
	n := 0
	for _, name := range names {
		own.mu.Lock()
		mine := name == own.name
		own.mu.Unlock()
		if mine {
			continue
		}
		li, err := r.ReadLock(ctx, name)
		if err != nil {
			continue // unreadable or gone: leave it for Check to report
		}
		if li.Expires.Add(margin).Before(r.opts.Clock.Now()) || holderDead(li) {
			if err := r.st.Delete(ctx, name); err != nil && !errors.Is(err, blob.ErrNotFound) {
				return n, fmt.Errorf("remove expired lock %s: %w", name, err)
			}
			n++
		}
	}
	return n, nil
}

// WritingLocks returns the lock objects, other than own, whose holder may
// still be in a write session that can yet write an index: a holder not
// provably dead whose lease ended less than margin ago (or has not ended),
// and every lock object that cannot be read. Under the exclusive lock no
// holder's lease is current, so what this finds are sessions whose lease
// lapsed just now: one that passed its last lease check before the lease
// ended may still be writing its index (bounded by the lease's end, see
// session), or a refresh that was under way at the end may still land.
// Prune deletes unindexed packs early only when this is empty.
func (r *Repository) WritingLocks(ctx context.Context, own *Lock, margin time.Duration) ([]string, error) {
	if own == nil || own.info.Kind != LockExclusive {
		return nil, fmt.Errorf("repository: inspecting locks needs the exclusive lock")
	}
	var names []string
	if err := r.st.List(ctx, LocksPrefix, func(i blob.Info) error {
		names = append(names, i.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	own.mu.Lock()
	mine := own.name
	own.mu.Unlock()
	var out []string
	now := r.opts.Clock.Now()
	for _, name := range names {
		if name == mine {
			continue
		}
		li, err := r.ReadLock(ctx, name)
		if errors.Is(err, blob.ErrNotFound) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			out = append(out, fmt.Sprintf("%s (unreadable)", strings.TrimPrefix(name, LocksPrefix)))
			continue
		}
		if holderDead(li) || !li.Expires.Add(margin).After(now) {
			continue
		}
		out = append(out, fmt.Sprintf("%s lock of %s (lease ended %s)", li.Kind, li.Holder, li.Expires.Format(time.RFC3339)))
	}
	return out, nil
}
