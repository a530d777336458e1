package backup

// Manifest label keys: every recovery point's repository manifest carries
// them, so that the metadata rows can be rebuilt from the repository alone
// (docs/design/repository-format.md). A copy adds LabelSourceRecoveryPoint.
const (
	LabelRecoveryPointArn    = "coffer.recovery-point-arn"
	LabelResourceArn         = "coffer.resource-arn"
	LabelResourceType        = "coffer.resource-type"
	LabelResourceName        = "coffer.resource-name"
	LabelAccount             = "coffer.account"
	LabelRegion              = "coffer.region"
	LabelVault               = "coffer.vault"
	LabelCreation            = "coffer.creation"
	LabelJobID               = "coffer.backup-job-id"
	LabelLifecycle           = "coffer.lifecycle"
	LabelTags                = "coffer.tags"
	LabelSourceRecoveryPoint = "coffer.source-recovery-point-arn"
)
