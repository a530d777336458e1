package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"coffer/internal/backup"
	"coffer/internal/store"
	"coffer/internal/store/storetest"
)

// TestOccurrenceClaimedOnceAcrossNodes: schedulers on four nodes claim the
// same occurrences at once; each occurrence is won by exactly one, and of
// the jobs they then start with one schedule key exactly one is created.
func TestOccurrenceClaimedOnceAcrossNodes(t *testing.T) {
	ns := nodes(t, 4)
	t0 := time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC)
	const occurrences, claimers = 20, 12
	var mu sync.Mutex
	won := map[int][]string{}
	created := map[int]int{}
	var wg sync.WaitGroup
	for w := 0; w < claimers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := ns[w%len(ns)]
			owner := fmt.Sprint("node-", w)
			for i := 0; i < occurrences; i++ {
				o := &store.Occurrence{RuleID: "rule-1", Instant: t0.Add(time.Duration(i) * time.Hour), AccountID: scope.AccountID,
					Region: scope.Region, PlanID: "p", VersionID: "v1", Owner: owner, LeaseExpiry: t0.Add(48 * time.Hour)}
				var ok bool
				if err := s.Write(ctx, func(tx store.Tx) (err error) {
					ok, err = tx.ClaimOccurrence(ctx, o, t0)
					return err
				}); err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					won[i] = append(won[i], owner)
					mu.Unlock()
				}
				// Every claimer (winner or not) tries to start the
				// occurrence's job: the schedule key admits one.
				j := storetest.Job(scope, backup.JobBackup, 10000+w*occurrences+i, t0)
				j.ScheduleKey = fmt.Sprintf("rule-1|%d|arn:res", i)
				err := s.Write(ctx, func(tx store.Tx) error { return tx.CreateJob(ctx, j) })
				switch {
				case err == nil:
					mu.Lock()
					created[i]++
					mu.Unlock()
				case !backup.IsCode(err, backup.CodeAlreadyExists):
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < occurrences; i++ {
		if len(won[i]) != 1 {
			t.Errorf("occurrence %d claimed by %v, want exactly one owner", i, won[i])
		}
		if created[i] != 1 {
			t.Errorf("occurrence %d: %d jobs created, want 1", i, created[i])
		}
	}
}

// TestPlanCreateByNameAcrossNodes: the service's find-then-create of a plan
// (no plan of that name yet, then create) run on several nodes at once
// creates one plan; the other requests find it.
func TestPlanCreateByNameAcrossNodes(t *testing.T) {
	ns := nodes(t, 4)
	t0 := time.Date(2026, 1, 2, 5, 0, 0, 0, time.UTC)
	const n = 16
	var mu sync.Mutex
	created := 0
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("plan-", i)
			err := ns[i%len(ns)].Write(ctx, func(tx store.Tx) error {
				old, err := tx.FindPlan(ctx, scope, "", "nightly")
				if err != nil || old != nil {
					return err
				}
				p := &backup.Plan{AccountID: scope.AccountID, Region: scope.Region, ID: id, Arn: backup.PlanArn(scope.Region, scope.AccountID, id),
					VersionID: "v-" + id, Name: "nightly", VersionDate: t0}
				if err := tx.CreatePlan(ctx, p); err != nil {
					return err
				}
				mu.Lock()
				created++
				mu.Unlock()
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var count int
	if err := ns[0].Read(ctx, func(tx store.Tx) (err error) {
		count, err = tx.CountPlans(ctx, scope)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if created != 1 || count != 1 {
		t.Fatalf("%d creates committed, %d plans stored; want 1 and 1", created, count)
	}
}
