package backup

import (
	"encoding/json"
	"strings"
	"time"
)

// Plan is one version of a backup plan: when, into which vault and for how
// long resources are backed up. Selections (which resources) belong to the
// plan, not to a version.
type Plan struct {
	AccountID string
	Region    string
	ID        string // BackupPlanId, a UUID
	Arn       string
	VersionID string
	Name      string
	Rules     []Rule
	// AdvancedBackupSettings are per-resource-type backup options.
	AdvancedBackupSettings []AdvancedBackupSetting
	CreatorRequestID       string
	// VersionDate is when this version was created (AWS CreationDate).
	VersionDate time.Time
	// DeletionDate is set once the plan is deleted (every version shows it).
	DeletionDate      *time.Time
	LastExecutionDate *time.Time
}

// Rule is one scheduled task of a plan.
type Rule struct {
	ID                      string
	Name                    string
	TargetVaultName         string
	ScheduleExpression      string
	Timezone                string // IANA name
	StartWindowMinutes      int64
	CompletionWindowMinutes int64
	Lifecycle               Lifecycle
	RecoveryPointTags       map[string]string
	CopyActions             []CopyAction
	EnableContinuousBackup  bool
	// ScheduleSince is when the rule's schedule (expression and zone) took
	// effect: the version that introduced the rule or last changed its
	// schedule. The scheduler runs no occurrence before it.
	ScheduleSince time.Time
}

// CopyAction copies each recovery point a rule creates into another vault.
type CopyAction struct {
	DestinationVaultArn string
	Lifecycle           Lifecycle
	// KeepSourceExpiry: the copy expires with its source (AWS
	// Lifecycle.DeleteAfterDays = -1).
	KeepSourceExpiry bool
}

// AdvancedBackupSetting holds BackupOptions for one resource type.
type AdvancedBackupSetting struct {
	ResourceType  string
	BackupOptions map[string]string
}

// OptionsFor returns the plan's backup options for resource type typ (nil
// when none).
func (p *Plan) OptionsFor(typ string) map[string]string {
	for _, a := range p.AdvancedBackupSettings {
		if a.ResourceType == typ {
			return a.BackupOptions
		}
	}
	return nil
}

// Rule returns the plan's rule with id.
func (p *Plan) Rule(id string) (*Rule, bool) {
	for i := range p.Rules {
		if p.Rules[i].ID == id {
			return &p.Rules[i], true
		}
	}
	return nil, false
}

// PlanArn is a backup plan's ARN.
func PlanArn(region, account, id string) string {
	return "arn:aws:backup:" + region + ":" + account + ":backup-plan:" + id
}

// Selection assigns resources to a plan: the resources it names (ARNs
// with * and ? wildcards, "*" for every resource), minus NotResources,
// restricted by tag conditions.
type Selection struct {
	AccountID        string
	Region           string
	PlanID           string
	ID               string
	Name             string
	IamRoleArn       string
	Resources        []string
	NotResources     []string
	ListOfTags       []TagCondition // OR'ed
	Conditions       Conditions     // AND'ed
	CreatorRequestID string
	CreationDate     time.Time
}

// TagCondition is a ListOfTags entry (ConditionType STRINGEQUALS).
type TagCondition struct {
	Type  string
	Key   string
	Value string
}

// Conditions are a selection's AND'ed tag conditions.
type Conditions struct {
	StringEquals    []ConditionParameter
	StringNotEquals []ConditionParameter
	StringLike      []ConditionParameter
	StringNotLike   []ConditionParameter
}

// ConditionParameter is one condition: a key (aws:ResourceTag/<tag key>)
// and a value (StringLike: with * wildcards).
type ConditionParameter struct {
	Key   string
	Value string
}

// IsZero reports whether c has no condition.
func (c Conditions) IsZero() bool {
	return len(c.StringEquals)+len(c.StringNotEquals)+len(c.StringLike)+len(c.StringNotLike) == 0
}

// TagKeyPrefix prefixes a tag key in a selection condition key.
const TagKeyPrefix = "aws:ResourceTag/"

// ConditionTagKey returns the tag key a condition key names: the part
// after aws:ResourceTag/ (a bare key is taken as a tag key, as ListOfTags
// keys are).
func ConditionTagKey(key string) string {
	return strings.TrimPrefix(key, TagKeyPrefix)
}

// LikeMatch matches s against an AWS StringLike pattern: * is any run of
// characters, ? any single character; everything else is literal.
func LikeMatch(pattern, s string) bool {
	return wildcardMatch([]rune(pattern), []rune(s))
}

// wildcardMatch matches s against p (* any run, including none; ? one
// character), backtracking only to the last *: linear in practice, never
// exponential.
func wildcardMatch(p, s []rune) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] != '*' && p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			mark++
			pi, si = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// MatchesTags reports whether a resource with tags is selected by the
