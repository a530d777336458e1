package accesspolicy

import (
	"encoding/json"
	"fmt"
)

// Validate checks that p is an IAM policy document: a JSON object with
// Version and a non-empty Statement list (or a single statement object)
// whose items have Effect Allow|Deny, Action (or NotAction) and a
// Principal (or NotPrincipal) or Resource. Its error says what is wrong.
func Validate(p string) error {
	bad := fmt.Errorf
	if len(p) > MaxPolicyBytes {
		return bad("the document exceeds %d bytes", MaxPolicyBytes)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(p), &doc); err != nil {
		return bad("not a JSON object")
	}
	var version string
	if raw, ok := doc["Version"]; !ok || json.Unmarshal(raw, &version) != nil || version == "" {
		return bad("element Version must be a non-empty string")
	}
	raw, ok := doc["Statement"]
	if !ok {
		return bad("element Statement is missing")
	}
	var stmts []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err := json.Unmarshal(raw, &one); err != nil {
			return bad("element Statement must be a list of objects")
		}
		stmts = []map[string]json.RawMessage{one}
	}
	if len(stmts) == 0 {
		return bad("element Statement must not be empty")
	}
	for i, st := range stmts {
		var effect string
		if raw, ok := st["Effect"]; !ok || json.Unmarshal(raw, &effect) != nil || (effect != "Allow" && effect != "Deny") {
			return bad("element Statement[%d].Effect must be Allow or Deny", i)
		}
		if !has(st, "Action") && !has(st, "NotAction") {
			return bad("element Statement[%d] needs Action", i)
		}
		if !has(st, "Principal") && !has(st, "NotPrincipal") && !has(st, "Resource") && !has(st, "NotResource") {
			return bad("element Statement[%d] needs Principal or Resource", i)
		}
	}
	return nil
}

func has(m map[string]json.RawMessage, k string) bool {
	raw, ok := m[k]
	return ok && len(raw) > 0 && string(raw) != "null" && string(raw) != `""` && string(raw) != "[]"
}
