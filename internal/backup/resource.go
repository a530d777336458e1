package backup

import "time"

// Resource is a protected resource Coffer knows of one type: configured by
// the operator, or created by a restore. Type-specific facts (a file
// system's path, a bucket's endpoint) are in Attrs, read only by the
// resource type's plugin.
type Resource struct {
	AccountID string
	Region    string
	Type      string // resource type, e.g. "EFS"
	ID        string // identifier inside the type (fs-…, bucket name, DB identifier)
	Arn       string
	Name      string // optional display name (ResourceName)
	Tags      map[string]string
	Attrs     map[string]string
	// CreationDate is when Coffer first registered it.
	CreationDate time.Time
	// CreatedByRestoreJob is set for resources created by a restore.
	CreatedByRestoreJob string
}

// Attr returns the attribute k ("" when unset).
func (r *Resource) Attr(k string) string { return r.Attrs[k] }
