package sqlrow

import (
	"encoding/json"

	"coffer/internal/store"
)

// LatestRestore is the latest restore recorded on a protected resource
// from its columns (latest_restore_exec_minutes,
// latest_restore_job_creation_ms, latest_restore_rp_creation_ms); nil when
// none is recorded (no job creation time).
func LatestRestore(mins, job, rp *int64) *store.LatestRestore {
	if job == nil {
		return nil
	}
	lr := &store.LatestRestore{JobCreationDate: UTC(*job)}
	if mins != nil {
		lr.ExecutionTimeMinutes = *mins
	}
	if rp != nil {
		lr.RecoveryPointCreationDate = UTC(*rp)
	}
	return lr
}

// RestoreLabels is the labels_json of a restore job's labels (nil, NULL,
// when there are none).
func RestoreLabels(labels map[string]string) (*string, error) {
	if labels == nil {
		return nil, nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return nil, err
	}
	l := string(b)
	return &l, nil
}

// RestoreJobExtra is a restore job's extra columns (rp_creation_ms,
// labels_json) decoded.
func RestoreJobExtra(rp *int64, labels *string) (*store.RestoreJobExtra, error) {
	x := &store.RestoreJobExtra{}
	if rp != nil {
		x.RecoveryPointCreationDate = UTC(*rp)
	}
	if labels != nil {
		if err := json.Unmarshal([]byte(*labels), &x.Labels); err != nil {
			return nil, err
		}
	}
	return x, nil
}
