package service

import (
	"context"
	"sort"
	"strings"

	"coffer/internal/backup"
	"coffer/internal/store"
)

// awsResourceTypes are the resource type names AWS Backup knows; region
// settings accept them (tools such as Terraform send all of them) besides
// the types this server can back up.
var awsResourceTypes = []string{"Aurora", "CloudFormation", "DocumentDB", "DSQL", "DynamoDB", "EBS", "EC2", "EFS", "EKS", "FSx", "Neptune",
	"RDS", "Redshift", "Redshift Serverless", "S3", "SAP HANA on Amazon EC2", "Storage Gateway", "Timestream", "VirtualMachine"}

// fullManagementTypes can be fully managed by AWS Backup
// (ResourceTypeManagementPreference).
var fullManagementTypes = []string{"DynamoDB", "EFS"}

// Global setting keys AWS Backup documents; their values are "true" or
// "false".
var globalSettingKeys = []string{"isCrossAccountBackupEnabled", "isDelegatedAdministratorEnabled", "isMpaEnabled"}

func (s *Service) knownType(typ string) bool {
	if _, ok := s.plugins.Lookup(typ); ok {
		return true
	}
	for _, t := range awsResourceTypes {
		if t == typ {
			return true
		}
	}
	return false
}

// DescribeRegionSettings returns the caller's region settings: every type
// this server backs up is opted in unless set otherwise.
func (s *Service) DescribeRegionSettings(ctx context.Context, c Caller) (*backup.RegionSettings, error) {
	var rs *backup.RegionSettings
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		rs, err = tx.GetRegionSettings(ctx, c.Scope())
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, t := range s.plugins.Types() {
		if _, ok := rs.OptIn[t]; !ok {
			rs.OptIn[t] = true
		}
	}
	for _, t := range fullManagementTypes {
		if _, ok := rs.Management[t]; !ok {
			rs.Management[t] = true
		}
	}
	return rs, nil
}

// UpdateRegionSettings merges opt-in and management preferences into the
// caller's region settings. Keys must be resource types (AWS names or this
// server's types).
func (s *Service) UpdateRegionSettings(ctx context.Context, c Caller, optIn, management map[string]bool) error {
	if optIn == nil && management == nil {
		return backup.MissingParam("ResourceTypeOptInPreference")
	}
	for t := range optIn {
		if !s.knownType(t) {
			return backup.InvalidParam("ResourceTypeOptInPreference", "Unsupported resource type %q; known types: %s", backup.Truncate(t, 60), strings.Join(s.typeNames(), ", "))
		}
	}
	for t := range management {
		ok := false
		for _, m := range fullManagementTypes {
			ok = ok || m == t
		}
		if !ok {
			return backup.InvalidParam("ResourceTypeManagementPreference", "Resource type %q cannot be fully managed; only %s can", backup.Truncate(t, 60), strings.Join(fullManagementTypes, " and "))
		}
	}
	return s.st.Write(ctx, func(tx store.Tx) error {
		rs, err := tx.GetRegionSettings(ctx, c.Scope())
		if err != nil {
			return err
		}
		for k, v := range optIn {
			rs.OptIn[k] = v
		}
		for k, v := range management {
			rs.Management[k] = v
		}
		return tx.PutRegionSettings(ctx, c.Scope(), rs)
	})
}

func (s *Service) typeNames() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range append(append([]string{}, awsResourceTypes...), s.plugins.Types()...) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// DescribeGlobalSettings returns the caller's global settings (each known
// key, "false" unless set).
func (s *Service) DescribeGlobalSettings(ctx context.Context, c Caller) (*backup.GlobalSettings, error) {
	var gs *backup.GlobalSettings
	err := s.st.Read(ctx, func(tx store.Tx) error {
		var err error
		gs, err = tx.GetGlobalSettings(ctx, c.AccountID)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range globalSettingKeys {
		if _, ok := gs.Values[k]; !ok {
			gs.Values[k] = "false"
		}
	}
	return gs, nil
}

// UpdateGlobalSettings records global settings. Only the organization's
// management account may change them (as AWS requires); keys must be the
// documented ones and values "true" or "false". Coffer records them: its
// cross-account copies are governed by vault access policies.
func (s *Service) UpdateGlobalSettings(ctx context.Context, c Caller, values map[string]string) error {
	if len(values) == 0 {
		return backup.MissingParam("GlobalSettings")
	}
	for k, v := range values {
		known := false
		for _, g := range globalSettingKeys {
			known = known || g == k
		}
		if !known {
			return backup.InvalidParam("GlobalSettings", "Unknown global setting %q; the settings are %s", backup.Truncate(k, 60), strings.Join(globalSettingKeys, ", "))
		}
		if v != "true" && v != "false" {
			return backup.InvalidParam("GlobalSettings", "Global setting %s must be \"true\" or \"false\", not %q", k, backup.Truncate(v, 60))
		}
	}
	if !c.Management {
		return &backup.Error{Code: backup.CodeInvalidRequest, Message: "Only the organization's management account can update global settings"}
	}
	return s.st.Write(ctx, func(tx store.Tx) error {
		gs, err := tx.GetGlobalSettings(ctx, c.AccountID)
		if err != nil {
			return err
		}
		for k, v := range values {
			gs.Values[k] = v
		}
		now := s.clk.Now()
		gs.LastUpdateTime = &now
		return tx.PutGlobalSettings(ctx, c.AccountID, gs)
	})
}
