package api

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"coffer/internal/clock"
	"coffer/internal/store/sqlite"
	"coffer/internal/testutil/stack"
)

// FuzzPlanDocument drives arbitrary plan documents through
// GetBackupPlanFromJSON and arbitrary bodies through CreateBackupPlan and
// CreateBackupSelection: never a panic, never a 5xx.
func FuzzPlanDocument(f *testing.F) {
	for _, s := range []string{
		`{"BackupPlanName":"p","Rules":[{"RuleName":"r","TargetBackupVaultName":"v1","ScheduleExpression":"cron(0 5 ? * * *)"}]}`,
		`{"BackupPlan":{"BackupPlanName":"p","Rules":[{"RuleName":"r","TargetBackupVaultName":"v1","CopyActions":[{"DestinationBackupVaultArn":"arn:aws:backup:us-east-1:111111111111:backup-vault:v2","Lifecycle":{"DeleteAfterDays":-1}}]}]}}`,
		`{"BackupPlanName":"p","Rules":[{"RuleName":"r","TargetBackupVaultName":"v1","ScheduleExpression":"cron(0 6 15W * ? 2030/5)","ScheduleExpressionTimezone":"Asia/Kolkata"}]}`,
		`{"BackupPlanName":"p","Rules":[{"RuleName":"r","TargetBackupVaultName":"v1","StartWindowMinutes":1e99}]}`,
		`{"BackupPlanName":"p","Rules":null,"AdvancedBackupSettings":[{"ResourceType":"EFS","BackupOptions":{"a":"b"}}]}`,
		`[]`, `null`, `{"BackupPlan":1}`,
	} {
		f.Add([]byte(s))
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "meta.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	stk, err := stack.Build(stack.Options{Store: st, Clock: clk})
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Region: "us-east-1", AccountOf: map[string]string{}, TokenKey: bytes.Repeat([]byte{1}, 32)},
		Deps{Clock: clk, Auth: noAuth{}, Service: stk.Service})
	if err != nil {
		f.Fatal(err)
	}
	id := Identity{AccountID: "111111111111", Region: "us-east-1"}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 64<<10 {
			return
		}
		wrapped, _ := json.Marshal(map[string]string{"BackupPlanTemplateJson": string(doc)})
		for _, r := range []struct {
			method, path string
			body         []byte
		}{
			{"POST", "/backup/template/json/toPlan", wrapped},
			{"PUT", "/backup/plans/", append(append([]byte(`{"BackupPlan":`), doc...), '}')},
			{"PUT", "/backup/plans/p1/selections/", append(append([]byte(`{"BackupSelection":`), doc...), '}')},
		} {
			_, _, err := s.dispatch(context.Background(), id, r.method, r.path, "", r.body)
			if err != nil {
				if e, ok := toError(err); !ok || e.Status >= 500 {
					t.Fatalf("%s %s %q: %v", r.method, r.path, r.body, err)
				}
			}
		}
	})
}
