package model

import "testing"

func TestLoad(t *testing.T) {
	m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Operations) < 100 {
		t.Fatalf("only %d operations", len(m.Operations))
	}
	vn := m.Shapes["BackupVaultName"]
	for _, tc := range []struct {
		in   string
		want bool
	}{{"v1", true}, {"a_b-c", true}, {"a b", false}, {"x", false}, {"a.b", false}} {
		if got := vn.Compiled.MatchString(tc.in); got != tc.want {
			t.Errorf("BackupVaultName %q = %v", tc.in, got)
		}
	}
}
