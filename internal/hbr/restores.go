package hbr

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// Label keys recorded with a restore job created over HBR.
const (
	labelRestoreType      = "hbr.RestoreType"
	labelSourceType       = "hbr.SourceType"
	labelCrossType        = "hbr.CrossAccountType"
	labelCrossUser        = "hbr.CrossAccountUserId"
	labelCrossRole        = "hbr.CrossAccountRoleName"
	labelTargetCreateTime = "hbr.TargetCreateTime"
	labelInclude          = "hbr.Include"
	labelExclude          = "hbr.Exclude"
	labelOptions          = "hbr.Options"
)

// Cross-account types.
const (
	selfAccount  = "SELF_ACCOUNT"
	crossAccount = "CROSS_ACCOUNT"
)

var createRestoreParams = []string{"RestoreType", "SourceType", "VaultId", "SnapshotId", "SnapshotHash", "Options", "Include", "Exclude",
	"TargetInstanceId", "TargetPath", "TargetBucket", "TargetPrefix", "TargetFileSystemId", "TargetCreateTime", "TargetInstanceName",
	"TargetTableName", "TargetTime", "OtsDetail", "UdmDetail", "UdmRegionId", "TargetContainer", "TargetContainerClusterId",
	"InitiatedByAck", "CrossAccountType", "CrossAccountUserId", "CrossAccountRoleName", "FailbackDetail", "Edition",
	"TargetClientId", "TargetDataSourceId"}

// createRestoreNames names the domain's parameters in HBR terms (the
// target's own parameter is added per restore type).
var createRestoreNames = wireNames{"ManifestID": "SnapshotHash", "RecoveryPointArn": "SnapshotId", "ResourceType": "SourceType",
	"VaultName": "VaultId", "SourceAccount": "CrossAccountUserId", "Include": "Include", "Exclude": "Exclude",
	"ConflictPolicy": "Options", "Items": "Include", "Metadata": "Options"}

// restoreOptions is the Options JSON of CreateRestoreJob.
type restoreOptions struct {
	Includes       []string `json:"includes"`
	Excludes       []string `json:"excludes"`
	ConflictPolicy string   `json:"conflictPolicy"`
}

// Conflict policies: HBR documents OVERWRITE_EXISTING; Coffer adds
// SKIP_EXISTING and OVERWRITE_IF_NEWER (the same values as its AWS-side
// ConflictPolicy extension).
var conflictPolicies = []string{string(backup.OverwriteExisting), string(backup.SkipExisting), string(backup.OverwriteIfNewer)}

