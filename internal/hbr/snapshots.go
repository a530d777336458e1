package hbr

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// Source and restore types.
const (
	typeECSFile = "ECS_FILE"
	typeNAS     = "NAS"
	typeOSS     = "OSS"
)

// knownTypes are every HBR source/restore type; only file systems
// (ECS_FILE, NAS) and buckets (OSS) are supported.
var knownTypes = []string{typeECSFile, typeOSS, typeNAS, "COMMON_FILE_SYSTEM", "OTS_TABLE", "UDM_ECS", "UDM_ECS_DISK",
	"UDM_ECS_DISK_ROLLBACK", "UDM_ECS_ROLLBACK", "CONTAINER", "SYNC", "FAILBACK", "UDM_DISK", "CSG", "ECS_SNAPSHOT"}

// resourceTypeOf is the Coffer resource type behind a supported HBR type.
func resourceTypeOf(t string) string {
	switch t {
	case typeECSFile, typeNAS:
		return "EFS"
	case typeOSS:
		return "S3"
	}
	return ""
}

// checkType validates a SourceType/RestoreType value: known, supported,
// and (OSS) backed by a registered S3 resource type.
func (s *Server) checkType(name, v string) *Error {
	known := false
	for _, k := range knownTypes {
		known = known || k == v
	}
	if !known {
		return invalid(name, "%q is not an HBR type (%s, %s or %s are supported)", trunc(v), typeECSFile, typeNAS, typeOSS)
	}
	rt := resourceTypeOf(v)
	if rt == "" {
		return invalid(name, "%s is not supported by this server; it restores %s and %s (file systems) and %s (buckets)", v, typeECSFile, typeNAS, typeOSS)
	}
	for _, t := range s.svc.ResourceTypes() {
		if t == rt {
			return nil
		}
	}
	return invalid(name, "this server has no %s (%s) resources configured", v, map[string]string{"S3": "S3 bucket", "EFS": "file system"}[rt])
}

// snapshotStatus maps a recovery point status to HBR's.
func snapshotStatus(st backup.RecoveryPointStatus) string {
	switch st {
	case backup.RecoveryPointCompleted, backup.RecoveryPointAvailable:
		return "COMPLETE"
	case backup.RecoveryPointPartial:
		return "PARTIAL_COMPLETE"
	case backup.RecoveryPointCreating:
		return "RUNNING"
	case backup.RecoveryPointStopped:
		return "CANCELED"
	case backup.RecoveryPointExpired:
		return "EXPIRED"
	case backup.RecoveryPointDeleting:
		return "DELETING"
	}
	return "UNKNOWN"
}

// term is one condition of SearchHistoricalSnapshots' Query.
type term struct {
	Field     string          `json:"field"`
	Value     json.RawMessage `json:"value"`
	Operation string          `json:"operation"`
	// decoded
	strs []string
	nums []int64
}

// query fields by kind: identifiers compare as strings, times as UNIX
// seconds.
var (
	stringFields = map[string]string{"VaultId": "", "SnapshotId": "", "Status": "", "JobId": "",
		"InstanceId": typeECSFile, "FileSystemId": typeNAS, "Bucket": typeOSS}
	timeFields = map[string]string{"CreatedTime": "", "CompleteTime": "", "CreateTime": typeNAS}
)

