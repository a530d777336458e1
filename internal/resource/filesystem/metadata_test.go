package filesystem

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/resource/fstree"
)

func TestParseMetadata(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"file-system-id": "fs-0123456789abcdef0", "newFileSystem": "false"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<delete>" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	ok := []struct {
		name string
		in   map[string]string
		want Metadata
	}{
		{"minimal existing", base(), Metadata{FileSystemID: "fs-0123456789abcdef0"}},
		{"new fs, console keys", base("newFileSystem", "true", "Encrypted", "false", "PerformanceMode", "maxIO",
			"CreationToken", "tok-1", "aws:backup:request-id", "6d6f..."),
			Metadata{FileSystemID: "fs-0123456789abcdef0", NewFileSystem: true, PerformanceMode: "maxIO", CreationToken: "tok-1"}},
		{"lower-case keys", map[string]string{"FILE-SYSTEM-ID": "fs-12345678", "newfilesystem": "TRUE", "performancemode": "generalPurpose", "encrypted": "false"},
			Metadata{FileSystemID: "fs-12345678", NewFileSystem: true, PerformanceMode: "generalPurpose"}},
		{"items", base("ItemsToRestore", `["/dir/a.txt","/other"]`), Metadata{FileSystemID: "fs-0123456789abcdef0", Items: []string{"/dir/a.txt", "/other"}}},
		{"empty items = whole fs", base("ItemsToRestore", `[]`), Metadata{FileSystemID: "fs-0123456789abcdef0", Items: []string{}}},
		{"include exclude", base("Include", `["**/*.go","/src"]`, "exclude", `["vendor"]`),
			Metadata{FileSystemID: "fs-0123456789abcdef0", Include: []string{"**/*.go", "/src"}, Exclude: []string{"vendor"}}},
		{"in place", base("TargetPath", "/srv/data", "ConflictPolicy", "OVERWRITE_IF_NEWER"),
			Metadata{FileSystemID: "fs-0123456789abcdef0", TargetPath: "/srv/data", ConflictPolicy: backup.OverwriteIfNewer}},
		{"target path new location", base("TargetPath", "/restored"), Metadata{FileSystemID: "fs-0123456789abcdef0", TargetPath: "/restored"}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseMetadata(tc.in)
			if err != nil {
				t.Fatalf("ParseMetadata: %v", err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
	bad := []struct {
		name string
		in   map[string]string
		key  string // Context of the error
		msg  string
	}{
		{"missing fs id", base("file-system-id", "<delete>"), "file-system-id", "required"},
		{"missing newFileSystem", base("newFileSystem", "<delete>"), "newFileSystem", "required"},
		{"bad fs id", base("file-system-id", "fs-XYZ"), "file-system-id", "fs-"},
		{"fs id traversal", base("file-system-id", "../etc"), "file-system-id", "fs-"},
		{"bad bool", base("newFileSystem", "yes"), "newFileSystem", "true"},
		{"typo key", base("newFilesystm", "true"), "newFilesystm", "unknown"},
		{"unknown key", base("Bogus", "1"), "Bogus", "unknown"},
		{"duplicate case", base("NEWFILESYSTEM", "true"), "newFileSystem", "duplicate"},
		{"kms without encrypted", base("newFileSystem", "true", "KmsKeyId", "alias/x"), "KmsKeyId", "Encrypted=true"},
		{"kms malformed", base("newFileSystem", "true", "Encrypted", "true", "KmsKeyId", "nope"), "KmsKeyId", "KMS"},
		{"encrypted true unsupported", base("newFileSystem", "true", "Encrypted", "true"), "Encrypted", "encryption"},
		{"perf mode", base("PerformanceMode", "turbo"), "PerformanceMode", "generalPurpose"},
		{"creation token for existing", base("CreationToken", "x"), "CreationToken", "newFileSystem"},
		{"creation token too long", base("newFileSystem", "true", "CreationToken", strings.Repeat("a", 65)), "CreationToken", "64"},
		{"items not json", base("ItemsToRestore", "/a"), "ItemsToRestore", "JSON"},
		{"items not strings", base("ItemsToRestore", `[1]`), "ItemsToRestore", "JSON"},
		{"items dotdot", base("ItemsToRestore", `["/a/../../etc"]`), "ItemsToRestore", ""},
		{"items relative", base("ItemsToRestore", `["a"]`), "ItemsToRestore", ""},
		{"items nul", base("ItemsToRestore", "[\"/a\\u0000b\"]"), "ItemsToRestore", ""},
		{"items root", base("ItemsToRestore", `["/"]`), "ItemsToRestore", ""},
		{"items wildcard", base("ItemsToRestore", `["/a/*"]`), "ItemsToRestore", ""},
		{"items duplicate", base("ItemsToRestore", `["/a","/a"]`), "ItemsToRestore", ""},
		{"items backslash", base("ItemsToRestore", `["\\..\\x"]`), "ItemsToRestore", ""},
		{"items too long", base("ItemsToRestore", `["/`+strings.Repeat("a", 5000)+`"]`), "ItemsToRestore", ""},
		{"bad glob", base("Include", `["a//b"]`), "Include", ""},
		{"glob dotdot", base("Include", `["../*"]`), "Include", ".."},
		{"glob dot", base("Exclude", `["a/./b"]`), "Exclude", "."},
		{"bad glob class", base("Exclude", `["[a"]`), "Exclude", ""},
		{"target path dotdot", base("TargetPath", "/../x"), "TargetPath", ""},
		{"target path absolute host", base("TargetPath", "etc"), "TargetPath", ""},
		{"target path root", base("TargetPath", "/"), "TargetPath", ""},
		{"target path new fs", base("newFileSystem", "true", "TargetPath", "/x"), "TargetPath", "newFileSystem=false"},
		{"conflict without target", base("ConflictPolicy", "SKIP_EXISTING"), "ConflictPolicy", "TargetPath"},
		{"conflict enum", base("TargetPath", "/x", "ConflictPolicy", "ALWAYS"), "ConflictPolicy", "SKIP_EXISTING"},
		{"nul value", base("PerformanceMode", "max\x00IO"), "PerformanceMode", "NUL"},
		{"too big", base("CreationToken", strings.Repeat("x", MaxMetadataBytes)), "Metadata", "limit"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMetadata(tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			var be *backup.Error
			if !errors.As(err, &be) || be.Code != backup.CodeInvalidParameter {
				t.Fatalf("error %v is not InvalidParameterValue", err)
			}
			if be.Context != tc.key {
				t.Errorf("context %q, want %q (%v)", be.Context, tc.key, err)
			}
			if !strings.Contains(be.Message, tc.key) && tc.key != "Metadata" {
				t.Errorf("message %q does not name the key %q", be.Message, tc.key)
			}
			if !strings.Contains(be.Message, tc.msg) {
				t.Errorf("message %q lacks %q", be.Message, tc.msg)
			}
		})
	}
}

func FuzzParseMetadata(f *testing.F) {
	f.Add("file-system-id", "fs-12345678", "ItemsToRestore", `["/a","/b/c"]`, "TargetPath", "/x")
	f.Add("newFileSystem", "true", "Include", `["**/x"]`, "ConflictPolicy", "SKIP_EXISTING")
	f.Add("NEWFILESYSTEM", "false", "exclude", `["[!a]"]`, "targetpath", "/../x")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		m := map[string]string{"file-system-id": "fs-12345678", "newFileSystem": "false", k1: v1, k2: v2, k3: v3}
		md, err := ParseMetadata(m)
		if err != nil {
			var be *backup.Error
			if !errors.As(err, &be) || be.Code != backup.CodeInvalidParameter {
				t.Fatalf("error %v is not InvalidParameterValue", err)
			}
			return
		}
		// Whatever is accepted is safe to hand to fstree.
		if err := fstree.ValidateItems(md.Items); err != nil {
			t.Fatalf("accepted invalid items %q: %v", md.Items, err)
		}
		if md.TargetPath != "" {
			if err := fstree.ValidateItems([]string{md.TargetPath}); err != nil || strings.Contains(md.TargetPath, "..") && strings.Contains("/"+md.TargetPath+"/", "/../") {
				t.Fatalf("accepted invalid TargetPath %q", md.TargetPath)
			}
		}
		if md.ConflictPolicy != "" && md.TargetPath == "" {
			t.Fatal("ConflictPolicy without TargetPath")
		}
		if !fsIDRE.MatchString(md.FileSystemID) {
			t.Fatalf("accepted file-system-id %q", md.FileSystemID)
		}
	})
}
