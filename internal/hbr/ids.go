package hbr

import (
	"encoding/hex"
	"regexp"
	"strings"
)

// Identifiers. Each HBR id is derived from the Coffer id it stands for and
// converts back without a lookup table, so ids are stable across restarts
// and nodes:
//
//   - VaultId    "v-" + hex(vault name)
//   - SnapshotId "s-" + the recovery point id (a UUID) without dashes, or
//     "s-x" + hex(id) for any other recovery point id
//   - RestoreId  "r-" + the restore job id (a UUID) without dashes, lower
//     case, or "r-x" + hex(id) for any other job id
//   - SnapshotHash: the recovery point's repository manifest id (the hash
//     of its snapshot's content).
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var (
	hex32RE = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hexRE   = regexp.MustCompile(`^(?:[0-9a-f]{2}){1,128}$`)
)

// VaultID is the HBR VaultId of a vault.
func VaultID(name string) string { return "v-" + hex.EncodeToString([]byte(name)) }

// ParseVaultID returns the vault name of an HBR VaultId.
func ParseVaultID(id string) (string, bool) {
	h, ok := strings.CutPrefix(id, "v-")
	if !ok || !hexRE.MatchString(h) {
		return "", false
	}
	b, _ := hex.DecodeString(h)
	return string(b), true
}

// SnapshotID is the HBR SnapshotId of a recovery point id.
func SnapshotID(rpID string) string { return "s-" + compactID(rpID, false) }

// ParseSnapshotID returns the recovery point id of an HBR SnapshotId.
func ParseSnapshotID(id string) (string, bool) {
	h, ok := strings.CutPrefix(id, "s-")
	if !ok {
		return "", false
	}
	return expandID(h, false)
}

// RestoreID is the HBR RestoreId of a restore job id.
func RestoreID(jobID string) string { return "r-" + compactID(jobID, true) }

// ParseRestoreID returns the restore job id of an HBR RestoreId.
func ParseRestoreID(id string) (string, bool) {
	h, ok := strings.CutPrefix(id, "r-")
	if !ok {
		return "", false
	}
	return expandID(h, true)
}

// compactID writes a UUID of the expected case as 32 lower-case hex
// digits, anything else as "x" + hex of its bytes.
func compactID(id string, upper bool) string {
	canon := strings.ToLower(id)
	if upper {
		canon = strings.ToUpper(id)
	}
	if uuidRE.MatchString(id) && id == canon {
		return strings.ToLower(strings.ReplaceAll(id, "-", ""))
	}
	return "x" + hex.EncodeToString([]byte(id))
}

func expandID(h string, upper bool) (string, bool) {
	if x, ok := strings.CutPrefix(h, "x"); ok {
		if !hexRE.MatchString(x) {
			return "", false
		}
		b, _ := hex.DecodeString(x)
		return string(b), true
	}
	if !hex32RE.MatchString(h) {
		return "", false
	}
	id := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	if upper {
		id = strings.ToUpper(id)
	}
	return id, true
}
