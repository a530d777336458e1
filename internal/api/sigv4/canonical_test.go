package sigv4

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestRemoveDotSegments(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"/":                 "/",
		"/a/b":              "/a/b",
		"/a//b/":            "/a/b/",
		"//example//":       "/example/",
		"/./":               "/",
		"/a/./b/../c":       "/a/c",
		"/../../a":          "/a",
		"/a/b/../..":        "/",
		"/%2E%2E/a":         "/%2E%2E/a",
		"/arn%3Aaws%2Fx/./": "/arn%3Aaws%2Fx/",
	} {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCanonicalURIs(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want []string
	}{
		{"", []string{"/"}},
		{"/backup-vaults/v1/recovery-points/arn%3Aaws%3Abackup%3Aus-east-1%3A1%3Arecovery-point%3Aabc",
			[]string{"/backup-vaults/v1/recovery-points/arn%253Aaws%253Abackup%253Aus-east-1%253A1%253Arecovery-point%253Aabc",
				"/backup-vaults/v1/recovery-points/arn%253aaws%253abackup%253aus-east-1%253a1%253arecovery-point%253aabc"}},
		{"/a:b@c!$'()*+,;=", []string{"/a%3Ab%40c%21%24%27%28%29%2A%2B%2C%3B%3D"}},
		{"/a/./b//c", []string{"/a/b/c", "/a/./b//c"}},
		{"/\xe1\x88\xb4", []string{"/%E1%88%B4"}},
		// Already percent-encoded paths are encoded once more, never decoded
		// first (botocore: quote(path, safe="/~"); aws-sdk-go-v2:
		// EscapePath(EscapedPath())); both sign "/backup-vaults/%2561tk".
		{"/backup-vaults/%61tk", []string{"/backup-vaults/%2561tk"}},
		{"/backup-vaults/%2e%2e/x", []string{"/backup-vaults/%252e%252e/x"}},
		// Encoded dots are not dot segments; upper-case hex adds the
		// lower-cased form (urllib3 upper-cases what botocore signed).
		{"/backup-vaults/%2E%2E", []string{"/backup-vaults/%252E%252E", "/backup-vaults/%252e%252e"}},
		{"/a/%2E/../%7E%41", []string{"/a/%257E%2541", "/a/%252E/../%257E%2541", "/a/%257e%2541"}},
		{"/a%zz%4", []string{"/a%25zz%254"}},
	} {
		got := canonicalURIs(tc.raw)
		if len(got) != len(tc.want) {
			t.Errorf("canonicalURIs(%q) = %q, want %q", tc.raw, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("canonicalURIs(%q) = %q, want %q", tc.raw, got, tc.want)
			}
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"", ""},
		{"accountId=%2A", "accountId=%2A"},
		{"accountId=*", "accountId=%2A"},
		{"Param2=value2&Param1=value1", "Param1=value1&Param2=value2"},
		{"b=2&a=2&a=1", "a=1&a=2&b=2"},
		{"a=x+y&c=x%20y", "a=x%20y&c=x%20y"},
		{"flag&empty=&&x=1", "empty=&flag=&x=1"},
		{"k=%7e%2d", "k=~-"},
		{"v=a%2Fb&v=a-b", "v=a%2Fb&v=a-b"}, // sorted after encoding: '%' < '-'
		{"%C3%A9=1&z=2", "%C3%A9=1&z=2"},
	} {
		got, err := canonicalQuery(tc.raw)
		if err != nil || got != tc.want {
			t.Errorf("canonicalQuery(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
	for _, bad := range []string{"a=%zz", "a=%4", "a=1;b=2", "%=1"} {
		if _, err := canonicalQuery(bad); err == nil {
			t.Errorf("canonicalQuery(%q) accepted", bad)
		} else if _, perr := url.ParseQuery(bad); perr == nil {
			t.Errorf("canonicalQuery(%q) refused what url.ParseQuery accepts", bad)
		}
	}
}

// TestCanonicalQueries pins the query forms: the SigV4 rule first, then
// botocore's raw form (expected values computed with botocore 1.43.11's
// SigV4Auth._canonical_query_string_url), then the raw form with lower-case
// escapes.
func TestCanonicalQueries(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want []string
	}{
		{"", []string{""}},
		{"accountId=%2A&maxResults=10", []string{"accountId=%2A&maxResults=10", "accountId=%2a&maxResults=10"}},
		{"b=2&a=2&a=1", []string{"a=1&a=2&b=2"}},
		// "+" is a space to url.ParseQuery, so form 1 signs "%20"; botocore
		// signs the raw "+".
		{"a=b+c", []string{"a=b%20c", "a=b+c"}},
		{"a+b=1&a%20b=2&a%2Bb=3&v=%2B&v=+&v=%20&v=%2B%20+", []string{
			"a%20b=1&a%20b=2&a%2Bb=3&v=%20&v=%20&v=%2B&v=%2B%20%20",
			"a%20b=2&a%2Bb=3&a+b=1&v=%20&v=%2B&v=%2B%20+&v=+",
			"a%20b=2&a%2bb=3&a+b=1&v=%20&v=%2b&v=%2b%20+&v=+"}},
		{"flag&empty=&&x=1", []string{"empty=&flag=&x=1", "=&empty=&flag=&x=1"}},
		{"%6daxResults=%35&nextToken=%41%7e", []string{"maxResults=5&nextToken=A~", "%6daxResults=%35&nextToken=%41%7e"}},
		{"state=&state=RUNNING&state&state=%20&state=CREATED", []string{
			"state=&state=&state=%20&state=CREATED&state=RUNNING"}},
		{"maxResults=5&&nextToken=x&", []string{"maxResults=5&nextToken=x", "=&=&maxResults=5&nextToken=x"}},
		{"k=a=b", []string{"k=a%3Db", "k=a=b"}},
		{"nextToken=%E6%97%A5%e6%97%a5", []string{"nextToken=%E6%97%A5%E6%97%A5", "nextToken=%E6%97%A5%e6%97%a5", "nextToken=%e6%97%a5%e6%97%a5"}},
	} {
		got, err := canonicalQueries(tc.raw)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("canonicalQueries(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
	for _, bad := range []string{"a=%zz", "a=1;b=2", "a=%2"} {
		if _, err := canonicalQueries(bad); err == nil {
			t.Errorf("canonicalQueries(%q) accepted", bad)
		}
	}
}

func TestRawPath(t *testing.T) {
	for _, tc := range []struct {
		r    *http.Request
		want string
	}{
		{&http.Request{RequestURI: "/a%3Ab/c?x=1", URL: &url.URL{Path: "/a:b/c"}}, "/a%3Ab/c"},
		{&http.Request{RequestURI: "http://h:1/a%2Fb?x", URL: &url.URL{Path: "/a/b"}}, "/a%2Fb"},
		{&http.Request{URL: &url.URL{Path: "/a/b", RawPath: "/a%2Fb"}}, "/a%2Fb"},
		{&http.Request{URL: &url.URL{Opaque: "/x%3Ay"}}, "/x%3Ay"},
		{&http.Request{URL: &url.URL{Opaque: "//host:80/x%3Ay"}}, "/x%3Ay"},
	} {
		if got := rawPath(tc.r); got != tc.want {
			t.Errorf("rawPath(%q, %+v) = %q, want %q", tc.r.RequestURI, tc.r.URL, got, tc.want)
		}
	}
}

func TestTrimAll(t *testing.T) {
	for _, tc := range []struct{ in, spaces, ascii string }{
		{"  a   b  ", "a b", "a b"},
		{"\"a   b   c\"", "\"a b c\"", "\"a b c\""},
		{"a\t\tb  c", "a\t\tb c", "a b c"},
		{"", "", ""},
	} {
		if got := trimAll(tc.in, wsSpaces); got != tc.spaces {
			t.Errorf("trimAll(%q, spaces) = %q, want %q", tc.in, got, tc.spaces)
		}
		if got := trimAll(tc.in, wsASCII); got != tc.ascii {
			t.Errorf("trimAll(%q, ascii) = %q, want %q", tc.in, got, tc.ascii)
		}
	}
}
