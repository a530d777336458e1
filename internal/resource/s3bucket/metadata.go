package s3bucket

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/glob"
	"coffer/internal/resource"
)

// Restore metadata keys (matched case-insensitively). The last two are
// Coffer extensions beyond AWS.
const (
	KeyDestinationBucketName = "DestinationBucketName"
	KeyNewBucket             = "NewBucket"
	KeyEncrypted             = "Encrypted"
	KeyEncryptionType        = "EncryptionType"
	KeyKMSKey                = "KMSKey"
	KeyCreationToken         = "CreationToken"
	KeyItemsToRestore        = "ItemsToRestore"
	KeyRequestID             = "aws:backup:request-id"
	KeyConflictPolicy        = "ConflictPolicy"
	KeyDestinationPrefix     = "DestinationPrefix"
)

var knownKeys = []string{KeyDestinationBucketName, KeyNewBucket, KeyEncrypted, KeyEncryptionType, KeyKMSKey, KeyCreationToken,
	KeyItemsToRestore, KeyRequestID, KeyConflictPolicy, KeyDestinationPrefix}

// Encryption types.
const (
	EncryptionOriginal = "original"
	EncryptionSSES3    = "SSE-S3"
	EncryptionSSEKMS   = "SSE-KMS"
)

// Limits.
const (
	// MaxMetadataBytes caps the whole metadata map.
	MaxMetadataBytes = 200 << 10
	// MaxItems is AWS's limit of ItemsToRestore entries for S3.
	MaxItems = 5
	// MaxKeyLen caps keys and prefixes given in metadata.
	MaxKeyLen = 1024
)

// settingItemsBucket records the bucket the ItemsToRestore URIs named.
const settingItemsBucket = "ItemsBucket"

var creationTokenRE = regexp.MustCompile(`^[\x21-\x7e]{1,64}$`)

// Metadata is validated S3 restore metadata.
type Metadata struct {
	DestinationBucketName string
	NewBucket             bool
	Encrypted             bool
	EncryptionType        string // "" when not given
	CreationToken         string
	// Items are object keys or key prefixes; ItemsBucket is the bucket
	// their URIs named.
	Items       []string
	ItemsBucket string
	// Coffer extensions.
	ConflictPolicy    backup.ConflictPolicy
	DestinationPrefix string
}