var (
	snapshotHashRE = regexp.MustCompile(`^[0-9a-f]{16,128}$`)
	roleNameRE     = regexp.MustCompile(`^[A-Za-z0-9.@_-]{1,64}$`)
	bucketRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// notApplicable are CreateRestoreJob parameters of restore types Coffer
// does not serve: given with a supported type they are an error.
var notApplicable = []string{"TargetInstanceName", "TargetTableName", "TargetTime", "OtsDetail", "UdmDetail", "UdmRegionId",
	"TargetContainer", "TargetContainerClusterId", "InitiatedByAck", "FailbackDetail", "TargetClientId", "TargetDataSourceId"}

// targetParams are the target parameters of each supported restore type.
var targetParams = map[string][]string{
	typeECSFile: {"TargetInstanceId", "TargetPath"},
	typeNAS:     {"TargetFileSystemId", "TargetCreateTime", "TargetPath"},
	typeOSS:     {"TargetBucket", "TargetPrefix"},
}

// checkTargetPath validates a TargetPath: an absolute directory below the
// file system root. It returns the path without a trailing "/".
func checkTargetPath(v string) (string, *Error) {
	if strings.Contains(v, `\`) || (len(v) >= 2 && v[1] == ':') {
		return "", invalid("TargetPath", "%q is a Windows path; Coffer file systems use /-separated paths", trunc(v))
	}
	if !strings.HasPrefix(v, "/") {
		return "", invalid("TargetPath", "%q must be an absolute path inside the file system, e.g. /restore", trunc(v))
	}
	if len(v) > 1 {
		v = strings.TrimSuffix(v, "/")
	}
	if v == "/" {
		return "", invalid("TargetPath", "restoring over the file system root is not supported; name a directory below it, e.g. /restore")
	}
	if len(v) > 4096 {
		return "", invalid("TargetPath", "longer than 4096 bytes")
	}
	for _, seg := range strings.Split(v[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", invalid("TargetPath", "%q has an empty, \".\" or \"..\" segment", trunc(v))
		}
	}
	return v, nil
}

// createRestoreJob is CreateRestoreJob.
func (s *Server) createRestoreJob(ctx context.Context, req *request) (map[string]any, error) {
	p := req.p
	rt, e := p.required("RestoreType")
	if e != nil {
		return nil, e
	}
	if e := s.checkType("RestoreType", rt); e != nil {
		return nil, e
	}
	st, e := p.required("SourceType")
	if e != nil {
		return nil, e
	}
	if st != rt {
		known := false
		for _, k := range knownTypes {
			known = known || k == st
		}
		if !known {
			return nil, invalid("SourceType", "%q is not an HBR type", trunc(st))
		}
		return nil, invalid("SourceType", "%s does not correspond to RestoreType %s (they must be the same type)", st, rt)
	}
	if _, e := p.enum("Edition", "STANDARD", "BASIC"); e != nil {
		return nil, e
	}
	for _, n := range []string{"OtsDetail", "UdmDetail", "FailbackDetail"} {
		var obj map[string]any
		if _, e := p.jsonObject(n, &obj); e != nil {
			return nil, e
		}
	}
	for _, n := range notApplicable {
		if p.has(n) {
			return nil, invalid(n, "does not apply to RestoreType %s", rt)
		}
	}
	for t, names := range targetParams {
		if t == rt {
			continue
		}
		for _, n := range names {
			if n == "TargetPath" && rt != typeOSS {
				continue
			}
			if p.has(n) {
				return nil, invalid(n, "does not apply to RestoreType %s", rt)
			}
		}
	}

	// Source: the vault and snapshot, of the caller or (cross-account)
	// of CrossAccountUserId.
	ctype, e := p.enum("CrossAccountType", selfAccount, crossAccount)
	if e != nil {
		return nil, e
	}
	srcAccount, role := "", ""
	if ctype == crossAccount {
		uid, e := p.required("CrossAccountUserId")
		if e != nil {
			return nil, e
		}
		if !backup.ValidAccountID(uid) {
			return nil, invalid("CrossAccountUserId", "%q is not an account id of this server (12 digits)", trunc(uid))
		}
		if role, e = p.required("CrossAccountRoleName"); e != nil {
			return nil, e
		}
		if !roleNameRE.MatchString(role) {
			return nil, invalid("CrossAccountRoleName", "must be 1 to 64 letters, digits or . @ _ -")
		}
		srcAccount = uid
	} else {
		for _, n := range []string{"CrossAccountUserId", "CrossAccountRoleName"} {
			if p.has(n) {
				return nil, invalid(n, "applies only with CrossAccountType=%s", crossAccount)
			}
		}
	}
	vid, e := p.required("VaultId")
	if e != nil {
		return nil, e
	}
	vaultName, ok := ParseVaultID(vid)
	if !ok || !backup.ValidVaultName(vaultName) {
		return nil, invalid("VaultId", "%q is not a vault id (v-…)", trunc(vid))
	}
	sid, e := p.required("SnapshotId")
	if e != nil {
		return nil, e
	}
	rpID, ok := ParseSnapshotID(sid)
	if !ok || rpID == "" || strings.ContainsAny(rpID, ":/") {
		return nil, invalid("SnapshotId", "%q is not a snapshot id (s-…)", trunc(sid))
	}
	hash, e := p.required("SnapshotHash")
	if e != nil {
		return nil, e
	}
	if !snapshotHashRE.MatchString(hash) {
		return nil, invalid("SnapshotHash", "must be the lower-case hex hash SearchHistoricalSnapshots returns")
	}

	// Patterns and options.
	include, e := p.stringList("Include", maxPatternLen)
	if e != nil {
		return nil, e
	}
	exclude, e := p.stringList("Exclude", maxPatternLen)
	if e != nil {
		return nil, e
	}
	var opts restoreOptions
	if _, e := p.jsonObject("Options", &opts); e != nil {
		return nil, e
	}
	for _, l := range []struct {
		name string
		list []string
	}{{"Options", opts.Includes}, {"Options", opts.Excludes}} {
		if l.list != nil {
			raw, _ := json.Marshal(l.list)
			if _, e := decodeStringList(l.name, string(raw), maxPatternLen); e != nil {
				return nil, e
			}
		}
	}
	policy := backup.OverwriteExisting
	if opts.ConflictPolicy != "" {
		ok := false
		for _, cp := range conflictPolicies {
			ok = ok || cp == opts.ConflictPolicy
		}
		if !ok {
			return nil, invalid("Options", "conflictPolicy %q is not one of %s", trunc(opts.ConflictPolicy), strings.Join(conflictPolicies, ", "))
		}
		policy = backup.ConflictPolicy(opts.ConflictPolicy)
	}
	spec := &backup.RestoreSpec{Include: union(include, opts.Includes), Exclude: union(exclude, opts.Excludes), ConflictPolicy: policy}

	// Target.
	labels := map[string]string{labelRestoreType: rt, labelSourceType: st}
	names := wireNames{}
	for k, v := range createRestoreNames {
		names[k] = v
	}
	switch rt {
	case typeECSFile, typeNAS:
		idParam := "TargetInstanceId"
		if rt == typeNAS {
			idParam = "TargetFileSystemId"
		}
		fsID, e := p.required(idParam)
		if e != nil {
			return nil, e
		}
		if len(fsID) > 128 {
			return nil, invalid(idParam, "longer than 128 characters")
		}
		rawPath, e := p.required("TargetPath")
		if e != nil {
			return nil, e
		}
		path, e := checkTargetPath(rawPath)
		if e != nil {
			return nil, e
		}
		if v, ok := p.m["TargetCreateTime"]; ok {
			ct, e := p.integer("TargetCreateTime", 0, 1<<53, 0)
			if e != nil {
				return nil, e
			}
			r, err := s.svc.Resource(ctx, req.caller, "EFS", fsID)
			if backup.IsCode(err, backup.CodeNotFound) {
				return nil, errf(http.StatusNotFound, codeResourceNotFound, "The file system %s does not exist.", trunc(fsID))
			}
			if err != nil {
				return nil, err
			}
			if r.CreationDate.Unix() != ct {
				return nil, invalid("TargetCreateTime", "%d is not the creation time of file system %s (%d)", ct, fsID, r.CreationDate.Unix())
			}
			labels[labelTargetCreateTime] = v
		}
		spec.Target = backup.RestoreTarget{ID: fsID, Path: path}
		for _, k := range []string{"Target", "file-system-id", "newFileSystem"} {
			names[k] = idParam
		}
		names["TargetPath"] = "TargetPath"
	case typeOSS:
		bucket, e := p.required("TargetBucket")
		if e != nil {
			return nil, e
		}
		if !bucketRE.MatchString(bucket) {
			return nil, invalid("TargetBucket", "%q is not a bucket name", trunc(bucket))
		}
		prefix := p.get("TargetPrefix")
		if len(prefix) > 1024 || strings.HasPrefix(prefix, "/") {
			return nil, invalid("TargetPrefix", "must be a key prefix of at most 1024 bytes without a leading /")
		}
		spec.Target = backup.RestoreTarget{ID: bucket, Path: prefix}
		for _, k := range []string{"Target", "DestinationBucketName", "NewBucket"} {
			names[k] = "TargetBucket"
		}
		names["TargetPath"] = "TargetPrefix"
	}
	if ctype != "" {
		labels[labelCrossType] = ctype
	}
	if srcAccount != "" {
		labels[labelCrossUser], labels[labelCrossRole] = srcAccount, role
	}
	for n, l := range map[string]string{"Include": labelInclude, "Exclude": labelExclude, "Options": labelOptions} {
		if v, ok := p.m[n]; ok {
			labels[l] = v
		}
	}

	// Same account: tell a missing vault apart (VaultNotExist).
	if srcAccount == "" || srcAccount == req.caller.AccountID {
		if _, err := s.svc.DescribeVault(ctx, req.caller, vaultName); backup.IsCode(err, backup.CodeNotFound) {
			return nil, vaultNotExist(vid)
		} else if err != nil {
			return nil, err
		}
	}
	acct := req.caller.AccountID
	if srcAccount != "" {
		acct = srcAccount
	}
	rpArn := backup.RecoveryPointArn(req.caller.Region, acct, rpID)
	job, err := s.svc.StartRestore(ctx, req.caller, service.StartRestoreRequest{RecoveryPointArn: rpArn, ResourceType: resourceTypeOf(st),
		Spec: spec, SourceAccount: srcAccount, VaultName: vaultName, ManifestID: hash, Labels: labels})
	if err != nil {
		var be *backup.Error
		switch {
		case errors.As(err, &be) && be.Code == backup.CodeNotFound && be.Context == rpArn:
			return nil, errNoSnapshot(sid)
		case errors.As(err, &be) && be.Code == backup.CodeInvalidParameter && be.Context == "ResourceType":
			return nil, invalid("SourceType", "snapshot %s is not a %s snapshot", trunc(sid), st)
		case errors.As(err, &be) && be.Code == backup.CodeInvalidRequest && be.Context == rpArn:
			return nil, errf(http.StatusBadRequest, codeBadRequest, "The snapshot %s cannot be restored: %s", trunc(sid), strings.ReplaceAll(be.Message, rpArn, sid))
		}
		we, _ := toError(err, names)
		if we.Code == codeInternalError {
			return nil, err
		}
		return nil, we
	}
	return map[string]any{"RestoreId": RestoreID(job.ID)}, nil
}

// union is a followed by the entries of b it lacks; nil when both are.
func union(a, b []string) []string {
	if a == nil && b == nil {
		return nil
	}
	out := append([]string{}, a...)
	have := map[string]bool{}
	for _, s := range a {
		have[s] = true
	}
	for _, s := range b {
		if !have[s] {
			out = append(out, s)
			have[s] = true
		}
	}
	return out
}

// jobStatus maps a restore job's state to HBR's status.
func jobStatus(j *backup.Job, rep service.RestoreReport) string {
	switch j.State {
	case backup.JobCreated:
		return "CREATED"
	case backup.JobPending:
		return "QUEUED"
	case backup.JobRunning:
		return "RUNNING"
	case backup.JobAborting:
		return "CANCELING"
	case backup.JobAborted:
		return "CANCELED"
	case backup.JobCompleted:
		if j.MessageCategory == backup.CategoryCompletedWithIssues || rep.Failed > 0 {
			return "PARTIAL_COMPLETE"
		}
		return "COMPLETE"
	case backup.JobPartial:
		return "PARTIAL_COMPLETE"
	case backup.JobFailed:
		return "FAILED"
	case backup.JobExpired:
		return "EXPIRED"
	}
	return "UNKNOWN"
}

var jobStatuses = []string{"CREATED", "QUEUED", "RUNNING", "CANCELING", "CANCELED", "COMPLETE", "PARTIAL_COMPLETE", "FAILED", "EXPIRED", "UNKNOWN"}

// restoreJobView is a restore job as an HBR RestoreJob, with its restore
// type ("" for a resource type HBR cannot show).
func (s *Server) restoreJobView(ctx context.Context, j *backup.Job, now time.Time) (map[string]any, string, error) {
	d, err := s.svc.RestoreJobDetail(ctx, j)
	if err != nil {
		return nil, "", err
	}
	rt := d.Labels[labelRestoreType]
	if rt == "" {
		switch j.ResourceType {
		case "EFS":
			rt = typeECSFile
		case "S3":
			rt = typeOSS
		default:
			return nil, "", nil
		}
	}
	st := d.Labels[labelSourceType]
	if st == "" {
		st = rt
	}
	_, _, rpID, _ := backup.ParseRecoveryPointArn(j.RecoveryPointArn)
	status := jobStatus(j, d.Report)
	progress := int64(j.ProgressPercent * 100)
	if j.State == backup.JobCompleted || j.State == backup.JobPartial {
		progress = 10000
	}
	start := j.CreationDate
	if j.InitiationDate != nil {
		start = *j.InitiationDate
	}
	updated := j.CreationDate
	for _, t := range []*time.Time{j.InitiationDate, j.Heartbeat, j.CompletionDate} {
		if t != nil && t.After(updated) {
			updated = *t
		}
	}
	end := now
	if j.CompletionDate != nil {
		end = *j.CompletionDate
	}
	speed := int64(0)
	if j.InitiationDate != nil {
		if secs := end.Sub(*j.InitiationDate).Seconds(); secs > 0 {
			speed = int64(float64(j.BytesTransferred) / 1024 / secs)
		}
	}
	errMsg := ""
	if j.State == backup.JobFailed || j.State == backup.JobExpired || j.State == backup.JobAborted {
		errMsg = j.StatusMessage
	}
	m := map[string]any{
		"RestoreId": RestoreID(j.ID), "RestoreType": rt, "SourceType": st, "VaultId": VaultID(j.VaultName),
		"SnapshotId": SnapshotID(rpID), "SnapshotHash": d.ManifestID, "Status": status, "Progress": progress,
		"BytesTotal": j.BackupSizeBytes, "BytesDone": j.BytesTransferred, "ActualBytes": j.BytesTransferred,
		"Speed": speed, "CreatedTime": j.CreationDate.Unix(), "StartTime": start.Unix(), "UpdatedTime": updated.Unix(),
		"CompleteTime": unixOr0(j.CompletionDate), "ErrorMessage": errMsg,
		"CrossAccountType": selfAccount, "CrossAccountRoleName": "", "CrossAccountUserId": int64(0),
	}
	if v := d.Labels[labelCrossType]; v != "" {
		m["CrossAccountType"] = v
	}
	if v := d.Labels[labelCrossUser]; v != "" {
		n, _ := strconv.ParseInt(v, 10, 64)
		m["CrossAccountUserId"], m["CrossAccountRoleName"] = n, d.Labels[labelCrossRole]
	}
	if d.Report.Known {
		m["ItemsDone"], m["ActualItems"] = d.Report.Items, d.Report.Items
		m["ItemsTotal"] = d.Report.Items + d.Report.Skipped + d.Report.Failed
	}
	reportStatus := "RUNNING"
	if j.State.Terminal() {
		reportStatus = "COMPLETE"
	}
	m["Report"] = map[string]any{"TotalFiles": d.Report.Items + d.Report.Skipped + d.Report.Failed, "SuccessFiles": d.Report.Items,
		"FailedFiles": d.Report.Failed, "SkippedFiles": d.Report.Skipped, "ReportTaskStatus": reportStatus}
	if spec := d.Spec; spec != nil {
		target := spec.Target.ID
		if spec.Target.New || target == "" {
			if _, id, ok := s.svc.ResourceRef(j.CreatedResourceArn); ok {
				target = id
			}
		}
		switch rt {
		case typeECSFile:
			m["TargetInstanceId"], m["TargetPath"] = target, spec.Target.Path
		case typeNAS:
			m["TargetFileSystemId"], m["TargetPath"] = target, spec.Target.Path
			if v := d.Labels[labelTargetCreateTime]; v != "" {
				n, _ := strconv.ParseInt(v, 10, 64)
				m["TargetCreateTime"] = n
			}
		case typeOSS:
			m["TargetBucket"], m["TargetPrefix"] = target, spec.Target.Path
		}
		jsonList := func(l []string) string {
			if l == nil {
				l = []string{}
			}
			b, _ := json.Marshal(l)
			return string(b)
		}
		m["Include"], m["Exclude"] = jsonList(spec.Include), jsonList(spec.Exclude)
		ob, _ := json.Marshal(map[string]any{"includes": nonNil(spec.Include), "excludes": nonNil(spec.Exclude), "conflictPolicy": string(spec.ConflictPolicy)})
		m["Options"] = string(ob)
	}
	for l, n := range map[string]string{labelInclude: "Include", labelExclude: "Exclude", labelOptions: "Options"} {
		if v, ok := d.Labels[l]; ok {
			m[n] = v
		}
	}
	return m, rt, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// filterKeys are DescribeRestoreJobs2's filter keys; time keys compare
// numerically.
var filterKeys = map[string]bool{"RegionId": false, "PlanId": false, "JobId": false, "VaultId": false, "InstanceId": false,
	"Bucket": false, "FileSystemId": false, "Status": false, "CompleteTime": true}

var filterOps = map[string]bool{"EQUAL": true, "NOT_EQUAL": true, "GREATER_THAN": true, "GREATER_THAN_OR_EQUAL": true,
	"LESS_THAN": true, "LESS_THAN_OR_EQUAL": true, "BETWEEN": true, "IN": true}

// checkFilters validates the filters' keys, operators and values.
func checkFilters(fs []filter) ([][]int64, *Error) {
	nums := make([][]int64, len(fs))
	for i, f := range fs {
		pre := "Filters." + strconv.Itoa(i+1)
		isTime, ok := filterKeys[f.Key]
		if !ok {
			return nil, invalid(pre+".Key", "%q is not a filter key", trunc(f.Key))
		}
		if !filterOps[f.Operator] {
			return nil, invalid(pre+".Operator", "%q is not an operator", trunc(f.Operator))
		}
		switch {
		case isTime && f.Operator == "IN":
			return nil, invalid(pre+".Operator", "IN is not allowed with %s", f.Key)
		case !isTime && f.Operator != "EQUAL" && f.Operator != "NOT_EQUAL" && f.Operator != "IN":
			return nil, invalid(pre+".Operator", "%s compares times; %s takes EQUAL, NOT_EQUAL or IN", f.Operator, f.Key)
		case f.Operator == "BETWEEN" && len(f.Values) != 2:
			return nil, invalid(pre+".Values", "BETWEEN takes two values, min and max")
		case isTime && f.Operator != "BETWEEN" && f.Operator != "EQUAL" && f.Operator != "NOT_EQUAL" && len(f.Values) != 1:
			return nil, invalid(pre+".Values", "%s takes one value", f.Operator)
		}
		for j, v := range f.Values {
			if isTime {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return nil, invalid(pre+".Values."+strconv.Itoa(j+1), "%q is not UNIX seconds", trunc(v))
				}
				nums[i] = append(nums[i], n)
			}
			if f.Key == "Status" {
				ok := false
				for _, s := range jobStatuses {
					ok = ok || s == v
				}
				if !ok {
					return nil, invalid(pre+".Values."+strconv.Itoa(j+1), "%q is not a status (%s)", trunc(v), strings.Join(jobStatuses, ", "))
				}
			}
		}
	}
	return nums, nil
}

// filterMatch applies one filter to a job view.
func (s *Server) filterMatch(f filter, nums []int64, v map[string]any) bool {
	if nums != nil {
		t, _ := v["CompleteTime"].(int64)
		switch f.Operator {
		case "EQUAL", "NOT_EQUAL":
			in := false
			for _, n := range nums {
				in = in || n == t
			}
			return in == (f.Operator == "EQUAL")
		case "GREATER_THAN":
			return t > nums[0]
		case "GREATER_THAN_OR_EQUAL":
			return t >= nums[0]
		case "LESS_THAN":
			return t < nums[0]
		case "LESS_THAN_OR_EQUAL":
			return t <= nums[0]
		case "BETWEEN":
			return t >= nums[0] && t <= nums[1]
		}
		return false
	}
	var have []string
	str := func(k string) string { x, _ := v[k].(string); return x }
	switch f.Key {
	case "RegionId":
		have = []string{s.cfg.RegionID}
	case "PlanId":
		have = []string{""}
	case "JobId":
		have = []string{str("RestoreId")}
	case "VaultId", "Status":
		have = []string{str(f.Key)}
	case "InstanceId":
		have = []string{str("TargetInstanceId"), str("sourceId")}
	case "FileSystemId":
		have = []string{str("TargetFileSystemId"), str("sourceId")}
	case "Bucket":
		have = []string{str("TargetBucket"), str("sourceId")}
	}
	in := false
	for _, want := range f.Values {
		for _, h := range have {
			in = in || (h != "" && h == want) || (f.Key == "PlanId" && want == "")
		}
	}
	return in == (f.Operator != "NOT_EQUAL")
}

// describeRestoreJobs2 is DescribeRestoreJobs2: the caller's restore jobs
// of RestoreType (newest first), filtered and paged.
func (s *Server) describeRestoreJobs2(ctx context.Context, req *request) (map[string]any, error) {
	p := req.p
	rt, e := p.required("RestoreType")
	if e != nil {
		return nil, e
	}
	known := false
	for _, k := range knownTypes {
		known = known || k == rt
	}
	if !known {
		return nil, invalid("RestoreType", "%q is not an HBR type", trunc(rt))
	}
	if _, e := p.enum("Edition", "STANDARD", "BASIC"); e != nil {
		return nil, e
	}
	pageNo, e := p.integer("PageNumber", 1, 1<<31-1, 1)
	if e != nil {
		return nil, e
	}
	pageSize, e := p.integer("PageSize", 1, maxPageSize, 10)
	if e != nil {
		return nil, e
	}
	fs, e := p.filters()
	if e != nil {
		return nil, e
	}
	nums, e := checkFilters(fs)
	if e != nil {
		return nil, e
	}
	list := []map[string]any{}
	now := s.clk.Now()
	after := ""
	for {
		js, next, err := s.svc.ListJobs(ctx, req.caller, nil, service.JobFilter{Kind: backup.JobRestore}, service.Page{Limit: 1000, After: after})
		if err != nil {
			return nil, err
		}
		for _, j := range js {
			v, jrt, err := s.restoreJobView(ctx, j, now)
			if err != nil {
				return nil, err
			}
			if jrt != rt {
				continue
			}
			if _, id, ok := s.svc.ResourceRef(j.ResourceArn); ok {
				v["sourceId"] = id
			}
			keep := true
			for i, f := range fs {
				if !s.filterMatch(f, nums[i], v) {
					keep = false
					break
				}
			}
			delete(v, "sourceId")
			if keep {
				list = append(list, v)
			}
		}
		if next == "" {
			break
		}
		after = next
	}
	total := int64(len(list))
	page := []map[string]any{}
	if from := (pageNo - 1) * pageSize; from < total {
		page = list[from:min(from+pageSize, total)]
	}
	return map[string]any{"PageNumber": pageNo, "PageSize": pageSize, "TotalCount": total, "RestoreJobs": map[string]any{"RestoreJob": page}}, nil
}

// cancelRestoreJob is CancelRestoreJob.
func (s *Server) cancelRestoreJob(ctx context.Context, req *request) (map[string]any, error) {
	p := req.p
	rid, e := p.required("RestoreId")
	if e != nil {
		return nil, e
	}
	if _, e := p.enum("Edition", "STANDARD", "BASIC"); e != nil {
		return nil, e
	}
	jobID, ok := ParseRestoreID(rid)
	if !ok {
		return nil, invalid("RestoreId", "%q is not a restore id (r-…)", trunc(rid))
	}
	notFound := errf(http.StatusNotFound, codeResourceNotFound, "The restore job %s does not exist.", trunc(rid))
	j, err := s.svc.DescribeJob(ctx, req.caller, backup.JobRestore, jobID)
	if backup.IsCode(err, backup.CodeNotFound) || (err == nil && j.AccountID != req.caller.AccountID) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if vid, ok := p.m["VaultId"]; ok && vid != VaultID(j.VaultName) {
		return nil, invalid("VaultId", "%q is not the vault of restore job %s", trunc(vid), rid)
	}
	if err := s.svc.CancelRestore(ctx, req.caller, jobID); err != nil {
		if backup.IsCode(err, backup.CodeNotFound) {
			return nil, notFound
		}
		var be *backup.Error
		if errors.As(err, &be) && be.Code == backup.CodeInvalidRequest {
			return nil, errf(http.StatusBadRequest, codeBadRequest, "The restore job %s has already ended (%s) and cannot be cancelled.", rid,
				jobStatus(j, service.RestoreReport{}))
		}
		return nil, err
	}
	return nil, nil
}
