package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"

	"coffer/internal/scheduler/cron"
)

// plansList prints every rule of every backup plan with its schedule, the
// time of its next run (in the rule's time zone) and the plan's last run.
// Next runs are computed from the rule's cron expression and zone with the
// server's own schedule code (internal/scheduler/cron) at the client's
// clock.
func (c *cmd) plansList(ctx context.Context, args []string) error {
	fs := c.flags("plans")
	deleted := fs.Bool("deleted", false, "include deleted plans")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cl, err := c.api()
	if err != nil {
		return err
	}
	now := c.opts.Clock.Now()
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLAN\tRULE\tVAULT\tSCHEDULE\tTIME ZONE\tNEXT RUN\tLAST RUN\tPLAN ID")
	p := backup.NewListBackupPlansPaginator(cl, &backup.ListBackupPlansInput{IncludeDeleted: aws.Bool(*deleted)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, m := range out.BackupPlansList {
			plan, err := cl.GetBackupPlan(ctx, &backup.GetBackupPlanInput{BackupPlanId: m.BackupPlanId})
			if err != nil {
				return err
			}
			last := fmtTime(plan.LastExecutionDate)
			for _, r := range plan.BackupPlan.Rules {
				var next string
				switch {
				case plan.DeletionDate != nil:
					next = "deleted"
				default:
					if s, err := cron.Parse(aws.ToString(r.ScheduleExpression), aws.ToString(r.ScheduleExpressionTimezone)); err != nil {
						next = "invalid schedule"
					} else if t, ok := s.Next(now); ok {
						next = t.In(s.Location()).Format(time.RFC3339)
					} else {
						next = "never"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", aws.ToString(plan.BackupPlan.BackupPlanName), aws.ToString(r.RuleName),
					aws.ToString(r.TargetBackupVaultName), aws.ToString(r.ScheduleExpression), aws.ToString(r.ScheduleExpressionTimezone),
					next, last, aws.ToString(plan.BackupPlanId))
			}
		}
	}
	return tw.Flush()
}