func paramErr(key, format string, args ...any) *backup.Error {
	return resource.MetadataError(key, format, args...)
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ParseMetadata validates S3 restore metadata. Keys are matched
// case-insensitively; unknown keys, duplicates and bad values are
// *backup.Error InvalidParameter naming the key in the caller's spelling.
func ParseMetadata(m map[string]string) (*Metadata, error) {
	vals, name, err := resource.MetadataKeys(m, "S3", knownKeys, nil, MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	md := &Metadata{}
	dest, ok := vals[KeyDestinationBucketName]
	if !ok {
		return nil, &backup.Error{Code: backup.CodeInvalidParameter, Context: KeyDestinationBucketName,
			Message: "Metadata key " + KeyDestinationBucketName + " is required for resource type S3"}
	}
	if !ValidBucketName(dest) {
		return nil, paramErr(name(KeyDestinationBucketName), "must be a bucket name (3 to 63 lower-case letters, digits, '.' and '-'), got %q", trunc(dest))
	}
	md.DestinationBucketName = dest
	if v, ok := vals[KeyNewBucket]; ok {
		if md.NewBucket, ok = parseBool(v); !ok {
			return nil, paramErr(name(KeyNewBucket), "must be \"true\" or \"false\", got %q", trunc(v))
		}
	}
	if v, ok := vals[KeyEncrypted]; ok {
		if md.Encrypted, ok = parseBool(v); !ok {
			return nil, paramErr(name(KeyEncrypted), "must be \"true\" or \"false\", got %q", trunc(v))
		}
	}
	if v, ok := vals[KeyEncryptionType]; ok {
		switch {
		case strings.EqualFold(v, EncryptionOriginal):
			md.EncryptionType = EncryptionOriginal
		case strings.EqualFold(v, EncryptionSSES3):
			md.EncryptionType = EncryptionSSES3
		case strings.EqualFold(v, EncryptionSSEKMS):
			return nil, paramErr(name(KeyEncryptionType), "SSE-KMS is not supported: Coffer has no KMS; use %q or %q", EncryptionOriginal, EncryptionSSES3)
		default:
			return nil, paramErr(name(KeyEncryptionType), "must be %q or %q, got %q", EncryptionOriginal, EncryptionSSES3, trunc(v))
		}
		if md.EncryptionType == EncryptionSSES3 && vals[KeyEncrypted] != "" && !md.Encrypted {
			return nil, paramErr(name(KeyEncrypted), "must be \"true\" with %s=%s", name(KeyEncryptionType), EncryptionSSES3)
		}
	}
	if md.Encrypted && md.EncryptionType == "" {
		md.EncryptionType = EncryptionSSES3
	}
	if _, ok := vals[KeyKMSKey]; ok {
		return nil, paramErr(name(KeyKMSKey), "KMS keys are not supported: Coffer has no KMS; use %s=%s", KeyEncryptionType, EncryptionSSES3)
	}
	if v, ok := vals[KeyCreationToken]; ok {
		if !creationTokenRE.MatchString(v) {
			return nil, paramErr(name(KeyCreationToken), "must be 1 to 64 printable ASCII characters without spaces")
		}
		md.CreationToken = v
	}
	if v, ok := vals[KeyItemsToRestore]; ok {
		var list []string
		if err := json.Unmarshal([]byte(v), &list); err != nil {
			return nil, paramErr(name(KeyItemsToRestore), "must be a JSON array of s3://bucket/key strings, e.g. [\"s3://photos/2024/\"]")
		}
		if len(list) == 0 || len(list) > MaxItems {
			return nil, paramErr(name(KeyItemsToRestore), "must list 1 to %d object or prefix URIs, got %d", MaxItems, len(list))
		}
		for _, u := range list {
			bucket, key, ok := ParseObjectURI(u)
			if !ok {
				return nil, paramErr(name(KeyItemsToRestore), "%q is not an s3://bucket/key URI (the key written as is, not percent-encoded)", trunc(u))
			}
			if len(key) > MaxKeyLen {
				return nil, paramErr(name(KeyItemsToRestore), "key of %q is longer than %d bytes", trunc(u), MaxKeyLen)
			}
			if md.ItemsBucket != "" && bucket != md.ItemsBucket {
				return nil, paramErr(name(KeyItemsToRestore), "URIs name two buckets, %s and %s; a recovery point holds one", md.ItemsBucket, bucket)
			}
			md.ItemsBucket = bucket
			md.Items = append(md.Items, key)
		}
	}
	if v, ok := vals[KeyConflictPolicy]; ok {
		switch p := backup.ConflictPolicy(v); p {
		case backup.SkipExisting, backup.OverwriteExisting, backup.OverwriteIfNewer:
			md.ConflictPolicy = p
		default:
			return nil, paramErr(name(KeyConflictPolicy), "must be %s, %s or %s, got %q", backup.SkipExisting, backup.OverwriteExisting, backup.OverwriteIfNewer, trunc(v))
		}
	}
	if v, ok := vals[KeyDestinationPrefix]; ok {
		if v == "" || len(v) > MaxKeyLen {
			return nil, paramErr(name(KeyDestinationPrefix), "must be 1 to %d bytes", MaxKeyLen)
		}
		md.DestinationPrefix = v
	}
	return md, nil
}

// ParseObjectURI splits s3://bucket/key; the key is taken as is (it may be
// empty: the whole bucket).
func ParseObjectURI(u string) (bucket, key string, ok bool) {
	rest, found := strings.CutPrefix(u, "s3://")
	if !found {
		return "", "", false
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if !ValidBucketName(bucket) {
		return "", "", false
	}
	return bucket, key, true
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

// Spec is the restore spec md describes. Items are "/" + key.
func (md *Metadata) Spec() *backup.RestoreSpec {
	s := &backup.RestoreSpec{
		Target:         backup.RestoreTarget{New: md.NewBucket, ID: md.DestinationBucketName, CreationToken: md.CreationToken, Path: md.DestinationPrefix},
		ConflictPolicy: md.ConflictPolicy,
		Settings:       map[string]string{},
	}
	for _, k := range md.Items {
		s.Items = append(s.Items, "/"+k)
	}
	if md.ItemsBucket != "" {
		s.Settings[settingItemsBucket] = md.ItemsBucket
	}
	if md.EncryptionType != "" {
		s.Settings[KeyEncryptionType] = md.EncryptionType
		s.Settings[KeyEncrypted] = strconv.FormatBool(md.EncryptionType == EncryptionSSES3)
	}
	return s
}

// itemKeys are the keys or prefixes of spec's items.
func itemKeys(spec *backup.RestoreSpec) []string {
	out := make([]string, 0, len(spec.Items))
	for _, it := range spec.Items {
		out = append(out, strings.TrimPrefix(it, "/"))
	}
	return out
}

// encode is the S3 restore metadata of spec; bucket is the recovery
// point's bucket (for the item URIs when the spec names none).
func encode(spec *backup.RestoreSpec, bucket string) map[string]string {
	m := map[string]string{KeyDestinationBucketName: spec.Target.ID, KeyNewBucket: strconv.FormatBool(spec.Target.New)}
	et := spec.Settings[KeyEncryptionType]
	if et == "" {
		et = EncryptionOriginal
	}
	m[KeyEncryptionType] = et
	m[KeyEncrypted] = strconv.FormatBool(et == EncryptionSSES3)
	if spec.Target.CreationToken != "" {
		m[KeyCreationToken] = spec.Target.CreationToken
	}
	if spec.Target.Path != "" {
		m[KeyDestinationPrefix] = spec.Target.Path
	}
	if spec.ConflictPolicy != backup.ConflictDefault {
		m[KeyConflictPolicy] = string(spec.ConflictPolicy)
	}
	if len(spec.Items) > 0 {
		b := spec.Settings[settingItemsBucket]
		if b == "" {
			b = bucket
		}
		uris := make([]string, 0, len(spec.Items))
		for _, k := range itemKeys(spec) {
			uris = append(uris, "s3://"+b+"/"+k)
		}
		j, _ := json.Marshal(uris)
		m[KeyItemsToRestore] = string(j)
	}
	return m
}

// checkSpec validates a spec built without metadata (typed front ends)
// with the metadata's rules, errors naming the metadata keys.
func checkSpec(spec *backup.RestoreSpec, bucket string) error {
	for k := range spec.Settings {
		switch k {
		case settingItemsBucket, KeyEncryptionType, KeyEncrypted:
		default:
			return backup.InvalidParam(k, "unknown restore setting %q for resource type S3", backup.Truncate(k, 80))
		}
	}
	for _, it := range spec.Items {
		if !strings.HasPrefix(it, "/") {
			return backup.InvalidParam(KeyItemsToRestore, "Metadata key %s: item %q must be \"/\" followed by an object key or key prefix", KeyItemsToRestore, trunc(it))
		}
	}
	for name, list := range map[string][]string{"Include": spec.Include, "Exclude": spec.Exclude} {
		if _, err := glob.CompileAll(list); err != nil {
			return backup.InvalidParam(name, "%s: %v", name, err)
		}
	}
	_, err := ParseMetadata(encode(spec, bucket))
	return err
}
