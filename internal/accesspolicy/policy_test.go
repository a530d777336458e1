package accesspolicy

import (
	"errors"
	"strings"
	"testing"
)

const (
	srcAcct  = "111111111111"
	dstVault = "arn:aws:backup:us-east-1:222222222222:backup-vault:dst"
)

func req() Request {
	return Request{Account: srcAcct, RoleArn: "arn:aws:iam::111111111111:role/copier", Action: ActionCopyInto, Resource: dstVault}
}

func TestEvaluate(t *testing.T) {
	allowAcct := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"backup:CopyIntoBackupVault","Resource":"*"}]}`
	cases := []struct {
		name string
		doc  string
		want Decision
		err  bool
	}{
		{"allow account id", allowAcct, Allow, false},
		{"allow root arn", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"backup:CopyIntoBackupVault"}]}`, Allow, false},
		{"allow list with other", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["333333333333","arn:aws:iam::111111111111:root"]},"Action":["backup:StartBackupJob","backup:CopyIntoBackupVault"]}]}`, Allow, false},
		{"allow role arn", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/copier"},"Action":"backup:CopyIntoBackupVault"}]}`, Allow, false},
		{"other role arn", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/other"},"Action":"backup:CopyIntoBackupVault"}]}`, ImplicitDeny, false},
		{"allow star principal", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:*"}]}`, Allow, false},
		{"allow AWS star", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*"}}`, Allow, false},
		{"action wildcard case", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"BACKUP:copy*"}]}`, Allow, false},
		{"action question mark", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:CopyIntoBackupVaul?"}]}`, Allow, false},
		{"other action", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:DeleteRecoveryPoint"}]}`, ImplicitDeny, false},
		{"other account", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"333333333333"},"Action":"backup:CopyIntoBackupVault"}]}`, ImplicitDeny, false},
		{"root arn of other account", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::333333333333:root"},"Action":"backup:CopyIntoBackupVault"}]}`, ImplicitDeny, false},
		{"resource matches", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:CopyIntoBackupVault","Resource":"arn:aws:backup:us-east-1:222222222222:backup-vault:*"}]}`, Allow, false},
		{"resource other vault", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:CopyIntoBackupVault","Resource":"arn:aws:backup:us-east-1:222222222222:backup-vault:other"}]}`, ImplicitDeny, false},
		{"deny wins", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:*"},{"Effect":"Deny","Principal":{"AWS":"111111111111"},"Action":"backup:CopyIntoBackupVault"}]}`, ExplicitDeny, false},
		{"deny before allow", `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"backup:Copy*"},{"Effect":"Allow","Principal":"*","Action":"backup:*"}]}`, ExplicitDeny, false},
		{"deny other account only", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:*"},{"Effect":"Deny","Principal":{"AWS":"333333333333"},"Action":"*"}]}`, Allow, false},
		{"deny other action only", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:*"},{"Effect":"Deny","Principal":"*","Action":"backup:DeleteRecoveryPoint"}]}`, Allow, false},
		{"allow with condition grants nothing", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}]}`, ImplicitDeny, false},
		{"deny with condition applies", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:*"},{"Effect":"Deny","Principal":"*","Action":"backup:*","Condition":{"Bool":{"x":"true"}}}]}`, ExplicitDeny, false},
		{"empty condition is no condition", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"backup:*","Condition":{}}]}`, Allow, false},
		{"not action allow fails closed", `{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"backup:DeleteRecoveryPoint"}]}`, ImplicitDeny, false},
		{"not principal deny applies", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},{"Effect":"Deny","NotPrincipal":{"AWS":"111111111111"},"Action":"*"}]}`, ExplicitDeny, false},
		{"service principal", `{"Statement":[{"Effect":"Allow","Principal":{"Service":"backup.amazonaws.com"},"Action":"*"}]}`, ImplicitDeny, false},
		{"no statements", `{"Statement":[]}`, ImplicitDeny, false},
		{"missing statement", `{"Version":"2012-10-17"}`, ImplicitDeny, true},
		{"bad effect", `{"Statement":[{"Effect":"allow","Principal":"*","Action":"*"}]}`, ImplicitDeny, true},
		{"missing principal", `{"Statement":[{"Effect":"Allow","Action":"*"}]}`, ImplicitDeny, true},
		{"principal string not star", `{"Statement":[{"Effect":"Allow","Principal":"111111111111","Action":"*"}]}`, ImplicitDeny, true},
		{"missing action", `{"Statement":[{"Effect":"Allow","Principal":"*"}]}`, ImplicitDeny, true},
		{"action number", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":5}]}`, ImplicitDeny, true},
		{"empty action list", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":[]}]}`, ImplicitDeny, true},
		{"not json", `{`, ImplicitDeny, true},
		{"too large", `{"Statement":[` + strings.Repeat(" ", MaxPolicyBytes) + `]}`, ImplicitDeny, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Evaluate(c.doc, req())
			if (err != nil) != c.err {
				t.Fatalf("err = %v, want error %v", err, c.err)
			}
			if err != nil && !errors.Is(err, ErrPolicy) {
				t.Fatalf("error %v does not wrap ErrPolicy", err)
			}
			if got != c.want {
				t.Fatalf("decision = %v, want %v", got, c.want)
			}
		})
	}
}

func TestWildMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"", "", true}, {"", "a", false}, {"a*", "abc", true}, {"*c", "abc", true},
		{"a*c", "abbbc", true}, {"a*c", "abbb", false}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"**", "x", true}, {"*a*b", "xaxxb", true}, {"*a*b", "xaxx", false},
	}
	for _, c := range cases {
		if got := wildMatch(c.p, c.s); got != c.want {
			t.Errorf("wildMatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func FuzzEvaluate(f *testing.F) {
	f.Add(`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"backup:CopyIntoBackupVault"}]}`, "111111111111")
	f.Add(`{"Statement":{"Effect":"Deny","Principal":"*","Action":["*"],"Resource":"arn:*"}}`, "222222222222")
	f.Add(`{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"x","Condition":{"a":{}}}]}`, "")
	f.Add(`[]`, "1")
	f.Fuzz(func(t *testing.T, doc, acct string) {
		r := req()
		r.Account = acct
		d, err := Evaluate(doc, r)
		if err != nil && d != ImplicitDeny {
			t.Fatalf("error %v with decision %v", err, d)
		}
		if err != nil && !errors.Is(err, ErrPolicy) {
			t.Fatalf("error %v does not wrap ErrPolicy", err)
		}
	})
}
