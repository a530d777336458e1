package hbr

import (
	"sync"
	"time"
)

// DefaultMaxNonces bounds the replay set (about 100 bytes an entry).
const DefaultMaxNonces = 200_000

// nonceSet remembers the signature nonces of authenticated requests until
// their timestamp leaves the accepted window: a nonce seen again within it
// is a replay. Memory is bounded: when the set is full of unexpired
// nonces, new requests are refused (Throttling) rather than forgetting a
// nonce early, which would let a replay through.
//
// The set is in memory, so it protects one node: a request replayed to
// another node of a multi-node deployment within the window is not
// detected (see docs/design/hbr.md, "Replay protection").
type nonceSet struct {
	mu    sync.Mutex
	max   int
	seen  map[string]time.Time // key -> expiry
	queue []nonceEntry         // insertion order
	head  int
}

type nonceEntry struct {
	key string
	exp time.Time
}

func newNonceSet(limit int) *nonceSet {
	if limit <= 0 {
		limit = DefaultMaxNonces
	}
	return &nonceSet{max: limit, seen: map[string]time.Time{}}
}

// use records key until exp. It returns false when key is already
// recorded and unexpired (a replay) and full when the set has no room.
func (s *nonceSet) use(key string, now, exp time.Time) (fresh, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if e, ok := s.seen[key]; ok && e.After(now) {
		return false, false
	}
	if len(s.seen) >= s.max {
		return false, true
	}
	s.seen[key] = exp
	s.queue = append(s.queue, nonceEntry{key: key, exp: exp})
	return true, false
}

// expire drops entries from the front of the queue whose expiry passed.
// Expiries are nearly ordered (timestamp plus a fixed window), so an
// entry behind a later one waits at most the clock skew allowed.
func (s *nonceSet) expire(now time.Time) {
	for s.head < len(s.queue) && !s.queue[s.head].exp.After(now) {
		e := s.queue[s.head]
		if cur, ok := s.seen[e.key]; ok && !cur.After(now) {
			delete(s.seen, e.key)
		}
		s.queue[s.head] = nonceEntry{}
		s.head++
	}
	if s.head > 1024 && s.head*2 > len(s.queue) {
		s.queue = append([]nonceEntry(nil), s.queue[s.head:]...)
		s.head = 0
	}
}

// size is the number of remembered nonces.
func (s *nonceSet) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}
