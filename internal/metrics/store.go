package metrics

import (
	"context"
	"encoding/json"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// Store wraps st so that job state changes made through it are counted
// once their transaction has committed.
func (m *Metrics) Store(st store.Store) store.Store { return &countingStore{Store: st, m: m} }

type countingStore struct {
	store.Store
	m *Metrics
}

// event is one job reaching a state.
type event struct {
	job      backup.Job
	takeover bool // a running job's lease was taken away (fencing generation bumped)
}

func (s *countingStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	var evs []event
	err := s.Store.Write(ctx, func(tx store.Tx) error {
		evs = evs[:0] // the adapter may run fn again
		return fn(&countingTx{Tx: tx, evs: &evs})
	})
	if err == nil {
		for _, e := range evs {
			s.m.record(e)
		}
	}
	return err
}

type countingTx struct {
	store.Tx
	evs *[]event
}

func (t *countingTx) CreateJob(ctx context.Context, j *backup.Job) error {
	if err := t.Tx.CreateJob(ctx, j); err != nil {
		return err
	}
	*t.evs = append(*t.evs, event{job: *j})
	return nil
}

func (t *countingTx) ClaimJob(ctx context.Context, c store.Claim) (*backup.Job, error) {
	j, err := t.Tx.ClaimJob(ctx, c)
	if err == nil && j != nil {
		*t.evs = append(*t.evs, event{job: *j})
	}
	return j, err
}

func (t *countingTx) UpdateJob(ctx context.Context, j *backup.Job, expectGeneration int64) error {
	if j.State == backup.JobRunning {
		// A heartbeat: jobs become RUNNING only when claimed.
		return t.Tx.UpdateJob(ctx, j, expectGeneration)
	}
	prev, err := t.Tx.GetJobByID(ctx, j.ID)
	if err != nil {
		return t.Tx.UpdateJob(ctx, j, expectGeneration)
	}
	if err := t.Tx.UpdateJob(ctx, j, expectGeneration); err != nil {
		return err
	}
	if prev.State != j.State {
		running := prev.State == backup.JobRunning || prev.State == backup.JobAborting
		*t.evs = append(*t.evs, event{job: *j, takeover: running && j.State.Terminal() && j.LeaseGeneration != expectGeneration})
	}
	return nil
}

// record counts one committed state change.
func (m *Metrics) record(e event) {
	j := &e.job
	typ := jobType(string(j.Kind))
	m.jobs.WithLabelValues(typ, string(j.State)).Inc()
	if e.takeover {
		m.leaseTakeovers.Inc()
	}
	if !j.State.Terminal() {
		return
	}
	if j.InitiationDate != nil && j.CompletionDate != nil {
		if d := j.CompletionDate.Sub(*j.InitiationDate); d >= 0 {
			m.jobDuration.WithLabelValues(typ).Observe(d.Seconds())
		}
	}
	if j.State != backup.JobCompleted {
		return
	}
	switch j.Kind {
	case backup.JobBackup:
		var r struct {
			BytesRead int64 `json:"bytesRead"`
		}
		if json.Unmarshal([]byte(j.ResultJSON), &r) == nil && r.BytesRead > 0 {
			m.bytes.WithLabelValues(DirectionRead).Add(float64(r.BytesRead))
		}
		m.bytes.WithLabelValues(DirectionStored).Add(float64(max(j.BytesTransferred, 0)))
	case backup.JobCopy:
		m.bytes.WithLabelValues(DirectionStored).Add(float64(max(j.BytesTransferred, 0)))
	case backup.JobRestore:
		m.bytes.WithLabelValues(DirectionRestored).Add(float64(max(j.BytesTransferred, 0)))
	}
}
