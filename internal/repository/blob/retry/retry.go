// Package retry wraps a blob.Storage so that failures that retrying can fix
// (anything not blob.IsPermanent and not a context error) are retried with
// bounded exponential backoff and full jitter.
package retry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"coffer/internal/repository/blob"
)

// Options bound the retries.
type Options struct {
	// Attempts is the total number of tries per call, the first included;
	// 0 means 5. 1 disables retrying.
	Attempts int
	// BaseDelay is the backoff before the second try; 0 means 200ms. Each
	// further try doubles it, up to MaxDelay (0 means 15s); the actual wait
	// is uniformly random in [0, backoff] (full jitter).
	BaseDelay time.Duration
	MaxDelay  time.Duration
	// Sleep waits for d or until ctx ends; nil means a real timer. Tests
	// pass a function that records the delays instead of sleeping.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives one line per retried failure; nil discards them.
	Logger *slog.Logger
}

// Storage is the retrying decorator.
type Storage struct {
	inner blob.Storage
	opts  Options
}

var _ blob.Storage = (*Storage)(nil)

// New wraps inner.
func New(inner blob.Storage, opts Options) *Storage {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 200 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 15 * time.Second
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Storage{inner: inner, opts: opts}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Backoff returns the upper bound of the wait before try number attempt
// (attempt 1 is the first retry).
func (s *Storage) Backoff(attempt int) time.Duration {
	d := s.opts.BaseDelay
	for i := 1; i < attempt && d < s.opts.MaxDelay; i++ {
		d *= 2
	}
	return min(d, s.opts.MaxDelay)
}

func retryable(ctx context.Context, err error) bool {
	return err != nil && !blob.IsPermanent(err) && ctx.Err() == nil &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// do runs call until it succeeds, fails permanently, or the attempts are
// used up; the last error is returned wrapped with the attempt count.
func (s *Storage) do(ctx context.Context, op, name string, call func(attempt int) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = call(attempt)
		var nr *noRetry
		if errors.As(err, &nr) {
			return nr.err
		}
		if !retryable(ctx, err) {
			return err
		}
		if attempt >= s.opts.Attempts {
			return fmt.Errorf("retry: %s %q: giving up after %d attempts: %w", op, name, attempt, err)
		}
		wait := time.Duration(rand.Int64N(int64(s.Backoff(attempt)) + 1))
		s.opts.Logger.WarnContext(ctx, "blob operation failed, retrying", "op", op, "name", name, "attempt", attempt, "wait", wait, "err", err)
		if serr := s.opts.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("retry: %s %q: %w (last error: %v)", op, name, serr, err)
		}
	}
}

// Put retries failed puts. An IfAbsent put whose earlier try may have
// reached the store (a lost reply) and that now finds the name taken counts
// as success only when the stored bytes equal data.
func (s *Storage) Put(ctx context.Context, name string, data []byte, opts blob.PutOptions) error {
	return s.do(ctx, "put", name, func(attempt int) error {
		err := s.inner.Put(ctx, name, data, opts)
		if attempt > 1 && opts.IfAbsent && errors.Is(err, blob.ErrAlreadyExists) {
			got, gerr := s.inner.Get(ctx, name, 0, -1)
			if gerr == nil && bytes.Equal(got, data) {
				return nil
			}
		}
		return err
	})
}

// Get retries failed reads.
func (s *Storage) Get(ctx context.Context, name string, offset, length int64) ([]byte, error) {
	var out []byte
	err := s.do(ctx, "get", name, func(int) error {
		var err error
		out, err = s.inner.Get(ctx, name, offset, length)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Stat retries failed stats.
func (s *Storage) Stat(ctx context.Context, name string) (blob.Info, error) {
	var out blob.Info
	err := s.do(ctx, "stat", name, func(int) error {
		var err error
		out, err = s.inner.Stat(ctx, name)
		return err
	})
	if err != nil {
		return blob.Info{}, err
	}
	return out, nil
}

// noRetry makes do return err at once, unwrapped and without retrying.
type noRetry struct{ err error }

func (e *noRetry) Error() string { return e.err.Error() }

// List retries a listing only while it has delivered nothing to fn; a
// failure after fn has seen objects is returned, so fn never sees a name
// twice. An error from fn is returned as is.
func (s *Storage) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	delivered := false
	return s.do(ctx, "list", prefix, func(int) error {
		err := s.inner.List(ctx, prefix, func(in blob.Info) error {
			delivered = true
			if err := fn(in); err != nil {
				return &noRetry{err}
			}
			return nil
		})
		var nr *noRetry
		if errors.As(err, &nr) {
			return nr
		}
		if err != nil && delivered {
			return &noRetry{err}
		}
		return err
	})
}

// Delete retries failed deletes. When an earlier try may have removed the
// object and a later one reports ErrNotFound, that ErrNotFound is returned:
// callers treat it as "gone" either way.
func (s *Storage) Delete(ctx context.Context, name string) error {
	return s.do(ctx, "delete", name, func(int) error { return s.inner.Delete(ctx, name) })
}

// Properties returns the inner storage's properties.
func (s *Storage) Properties() blob.Properties { return s.inner.Properties() }

// Close closes the inner storage.
func (s *Storage) Close() error { return s.inner.Close() }
