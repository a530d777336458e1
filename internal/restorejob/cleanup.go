package restorejob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"coffer/internal/backup"
	"coffer/internal/jobs"
	"coffer/internal/resource"
	"coffer/internal/store"
)

// CleanStaging removes the staging areas of restores that will never
// finish (a crash left them) from the resources of every plugin that
// stages data, in every scope. It never touches a restore that may still
// be running in another process: a restore job that is queued, or running
// under a lease that has not expired at now, is live.
func CleanStaging(ctx context.Context, st store.Store, plugins []resource.Plugin, scopes []store.Scope, now time.Time) error {
	live := map[string]bool{}
	byType := map[string][]*backup.Resource{}
	err := st.Read(ctx, func(tx store.Tx) error {
		js, err := tx.ListJobsInStates(ctx, []backup.JobKind{backup.JobRestore}, backup.ActiveJobStates, 1<<20)
		if err != nil {
			return err
		}
		for _, j := range js {
			running := j.State == backup.JobRunning || j.State == backup.JobAborting
			if !running || (j.LeaseExpiry != nil && j.LeaseExpiry.After(now)) {
				live[j.ID] = true
			}
		}
		for _, p := range plugins {
			for _, sc := range scopes {
				rs, err := tx.ListResources(ctx, sc, p.Type())
				if err != nil {
					return err
				}
				byType[p.Type()] = append(byType[p.Type()], rs...)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore staging cleanup: %w", err)
	}
	var errs []error
	for _, p := range plugins {
		c, ok := p.(resource.StagingCleaner)
		if !ok {
			continue
		}
		req := resource.CleanupRequest{Resources: byType[p.Type()], Live: func(id string) bool { return live[id] },
			Completed: func(id string) bool { return completed(ctx, st, id) }}
		if err := c.CleanStaging(ctx, req); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// completed reports whether restore job id COMPLETED (an unreadable store
// counts as completed: nothing is taken away on a doubt).
func completed(ctx context.Context, st store.Store, id string) bool {
	done := true
	_ = st.Read(ctx, func(tx store.Tx) error {
		j, err := tx.GetJobByID(ctx, id)
		if backup.IsCode(err, backup.CodeNotFound) {
			done = false
			return nil
		}
		if err != nil {
			return err
		}
		done = j.Kind != backup.JobRestore || j.State == backup.JobCompleted
		return nil
	})
	return done
}

var _ jobs.Cleaner = (*Handler)(nil)

// Cleanup removes the staging area of restore job j, which reconciliation
// ended after its runner died (see jobs.Cleaner).
func (h *Handler) Cleanup(ctx context.Context, j *backup.Job) error {
	plugin, ok := h.Plugins.Lookup(j.ResourceType)
	if !ok {
		return nil
	}
	c, ok := plugin.(resource.StagingCleaner)
	if !ok {
		return nil
	}
	pr, err := ParseParams(j.ParametersJSON)
	if err != nil {
		return err
	}
	spec := pr.Spec
	if spec == nil {
		if spec, err = plugin.DecodeRestoreMetadata(pr.Metadata); err != nil {
			return err
		}
	}
	var targets []*backup.Resource
	if !spec.Target.New {
		err := h.Store.Read(ctx, func(tx store.Tx) error {
			t, err := tx.GetResource(ctx, store.Scope{AccountID: j.AccountID, Region: j.Region}, plugin.Type(), spec.Target.ID)
			if err == nil {
				targets = append(targets, t)
			}
			if backup.IsCode(err, backup.CodeNotFound) {
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	// j was just ended FAILED: what its Finish may have placed is taken
	// away; other jobs' staging is left to them.
	return c.CleanStaging(ctx, resource.CleanupRequest{Resources: targets, Live: func(id string) bool { return id != j.ID },
		Completed: func(id string) bool { return id != j.ID }})
}
