package filesystem

import "testing"

func TestParseARN(t *testing.T) {
	tests := []struct {
		arn                 string
		region, account, id string
		ok                  bool
	}{
		{ARN("us-east-1", "111111111111", "fs-0123abcd"), "us-east-1", "111111111111", "fs-0123abcd", true},
		{"arn:aws:elasticfilesystem:eu-west-1:222222222222:file-system/fs-1", "eu-west-1", "222222222222", "fs-1", true},
		{"arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/", "", "", "", false},
		{"arn:aws:elasticfilesystem:us-east-1:111111111111:access-point/fsap-1", "", "", "", false},
		{"arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-1/x", "", "", "", false},
		{"arn:aws:elasticfilesystem::111111111111:file-system/fs-1", "", "", "", false},
		{"arn:aws:backup:us-east-1:111111111111:backup-vault:v", "", "", "", false},
		{"arn:aws:elasticfilesystem:us-east-1", "", "", "", false},
		{"", "", "", "", false},
	}
	for _, tc := range tests {
		r, a, id, ok := ParseARN(tc.arn)
		if ok != tc.ok || r != tc.region || a != tc.account || id != tc.id {
			t.Errorf("ParseARN(%q) = %q %q %q %v", tc.arn, r, a, id, ok)
		}
	}
}

func FuzzParseARN(f *testing.F) {
	f.Add(ARN("us-east-1", "111111111111", "fs-0123abcd"))
	f.Add("arn:aws:elasticfilesystem:a:b:file-system/c")
	f.Add("arn:aws:elasticfilesystem:::file-system/")
	f.Fuzz(func(t *testing.T, arn string) {
		r, a, id, ok := ParseARN(arn)
		if !ok {
			return
		}
		if got := ARN(r, a, id); got != arn {
			t.Fatalf("round trip %q -> %q", arn, got)
		}
	})
}
