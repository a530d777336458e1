package backup

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

const efs1 = "arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0001"

func TestArnMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, arn string
		want         bool
	}{
		{"*", efs1, true},
		{efs1, efs1, true},
		{efs1, efs1 + "0", false},
		{"arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-000*", efs1, true},
		// AWS's documented forms: wildcards for region and account.
		{"arn:aws:elasticfilesystem:*:*:file-system/*", efs1, true},
		{"arn:aws:ec2:*:*:volume/*", efs1, false},
		{"arn:aws:elasticfilesystem:*:222222222222:file-system/*", efs1, false},
		{"arn:aws:elasticfilesystem:us-east-1:*:file-system/fs-000?", efs1, true},
		{"arn:aws:elasticfilesystem:us-east-1:*:file-system/fs-00?", efs1, false},
		{"arn:aws:s3:::photo*", "arn:aws:s3:::photos", true},
		{"arn:aws:s3:::photo*", "arn:aws:s3:::logs", false},
		{"arn:*", "arn:aws:s3:::logs", true},
		{"*fs-0001", efs1, true},
	} {
		if got := ArnMatches(tc.pattern, tc.arn); got != tc.want {
			t.Errorf("ArnMatches(%q, %q) = %v", tc.pattern, tc.arn, got)
		}
	}
}

func TestNamesResourceType(t *testing.T) {
	for p, want := range map[string]bool{
		efs1: true,
		"arn:aws:elasticfilesystem:*:*:file-system/*": true,
		"arn:aws:s3:::photos":                         true,
		"*":                                           false,
		"arn:*":                                       false,
		"arn:aws:*:*:*:*":                             false,
		"arn:aws:elastic*:us-east-1:1:file-system/x": false,
		"arn:*:s3:::x": false,
	} {
		if got := NamesResourceType(p); got != want {
			t.Errorf("NamesResourceType(%q) = %v", p, got)
		}
	}
}

func TestLikeMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"prod*", "production", true},
		{"*rod*", "production", true},
		{"*rod", "production", false},
		{"p?od", "prod", true},
		{"a/*", "a/b/c", true}, // * crosses '/'
		{"[x]", "[x]", true},   // no character classes
		{"\\*", "\\x", true},   // no escapes
		{"", "", true},
		{"*", "", true},
		{"?", "", false},
		{"é?", "éé", true}, // ? is one character, not one byte
	} {
		if got := LikeMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("LikeMatch(%q, %q) = %v", tc.pattern, tc.s, got)
		}
	}
}

// FuzzWildcardMatch compares the matcher with a regular expression built
// from the pattern.
func FuzzWildcardMatch(f *testing.F) {
	for _, s := range [][2]string{{"a*b?c", "axxbyc"}, {"*", ""}, {"**a", "ba"}, {"?*?", "ab"}, {"a*a*a", "aaaa"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) || len(pattern) > 64 || len(s) > 256 {
			return
		}
		var re strings.Builder
		re.WriteString(`(?s)\A`)
		for _, r := range pattern {
			switch r {
			case '*':
				re.WriteString(".*")
			case '?':
				re.WriteString(".")
			default:
				re.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		re.WriteString(`\z`)
		want := regexp.MustCompile(re.String()).MatchString(s)
		if got := LikeMatch(pattern, s); got != want {
			t.Fatalf("LikeMatch(%q, %q) = %v, regexp says %v", pattern, s, got, want)
		}
	})
}
