package harness

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %g, want %g", tc.in, got, tc.want)
		}
	}
}

// fakeRound builds a round where every tool took wall seconds for every
// operation.
func fakeRound(walls map[string]float64) Round {
	rd := Round{Samples: map[string]*[numOps]Sample{}, Done: map[string]*[numOps]bool{},
		RepoSize: map[string]int64{}, Verify: map[string]Diff{}, Failed: map[string]error{},
		Baselines: map[string]Sample{"cp -r": {Wall: 2 * time.Second}}}
	for _, name := range []string{"coffer", "restic", "borg"} {
		rd.Order = append(rd.Order, name)
		s := &[numOps]Sample{}
		d := &[numOps]bool{}
		for op := range s {
			s[op] = Sample{Wall: time.Duration(walls[name] * float64(time.Second)), MaxRSS: int64(walls[name]) << 20}
			d[op] = true
		}
		rd.Samples[name], rd.Done[name] = s, d
		rd.RepoSize[name] = 100 << 20
		rd.Verify[name] = Diff{}
	}
	return rd
}

func TestWriteMarkdownRatiosAndMedians(t *testing.T) {
	res := &Results{Tools: []string{"coffer", "restic", "borg"}, Baselines: []string{"cp -r"},
		Dataset: DatasetInfo{ChangePct: 1}}
	res.Rounds = []Round{
		fakeRound(map[string]float64{"coffer": 1, "restic": 4, "borg": 8}),
		fakeRound(map[string]float64{"coffer": 3, "restic": 4, "borg": 8}),
		fakeRound(map[string]float64{"coffer": 2, "restic": 4, "borg": 8}),
	}
	var b bytes.Buffer
	if err := res.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| | coffer | restic | borg | coffer/restic | coffer/borg |",
		"| initial backup | 2.00 s | 4.00 s | 8.00 s | 0.50× | 0.25× |",
		"| 1% change backup | 2.00 s |",
		"| repository size | 100.0 MiB | 100.0 MiB | 100.0 MiB | 1.00× | 1.00× |",
		"| peak memory (max over operations) | 2.0 MiB | 4.0 MiB | 8.0 MiB | 0.50× | 0.25× |",
		"| restore verification | OK | OK | OK |",
		"| cp -r | 2.00 s | 1.00× |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if res.VerificationFailed() || strings.Contains(out, "!!!") {
		t.Error("clean results reported as failed")
	}
}

func TestWriteMarkdownShoutsAboutBadRestores(t *testing.T) {
	tests := []struct {
		name   string
		modify func(rd *Round)
		want   []string
		failed bool
	}{
		{"data mismatch", func(rd *Round) {
			rd.Verify["restic"] = Diff{Content: 2, Examples: []string{"x: content differs (SHA-256)"}}
		}, []string{"**DATA MISMATCH: 2 content**", "!!! VERIFICATION OR TOOL FAILURE", "x: content differs"}, true},
		{"metadata only", func(rd *Round) {
			rd.Verify["borg"] = Diff{MTime: 1, Examples: []string{"d: mtime 1, restored 2"}}
		}, []string{"metadata mismatch: 1 mtime", "d: mtime 1, restored 2"}, false},
		{"tool failure", func(rd *Round) {
			rd.Failed["coffer"] = errors.New("full restore: boom\nstderr tail")
			rd.Done["coffer"][OpRestore] = false
			delete(rd.Verify, "coffer")
		}, []string{"| full restore | not measured |", "round 1, coffer FAILED: full restore: boom", "!!! VERIFICATION OR TOOL FAILURE"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd := fakeRound(map[string]float64{"coffer": 1, "restic": 2, "borg": 3})
			tc.modify(&rd)
			res := &Results{Tools: []string{"coffer", "restic", "borg"}, Dataset: DatasetInfo{ChangePct: 1}, Rounds: []Round{rd}}
			var b bytes.Buffer
			if err := res.WriteMarkdown(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, b.String())
				}
			}
			if got := res.VerificationFailed(); got != tc.failed {
				t.Errorf("VerificationFailed = %v, want %v", got, tc.failed)
			}
		})
	}
}

func TestFlooredRSS(t *testing.T) {
	if s := (Sample{MaxRSS: 55 << 20, RSSFloor: 55 << 20}); !s.Floored() || rssText(s) != "≤ 55.0 MiB" {
		t.Errorf("floored sample: %v %q", s.Floored(), rssText(s))
	}
	if s := (Sample{MaxRSS: 200 << 20, RSSFloor: 55 << 20}); s.Floored() || rssText(s) != "200.0 MiB" {
		t.Errorf("own peak: %v %q", s.Floored(), rssText(s))
	}
}

func TestWriteMarkdownCostsPerOperation(t *testing.T) {
	res := &Results{Tools: []string{"coffer-api", "restic"}, Dataset: DatasetInfo{ChangePct: 1}}
	for _, u := range []float64{1, 3, 2} {
		rd := fakeRound(map[string]float64{})
		rd.Order = []string{"coffer-api", "restic"}
		for name, f := range map[string]float64{"coffer-api": 1, "restic": 4} {
			s, d := &[numOps]Sample{}, &[numOps]bool{}
			for op := range s {
				s[op] = Sample{Wall: time.Second, User: time.Duration(f * u * float64(time.Second)),
					Sys: time.Duration(f * float64(time.Second) / 2), MaxRSS: int64(f*u) << 20}
				d[op] = true
			}
			rd.Samples[name], rd.Done[name] = s, d
		}
		delete(rd.Samples, "coffer")
		delete(rd.Samples, "borg")
		res.Rounds = append(res.Rounds, rd)
	}
	var b bytes.Buffer
	if err := res.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"### CPU and memory per operation",
		// Medians: user 2 and 8 s, sys 0.5 and 2 s, total 2.5 and 10 s.
		"| full restore: CPU user + sys | 2.00 + 0.50 = 2.50 s | 8.00 + 2.00 = 10.00 s | 0.25× |",
		"| initial backup: peak RSS | 2.0 MiB | 8.0 MiB | 0.25× |",
		"| 1% change backup: CPU user + sys |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
