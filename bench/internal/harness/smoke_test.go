package harness

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"coffer/internal/testutil"
)

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestSmoke runs the whole harness once on a tiny dataset (mkdata -scale
// 0.005, about 12 MiB): build coffer-direct, coffer and mkdata, generate,
// three backups, restore, verification, baselines, report. Coffer runs both
// as coffer-direct and as coffer-api (`coffer serve` driven through the
// API).
//
// The go tool and the mkdata generator (../shared/bench/mkdata from the
// repository root) are required: skipped on a laptop without them, a
// failure in CI. restic and borg are benchmark peers, not part of Coffer's
// test tooling: the test includes each one only when it is installed, in CI
// too, so a machine without them still checks the harness and Coffer.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("smoke test builds two programs and runs every tool; skipped with -short")
	}
	testutil.RequireTool(t, "go")
	root, err := FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LocateMkdata(root, ""); err != nil {
		testutil.SkipOrFail(t, "%v", err)
	}
	tools := []string{"coffer", "coffer-api"}
	for _, peer := range []string{"restic", "borg"} {
		if _, err := exec.LookPath(peer); err == nil {
			tools = append(tools, peer)
		} else {
			t.Logf("%s not installed: left out of the smoke test", peer)
		}
	}
	work := filepath.Join(t.TempDir(), "work")
	res, err := Run(context.Background(), Config{
		// Two rounds asked for, but a 1 ns budget stops after the first.
		RepoRoot: root, Scale: 0.005, Seed: 7, ChangePct: 2, Rounds: 2, Budget: time.Nanosecond,
		WorkDir: work, Tools: tools, Baselines: true,
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	if err := res.WriteMarkdown(&report); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + report.String())

	if res.VerificationFailed() {
		t.Fatal("a tool failed or a restore lost data")
	}
	if res.Dataset.Files < 100 || res.Dataset.Bytes < 5<<20 || res.Dataset.ChangeBytes == 0 {
		t.Errorf("dataset %+v", res.Dataset)
	}
	if len(res.Rounds) != 1 || !strings.Contains(res.StoppedEarly, "stopped after 1 of 2 rounds") {
		t.Fatalf("%d rounds, stopped early: %q", len(res.Rounds), res.StoppedEarly)
	}
	rd := res.Rounds[0]
	if rd.Paired == nil || rd.Paired.Wall <= 0 || !rd.PairedBefore {
		t.Errorf("round 1: no cp -r measured right before coffer's restore: %+v", rd.Paired)
	}
	if !strings.Contains(report.String(), "right next to coffer's restore") {
		t.Error("report lacks the paired restore ratio")
	}
	for _, name := range tools {
		for op := OpInitial; op < numOps; op++ {
			if !rd.Done[name][op] || rd.Samples[name][op].Wall <= 0 || rd.Samples[name][op].MaxRSS <= 0 {
				t.Errorf("%s %s: done %v, sample %+v", name, opLabel(op, 2), rd.Done[name][op], rd.Samples[name][op])
			}
		}
		if rd.RepoSize[name] <= 0 {
			t.Errorf("%s repository size %d", name, rd.RepoSize[name])
		}
	}
	// Coffer must restore faithfully, metadata included; the peers only
	// need to be right about data for the harness to be trusted.
	for _, name := range []string{"coffer", "coffer-api"} {
		if d := rd.Verify[name]; !d.OK() {
			t.Errorf("%s restore: %s %v", name, d.Summary(), d.Examples)
		}
	}
	// The server's CPU time is measured (10 ms ticks: the initial backup
	// of 12 MiB takes more than one).
	if s := rd.Samples["coffer-api"][OpInitial]; s.User+s.Sys <= 0 || s.Floored() {
		t.Errorf("coffer-api initial backup sample %+v", s)
	}
	for _, name := range []string{"cp -r", "cp -r --reflink=never", "tar read"} {
		if rd.Baselines[name].Wall <= 0 {
			t.Errorf("baseline %s not measured", name)
		}
	}
	for _, want := range []string{"| initial backup |", "| 2% change backup |", "| full restore |", "| repository size |",
		"| restore verification | OK | OK |", "| cp -r |", "stopped after 1 of 2 rounds", "coffer/coffer-api |",
		"peak memory = server VmHWM", "(server VmHWM)"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Errorf("work directory left behind: %v", err)
	}
}
