package backup

import (
	"regexp"
	"strings"
)

// Validation patterns, defined once. Each has a Valid* function; callers
// never keep their own copy.
var (
	accountIDRE     = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE        = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	vaultNameRE     = regexp.MustCompile(`^[a-zA-Z0-9\-_]{2,50}$`)
	iamRoleArnRE    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
	resourceTypeRE  = regexp.MustCompile(`^[a-zA-Z0-9\-_.]{1,50}$`)
	recoveryPointRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,128}$`)
	kmsKeyArnRE     = regexp.MustCompile(`^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$`)
	creatorReqIDRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,50}$`)
)

// ValidAccountID reports whether s is a 12-digit account id.
func ValidAccountID(s string) bool { return accountIDRE.MatchString(s) }

// ValidRegion reports whether s looks like a region name (us-east-1).
func ValidRegion(s string) bool { return regionRE.MatchString(s) }

// ValidVaultName reports whether s is a backup vault name: 2 to 50
// letters, digits, hyphens and underscores (the service model's pattern).
func ValidVaultName(s string) bool { return vaultNameRE.MatchString(s) }

// ValidIAMRoleArn reports whether s is an IAM role ARN.
func ValidIAMRoleArn(s string) bool { return iamRoleArnRE.MatchString(s) }

// ValidResourceTypeName reports whether s matches the service model's
// ResourceType pattern (it need not be a type Coffer supports).
func ValidResourceTypeName(s string) bool { return resourceTypeRE.MatchString(s) }

// ValidKMSKeyArn reports whether s is a KMS key ARN.
func ValidKMSKeyArn(s string) bool { return kmsKeyArnRE.MatchString(s) }

// ValidCreatorRequestID reports whether s is a valid CreatorRequestId.
func ValidCreatorRequestID(s string) bool { return creatorReqIDRE.MatchString(s) }

// DefaultServiceRole is the role a job runs with when the caller names
// none: the account's AWSBackupDefaultServiceRole.
func DefaultServiceRole(account string) string {
	return "arn:aws:iam::" + account + ":role/service-role/AWSBackupDefaultServiceRole"
}

// Truncate shortens s for an error message (at most n bytes plus "...").
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	return strings.ToValidUTF8(s, "") + "..."
}
