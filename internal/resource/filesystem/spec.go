package filesystem

import (
	"encoding/json"
	"strconv"

	"coffer/internal/backup"
)

// Settings keys of a file system's restore spec (recorded, AWS spelling).
const (
	settingSourceID = KeyFileSystemID // the source file system of a newFileSystem=true restore
)

// Spec is the restore spec md describes.
func (md *Metadata) Spec() *backup.RestoreSpec {
	s := &backup.RestoreSpec{
		Target:         backup.RestoreTarget{New: md.NewFileSystem, CreationToken: md.CreationToken, Path: md.TargetPath},
		Items:          md.Items,
		Include:        md.Include,
		Exclude:        md.Exclude,
		ConflictPolicy: md.ConflictPolicy,
		Settings:       map[string]string{},
	}
	if md.NewFileSystem {
		s.Settings[settingSourceID] = md.FileSystemID
		perf := md.PerformanceMode
		if perf == "" {
			perf = PerformanceGeneralPurpose
		}
		s.Settings[KeyPerformanceMode] = perf
		s.Settings[KeyEncrypted] = strconv.FormatBool(md.Encrypted)
	} else {
		s.Target.ID = md.FileSystemID
		if md.PerformanceMode != "" {
			s.Settings[KeyPerformanceMode] = md.PerformanceMode
		}
	}
	if md.KmsKeyID != "" {
		s.Settings[KeyKmsKeyID] = md.KmsKeyID
	}
	return s
}

// encode is the EFS restore metadata of spec; sourceID is the recovery
// point's file system (file-system-id of a new file system when the spec
// does not record one).
func encode(spec *backup.RestoreSpec, sourceID string) map[string]string {
	m := map[string]string{KeyNewFileSystem: strconv.FormatBool(spec.Target.New)}
	if spec.Target.New {
		id := spec.Settings[settingSourceID]
		if id == "" {
			id = sourceID
		}
		m[KeyFileSystemID] = id
	} else {
		m[KeyFileSystemID] = spec.Target.ID
	}
	for _, k := range []string{KeyPerformanceMode, KeyEncrypted, KeyKmsKeyID} {
		if v, ok := spec.Settings[k]; ok {
			m[k] = v
		}
	}
	if spec.Target.CreationToken != "" {
		m[KeyCreationToken] = spec.Target.CreationToken
	}
	if spec.Target.Path != "" {
		m[KeyTargetPath] = spec.Target.Path
	}
	if spec.ConflictPolicy != backup.ConflictDefault {
		m[KeyConflictPolicy] = string(spec.ConflictPolicy)
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{KeyItemsToRestore, spec.Items}, {KeyInclude, spec.Include}, {KeyExclude, spec.Exclude}} {
		if l.list != nil {
			b, _ := json.Marshal(l.list)
			m[l.key] = string(b)
		}
	}
	return m
}

// checkSpec validates a spec built by a front end without metadata (the
// same rules as the metadata, errors naming the metadata keys).
func checkSpec(spec *backup.RestoreSpec, sourceID string) error {
	for k := range spec.Settings {
		switch k {
		case settingSourceID, KeyPerformanceMode, KeyEncrypted, KeyKmsKeyID:
		default:
			return backup.InvalidParam(k, "unknown restore setting %q for resource type EFS", backup.Truncate(k, 80))
		}
	}
	_, err := ParseMetadata(encode(spec, sourceID))
	return err
}
