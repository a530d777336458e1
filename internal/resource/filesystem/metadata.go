package filesystem

import (
	"encoding/json"
	"regexp"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/resource"
	"coffer/internal/resource/fstree"
)

// Metadata keys (matched case-insensitively). The last four are Coffer
// extensions beyond AWS.
const (
	KeyFileSystemID    = "file-system-id"
	KeyNewFileSystem   = "newFileSystem"
	KeyEncrypted       = "Encrypted"
	KeyKmsKeyID        = "KmsKeyId"
	KeyPerformanceMode = "PerformanceMode"
	KeyCreationToken   = "CreationToken"
	KeyItemsToRestore  = "ItemsToRestore"
	KeyRequestID       = "aws:backup:request-id"
	KeyInclude         = "Include"
	KeyExclude         = "Exclude"
	KeyTargetPath      = "TargetPath"
	KeyConflictPolicy  = "ConflictPolicy"
)

var knownKeys = []string{KeyFileSystemID, KeyNewFileSystem, KeyEncrypted, KeyKmsKeyID, KeyPerformanceMode, KeyCreationToken,
	KeyItemsToRestore, KeyRequestID, KeyInclude, KeyExclude, KeyTargetPath, KeyConflictPolicy}

// Limits of the metadata map.
const (
	// MaxMetadataBytes caps the whole map (keys plus values), as AWS does
	// for EFS item lists (200 KB).
	MaxMetadataBytes = 200 << 10
	// MaxListEntries caps ItemsToRestore, Include and Exclude each.
	MaxListEntries = 10000
	// MaxCreationTokenLen is the EFS CreationToken limit.
	MaxCreationTokenLen = 64
)

// Performance modes.
const (
	PerformanceGeneralPurpose = "generalPurpose"
	PerformanceMaxIO          = "maxIO"
)

var (
	kmsKeyRE        = regexp.MustCompile(`^(arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-[0-9]+:[0-9]{12}:(key/[A-Za-z0-9-]{1,128}|alias/[A-Za-z0-9/_-]{1,256})|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|alias/[A-Za-z0-9/_-]{1,256})$`)
	creationTokenRE = regexp.MustCompile(`^[\x21-\x7e]{1,64}$`)
)

// Metadata is validated EFS restore metadata.
type Metadata struct {
	// FileSystemID is the source file system (newFileSystem=true) or the
	// target file system (newFileSystem=false).
	FileSystemID    string
	NewFileSystem   bool
	Encrypted       bool
	KmsKeyID        string
	PerformanceMode string // "" when not given
	CreationToken   string
	// Items are file-system-root-relative paths ("/dir/file"); empty means
	// the whole file system.
	Items []string
	// Coffer extensions.
	Include, Exclude []string
	TargetPath       string // "/dir/sub", "" = default placement
	ConflictPolicy   backup.ConflictPolicy
}

// ParseError is a metadata validation error naming the offending key in
// the caller's spelling.
func paramErr(key, format string, args ...any) *backup.Error {
	return resource.MetadataError(key, format, args...)
}

