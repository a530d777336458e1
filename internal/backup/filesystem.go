package backup

import "time"

// ResourceTypeEFS is the AWS resource type of Coffer's file-system resources.
const ResourceTypeEFS = "EFS"

// FileSystem is a directory tree on the server exposed as an AWS EFS file
// system of one (account, region). Configured file systems are upserted from
// the config at start; restores with newFileSystem=true create new ones.
type FileSystem struct {
	AccountID, Region, ID, Arn, Path string
	Name                             string // optional display name (ResourceName)
	Tags                             map[string]string
	CreationDate                     time.Time
	CreatedByRestoreJob              string // set for file systems created by a restore with newFileSystem=true
}

// FileSystemArn returns the ARN of a file system:
// arn:aws:elasticfilesystem:{region}:{account}:file-system/{id}.
func FileSystemArn(region, account, id string) string {
	return "arn:aws:elasticfilesystem:" + region + ":" + account + ":file-system/" + id
}
