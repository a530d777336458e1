package backup

import "strings"

// VaultArn is a backup vault's ARN.
func VaultArn(region, account, name string) string {
	return "arn:aws:backup:" + region + ":" + account + ":backup-vault:" + name
}

// ParseVaultArn splits arn:aws:backup:REGION:ACCOUNT:backup-vault:NAME,
// checking each part's pattern.
func ParseVaultArn(arn string) (region, account, name string, ok bool) {
	p := strings.SplitN(arn, ":", 7)
	if len(p) != 7 || p[0] != "arn" || p[1] != "aws" || p[2] != "backup" || p[5] != "backup-vault" {
		return "", "", "", false
	}
	if !ValidRegion(p[3]) || !ValidAccountID(p[4]) || !ValidVaultName(p[6]) {
		return "", "", "", false
	}
	return p[3], p[4], p[6], true
}

// RecoveryPointArn is a recovery point's ARN.
func RecoveryPointArn(region, account, id string) string {
	return "arn:aws:backup:" + region + ":" + account + ":recovery-point:" + id
}

// ParseRecoveryPointArn splits
// arn:aws:backup:REGION:ACCOUNT:recovery-point:ID, checking each part.
func ParseRecoveryPointArn(arn string) (region, account, id string, ok bool) {
	p := strings.SplitN(arn, ":", 7)
	if len(p) != 7 || p[0] != "arn" || p[1] != "aws" || p[2] != "backup" || p[5] != "recovery-point" {
		return "", "", "", false
	}
	if !ValidRegion(p[3]) || !ValidAccountID(p[4]) || !recoveryPointRE.MatchString(p[6]) {
		return "", "", "", false
	}
	return p[3], p[4], p[6], true
}

// RecoveryPointArnScope returns the region and account of anything shaped
// like a recovery point ARN (arn:*:backup:REGION:ACCOUNT:recovery-point:X),
// without checking the parts' patterns: an ARN of another account is told
// apart from a malformed one.
func RecoveryPointArnScope(arn string) (region, account string, ok bool) {
	p := strings.SplitN(arn, ":", 7)
	if len(p) != 7 || p[0] != "arn" || p[2] != "backup" || p[5] != "recovery-point" || p[6] == "" {
		return "", "", false
	}
	return p[3], p[4], true
}
