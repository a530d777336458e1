package hbr

import (
	"context"
	"net/http"

	"coffer/internal/backup"
	"coffer/internal/service"
)

// vaultPage lists every vault of the caller (by name).
func (s *Server) allVaults(ctx context.Context, c service.Caller) ([]service.VaultInfo, error) {
	var out []service.VaultInfo
	after := ""
	for {
		vs, next, err := s.svc.ListVaults(ctx, c, service.VaultFilter{}, service.Page{Limit: 1000, After: after})
		if err != nil {
			return nil, err
		}
		out = append(out, vs...)
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// allRecoveryPoints lists every recovery point of the caller matching q,
// newest first.
func (s *Server) allRecoveryPoints(ctx context.Context, c service.Caller, q service.RecoveryPointQuery) ([]*backup.RecoveryPoint, error) {
	var out []*backup.RecoveryPoint
	after := ""
	for {
		rps, next, err := s.svc.ListRecoveryPoints(ctx, c, q, service.Page{Limit: 1000, After: after})
		if err != nil {
			return nil, err
		}
		out = append(out, rps...)
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// describeVaults is DescribeVaults: the caller's vaults as STANDARD HBR
// vaults, by name, paged by PageNumber/PageSize.
func (s *Server) describeVaults(ctx context.Context, req *request) (map[string]any, error) {
	p := req.p
	pageNo, e := p.integer("PageNumber", 1, 1<<31-1, 1)
	if e != nil {
		return nil, e
	}
	pageSize, e := p.integer("PageSize", 1, maxPageSize, 10)
	if e != nil {
		return nil, e
	}
	vtype, e := p.enum("VaultType", "STANDARD", "OTS_BACKUP")
	if e != nil {
		return nil, e
	}
	status, e := p.enum("Status", "UNKNOWN", "INITIALIZING", "CREATED", "ERROR")
	if e != nil {
		return nil, e
	}
	if v, ok := p.m["VaultRegionId"]; ok && v != s.cfg.RegionID {
		return nil, invalid("VaultRegionId", "this server serves region %s, not %q", s.cfg.RegionID, trunc(v))
	}
	var wantName string
	if id, ok := p.m["VaultId"]; ok {
		name, ok := ParseVaultID(id)
		if !ok {
			return nil, invalid("VaultId", "%q is not a vault id (v-…)", trunc(id))
		}
		wantName = name
	}
	vs, err := s.allVaults(ctx, req.caller)
	if err != nil {
		return nil, err
	}
	rps, err := s.allRecoveryPoints(ctx, req.caller, service.RecoveryPointQuery{})
	if err != nil {
		return nil, err
	}
	bytes := map[string]int64{}
	for _, rp := range rps {
		bytes[rp.VaultName] += rp.BackupSizeBytes
	}
	var list []map[string]any
	for _, v := range vs {
		if (wantName != "" && v.Name != wantName) || (p.has("VaultName") && v.Name != p.get("VaultName")) ||
			vtype == "OTS_BACKUP" || (status != "" && status != "CREATED") {
			continue
		}
		created := v.CreationDate.Unix()
		list = append(list, map[string]any{
			"VaultId": VaultID(v.Name), "VaultName": v.Name, "VaultType": "STANDARD", "VaultStorageClass": "STANDARD",
			"Status": "CREATED", "VaultStatusMessage": "", "Description": "", "VaultRegionId": s.cfg.RegionID,
			"CreatedTime": created, "UpdatedTime": created, "BytesDone": bytes[v.Name], "StorageSize": bytes[v.Name],
			"Dedup": true, "Replication": false, "SnapshotCount": v.RecoveryPoints,
		})
	}
	total := len(list)
	from := (pageNo - 1) * pageSize
	page := []map[string]any{}
	if from < int64(total) {
		to := min(from+pageSize, int64(total))
		page = list[from:to]
	}
	return map[string]any{"PageNumber": pageNo, "PageSize": pageSize, "TotalCount": total, "Vaults": map[string]any{"Vault": page}}, nil
}

// vaultNotExist is HBR's VaultNotExist for vault id.
func vaultNotExist(id string) *Error {
	return errf(http.StatusNotFound, codeVaultNotExist, "The vault %s does not exist.", trunc(id))
}
