package s3bucket

import (
	"sort"
	"strings"
	"testing"

	"coffer/internal/repository/snapshot"
)

var awkwardKeys = []string{
	"a", "a/b", "a//b", "/lead", "//", "/", ".", "..", "../up", "x/../y", "a/./b", "dir/", "trail.",
	"p%20q", "q?x#y", "sp ace+plus", "ünïcødé/ñ", "\x00nul", "\x01one", "\x02two", "a.b", "a-b", "a0",
	".,", ".-", "\x01\x01", strings.Repeat("k", 1024), strings.Repeat("/", 20),
}

func TestKeyEncodingRoundTripAndOrder(t *testing.T) {
	names := make([]string, len(awkwardKeys))
	for i, k := range awkwardKeys {
		n := EncodeKey(k)
		if !snapshot.ValidName(n) {
			t.Errorf("EncodeKey(%q) = %q is not a valid node name", k, n)
		}
		back, err := DecodeKey(n)
		if err != nil || back != k {
			t.Errorf("DecodeKey(EncodeKey(%q)) = %q, %v", k, back, err)
		}
		names[i] = n
	}
	keys := append([]string(nil), awkwardKeys...)
	sort.Strings(keys)
	sort.Strings(names)
	for i := range keys {
		if EncodeKey(keys[i]) != names[i] {
			t.Fatalf("order differs at %d: key %q, name %q", i, keys[i], names[i])
		}
	}
}

func TestDecodeKeyRejects(t *testing.T) {
	for _, n := range []string{"a.", "a.x", "\x01", "\x01\x03", "..", ".a"} {
		if _, err := DecodeKey(n); err == nil {
			t.Errorf("DecodeKey(%q) accepted", n)
		}
	}
}

func FuzzKeyEncoding(f *testing.F) {
	for _, k := range awkwardKeys {
		f.Add(k, "b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ea, eb := EncodeKey(a), EncodeKey(b)
		if da, err := DecodeKey(ea); err != nil || da != a {
			t.Fatalf("round trip of %q: %q, %v", a, da, err)
		}
		if a != "" && (strings.ContainsAny(ea, "/\x00") || ea == "." || ea == "..") {
			t.Fatalf("EncodeKey(%q) = %q is not a node name", a, ea)
		}
		if (a < b) != (ea < eb) || strings.HasPrefix(b, a) != strings.HasPrefix(eb, ea) {
			t.Fatalf("order or prefix not kept: %q %q -> %q %q", a, b, ea, eb)
		}
	})
}

func FuzzDecodeKey(f *testing.F) {
	f.Add("a.,b")
	f.Add(".-\x01\x01")
	f.Fuzz(func(t *testing.T, n string) {
		k, err := DecodeKey(n)
		if err == nil && EncodeKey(k) != n {
			t.Fatalf("DecodeKey(%q) = %q does not encode back", n, k)
		}
	})
}
