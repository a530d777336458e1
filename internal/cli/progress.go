package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"golang.org/x/sys/unix"
)

// barWidth is the number of cells inside the brackets on a terminal.
const barWidth = 30

// jobStatus is one observation of a job, whatever its kind.
type jobStatus struct {
	Kind, ID, State, StatusMessage string
	Percent                        float64 // -1: unknown
	Done, Total                    int64   // bytes; 0: unknown
	// ETA is the server's estimate (backup: ExpectedCompletionDate minus
	// now, restore: ExpectedCompletionTimeMinutes); -1: none.
	ETA                 time.Duration
	Created, Completed  time.Time // zero: unknown
	ResultLabel, Result string    // "recovery point", ARN
}

// poller describes a job once; now is the client's current time.
type poller func(ctx context.Context, now time.Time) (jobStatus, error)

// parsePercent parses the API's decimal-string PercentDone ("42.5");
// missing or malformed gives -1.
func parsePercent(s *string) float64 {
	if s == nil {
		return -1
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(*s), 64)
	if err != nil || v < 0 || v > 100 {
		return -1
	}
	return v
}

func backupPoller(cl *backup.Client, id string) poller {
	return func(ctx context.Context, now time.Time) (jobStatus, error) {
		o, err := cl.DescribeBackupJob(ctx, &backup.DescribeBackupJobInput{BackupJobId: aws.String(id)})
		if err != nil {
			return jobStatus{}, err
		}
		s := jobStatus{Kind: "BACKUP", ID: id, State: string(o.State), StatusMessage: aws.ToString(o.StatusMessage),
			Percent: parsePercent(o.PercentDone), Done: aws.ToInt64(o.BytesTransferred), Total: aws.ToInt64(o.BackupSizeInBytes),
			ETA: -1, Created: aws.ToTime(o.CreationDate), Completed: aws.ToTime(o.CompletionDate),
			ResultLabel: "recovery point", Result: aws.ToString(o.RecoveryPointArn)}
		if o.ExpectedCompletionDate != nil {
			if d := o.ExpectedCompletionDate.Sub(now); d >= 0 {
				s.ETA = d
			} else {
				s.ETA = 0
			}
		}
		return s, nil
	}
}

func restorePoller(cl *backup.Client, id string) poller {
	return func(ctx context.Context, now time.Time) (jobStatus, error) {
		o, err := cl.DescribeRestoreJob(ctx, &backup.DescribeRestoreJobInput{RestoreJobId: aws.String(id)})
		if err != nil {
			return jobStatus{}, err
		}
		s := jobStatus{Kind: "RESTORE", ID: id, State: string(o.Status), StatusMessage: aws.ToString(o.StatusMessage),
			Percent: parsePercent(o.PercentDone), Total: aws.ToInt64(o.BackupSizeInBytes), ETA: -1,
			Created: aws.ToTime(o.CreationDate), Completed: aws.ToTime(o.CompletionDate),
			ResultLabel: "created resource", Result: aws.ToString(o.CreatedResourceArn)}
		// The restore API reports no byte count: derive it from the percent.
		if s.Percent >= 0 && s.Total > 0 {
			s.Done = int64(s.Percent / 100 * float64(s.Total))
		}
		if o.ExpectedCompletionTimeMinutes != nil && *o.ExpectedCompletionTimeMinutes >= 0 {
			s.ETA = time.Duration(*o.ExpectedCompletionTimeMinutes) * time.Minute
		}
		return s, nil
	}
}

func copyPoller(cl *backup.Client, id string) poller {
	return func(ctx context.Context, now time.Time) (jobStatus, error) {
		o, err := cl.DescribeCopyJob(ctx, &backup.DescribeCopyJobInput{CopyJobId: aws.String(id)})
		if err != nil {
			return jobStatus{}, err
		}
		j := o.CopyJob
		if j == nil {
			return jobStatus{}, fmt.Errorf("copy job %s: empty DescribeCopyJob response", id)
		}
		return jobStatus{Kind: "COPY", ID: id, State: string(j.State), StatusMessage: aws.ToString(j.StatusMessage),
			Percent: -1, Total: aws.ToInt64(j.BackupSizeInBytes), ETA: -1,
			Created: aws.ToTime(j.CreationDate), Completed: aws.ToTime(j.CompletionDate),
			ResultLabel: "recovery point", Result: aws.ToString(j.DestinationRecoveryPointArn)}, nil
	}
}

// terminal reports whether a job state is final (backup, restore and copy
// states share these names).
func terminal(state string) bool {
	switch state {
	case "COMPLETED", "FAILED", "ABORTED", "EXPIRED", "PARTIAL":
		return true
	}
	return false
}

// rateMeter computes the observed transfer rate since the first sample.
type rateMeter struct {
	t0    time.Time
	done0 int64
	set   bool
}

// observe records a sample and returns the rate in bytes/s (0: unknown).
func (m *rateMeter) observe(now time.Time, done int64) float64 {
	if !m.set || done < m.done0 {
		m.t0, m.done0, m.set = now, done, true
		return 0
	}
	dt := now.Sub(m.t0).Seconds()
	if dt <= 0 || done == m.done0 {
		return 0
	}
	return float64(done-m.done0) / dt
}