// ParseMetadata validates EFS restore metadata. Keys are matched
// case-insensitively; unknown keys, duplicate keys (differing only in
// case) and malformed values are *backup.Error InvalidParameterValue
// naming the key. It reads nothing but m.
func ParseMetadata(m map[string]string) (*Metadata, error) {
	vals, name, err := resource.MetadataKeys(m, "EFS", knownKeys, nil, MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	md := &Metadata{}
	var ok bool
	if md.FileSystemID, ok = vals[KeyFileSystemID]; !ok {
		return nil, &backup.Error{Code: backup.CodeInvalidParameter, Context: KeyFileSystemID,
			Message: "Metadata key " + KeyFileSystemID + " is required for resource type EFS"}
	}
	if !fsIDRE.MatchString(md.FileSystemID) {
		return nil, paramErr(name(KeyFileSystemID), "must be a file system id fs-<8 to 17 lower-case hex digits>, got %q", trunc(md.FileSystemID))
	}
	nfs, ok := vals[KeyNewFileSystem]
	if !ok {
		return nil, &backup.Error{Code: backup.CodeInvalidParameter, Context: KeyNewFileSystem,
			Message: "Metadata key " + KeyNewFileSystem + " is required for resource type EFS (\"true\" or \"false\")"}
	}
	if md.NewFileSystem, ok = parseBool(nfs); !ok {
		return nil, paramErr(name(KeyNewFileSystem), "must be \"true\" or \"false\", got %q", trunc(nfs))
	}
	if v, ok := vals[KeyEncrypted]; ok {
		if md.Encrypted, ok = parseBool(v); !ok {
			return nil, paramErr(name(KeyEncrypted), "must be \"true\" or \"false\", got %q", trunc(v))
		}
	}
	if v, ok := vals[KeyKmsKeyID]; ok {
		if !kmsKeyRE.MatchString(v) {
			return nil, paramErr(name(KeyKmsKeyID), "must be a KMS key id, key ARN, alias or alias ARN, got %q", trunc(v))
		}
		if !md.Encrypted {
			return nil, paramErr(name(KeyKmsKeyID), "requires %s=true", name(KeyEncrypted))
		}
		md.KmsKeyID = v
	}
	if md.Encrypted {
		return nil, paramErr(name(KeyEncrypted), "Coffer file systems are plain directories without at-rest encryption; only \"false\" is supported")
	}
	if v, ok := vals[KeyPerformanceMode]; ok {
		if v != PerformanceGeneralPurpose && v != PerformanceMaxIO {
			return nil, paramErr(name(KeyPerformanceMode), "must be %q or %q, got %q", PerformanceGeneralPurpose, PerformanceMaxIO, trunc(v))
		}
		md.PerformanceMode = v
	}
	if v, ok := vals[KeyCreationToken]; ok {
		if !creationTokenRE.MatchString(v) {
			return nil, paramErr(name(KeyCreationToken), "must be 1 to %d printable ASCII characters without spaces", MaxCreationTokenLen)
		}
		if !md.NewFileSystem {
			return nil, paramErr(name(KeyCreationToken), "only applies with %s=true", name(KeyNewFileSystem))
		}
		md.CreationToken = v
	}
	if v, ok := vals[KeyItemsToRestore]; ok {
		if md.Items, err = parseList(name(KeyItemsToRestore), v); err != nil {
			return nil, err
		}
		if err := fstree.ValidateItems(md.Items); err != nil {
			return nil, paramErr(name(KeyItemsToRestore), "%v", err)
		}
	}
	for _, k := range []struct {
		key string
		dst *[]string
	}{{KeyInclude, &md.Include}, {KeyExclude, &md.Exclude}} {
		v, ok := vals[k.key]
		if !ok {
			continue
		}
		if *k.dst, err = parseList(name(k.key), v); err != nil {
			return nil, err
		}
		if _, err := fstree.CompilePatterns(*k.dst); err != nil {
			return nil, paramErr(name(k.key), "%v", err)
		}
		for _, p := range *k.dst {
			for _, seg := range strings.Split(p, "/") {
				if seg == "." || seg == ".." {
					return nil, paramErr(name(k.key), "pattern %q has a %q segment; patterns match paths inside the recovery point", trunc(p), seg)
				}
			}
		}
	}
	if v, ok := vals[KeyTargetPath]; ok {
		if md.NewFileSystem {
			return nil, paramErr(name(KeyTargetPath), "only applies with %s=false", name(KeyNewFileSystem))
		}
		if err := fstree.ValidateItems([]string{v}); err != nil {
			return nil, paramErr(name(KeyTargetPath), "must be a directory path below the file system root such as \"/restored\": %v", err)
		}
		md.TargetPath = v
	}
	if v, ok := vals[KeyConflictPolicy]; ok {
		switch p := backup.ConflictPolicy(v); p {
		case backup.SkipExisting, backup.OverwriteExisting, backup.OverwriteIfNewer:
			md.ConflictPolicy = p
		default:
			return nil, paramErr(name(KeyConflictPolicy), "must be %s, %s or %s, got %q", backup.SkipExisting, backup.OverwriteExisting, backup.OverwriteIfNewer, trunc(v))
		}
		if md.TargetPath == "" {
			return nil, paramErr(name(KeyConflictPolicy), "requires %s (an in-place restore names its directory)", KeyTargetPath)
		}
	}
	return md, nil
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// parseList decodes a JSON array of strings (values of Metadata are
// strings; lists are JSON-encoded). The map size cap bounds the input.
func parseList(key, v string) ([]string, error) {
	var list []string
	if err := json.Unmarshal([]byte(v), &list); err != nil {
		return nil, paramErr(key, "must be a JSON array of strings, e.g. [\"/dir/file\"]")
	}
	if len(list) > MaxListEntries {
		return nil, paramErr(key, "has %d entries, more than %d", len(list), MaxListEntries)
	}
	return list, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
