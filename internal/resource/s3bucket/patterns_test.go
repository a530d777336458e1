package s3bucket_test

import (
	"strings"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/resource/s3bucket"
	"coffer/internal/testutil/s3server"
)

// TestPatterns restores with Include/Exclude globs over keys: "*" stays in
// one segment, "**" crosses segments, an unanchored pattern matches at any
// depth, and a pattern matching a key prefix ending at "/" selects every
// key below it.
func TestPatterns(t *testing.T) {
	vs := s3server.Start(t)
	srv := server{id: "vgw", url: vs.Endpoint, region: vs.Region, ak: vs.AccessKey, sk: vs.SecretKey}
	c := srv.client()
	createBucket(t, c, "pat-src")
	keys := []string{"a.txt", "docs/readme.md", "docs/img/logo.png", "src/main.go", "src/vendor/lib/x.go", "src/vendor/y.md", "notes.md", "z/docs/q.txt"}
	for i, k := range keys {
		putObj(t, c, "pat-src", obj{key: k, data: pseudoRandom(byte(i), 1000+i)})
	}
	p := &s3bucket.Plugin{Endpoints: []s3bucket.Endpoint{srv.endpoint()}, StateDir: t.TempDir(), Workers: 4, MaxAttempts: 2}
	src := s3bucket.NewResource(sc.Region, sc.AccountID, "pat-src", srv.id, nil)
	snap, _, _ := backupBucket(t, p, newRepo(t), src, nil)
	for i, tc := range []struct {
		include, exclude []string
		want             string
	}{
		{[]string{"/docs"}, nil, "docs/img/logo.png|docs/readme.md"},
		{[]string{"docs"}, nil, "docs/img/logo.png|docs/readme.md|z/docs/q.txt"},
		{[]string{"*.md"}, nil, "docs/readme.md|notes.md|src/vendor/y.md"},
		{[]string{"/*.md"}, nil, "notes.md"},
		{[]string{"/src/**/*.go"}, nil, "src/main.go|src/vendor/lib/x.go"},
		{nil, []string{"vendor", "*.png"}, "a.txt|docs/readme.md|notes.md|src/main.go|z/docs/q.txt"},
		{[]string{"/src"}, []string{"/src/vendor/lib"}, "src/main.go|src/vendor/y.md"},
		{[]string{"/nothing"}, nil, ""},
	} {
		dst := "pat-dst-" + string(rune('a'+i))
		createBucket(t, c, dst)
		tgt := s3bucket.NewResource(sc.Region, sc.AccountID, dst, srv.id, nil)
		res := restoreBucket(t, p, snap, src, &backup.RestoreSpec{Target: backup.RestoreTarget{ID: dst}, Include: tc.include, Exclude: tc.exclude}, tgt)
		got := strings.Join(listKeys(t, c, dst), "|")
		if got != tc.want {
			t.Errorf("include %q exclude %q: restored %q, want %q", tc.include, tc.exclude, got, tc.want)
		}
		if n := int64(len(listKeys(t, c, dst))); res.Items != n {
			t.Errorf("include %q exclude %q: %d items reported, %d restored", tc.include, tc.exclude, res.Items, n)
		}
		if want := bucketState(t, c, "pat-src", func(k string) bool { return strings.Contains("|"+tc.want+"|", "|"+k+"|") }); len(diffStates(want, bucketState(t, c, dst, nil))) > 0 {
			t.Errorf("include %q exclude %q: restored objects differ from the source", tc.include, tc.exclude)
		}
	}
}
