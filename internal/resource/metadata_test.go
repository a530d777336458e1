package resource_test

import (
	"errors"
	"strings"
	"testing"

	"coffer/internal/backup"
	"coffer/internal/resource"
)

func TestMetadataKeys(t *testing.T) {
	known := []string{"Alpha", "BetaKey"}
	unsupported := map[string]string{"Gamma": "gamma is not here"}
	for _, tc := range []struct {
		name    string
		m       map[string]string
		context string // "" = accepted
		msg     string
	}{
		{"canonical", map[string]string{"Alpha": "1", "BetaKey": "2"}, "", ""},
		{"case-insensitive", map[string]string{"alpha": "1", "BETAKEY": "2"}, "", ""},
		{"unknown", map[string]string{"Delta": "x"}, "Delta", "unknown restore metadata key for resource type T (allowed: Alpha, BetaKey)"},
		{"unsupported", map[string]string{"gamma": "x"}, "gamma", "not supported: gamma is not here"},
		{"duplicate", map[string]string{"alpha": "1", "ALPHA": "2"}, "alpha", "duplicate of key ALPHA"},
		{"NUL in value", map[string]string{"Alpha": "a\x00b"}, "Alpha", "valid UTF-8 without NUL"},
		{"bad UTF-8 key", map[string]string{"\xffx": "1"}, "?x", "unknown restore metadata key"},
		{"too large", map[string]string{"Alpha": strings.Repeat("a", 100)}, "Metadata", "more than the 64-byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, name, err := resource.MetadataKeys(tc.m, "T", known, unsupported, 64)
			if tc.context == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(vals) != len(tc.m) || vals["Alpha"] != "1" || name("Alpha") == "" || name("Missing") != "Missing" {
					t.Fatalf("vals %v", vals)
				}
				return
			}
			var be *backup.Error
			if !errors.As(err, &be) || be.Code != backup.CodeInvalidParameter || be.Context != tc.context || !strings.Contains(be.Message, tc.msg) {
				t.Fatalf("err = %#v, want context %q and %q", err, tc.context, tc.msg)
			}
		})
	}
}
