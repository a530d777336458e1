package api

import (
	"context"
)

// DescribeRegionSettingsOutput is the output of DescribeRegionSettings.
type DescribeRegionSettingsOutput struct {
	ResourceTypeOptInPreference      map[string]bool
	ResourceTypeManagementPreference map[string]bool
}

func (s *Server) describeRegionSettings(ctx context.Context, id Identity, _ *struct{}) (*DescribeRegionSettingsOutput, error) {
	rs, err := s.svc.DescribeRegionSettings(ctx, id.caller())
	if err != nil {
		return nil, err
	}
	return &DescribeRegionSettingsOutput{ResourceTypeOptInPreference: rs.OptIn, ResourceTypeManagementPreference: rs.Management}, nil
}

// UpdateRegionSettingsInput is the validated input of UpdateRegionSettings.
type UpdateRegionSettingsInput struct {
	ResourceTypeOptInPreference      map[string]bool
	ResourceTypeManagementPreference map[string]bool
}

func (s *Server) updateRegionSettings(ctx context.Context, id Identity, in *UpdateRegionSettingsInput) (*struct{}, error) {
	return nil, s.svc.UpdateRegionSettings(ctx, id.caller(), in.ResourceTypeOptInPreference, in.ResourceTypeManagementPreference)
}

// DescribeGlobalSettingsOutput is the output of DescribeGlobalSettings.
type DescribeGlobalSettingsOutput struct {
	GlobalSettings map[string]string
	LastUpdateTime *Timestamp `json:",omitempty"`
}

func (s *Server) describeGlobalSettings(ctx context.Context, id Identity, _ *struct{}) (*DescribeGlobalSettingsOutput, error) {
	gs, err := s.svc.DescribeGlobalSettings(ctx, id.caller())
	if err != nil {
		return nil, err
	}
	return &DescribeGlobalSettingsOutput{GlobalSettings: gs.Values, LastUpdateTime: tsp(gs.LastUpdateTime)}, nil
}

// UpdateGlobalSettingsInput is the validated input of UpdateGlobalSettings.
type UpdateGlobalSettingsInput struct {
	GlobalSettings map[string]string
}

func (s *Server) updateGlobalSettings(ctx context.Context, id Identity, in *UpdateGlobalSettingsInput) (*struct{}, error) {
	return nil, s.svc.UpdateGlobalSettings(ctx, id.caller(), in.GlobalSettings)
}
