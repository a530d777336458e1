package api

// HoldSlots takes n of s's request slots, waiting as long as it takes, and
// returns the function that gives them back.
func HoldSlots(s *Server, n int) (release func()) {
	for range n {
		s.inflight.slots <- struct{}{}
	}
	return func() {
		for range n {
			<-s.inflight.slots
		}
	}
}

// Waiting returns how many requests wait for a slot.
func Waiting(s *Server) int { return int(s.inflight.waiting.Load()) }

// Throttled returns how many requests s has turned away for want of a slot.
func Throttled(s *Server) int { return int(s.inflight.throttled.Load()) }
