package pgdb

import (
	"regexp"
	"sort"
	"strconv"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/resource"
)

// Restore metadata keys (matched case-insensitively), as RDS restores
// spell them. TargetServer is a Coffer extension.
const (
	KeyDBInstanceIdentifier = "DBInstanceIdentifier"
	KeyEngine               = "Engine"
	KeyEngineVersion        = "EngineVersion"
	KeyPort                 = "Port"
	KeyMultiAZ              = "MultiAZ"
	KeyTargetServer         = "TargetServer"
	KeyRequestID            = "aws:backup:request-id"
)

// EnginePostgres is the only Engine value.
const EnginePostgres = "postgres"

// MaxMetadataBytes caps the whole metadata map, as AWS does (200 KB).
const MaxMetadataBytes = 200 << 10

// recordedKeys are RDS instance keys accepted and recorded with the job
// but without effect here (a database's class, placement, network and
// storage are its server's), each with the form its value must have.
var recordedKeys = map[string]*regexp.Regexp{
	"DBInstanceClass":                 regexp.MustCompile(`^db\.[a-z0-9-]+\.[a-z0-9-]+$`),
	"AvailabilityZone":                regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$`),
	"DBSubnetGroupName":               regexp.MustCompile(`^[A-Za-z0-9 ._-]{1,255}$`),
	"VpcSecurityGroupIds":             regexp.MustCompile(`^(\[\s*\]|\[\s*"sg-[0-9a-f]{8,17}"(\s*,\s*"sg-[0-9a-f]{8,17}")*\s*\]|sg-[0-9a-f]{8,17}(,\s*sg-[0-9a-f]{8,17})*)$`),
	"StorageType":                     regexp.MustCompile(`^(standard|gp2|gp3|io1|io2)$`),
	"Iops":                            regexp.MustCompile(`^[0-9]{1,9}$`),
	"StorageThroughput":               regexp.MustCompile(`^[0-9]{1,9}$`),
	"PubliclyAccessible":              boolRE,
	"AutoMinorVersionUpgrade":         boolRE,
	"CopyTagsToSnapshot":              boolRE,
	"DeletionProtection":              boolRE,
	"LicenseModel":                    regexp.MustCompile(`^postgresql-license$`),
	"OptionGroupName":                 regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,254}$`),
	"DBParameterGroupName":            regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.-]{0,254}$`),
	"EnableIAMDatabaseAuthentication": regexp.MustCompile(`^(?i:false)$`),
}

// unsupportedKeys are RDS keys with no meaning for a PostgreSQL database
// on a server, rejected with the reason.
var unsupportedKeys = map[string]string{
	"DBClusterIdentifier":         "Aurora clusters are not supported; restore a database with " + KeyDBInstanceIdentifier,
	"EngineMode":                  "Aurora engine modes are not supported",
	"AvailabilityZones":           "Aurora clusters are not supported",
	"BacktrackWindow":             "Aurora backtracking is not supported",
	"DBClusterParameterGroupName": "Aurora clusters are not supported",
	"DBName":                      "the restored database's name is its " + KeyDBInstanceIdentifier,
	"DatabaseName":                "the restored database's name is its " + KeyDBInstanceIdentifier,
	"KmsKeyId":                    "a restored database is encrypted as its server's storage is; Coffer does not set keys",
	"StorageEncrypted":            "a restored database is encrypted as its server's storage is; Coffer does not set keys",
}

var (
	boolRE          = regexp.MustCompile(`^(?i:true|false)$`)
	engineVersionRE = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3}){0,2}$`)
	serverIDRE      = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
)