// parseQuery decodes and validates the Query parameter for source type st.
func parseQuery(raw, st string) ([]term, *Error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	var terms []term
	if err := dec.Decode(&terms); err != nil || dec.More() {
		return nil, invalid("Query", "must be a JSON array of {\"field\",\"value\",\"operation\"} objects")
	}
	if len(terms) > maxQueryTerms {
		return nil, invalid("Query", "has %d conditions, more than %d", len(terms), maxQueryTerms)
	}
	for i := range terms {
		t := &terms[i]
		onlyFor, isStr := stringFields[t.Field]
		tOnly, isTime := timeFields[t.Field]
		switch {
		case isStr && onlyFor != "" && onlyFor != st, isTime && tOnly != "" && tOnly != st:
			return nil, invalid("Query", "field %s does not apply to SourceType %s", t.Field, st)
		case !isStr && !isTime:
			return nil, invalid("Query", "unknown field %q", trunc(t.Field))
		}
		if t.Operation == "" {
			t.Operation = "MATCH_TERM"
		}
		var vals []json.RawMessage
		switch t.Operation {
		case "IN", "NOT_IN", "BETWEEN":
			if json.Unmarshal(t.Value, &vals) != nil || len(vals) == 0 || len(vals) > maxFilterVals {
				return nil, invalid("Query", "%s of field %s takes a JSON array of 1 to %d values", t.Operation, t.Field, maxFilterVals)
			}
			if t.Operation == "BETWEEN" && len(vals) != 2 {
				return nil, invalid("Query", "BETWEEN of field %s takes [min, max]", t.Field)
			}
		case "MATCH_TERM":
			vals = []json.RawMessage{t.Value}
		case "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN", "LESS_THAN_OR_EQUAL":
			if !isTime {
				return nil, invalid("Query", "%s applies to time fields only, not %s", t.Operation, t.Field)
			}
			vals = []json.RawMessage{t.Value}
		default:
			return nil, invalid("Query", "unknown operation %q", trunc(t.Operation))
		}
		if t.Operation == "BETWEEN" && !isTime {
			return nil, invalid("Query", "BETWEEN applies to time fields only, not %s", t.Field)
		}
		for _, v := range vals {
			if isTime {
				n, ok := jsonInt(v)
				if !ok {
					return nil, invalid("Query", "field %s takes UNIX seconds", t.Field)
				}
				t.nums = append(t.nums, n)
				continue
			}
			var sv string
			if json.Unmarshal(v, &sv) != nil {
				return nil, invalid("Query", "field %s takes strings", t.Field)
			}
			t.strs = append(t.strs, sv)
		}
	}
	return terms, nil
}

