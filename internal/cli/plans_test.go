package cli

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/aws-sdk-go-v2/service/backup/types"

	"coffer/internal/clock"
)

// TestPlansCommand: `coffer plans` against a real `coffer serve` shows
// every rule of every plan with its next run in the rule's time zone (the
// spring-forward day's 02:30 in New York runs at 03:30 EDT).
func TestPlansCommand(t *testing.T) {
	url, _ := startCofferServe(t, t.TempDir())
	ctx := context.Background()
	c := backup.New(backup.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider(e2eAKID, e2eSecret, ""), RetryMaxAttempts: 1})
	if _, err := c.CreateBackupVault(ctx, &backup.CreateBackupVaultInput{BackupVaultName: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	plan, err := c.CreateBackupPlan(ctx, &backup.CreateBackupPlanInput{BackupPlan: &types.BackupPlanInput{BackupPlanName: aws.String("office"),
		Rules: []types.BackupRuleInput{
			{RuleName: aws.String("nightly"), TargetBackupVaultName: aws.String("v1"), ScheduleExpression: aws.String("cron(30 2 ? * * *)"),
				ScheduleExpressionTimezone: aws.String("America/New_York")},
			{RuleName: aws.String("weekly"), TargetBackupVaultName: aws.String("v1"), ScheduleExpression: aws.String("cron(0 4 ? * SUN *)"),
				ScheduleExpressionTimezone: aws.String("Europe/Berlin")},
		}}})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AWS_ACCESS_KEY_ID": e2eAKID, "AWS_SECRET_ACCESS_KEY": e2eSecret, "AWS_ENDPOINT_URL": url}
	// Saturday 2026-03-07 12:00 UTC.
	opts := Options{Clock: clock.NewFake(time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC))}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := RunWith(ctx, args, &out, &errb, func(k string) string { return env[k] }, opts)
		return code, out.String(), errb.String()
	}
	code, out, errOut := run("plans")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	id := regexp.QuoteMeta(aws.ToString(plan.BackupPlanId))
	for _, re := range []string{
		`(?m)^PLAN\s+RULE\s+VAULT\s+SCHEDULE\s+TIME ZONE\s+NEXT RUN\s+LAST RUN\s+PLAN ID$`,
		`(?m)^office\s+nightly\s+v1\s+cron\(30 2 \? \* \* \*\)\s+America/New_York\s+2026-03-08T03:30:00-04:00\s+-\s+` + id + `$`,
		`(?m)^office\s+weekly\s+v1\s+cron\(0 4 \? \* SUN \*\)\s+Europe/Berlin\s+2026-03-08T04:00:00\+01:00\s+-\s+` + id + `$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("output does not match %s:\n%s", re, out)
		}
	}
	if code2, out2, _ := run("plans", "list"); code2 != 0 || out2 != out {
		t.Fatalf("plans list differs (%d):\n%s", code2, out2)
	}
	if _, err := c.DeleteBackupPlan(ctx, &backup.DeleteBackupPlanInput{BackupPlanId: plan.BackupPlanId}); err != nil {
		t.Fatal(err)
	}
	if _, out, _ := run("plans"); strings.Contains(out, "office") {
		t.Fatalf("a deleted plan is listed:\n%s", out)
	}
	if _, out, _ := run("plans", "--deleted"); !regexp.MustCompile(`(?m)^office\s+nightly\s+.*\sdeleted\s`).MatchString(out) {
		t.Fatalf("--deleted:\n%s", out)
	}
	if code, _, errOut := run("plans", "--bogus"); code != ExitUsage || !strings.Contains(errOut, "usage:") {
		t.Fatalf("bad flag: %d %s", code, errOut)
	}
}
