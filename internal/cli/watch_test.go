package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"coffer/internal/clock"
)

// scripted returns a poller replaying states; each Sleep advances the fake
// clock by the poll interval.
func scripted(states []jobStatus) poller {
	i := 0
	return func(ctx context.Context, now time.Time) (jobStatus, error) {
		s := states[min(i, len(states)-1)]
		i++
		return s, nil
	}
}

func TestWatch(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	running := func(pct float64, done int64) jobStatus {
		return jobStatus{Kind: "BACKUP", ID: "j1", State: "RUNNING", Percent: pct, Done: done, Total: 100 << 20, ETA: -1}
	}
	var states []jobStatus
	states = append(states, jobStatus{Kind: "BACKUP", ID: "j1", State: "PENDING", Percent: 0, Total: 100 << 20, ETA: -1})
	for i := 1; i <= 12; i++ { // 12 polls of 1 s while RUNNING, 5 MiB/s
		states = append(states, running(float64(i*5), int64(i*5)<<20))
	}
	states = append(states, jobStatus{Kind: "BACKUP", ID: "j1", State: "FAILED", StatusMessage: "disk on fire",
		Percent: 60, Done: 60 << 20, Total: 100 << 20, ETA: -1, Created: t0, Completed: t0.Add(13 * time.Second)})

	for _, tty := range []bool{false, true} {
		fake := clock.NewFake(t0)
		var out bytes.Buffer
		c := &cmd{stdout: &out, tty: tty, opts: Options{Clock: fake, PollInterval: time.Second, PlainInterval: 5 * time.Second,
			Sleep: func(ctx context.Context, d time.Duration) error { fake.Advance(d); return nil }}}
		err := c.watch(context.Background(), scripted(states))
		var jf *jobFailedError
		if !errors.As(err, &jf) || jf.state != "FAILED" {
			t.Fatalf("tty=%v: err %v", tty, err)
		}
		got := out.String()
		final := "BACKUP job j1 FAILED in 0:13; disk on fire\n"
		if !strings.HasSuffix(got, final) {
			t.Fatalf("tty=%v: no final line in %q", tty, got)
		}
		if tty {
			// One redraw per poll, the terminal one ended by a newline.
			if n := strings.Count(got, "\r"); n != len(states) {
				t.Fatalf("%d redraws, want %d: %q", n, len(states), got)
			}
			if !strings.Contains(got, "\r[===============>              ]  50.0%  50 MiB / 100 MiB  5.0 MiB/s  ETA 0:10  RUNNING\x1b[K") {
				t.Fatalf("no 50%% redraw in %q", got)
			}
			continue
		}
		lines := strings.Split(strings.TrimSuffix(got, final), "\n")
		lines = lines[:len(lines)-1]
		// PENDING (t=0), RUNNING (state change, t=1), RUNNING at t=6 and
		// t=11 (5 s later each), the terminal FAILED observation.
		want := []string{"PENDING", "5.0%", "30.0%", "55.0%", "FAILED"}
		if len(lines) != len(want) {
			t.Fatalf("plain lines:\n%s", strings.Join(lines, "\n"))
		}
		for i, w := range want {
			if strings.Contains(lines[i], "\r") || !strings.Contains(lines[i], w) {
				t.Fatalf("line %d %q, want %q", i, lines[i], w)
			}
		}
	}
}

func TestWatchInterrupted(t *testing.T) {
	c := &cmd{stdout: &bytes.Buffer{}, opts: Options{Clock: clock.NewFake(time.Unix(0, 0)), PollInterval: time.Second, PlainInterval: time.Second,
		Sleep: func(context.Context, time.Duration) error { return context.Canceled }}}
	err := c.watch(context.Background(), scripted([]jobStatus{{Kind: "RESTORE", ID: "r9", State: "RUNNING", Percent: -1, ETA: -1}}))
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "coffer jobs watch r9") {
		t.Fatal(err)
	}
}

func TestWatchPollError(t *testing.T) {
	c := &cmd{stdout: &bytes.Buffer{}, opts: Options{Clock: clock.NewFake(time.Unix(0, 0)), PollInterval: time.Second, PlainInterval: time.Second,
		Sleep: func(context.Context, time.Duration) error { return nil }}}
	boom := errors.New("boom")
	err := c.watch(context.Background(), func(context.Context, time.Time) (jobStatus, error) { return jobStatus{}, boom })
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	// /dev/null is a character device but not a terminal.
	for _, w := range []io.Writer{&bytes.Buffer{}, f, null} {
		if isTerminal(w) {
			t.Fatalf("%T reported as a terminal", w)
		}
	}
}
