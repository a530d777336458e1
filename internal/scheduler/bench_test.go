package scheduler

import (
	"fmt"
	"testing"
)

// BenchmarkIdlePass: one scheduler pass over 100 plans (one rule and one
// selection each) when nothing is due: what a server spends every Poll.
func BenchmarkIdlePass(b *testing.B) {
	e := newEnv(b, utc("2026-03-02 04:00"))
	e.vault("primary")
	e.fileSystem("fs-000000000000000a1", nil)
	for i := 0; i < 100; i++ {
		p := e.plan(fmt.Sprintf("p%03d", i), rule("r", fmt.Sprintf("cron(%d 5 ? * * *)", i%60), ""))
		e.selectAll(p.ID)
	}
	s := e.scheduler("bench", e.svc)
	e.clk.Set(utc("2026-03-02 04:30"))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Tick(e.ctx); err != nil {
			b.Fatal(err)
		}
	}
}