// jsonInt reads an integer given as a JSON number or a decimal string.
func jsonInt(v json.RawMessage) (int64, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var n json.Number
	if dec.Decode(&n) != nil {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

func (t term) matches(strVal string, numVal int64, isTime bool) bool {
	if isTime {
		switch t.Operation {
		case "MATCH_TERM":
			return numVal == t.nums[0]
		case "GREATER_THAN":
			return numVal > t.nums[0]
		case "GREATER_THAN_OR_EQUAL":
			return numVal >= t.nums[0]
		case "LESS_THAN":
			return numVal < t.nums[0]
		case "LESS_THAN_OR_EQUAL":
			return numVal <= t.nums[0]
		case "BETWEEN":
			return numVal >= t.nums[0] && numVal <= t.nums[1]
		}
		in := false
		for _, n := range t.nums {
			in = in || n == numVal
		}
		return in == (t.Operation == "IN")
	}
	in := false
	for _, s := range t.strs {
		in = in || s == strVal
	}
	return in == (t.Operation != "NOT_IN")
}

func unixOr0(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}

// snapshotView is a recovery point as an HBR snapshot.
func (s *Server) snapshotView(ctx context.Context, c service.Caller, st string, rp *backup.RecoveryPoint, createTimes map[string]int64) map[string]any {
	_, _, rpID, _ := backup.ParseRecoveryPointArn(rp.Arn)
	start := rp.CreationDate
	if rp.InitiationDate != nil {
		start = *rp.InitiationDate
	}
	m := map[string]any{
		"SnapshotId": SnapshotID(rpID), "SnapshotHash": rp.ManifestID, "SourceType": st, "VaultId": VaultID(rp.VaultName),
		"JobId": rp.BackupJobID, "Status": snapshotStatus(rp.Status), "BackupType": "COMPLETE",
		"CreatedTime": rp.CreationDate.Unix(), "StartTime": start.Unix(), "CompleteTime": unixOr0(rp.CompletionDate),
		"UpdatedTime": max(rp.CreationDate.Unix(), unixOr0(rp.CompletionDate)),
		"BytesTotal":  rp.BackupSizeBytes, "BytesDone": rp.BackupSizeBytes, "ActualBytes": rp.BackupSizeBytes,
	}
	if rp.Lifecycle.DeleteAfterDays != nil {
		m["Retention"] = *rp.Lifecycle.DeleteAfterDays
	}
	if rp.DeleteAt != nil {
		m["ExpireTime"] = rp.DeleteAt.Unix()
	}
	_, id, _ := s.svc.ResourceRef(rp.ResourceArn)
	switch st {
	case typeECSFile:
		m["InstanceId"], m["Path"] = id, "/"
	case typeNAS:
		m["FileSystemId"], m["Path"] = id, "/"
		ct, ok := createTimes[id]
		if !ok {
			if r, err := s.svc.Resource(ctx, c, "EFS", id); err == nil {
				ct = r.CreationDate.Unix()
			}
			createTimes[id] = ct
		}
		m["CreateTime"] = ct
	case typeOSS:
		m["Bucket"], m["Prefix"] = id, ""
	}
	return m
}

// searchHistoricalSnapshots is SearchHistoricalSnapshots: the caller's
// recovery points of the source type's resources, filtered by Query,
// sorted and paged by Limit/NextToken.
func (s *Server) searchHistoricalSnapshots(ctx context.Context, req *request) (map[string]any, error) {
	p := req.p
	st, e := p.required("SourceType")
	if e != nil {
		return nil, e
	}
	if e := s.checkType("SourceType", st); e != nil {
		return nil, e
	}
	terms, e := parseQuery(p.get("Query"), st)
	if e != nil {
		return nil, e
	}
	limit, e := p.integer("Limit", 1, maxSearchLimit, 10)
	if e != nil {
		return nil, e
	}
	sortBy, e := p.enum("SortBy", "CreatedTime", "CompleteTime")
	if e != nil {
		return nil, e
	}
	order, e := p.enum("Order", "ASC", "DESC")
	if e != nil {
		return nil, e
	}
	offset := int64(0)
	if tok := p.get("NextToken"); tok != "" {
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != tok {
			return nil, invalid("NextToken", "%q is not a token this server returned", trunc(tok))
		}
		offset = n
	}
	rps, err := s.allRecoveryPoints(ctx, req.caller, service.RecoveryPointQuery{ResourceType: resourceTypeOf(st)})
	if err != nil {
		return nil, err
	}
	createTimes := map[string]int64{}
	var list []map[string]any
	for _, rp := range rps {
		v := s.snapshotView(ctx, req.caller, st, rp, createTimes)
		keep := true
		for _, t := range terms {
			_, isTime := timeFields[t.Field]
			var sv string
			var nv int64
			if isTime {
				nv, _ = v[t.Field].(int64)
			} else {
				sv, _ = v[t.Field].(string)
			}
			if !t.matches(sv, nv, isTime) {
				keep = false
				break
			}
		}
		if keep {
			list = append(list, v)
		}
	}
	key := "CreatedTime"
	if sortBy != "" {
		key = sortBy
	}
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i][key].(int64), list[j][key].(int64)
		if order == "ASC" {
			return a < b
		}
		return a > b
	})
	total := int64(len(list))
	page := []map[string]any{}
	next := ""
	if offset < total {
		to := min(offset+limit, total)
		page = list[offset:to]
		if to < total {
			next = strconv.FormatInt(to, 10)
		}
	}
	return map[string]any{"Limit": limit, "NextToken": next, "TotalCount": total, "Snapshots": map[string]any{"Snapshot": page}}, nil
}

// errNoSnapshot is HBR's answer for an unknown snapshot.
func errNoSnapshot(id string) *Error {
	return errf(http.StatusNotFound, codeResourceNotFound, "The snapshot %s does not exist in the vault.", trunc(id))
}
