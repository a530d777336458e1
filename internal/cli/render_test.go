package cli

import (
	"testing"
	"time"
)

func TestRenderBar(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name        string
		width       int
		percent     float64
		done, total int64
		rate        float64
		eta         time.Duration
		state       string
		want        string
	}{
		{"example", 18, 42.5, 1288490188, 3113851289, 38 << 20, 45 * time.Second, "RUNNING",
			"[=======>          ]  42.5%  1.2 GiB / 2.9 GiB  38 MiB/s  ETA 0:45  RUNNING"},
		{"zero", 10, 0, 0, 4096, 0, -1, "PENDING",
			"[>         ]   0.0%  0 B / 4.0 KiB  ETA --:--  PENDING"},
		{"full", 10, 100, gib, gib, 0, 0, "RUNNING",
			"[==========] 100.0%  1.0 GiB / 1.0 GiB  ETA 0:00  RUNNING"},
		{"over 100 clamps", 4, 150, 10, 10, 0, -1, "RUNNING",
			"[====] 100.0%  10 B / 10 B  ETA --:--  RUNNING"},
		{"unknown percent", 4, -1, 5 << 20, 0, 1 << 20, -1, "RUNNING",
			"[    ]  --.-%  5.0 MiB  1.0 MiB/s  ETA --:--  RUNNING"},
		{"no bar", 0, 7.25, 0, 0, 0, 90 * time.Minute, "RUNNING",
			"  7.2%  ETA 1:30:00  RUNNING"},
		{"one below full", 10, 99.9, 999, 1000, 12.5, 80 * time.Second, "RUNNING",
			"[=========>]  99.9%  999 B / 1000 B  12 B/s  ETA 1:20  RUNNING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderBar(tt.width, tt.percent, tt.done, tt.total, tt.rate, tt.eta, tt.state)
			if got != tt.want {
				t.Fatalf("renderBar\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {10 * 1024, "10 KiB"}, {1536 << 10, "1.5 MiB"},
		{38 << 20, "38 MiB"}, {1 << 40, "1.0 TiB"}, {1<<62 + 1<<61, "6.0 EiB"},
	} {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0:00"}, {-time.Second, "0:00"}, {45 * time.Second, "0:45"}, {61500 * time.Millisecond, "1:02"},
		{time.Hour + 2*time.Minute + 3*time.Second, "1:02:03"},
	} {
		if got := fmtDuration(tt.d); got != tt.want {
			t.Errorf("fmtDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParsePercent(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tt := range []struct {
		in   *string
		want float64
	}{{nil, -1}, {s("42.5"), 42.5}, {s("0.0"), 0}, {s("100.0"), 100}, {s("abc"), -1}, {s("-3"), -1}, {s("101"), -1}, {s(" 7 "), 7}} {
		if got := parsePercent(tt.in); got != tt.want {
			t.Errorf("parsePercent(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestETAAndRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var m rateMeter
	if r := m.observe(t0, 100); r != 0 {
		t.Fatalf("first sample rate %v", r)
	}
	r := m.observe(t0.Add(2*time.Second), 300)
	if r != 100 {
		t.Fatalf("rate %v, want 100", r)
	}
	if got := eta(jobStatus{Done: 300, Total: 1300, ETA: -1}, r); got != 10*time.Second {
		t.Fatalf("computed eta %v", got)
	}
	if got := eta(jobStatus{Done: 300, Total: 1300, ETA: time.Minute}, r); got != time.Minute {
		t.Fatalf("server eta not preferred: %v", got)
	}
	if got := eta(jobStatus{Done: 300, ETA: -1}, r); got != -1 {
		t.Fatalf("eta without total %v", got)
	}
	// A restarted counter resets the meter.
	if r := m.observe(t0.Add(3*time.Second), 50); r != 0 {
		t.Fatalf("rate after reset %v", r)
	}
}

func TestFinalLine(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := jobStatus{Kind: "BACKUP", ID: "j1", State: "COMPLETED", Created: t0, Completed: t0.Add(75 * time.Second),
		ResultLabel: "recovery point", Result: "arn:aws:backup:us-east-1:111111111111:recovery-point:x"}
	if got, want := finalLine(s, time.Hour), "BACKUP job j1 COMPLETED in 1:15; recovery point arn:aws:backup:us-east-1:111111111111:recovery-point:x"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
	f := jobStatus{Kind: "RESTORE", ID: "r1", State: "FAILED", StatusMessage: "disk full"}
	if got, want := finalLine(f, 3*time.Second), "RESTORE job r1 FAILED in 0:03; disk full"; got != want {
		t.Fatalf("got %q want %q", got, want)
	}
}
