package backup

// ConflictPolicy says what a restore into an existing target does with an
// item that already exists there.
type ConflictPolicy string

// Conflict policies. The default depends on the resource type (file
// systems restore into a fresh directory and fail if it exists; buckets
// skip existing keys).
const (
	ConflictDefault   ConflictPolicy = ""
	SkipExisting      ConflictPolicy = "SKIP_EXISTING"
	OverwriteExisting ConflictPolicy = "OVERWRITE_EXISTING"
	OverwriteIfNewer  ConflictPolicy = "OVERWRITE_IF_NEWER"
)

// ConflictPolicies lists the non-default policies.
var ConflictPolicies = []ConflictPolicy{SkipExisting, OverwriteExisting, OverwriteIfNewer}

// RestoreTarget says where a restore writes.
type RestoreTarget struct {
	// New asks for a new resource; otherwise the restore writes into the
	// existing resource ID of the caller's account.
	New bool
	// ID names the existing target, or the identifier wanted for the new
	// resource ("" lets the resource type choose one).
	ID string
	// CreationToken makes a new resource's creation idempotent.
	CreationToken string
	// Path is a location inside the target (a directory of a file system,
	// a key prefix of a bucket); "" is the type's default placement.
	Path string
}

// RestoreSpec is a typed, front-end-neutral restore request: what to
// restore from a recovery point and where. Front ends build it from their
// wire parameters (the AWS API through the resource type's restore
// metadata keys); the resource type validates it.
type RestoreSpec struct {
	Target RestoreTarget
	// Items are paths inside the recovery point ("/dir/file"); empty
	// restores everything.
	Items []string
	// Include and Exclude are glob patterns over paths inside the
	// recovery point.
	Include, Exclude []string
	ConflictPolicy   ConflictPolicy
	// Settings are type-specific settings, recorded with the job
	// (canonical key → value), e.g. a file system's PerformanceMode.
	Settings map[string]string
}