// eta picks the server's estimate, else the one computed from the rate;
// -1 when neither is known.
func eta(s jobStatus, rate float64) time.Duration {
	if s.ETA >= 0 {
		return s.ETA
	}
	if rate > 0 && s.Total > 0 && s.Done <= s.Total {
		return time.Duration(float64(s.Total-s.Done) / rate * float64(time.Second))
	}
	return -1
}

// watch polls p until the job reaches a terminal state, drawing progress,
// and prints the final line. A job that ends other than COMPLETED is a
// *jobFailedError.
func (c *cmd) watch(ctx context.Context, p poller) error {
	var meter rateMeter
	start := c.opts.Clock.Now()
	var lastState string
	var lastPrint time.Time
	drawn := false
	for {
		now := c.opts.Clock.Now()
		s, err := p(ctx, now)
		if err != nil {
			if drawn && c.tty {
				fmt.Fprintln(c.stdout)
			}
			return err
		}
		rate := meter.observe(now, s.Done)
		left := eta(s, rate)
		if s.State == "COMPLETED" {
			left = 0
		}
		line := renderBar(barWidth, s.Percent, s.Done, s.Total, rate, left, s.State)
		if terminal(s.State) {
			// The last observation is drawn too, so a log shows the
			// final byte counts even of a job that ended between polls.
			if c.tty {
				fmt.Fprintf(c.stdout, "\r%s\x1b[K\n", line)
			} else {
				fmt.Fprintln(c.stdout, line)
			}
			fmt.Fprintln(c.stdout, finalLine(s, now.Sub(start)))
			if s.State != "COMPLETED" {
				return &jobFailedError{state: s.State}
			}
			return nil
		}
		if c.tty {
			fmt.Fprintf(c.stdout, "\r%s\x1b[K", line)
			drawn = true
		} else if s.State != lastState || now.Sub(lastPrint) >= c.opts.PlainInterval {
			fmt.Fprintln(c.stdout, line)
			lastPrint = now
		}
		lastState = s.State
		if err := c.opts.Sleep(ctx, c.opts.PollInterval); err != nil {
			if drawn && c.tty {
				fmt.Fprintln(c.stdout)
			}
			return fmt.Errorf("stopped watching %s job %s, which goes on in the server (coffer jobs watch %s): %w", s.Kind, s.ID, s.ID, err)
		}
	}
}

// finalLine summarizes a finished job: state, duration, status message and
// the created resource or recovery point. elapsed is used when the server
// gave no creation and completion dates.
func finalLine(s jobStatus, elapsed time.Duration) string {
	d := elapsed
	if !s.Created.IsZero() && !s.Completed.IsZero() && !s.Completed.Before(s.Created) {
		d = s.Completed.Sub(s.Created)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s job %s %s in %s", s.Kind, s.ID, s.State, fmtDuration(d))
	if s.StatusMessage != "" {
		fmt.Fprintf(&b, "; %s", s.StatusMessage)
	}
	if s.Result != "" {
		fmt.Fprintf(&b, "; %s %s", s.ResultLabel, s.Result)
	}
	return b.String()
}

// renderBar renders one progress line: a bar of width cells, the percent,
// bytes done / total, the rate, the ETA and the state. Unknown values
// (percent < 0, total/done/rate <= 0, eta < 0) are left out or shown as
// "--".
func renderBar(width int, percent float64, done, total int64, rate float64, eta time.Duration, state string) string {
	var b strings.Builder
	if width > 0 {
		b.WriteByte('[')
		switch {
		case percent < 0:
			b.WriteString(strings.Repeat(" ", width))
		default:
			filled := min(int(percent/100*float64(width)), width)
			b.WriteString(strings.Repeat("=", filled))
			if filled < width {
				b.WriteByte('>')
				b.WriteString(strings.Repeat(" ", width-filled-1))
			}
		}
		b.WriteString("] ")
	}
	if percent < 0 {
		b.WriteString(" --.-%")
	} else {
		fmt.Fprintf(&b, "%5.1f%%", min(percent, 100))
	}
	switch {
	case total > 0:
		fmt.Fprintf(&b, "  %s / %s", humanBytes(done), humanBytes(total))
	case done > 0:
		fmt.Fprintf(&b, "  %s", humanBytes(done))
	}
	if rate > 0 {
		fmt.Fprintf(&b, "  %s/s", humanBytes(int64(rate)))
	}
	if eta >= 0 {
		fmt.Fprintf(&b, "  ETA %s", fmtDuration(eta))
	} else {
		b.WriteString("  ETA --:--")
	}
	b.WriteString("  ")
	b.WriteString(state)
	return b.String()
}

// humanBytes formats n with binary units: one decimal below 10 units,
// none above ("512 B", "1.2 GiB", "38 MiB").
func humanBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n) / 1024
	u := 0
	for v >= 1024 && u < len(units)-1 {
		v /= 1024
		u++
	}
	if v < 9.95 {
		return fmt.Sprintf("%.1f %s", v, units[u])
	}
	return fmt.Sprintf("%.0f %s", v, units[u])
}

// fmtDuration formats d as m:ss or h:mm:ss, rounded to seconds.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	sec := int64(d.Round(time.Second) / time.Second)
	h, m, s := sec/3600, sec/60%60, sec%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