// knownKeys lists every accepted key, sorted, for messages.
func knownKeys() []string {
	keys := []string{KeyDBInstanceIdentifier, KeyEngine, KeyEngineVersion, KeyPort, KeyMultiAZ, KeyTargetServer, KeyRequestID}
	for k := range recordedKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func canonicalKey(k string) string {
	for _, kk := range knownKeys() {
		if strings.EqualFold(k, kk) {
			return kk
		}
	}
	for kk := range unsupportedKeys {
		if strings.EqualFold(k, kk) {
			return kk
		}
	}
	return ""
}

func paramErr(key, format string, args ...any) *backup.Error {
	return resource.MetadataError(key, format, args...)
}

// Metadata is validated RDS restore metadata.
type Metadata struct {
	// Identifier is DBInstanceIdentifier in lower case (RDS identifiers
	// are case-insensitive): the new resource's id and database name.
	Identifier string
	// TargetServer is the server to create the database on ("" = the
	// source's server).
	TargetServer string
	// Port, when set, must be the target server's port.
	Port int
	// Settings are every recorded key (canonical spelling) and value.
	Settings map[string]string
}

// ParseMetadata validates RDS restore metadata; errors are *backup.Error
// InvalidParameter naming the key in the caller's spelling.
func ParseMetadata(m map[string]string) (*Metadata, error) {
	vals, name, err := resource.MetadataKeys(m, "RDS", knownKeys(), unsupportedKeys, MaxMetadataBytes)
	if err != nil {
		return nil, err
	}
	md := &Metadata{Settings: map[string]string{}}
	id, ok := vals[KeyDBInstanceIdentifier]
	if !ok {
		return nil, &backup.Error{Code: backup.CodeInvalidParameter, Context: KeyDBInstanceIdentifier,
			Message: "Metadata key " + KeyDBInstanceIdentifier + " is required for resource type RDS: the identifier of the new database"}
	}
	if !ValidIdentifier(id) {
		return nil, paramErr(name(KeyDBInstanceIdentifier), "must be 1 to 63 letters, digits or hyphens, start with a letter, and have no trailing or double hyphen, got %q", trunc(id))
	}
	md.Identifier = strings.ToLower(id)
	md.Settings[KeyEngine] = EnginePostgres
	for canon, v := range vals {
		switch canon {
		case KeyDBInstanceIdentifier, KeyRequestID:
		case KeyEngine:
			if v != EnginePostgres {
				return nil, paramErr(name(canon), "must be %q: Coffer restores PostgreSQL databases, got %q", EnginePostgres, trunc(v))
			}
		case KeyEngineVersion:
			if !engineVersionRE.MatchString(v) {
				return nil, paramErr(name(canon), "must be a PostgreSQL version such as \"15.4\", got %q", trunc(v))
			}
			md.Settings[canon] = v
		case KeyPort:
			p, err := strconv.Atoi(v)
			if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != v {
				return nil, paramErr(name(canon), "must be a port number between 1 and 65535, got %q", trunc(v))
			}
			md.Port = p
			md.Settings[canon] = v
		case KeyMultiAZ:
			if !boolRE.MatchString(v) {
				return nil, paramErr(name(canon), "must be \"true\" or \"false\", got %q", trunc(v))
			}
			if strings.EqualFold(v, "true") {
				return nil, paramErr(name(canon), "must be \"false\": a restored database lives on one server")
			}
			md.Settings[canon] = "false"
		case KeyTargetServer:
			if !serverIDRE.MatchString(v) {
				return nil, paramErr(name(canon), "must be the id of a configured database server, got %q", trunc(v))
			}
			md.TargetServer = v
			md.Settings[canon] = v
		default:
			re := recordedKeys[canon]
			if !re.MatchString(v) {
				if canon == "EnableIAMDatabaseAuthentication" {
					return nil, paramErr(name(canon), "must be \"false\": Coffer databases use their server's authentication")
				}
				return nil, paramErr(name(canon), "invalid value %q", trunc(v))
			}
			if boolRE.MatchString(v) {
				v = strings.ToLower(v)
			}
			md.Settings[canon] = v
		}
	}
	return md, nil
}

// Spec is the restore spec md describes.
func (md *Metadata) Spec() *backup.RestoreSpec {
	s := &backup.RestoreSpec{Target: backup.RestoreTarget{New: true, ID: md.Identifier}, Settings: map[string]string{}}
	for k, v := range md.Settings {
		s.Settings[k] = v
	}
	return s
}

// encode is the metadata of spec.
func encode(spec *backup.RestoreSpec) map[string]string {
	m := map[string]string{KeyDBInstanceIdentifier: spec.Target.ID}
	for k, v := range spec.Settings {
		m[k] = v
	}
	return m
}

// checkSpec validates a spec built without metadata (by another front
// end): the same rules, errors naming the metadata keys.
func checkSpec(spec *backup.RestoreSpec) (*Metadata, error) {
	if !spec.Target.New {
		return nil, backup.InvalidParam("Target", "resource type RDS restores into a new database only")
	}
	if len(spec.Items) > 0 || len(spec.Include) > 0 || len(spec.Exclude) > 0 || spec.Target.Path != "" || spec.ConflictPolicy != backup.ConflictDefault {
		return nil, backup.InvalidParam("Target", "resource type RDS restores whole databases: no items, patterns, path or conflict policy")
	}
	for k := range spec.Settings {
		if k == KeyDBInstanceIdentifier || canonicalKey(k) != k {
			return nil, backup.InvalidParam(sanitize(k), "unknown restore setting %q for resource type RDS", sanitize(k))
		}
	}
	return ParseMetadata(encode(spec))
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func sanitize(k string) string {
	k = strings.ToValidUTF8(k, "?")
	k = strings.ReplaceAll(k, "\x00", "?")
	return trunc(k)
}
