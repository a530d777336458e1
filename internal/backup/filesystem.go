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

// ParseFileSystemArn splits a file-system ARN into region, account and id.
func ParseFileSystemArn(arn string) (region, account, id string, ok bool) {
	const prefix = "arn:aws:elasticfilesystem:"
	if len(arn) <= len(prefix) || arn[:len(prefix)] != prefix {
		return "", "", "", false
	}
	rest := arn[len(prefix):]
	parts := [3]string{}
	for i := 0; i < 2; i++ {
		j := indexByte(rest, ':')
		if j < 0 {
			return "", "", "", false
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	const res = "file-system/"
	if len(rest) <= len(res) || rest[:len(res)] != res {
		return "", "", "", false
	}
	parts[2] = rest[len(res):]
	if parts[0] == "" || parts[1] == "" || indexByte(parts[2], '/') >= 0 || indexByte(parts[2], ':') >= 0 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
