// Package accesspolicy evaluates backup vault access policies (IAM
// resource policy documents) for a request: an account, its role, an action
// and a vault. Cross-account copies and cross-account restores use it.
package accesspolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"coffer/internal/backup"
)

// ActionCopyInto is the IAM action a destination vault's access policy must
// allow for a copy from another account.
const ActionCopyInto = "backup:CopyIntoBackupVault"

// MaxPolicyBytes caps the policy documents Evaluate decodes (the AWS limit
// for resource policies is well below this).
const MaxPolicyBytes = 64 << 10

// Decision is the outcome of evaluating an access policy.
type Decision int

// Decisions. ImplicitDeny: no statement applies.
const (
	ImplicitDeny Decision = iota
	Allow
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// Request is what a policy is evaluated for.
type Request struct {
	Account  string // the calling (source) account, 12 digits
	RoleArn  string // the caller's IAM role ARN (may be empty)
	Action   string // e.g. backup:CopyIntoBackupVault
	Resource string // the destination vault ARN
}

// ErrPolicy wraps every decoding error of Evaluate.
var ErrPolicy = errors.New("accesspolicy: invalid access policy")

type policyDoc struct {
	Version   string          `json:"Version"`
	Statement json.RawMessage `json:"Statement"`
}

type statement struct {
	Sid          string          `json:"Sid"`
	Effect       string          `json:"Effect"`
	Principal    json.RawMessage `json:"Principal"`
	NotPrincipal json.RawMessage `json:"NotPrincipal"`
	Action       json.RawMessage `json:"Action"`
	NotAction    json.RawMessage `json:"NotAction"`
	Resource     json.RawMessage `json:"Resource"`
	NotResource  json.RawMessage `json:"NotResource"`
	Condition    json.RawMessage `json:"Condition"`
}

// Evaluate evaluates a vault access policy document for req with IAM's
// rules: an applicable Deny statement wins over any Allow; without an
// applicable Allow the request is implicitly denied. A statement applies
// when its Principal, Action and Resource all match:
//
//   - Principal: "*", {"AWS": "*"}, a 12-digit account id, the account's
//     root ARN arn:aws:iam::ID:root, or the caller's exact role ARN (string
//     or list under "AWS").
//   - Action: case-insensitive, with * and ? wildcards ("backup:*", "*").
//   - Resource: absent, or ARNs with * and ? wildcards.
//
// NotPrincipal, NotAction, NotResource and Condition cannot be evaluated
// faithfully here (Coffer has no organization or request context), so they
// fail closed: an Allow statement using any of them grants nothing and a
// Deny statement using any of them applies. A malformed document is an error
// wrapping ErrPolicy (callers deny).
func Evaluate(doc string, req Request) (Decision, error) {
	if len(doc) > MaxPolicyBytes {
		return ImplicitDeny, fmt.Errorf("%w: document exceeds %d bytes", ErrPolicy, MaxPolicyBytes)
	}
	var d policyDoc
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		return ImplicitDeny, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	var stmts []statement
	raw := bytes.TrimSpace(d.Statement)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return ImplicitDeny, fmt.Errorf("%w: no Statement", ErrPolicy)
	case raw[0] == '[':
		if err := json.Unmarshal(raw, &stmts); err != nil {
			return ImplicitDeny, fmt.Errorf("%w: Statement: %v", ErrPolicy, err)
		}
	default:
		var s statement
		if err := json.Unmarshal(raw, &s); err != nil {
			return ImplicitDeny, fmt.Errorf("%w: Statement: %v", ErrPolicy, err)
		}
		stmts = []statement{s}
	}
	allowed := false
	for i, s := range stmts {
		deny := false
		switch s.Effect {
		case "Allow":
		case "Deny":
			deny = true
		default:
			return ImplicitDeny, fmt.Errorf("%w: statement %d: Effect must be Allow or Deny, not %q", ErrPolicy, i, s.Effect)
		}
		applies, err := s.applies(req, deny)
		if err != nil {
			return ImplicitDeny, fmt.Errorf("%w: statement %d: %v", ErrPolicy, i, err)
		}
		if !applies {
			continue
		}
		if deny {
			return ExplicitDeny, nil
		}
		allowed = true
	}
	if allowed {
		return Allow, nil
	}
	return ImplicitDeny, nil
}

// present reports whether a JSON member was given (and is not null).
func present(r json.RawMessage) bool {
	t := bytes.TrimSpace(r)
	return len(t) > 0 && string(t) != "null"
}

func (s statement) applies(req Request, deny bool) (bool, error) {
	unsupported := present(s.NotPrincipal) || present(s.NotAction) || present(s.NotResource)
	if present(s.Condition) {
		var c map[string]json.RawMessage
		if err := json.Unmarshal(s.Condition, &c); err != nil {
			return false, fmt.Errorf("element Condition: %v", err)
		}
		if len(c) > 0 {
			unsupported = true
		}
	}
	if unsupported {
		// Fail closed: the statement restricts (Deny) but never grants.
		return deny, nil
	}
	if !present(s.Principal) {
		return false, errors.New("element Principal is required in a resource policy")
	}
	okP, err := principalMatches(s.Principal, req)
	if err != nil {
		return false, err
	}
	if !present(s.Action) {
		return false, errors.New("element Action is required")
	}
	actions, err := stringOrList(s.Action)
	if err != nil {
		return false, fmt.Errorf("element Action: %v", err)
	}
	okA := false
	for _, a := range actions {
		if wildMatch(strings.ToLower(a), strings.ToLower(req.Action)) {
			okA = true
		}
	}
	okR := true
	if present(s.Resource) {
		res, err := stringOrList(s.Resource)
		if err != nil {
			return false, fmt.Errorf("element Resource: %v", err)
		}
		okR = false
		for _, r := range res {
			if wildMatch(r, req.Resource) {
				okR = true
			}
		}
	}
	return okP && okA && okR, nil
}

func principalMatches(raw json.RawMessage, req Request) (bool, error) {
	var star string
	if err := json.Unmarshal(raw, &star); err == nil {
		if star != "*" {
			return false, fmt.Errorf("element Principal as a string must be \"*\", not %q", star)
		}
		return true, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return false, fmt.Errorf("element Principal: %v", err)
	}
	match := false
	for k, v := range m {
		vals, err := stringOrList(v)
		if err != nil {
			return false, fmt.Errorf("element Principal.%s: %v", k, err)
		}
		if k != "AWS" {
			continue // Service, Federated, CanonicalUser: never an account caller
		}
		for _, p := range vals {
			switch {
			case p == "*":
				match = true
			case backup.ValidAccountID(p):
				match = match || p == req.Account
			case p == "arn:aws:iam::"+req.Account+":root":
				match = true
			case req.RoleArn != "" && p == req.RoleArn:
				match = true
			}
		}
	}
	return match, nil
}

// stringOrList decodes a JSON string or a non-empty array of strings.
func stringOrList(raw json.RawMessage) ([]string, error) {
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, errors.New("must be a string or a list of strings")
	}
	if len(many) == 0 {
		return nil, errors.New("must not be an empty list")
	}
	return many, nil
}

// wildMatch matches s against pattern where * is any run of characters and
// ? any single character. It runs in O(len(pattern)*len(s)) at worst.
func wildMatch(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			starP, starI = p, i
			p++
		case starP >= 0:
			p = starP + 1
			starI++
			i = starI
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
