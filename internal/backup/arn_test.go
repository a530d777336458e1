package backup

import "testing"

func TestParseVaultArn(t *testing.T) {
	cases := []struct {
		arn      string
		ok       bool
		acct, nm string
	}{
		{"arn:aws:backup:us-east-1:222222222222:backup-vault:dst", true, "222222222222", "dst"},
		{"arn:aws:backup:us-east-1:22222222222:backup-vault:dst", false, "", ""},
		{"arn:aws:backup:us-east-1:222222222222:recovery-point:x", false, "", ""},
		{"arn:aws:backup:us-east-1:222222222222:backup-vault:a:b", false, "", ""},
		{"arn:aws:s3:us-east-1:222222222222:backup-vault:dst", false, "", ""},
		{"", false, "", ""},
	}
	for _, c := range cases {
		_, acct, nm, ok := ParseVaultArn(c.arn)
		if ok != c.ok || acct != c.acct || nm != c.nm {
			t.Errorf("ParseVaultArn(%q) = %s %s %v", c.arn, acct, nm, ok)
		}
	}
}

func FuzzParseVaultArn(f *testing.F) {
	f.Add("arn:aws:backup:us-east-1:222222222222:backup-vault:dst")
	f.Add("arn:aws:backup::222222222222:backup-vault:")
	f.Fuzz(func(t *testing.T, s string) {
		region, acct, name, ok := ParseVaultArn(s)
		if ok && "arn:aws:backup:"+region+":"+acct+":backup-vault:"+name != s {
			t.Fatalf("%q parsed to %s %s %s", s, region, acct, name)
		}
	})
}
