package backup

import (
	"fmt"
	"time"
)

// Lifecycle is a recovery point's lifecycle: when it moves to cold storage
// and when it is deleted, in days after its creation.
type Lifecycle struct {
	MoveToColdStorageAfterDays          *int64
	DeleteAfterDays                     *int64
	OptInToArchiveForSupportedResources *bool
}

// Retention limits.
const (
	MaxRetentionDays = 36500
	// MinColdToDeleteDays is how much longer than in warm storage a
	// recovery point must be kept once it moves to cold storage.
	MinColdToDeleteDays  = 90
	MinChangeableForDays = 3
	MaxTagsPerResource   = 50
)

// Validate checks lc's bounds; param names the lifecycle in errors
// ("Lifecycle").
func (lc Lifecycle) Validate(param string) error {
	for _, v := range []struct {
		name string
		p    *int64
	}{{"MoveToColdStorageAfterDays", lc.MoveToColdStorageAfterDays}, {"DeleteAfterDays", lc.DeleteAfterDays}} {
		if v.p != nil && (*v.p < 1 || *v.p > MaxRetentionDays) {
			return InvalidParam(param+"."+v.name, "%s must be between 1 and %d days", v.name, MaxRetentionDays)
		}
	}
	if lc.MoveToColdStorageAfterDays != nil && lc.DeleteAfterDays != nil &&
		*lc.DeleteAfterDays < *lc.MoveToColdStorageAfterDays+MinColdToDeleteDays {
		return InvalidParam(param+".DeleteAfterDays",
			"DeleteAfterDays must be at least %d days greater than MoveToColdStorageAfterDays", MinColdToDeleteDays)
	}
	return nil
}

// IsZero reports whether lc sets nothing.
func (lc Lifecycle) IsZero() bool {
	return lc.MoveToColdStorageAfterDays == nil && lc.DeleteAfterDays == nil && lc.OptInToArchiveForSupportedResources == nil
}

// Schedule returns the cold and delete times of lc for a recovery point
// created at created.
func (lc Lifecycle) Schedule(created time.Time) (cold, del *time.Time) {
	day := 24 * time.Hour
	if lc.MoveToColdStorageAfterDays != nil {
		t := created.Add(time.Duration(*lc.MoveToColdStorageAfterDays) * day)
		cold = &t
	}
	if lc.DeleteAfterDays != nil {
		t := created.Add(time.Duration(*lc.DeleteAfterDays) * day)
		del = &t
	}
	return cold, del
}

// CheckLock returns an error when a recovery point with lifecycle lc may
// not be stored in vault v because of its lock's retention bounds.
func (v *Vault) CheckLock(lc Lifecycle) error {
	if !v.Locked {
		return nil
	}
	if lc.DeleteAfterDays == nil {
		if v.MaxRetentionDays != nil {
			return fmt.Errorf("the recovery point would never expire, but vault %s is locked with a maximum retention of %d days", v.Name, *v.MaxRetentionDays)
		}
		return nil
	}
	d := *lc.DeleteAfterDays
	if v.MinRetentionDays != nil && d < *v.MinRetentionDays {
		return fmt.Errorf("retention of %d days is below the minimum retention of %d days of locked vault %s", d, *v.MinRetentionDays, v.Name)
	}
	if v.MaxRetentionDays != nil && d > *v.MaxRetentionDays {
		return fmt.Errorf("retention of %d days is above the maximum retention of %d days of locked vault %s", d, *v.MaxRetentionDays, v.Name)
	}
	return nil
}

// LockImmutable reports whether v's lock can no longer be changed or
// removed at now (compliance mode after its grace time).
func (v *Vault) LockImmutable(now time.Time) bool {
	return v.Locked && v.LockDate != nil && !now.Before(*v.LockDate)
}

// LockRefusesDelete returns why vault v's lock forbids deleting rp at now,
// or "" when it may be deleted.
func (v *Vault) LockRefusesDelete(rp *RecoveryPoint, now time.Time) string {
	if !v.Locked || v.MinRetentionDays == nil {
		return ""
	}
	keep := rp.CreationDate.Add(time.Duration(*v.MinRetentionDays) * 24 * time.Hour)
	if now.Before(keep) {
		return fmt.Sprintf("Recovery point %s is protected by the lock of vault %s (minimum retention %d days) until %s",
			rp.Arn, v.Name, *v.MinRetentionDays, keep.Format(time.RFC3339))
	}
	return ""
}