// selection's tag rules: at least one ListOfTags condition (when there are any) and every
// Conditions entry.
func (sel *Selection) MatchesTags(tags map[string]string) bool {
	if len(sel.ListOfTags) > 0 {
		matched := false
		for _, c := range sel.ListOfTags {
			if v, ok := tags[ConditionTagKey(c.Key)]; ok && v == c.Value {
				matched = true
				break
			}
		}
		if !matched {
			return false
		}
	}
	for _, c := range sel.Conditions.StringEquals {
		if v, ok := tags[ConditionTagKey(c.Key)]; !ok || v != c.Value {
			return false
		}
	}
	for _, c := range sel.Conditions.StringNotEquals {
		if v, ok := tags[ConditionTagKey(c.Key)]; ok && v == c.Value {
			return false
		}
	}
	for _, c := range sel.Conditions.StringLike {
		if v, ok := tags[ConditionTagKey(c.Key)]; !ok || !LikeMatch(c.Value, v) {
			return false
		}
	}
	for _, c := range sel.Conditions.StringNotLike {
		if v, ok := tags[ConditionTagKey(c.Key)]; ok && LikeMatch(c.Value, v) {
			return false
		}
	}
	return true
}

// ArnMatches reports whether pattern names arn: "*" names every resource;
// otherwise * in the pattern is any run of characters and ? any single
// character, as AWS documents for selections
// ("arn:aws:elasticfilesystem:*:*:file-system/*").
func ArnMatches(pattern, arn string) bool {
	if pattern == "*" {
		return true
	}
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == arn
	}
	return wildcardMatch([]rune(pattern), []rune(arn))
}

// NamesResourceType reports whether a selection's Resources pattern names
// a resource type: an ARN whose service part has no wildcard (an exact ARN
// or "arn:aws:elasticfilesystem:*:*:file-system/*"), not "*" or "arn:*".
// AWS includes such explicitly assigned types even when they are not opted
// in.
func NamesResourceType(pattern string) bool {
	parts := strings.SplitN(pattern, ":", 4)
	return len(parts) == 4 && parts[0] == "arn" && parts[2] != "" && !strings.ContainsAny(parts[1]+parts[2], "*?")
}

// RecoveryPointCreator identifies the plan and rule that created a backup
// job, copy job or recovery point (AWS RecoveryPointCreator); its JSON is
// kept with jobs and recovery points.
type RecoveryPointCreator struct {
	BackupPlanId       string `json:"BackupPlanId,omitempty"`
	BackupPlanArn      string `json:"BackupPlanArn,omitempty"`
	BackupPlanName     string `json:"BackupPlanName,omitempty"`
	BackupPlanVersion  string `json:"BackupPlanVersion,omitempty"`
	BackupRuleId       string `json:"BackupRuleId,omitempty"`
	BackupRuleName     string `json:"BackupRuleName,omitempty"`
	BackupRuleCron     string `json:"BackupRuleCron,omitempty"`
	BackupRuleTimezone string `json:"BackupRuleTimezone,omitempty"`
}

// JSON returns c encoded.
func (c RecoveryPointCreator) JSON() string {
	b, _ := json.Marshal(c) // strings only: cannot fail
	return string(b)
}

// ParseCreator decodes a RecoveryPointCreator ("" or invalid: false).
func ParseCreator(s string) (RecoveryPointCreator, bool) {
	var c RecoveryPointCreator
	if s == "" || json.Unmarshal([]byte(s), &c) != nil {
		return c, false
	}
	return c, true
}

// Legal hold statuses (AWS LegalHoldStatus).
const (
	LegalHoldActive   = "ACTIVE"
	LegalHoldCanceled = "CANCELED"
)

// LegalHold keeps the recovery points it was placed on from being deleted
// (by DeleteRecoveryPoint or their lifecycle) until it is cancelled.
type LegalHold struct {
	AccountID         string
	Region            string
	ID                string
	Arn               string
	Title             string
	Description       string
	Status            string
	CancelDescription string
	CreationDate      time.Time
	CancellationDate  *time.Time
	RetainRecordUntil *time.Time
	Selection         RecoveryPointSelection
	IdempotencyToken  string
}

// LegalHoldArn is a legal hold's ARN.
func LegalHoldArn(region, account, id string) string {
	return "arn:aws:backup:" + region + ":" + account + ":legal-hold:" + id
}

// RecoveryPointSelection says which recovery points a legal hold is placed
// on: every criterion that is set must match (an empty selection matches
// every recovery point).
type RecoveryPointSelection struct {
	VaultNames          []string
	ResourceIdentifiers []string // resource ARNs
	DateFrom            *time.Time
	DateTo              *time.Time
}

// Matches reports whether rp is selected.
func (s RecoveryPointSelection) Matches(rp *RecoveryPoint) bool {
	if len(s.VaultNames) > 0 && !contains(s.VaultNames, rp.VaultName) {
		return false
	}
	if len(s.ResourceIdentifiers) > 0 && !contains(s.ResourceIdentifiers, rp.ResourceArn) {
		return false
	}
	if s.DateFrom != nil && rp.CreationDate.Before(*s.DateFrom) {
		return false
	}
	if s.DateTo != nil && rp.CreationDate.After(*s.DateTo) {
		return false
	}
	return true
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// RegionSettings are an account's settings in one region (AWS
// DescribeRegionSettings).
type RegionSettings struct {
	// OptIn: resource types plans may back up (absent types: opted in).
	OptIn map[string]bool
	// Management: resource types whose backups AWS Backup fully manages.
	Management map[string]bool
}

// GlobalSettings are an account's global settings (AWS
// DescribeGlobalSettings).
type GlobalSettings struct {
	Values         map[string]string
	LastUpdateTime *time.Time
}
