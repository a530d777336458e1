// Package filesystem is the resource plugin of file-system trees, AWS
// resource type EFS: a file system is a directory tree on a local or shared
// file system (config file_systems, or created by a restore under
// new_file_systems_dir). Backups walk the tree with fstree; restores write
// a snapshot into a new file system or into a directory of an existing
// one, staged and moved into place. Restore metadata follows AWS's EFS
// keys plus Coffer's extensions. See docs/design/restore.md.
package filesystem

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/resource"
)

// ResourceType is the AWS resource type of file systems.
const ResourceType = "EFS"

// AttrPath is the attribute holding a file system's root directory.
const AttrPath = "path"

var fsIDRE = regexp.MustCompile(`^fs-[0-9a-f]{8,17}$`)

// ValidID reports whether id is a file system id: fs- and 8 to 17
// lower-case hex digits.
func ValidID(id string) bool { return fsIDRE.MatchString(id) }

// ARN is a file system's ARN.
func ARN(region, account, id string) string {
	return "arn:aws:elasticfilesystem:" + region + ":" + account + ":file-system/" + id
}

// ParseARN splits arn:aws:elasticfilesystem:REGION:ACCOUNT:file-system/ID.
// The id is not checked against the id pattern (an unknown id is a
// missing resource, not a malformed ARN).
func ParseARN(arn string) (region, account, id string, ok bool) {
	const prefix = "arn:aws:elasticfilesystem:"
	rest, found := strings.CutPrefix(arn, prefix)
	if !found {
		return "", "", "", false
	}
	p := strings.SplitN(rest, ":", 3)
	if len(p) != 3 || p[0] == "" || p[1] == "" {
		return "", "", "", false
	}
	id, found = strings.CutPrefix(p[2], "file-system/")
	if !found || id == "" || strings.ContainsAny(id, "/:") {
		return "", "", "", false
	}
	return p[0], p[1], id, true
}

// NewResource is the resource of a configured file system.
func NewResource(region, account, id, path string, tags map[string]string) *backup.Resource {
	return &backup.Resource{AccountID: account, Region: region, Type: ResourceType, ID: id, Arn: ARN(region, account, id),
		Name: tags["Name"], Tags: tags, Attrs: map[string]string{AttrPath: path}}
}

// NewFileSystemID is the id of the file system a newFileSystem=true restore
// creates: derived from the CreationToken when one is given (so one token
// never yields two file systems), else from the job id; "fs-" and 17
// lower-case hex digits.
func NewFileSystemID(sc resource.Scope, jobID, creationToken string) string {
	var sum [32]byte
	if creationToken != "" {
		sum = sha256.Sum256([]byte("coffer-fs-token\x00" + sc.AccountID + "\x00" + sc.Region + "\x00" + creationToken))
	} else {
		sum = sha256.Sum256([]byte("coffer-fs-job\x00" + jobID))
	}
	return "fs-" + hex.EncodeToString(sum[:])[:17]
}
