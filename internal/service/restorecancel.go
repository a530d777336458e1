package service

import (
	"context"
	"encoding/json"

	"coffer/internal/backup"
	"coffer/internal/jobs"
	"coffer/internal/restorejob"
	"coffer/internal/store"
)

// CancelRestore asks restore job jobID of the caller to stop: a queued
// job ends ABORTED at once; a running one becomes ABORTING, and its runner
// cancels the restore at its next heartbeat (a few seconds at most) and
// writes ABORTED; the restore leaves its target as a failed restore does.
// Cancelling an ABORTING or ABORTED job again is a no-op; any other
// finished job is InvalidRequest; an unknown job is NotFound.
func (s *Service) CancelRestore(ctx context.Context, c Caller, jobID string) error {
	return s.st.Write(ctx, func(tx store.Tx) error {
		j, err := tx.GetJob(ctx, c.Scope(), backup.JobRestore, jobID)
		if backup.IsCode(err, backup.CodeNotFound) {
			return restoreJobNotFound(jobID)
		}
		if err != nil {
			return err
		}
		switch {
		case j.State == backup.JobAborted || j.State == backup.JobAborting:
			return nil
		case j.State.Terminal():
			return &backup.Error{Code: backup.CodeInvalidRequest, Context: jobID,
				Message: "Restore job " + jobID + " has already ended (" + string(j.State) + ") and cannot be cancelled"}
		}
		return jobs.Stop(ctx, tx, j, s.clk.Now())
	})
}

// RestoreReport counts what a finished restore wrote, as far as its
// resource type reports it (Known false: nothing reported).
type RestoreReport struct {
	Known   bool
	Items   int64 // leaf items written (files, objects)
	Skipped int64 // existing items a conflict policy kept
	Failed  int64 // items that could not be restored
}

// RestoreJobDetail is what a front end may show of a restore job besides
// backup.Job: the typed restore it runs, its snapshot, the labels its
// front end recorded and, once finished, its report.
type RestoreJobDetail struct {
	RestoreJobInfo
	// Spec is nil for a job whose parameters cannot be read.
	Spec       *backup.RestoreSpec
	ManifestID string
	Labels     map[string]string
	Report     RestoreReport
}

// RestoreJobDetail returns j's restore-specific details.
func (s *Service) RestoreJobDetail(ctx context.Context, j *backup.Job) (RestoreJobDetail, error) {
	var d RestoreJobDetail
	err := s.st.Read(ctx, func(tx store.Tx) error {
		x, err := tx.GetRestoreJobExtra(ctx, store.Scope{AccountID: j.AccountID, Region: j.Region}, j.ID)
		if err != nil {
			return err
		}
		d.RecoveryPointCreationDate, d.Labels = x.RecoveryPointCreationDate, x.Labels
		return nil
	})
	if err != nil {
		return d, err
	}
	if p, err := restorejob.ParseParams(j.ParametersJSON); err == nil {
		d.ManifestID, d.Spec = p.ManifestID, p.Spec
		if d.Spec == nil {
			if pl, ok := s.plugins.Lookup(j.ResourceType); ok {
				d.Spec, _ = pl.DecodeRestoreMetadata(p.Metadata)
			}
		}
	}
	d.Report = parseReport(j.ResultJSON)
	return d, nil
}

// parseReport reads the counters a plugin's result details carry under
// the common names (files/objects/items, skipped, problems/failed).
func parseReport(result string) RestoreReport {
	var r RestoreReport
	if result == "" || len(result) > 1<<20 {
		return r
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(result), &m) != nil {
		return r
	}
	num := func(keys ...string) (int64, bool) {
		for _, k := range keys {
			var n int64
			if raw, ok := m[k]; ok && json.Unmarshal(raw, &n) == nil {
				return n, true
			}
		}
		return 0, false
	}
	var ok bool
	r.Items, ok = num("files", "objects", "items")
	r.Known = ok
	r.Skipped, _ = num("skipped")
	r.Failed, _ = num("problems", "failed")
	return r
}

// Resource returns resource id of type typ of the caller (NotFound when
// it has none).
func (s *Service) Resource(ctx context.Context, c Caller, typ, id string) (*backup.Resource, error) {
	return resourceLookup{st: s.st, sc: c.Scope()}.GetResource(ctx, typ, id)
}

// ResourceRef returns the type and id of the resource arn names (a
// registered type's ARN shape).
func (s *Service) ResourceRef(arn string) (typ, id string, ok bool) {
	p, ref, ok := s.plugins.ForARN(arn)
	if !ok {
		return "", "", false
	}
	return p.Type(), ref.ID, true
}
