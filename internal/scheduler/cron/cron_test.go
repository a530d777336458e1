package cron

import (
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestParseTable parses every expression and, for valid ones, checks the
// next occurrences after a fixed instant (UTC unless tz is set); invalid
// ones must fail with a message naming the problem.
func TestParseTable(t *testing.T) {
	// Thursday 2026-01-15 10:07 UTC.
	from := utc("2026-01-15 10:07")
	tests := []struct {
		expr string
		tz   string
		next []string // wall-clock times in tz, "2006-01-02 15:04"
		err  string   // substring of the error
	}{
		// Valid: every field form.
		{expr: "cron(0 5 ? * * *)", next: []string{"2026-01-16 05:00", "2026-01-17 05:00"}},
		{expr: "cron(0 12 * * ? *)", next: []string{"2026-01-15 12:00", "2026-01-16 12:00"}},
		{expr: "cron(15 * ? * * *)", next: []string{"2026-01-15 10:15", "2026-01-15 11:15"}},
		{expr: "cron(7 * ? * * *)", next: []string{"2026-01-15 11:07"}},
		{expr: "cron(0 */6 ? * * *)", next: []string{"2026-01-15 12:00", "2026-01-15 18:00", "2026-01-16 00:00"}},
		{expr: "cron(0 1/6 ? * * *)", next: []string{"2026-01-15 13:00", "2026-01-15 19:00", "2026-01-16 01:00"}},
		{expr: "cron(30 8-10 ? * * *)", next: []string{"2026-01-15 10:30", "2026-01-16 08:30"}},
		{expr: "cron(0 8-18/4 ? * * *)", next: []string{"2026-01-15 12:00", "2026-01-15 16:00", "2026-01-16 08:00"}},
		{expr: "cron(0 0,12 ? * * *)", next: []string{"2026-01-15 12:00", "2026-01-16 00:00"}},
		{expr: "cron(0 9 ? * MON-FRI *)", next: []string{"2026-01-16 09:00", "2026-01-19 09:00"}},
		{expr: "cron(0 9 ? * 2-6 *)", next: []string{"2026-01-16 09:00", "2026-01-19 09:00"}},
		{expr: "cron(0 9 ? * mon,wed,fri *)", next: []string{"2026-01-16 09:00", "2026-01-19 09:00", "2026-01-21 09:00"}},
		{expr: "cron(0 9 ? * SUN *)", next: []string{"2026-01-18 09:00", "2026-01-25 09:00"}},
		{expr: "cron(0 9 ? * 1 *)", next: []string{"2026-01-18 09:00"}},
		{expr: "cron(0 9 ? * 7 *)", next: []string{"2026-01-17 09:00"}},
		{expr: "cron(0 9 ? * L *)", next: []string{"2026-01-17 09:00", "2026-01-24 09:00"}},
		{expr: "cron(15 10 ? * 6L *)", next: []string{"2026-01-30 10:15", "2026-02-27 10:15"}},
		{expr: "cron(0 0 ? * FRIL *)", next: []string{"2026-01-30 00:00"}},
		{expr: "cron(0 3 ? * 3#2 *)", next: []string{"2026-02-10 03:00", "2026-03-10 03:00"}},
		{expr: "cron(0 3 ? * TUE#2 *)", next: []string{"2026-02-10 03:00"}},
		{expr: "cron(0 3 ? * 5#3 *)", next: []string{"2026-01-15 03:00 +", "2026-02-19 03:00"}},
		{expr: "cron(0 3 ? * 1#5 *)", next: []string{"2026-03-29 03:00", "2026-05-31 03:00"}},
		{expr: "cron(0 3 ? * 2#1,6#3 *)", next: []string{"2026-01-16 03:00", "2026-02-02 03:00", "2026-02-20 03:00"}},
		{expr: "cron(0 0 1 * ? *)", next: []string{"2026-02-01 00:00", "2026-03-01 00:00"}},
		{expr: "cron(0 0 1,15 * ? *)", next: []string{"2026-02-01 00:00", "2026-02-15 00:00"}},
		{expr: "cron(0 0 10-20/5 * ? *)", next: []string{"2026-01-20 00:00", "2026-02-10 00:00"}},
		{expr: "cron(0 0 */10 * ? *)", next: []string{"2026-01-21 00:00", "2026-01-31 00:00", "2026-02-01 00:00"}},
		{expr: "cron(0 23 L * ? *)", next: []string{"2026-01-31 23:00", "2026-02-28 23:00", "2026-03-31 23:00"}},
		{expr: "cron(0 23 L-2 * ? *)", next: []string{"2026-01-29 23:00", "2026-02-26 23:00"}},
		{expr: "cron(0 23 LW * ? *)", next: []string{"2026-01-30 23:00", "2026-02-27 23:00", "2026-03-31 23:00"}},
		{expr: "cron(0 6 15W * ? *)", next: []string{"2026-01-15 06:00 +", "2026-02-16 06:00", "2026-03-16 06:00"}},
		{expr: "cron(0 6 1W * ? *)", next: []string{"2026-02-02 06:00", "2026-03-02 06:00"}},
		{expr: "cron(0 6 31W * ? *)", next: []string{"2026-01-30 06:00", "2026-03-31 06:00"}},
		{expr: "cron(0 6 30 * ? *)", next: []string{"2026-01-30 06:00", "2026-03-30 06:00"}},
		{expr: "cron(0 0 29 2 ? *)", next: []string{"2028-02-29 00:00", "2032-02-29 00:00"}},
		{expr: "cron(0 0 L 2 ? *)", next: []string{"2026-02-28 00:00", "2027-02-28 00:00", "2028-02-29 00:00"}},
		{expr: "cron(0 0 1 JAN ? *)", next: []string{"2027-01-01 00:00"}},
		{expr: "cron(0 0 1 jan-mar ? *)", next: []string{"2026-02-01 00:00", "2026-03-01 00:00", "2027-01-01 00:00"}},
		{expr: "cron(0 0 1 */3 ? *)", next: []string{"2026-04-01 00:00", "2026-07-01 00:00"}},
		{expr: "cron(0 0 1 6 ? 2027)", next: []string{"2027-06-01 00:00"}},
		{expr: "cron(0 0 1 6 ? 2027-2028)", next: []string{"2027-06-01 00:00", "2028-06-01 00:00"}},
		{expr: "cron(0 0 1 1 ? 2030/5)", next: []string{"2030-01-01 00:00", "2035-01-01 00:00"}},
		{expr: "cron(0 0 1 1 ? 2026,2199)", next: []string{"2199-01-01 00:00"}},
		{expr: "cron(00 05 ? * * *)", next: []string{"2026-01-16 05:00"}},
		{expr: "  cron(0 5 ? * * *)  ", next: []string{"2026-01-16 05:00"}},
		{expr: "cron(0  5  ?  *  *  *)", next: []string{"2026-01-16 05:00"}},
		{expr: "cron(0 5 ? * * *)", tz: "Asia/Kolkata", next: []string{"2026-01-16 05:00"}},
		{expr: "cron(0 5 ? * * *)", tz: "UTC", next: []string{"2026-01-16 05:00"}},
		{expr: "cron(0 0 ? * MON *)", tz: "Pacific/Auckland", next: []string{"2026-01-19 00:00"}},
		{expr: "cron(0 0 1 1 ? 2026)", next: nil}, // only a past year: never again

		// Invalid: clear messages.
		{expr: "", err: "is not a cron expression"},
		{expr: "0 5 * * ? *", err: "is not a cron expression"},
		{expr: "rate(1 hour)", err: "rate expressions are not supported"},
		{expr: "cron(0 5 * * ?)", err: "has 5"},
		{expr: "cron(0 0 5 * * ? *)", err: "has 7"},
		{expr: "cron()", err: "has 0"},
		{expr: "cron(0 5 * * * *)", err: "cannot both be specified"},
		{expr: "cron(0 5 1 * MON *)", err: "cannot both be specified"},
		{expr: "cron(0 5 ? * ? *)", err: "cannot both be ?"},
		{expr: "cron(60 5 ? * * *)", err: "60 is out of range in the minutes field (0-59)"},
		{expr: "cron(0 24 ? * * *)", err: "24 is out of range in the hours field (0-23)"},
		{expr: "cron(0 5 32 * ? *)", err: "32 is out of range in the day-of-month field (1-31)"},
		{expr: "cron(0 5 0 * ? *)", err: "0 is out of range in the day-of-month field"},
		{expr: "cron(0 5 1 13 ? *)", err: "13 is out of range in the month field (1-12)"},
		{expr: "cron(0 5 ? * 8 *)", err: "8 is out of range in the day-of-week field (1-7)"},
		{expr: "cron(0 5 ? * 0 *)", err: "0 is out of range in the day-of-week field"},
		{expr: "cron(0 5 ? * * 1969)", err: "1969 is out of range in the year field (1970-2199)"},
		{expr: "cron(0 5 ? * * 2200)", err: "out of range in the year field"},
		{expr: "cron(* 5 ? * * *)", err: "names 60 minutes"},
		{expr: "cron(0/15 * ? * * *)", err: "more often than once an hour"},
		{expr: "cron(0,30 * ? * * *)", err: "names 2 minutes"},
		{expr: "cron(0 5 ? FOO * *)", err: `"FOO" is not a value of the month field`},
		{expr: "cron(0 5 ? * FUN *)", err: `"FUN" is not a value of the day-of-week field`},
		{expr: "cron(a 5 ? * * *)", err: `"a" is not a number in the minutes field`},
		{expr: "cron(0 10-2 ? * * *)", err: "goes backwards"},
		{expr: "cron(0 */0 ? * * *)", err: "increment must be between 1 and 24"},
		{expr: "cron(0 */x ? * * *)", err: "increment after / must be a number"},
		{expr: "cron(0 5 ? * MON/2 *)", err: "does not take / increments"},
		{expr: "cron(0 5 ? * 3#6 *)", err: "between 1 and 5"},
		{expr: "cron(0 5 ? * 3#0 *)", err: "between 1 and 5"},
		{expr: "cron(0 5 ? * 9#2 *)", err: "out of range in the day-of-week field"},
		{expr: "cron(0 5 32W * ? *)", err: "W follows a single day"},
		{expr: "cron(0 5 L-31 * ? *)", err: "L-n takes a number of days between 0 and 30"},
		{expr: "cron(0 5 1#2 * ? *)", err: "# belongs to day-of-week"},
		{expr: "cron(0 5 ? * 2W *)", err: "W belongs to day-of-month"},
		{expr: "cron(0 ? ? * * *)", err: "? is only allowed in the day-of-month and day-of-week fields"},
		{expr: "cron(0 5 ? * * ?)", err: "not in the year field"},
		{expr: "cron(0 5 1, * ? *)", err: "empty value in the day-of-month field"},
		{expr: "cron(-1 5 ? * * *)", err: "empty value in the minutes field"},
		{expr: "cron(+1 5 ? * * *)", err: `"+1" is not a number`},
		{expr: "cron(0 5 ? * * *)", tz: "Mars/Olympus", err: "is not an IANA time zone name"},
		{expr: "cron(0 5 ? * * *)", tz: "Local", err: "is not an IANA time zone name"},
		{expr: "cron(0 5 ? * * *)", tz: "../../etc/passwd", err: "is not an IANA time zone name"},
	}
	if len(tests) < 60 {
		t.Fatalf("table has %d expressions, want at least 60", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.expr+"/"+tc.tz, func(t *testing.T) {
			s, err := Parse(tc.expr, tc.tz)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("Parse(%q) succeeded, want error containing %q", tc.expr, tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%q) error %q, want it to contain %q", tc.expr, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.expr, err)
			}
			after := from
			for _, want := range tc.next {
				// "… +" marks an occurrence at or before `from` (same day)
				// that must be skipped: start the check after it.
				if strings.HasSuffix(want, " +") {
					continue
				}
				got, ok := s.Next(after)
				if !ok {
					t.Fatalf("Next(%s): none, want %s", after, want)
				}
				if g := got.In(s.Location()).Format("2006-01-02 15:04"); g != want {
					t.Fatalf("Next(%s) = %s, want %s", after, g, want)
				}
				after = got
			}
			if tc.next == nil {
				if got, ok := s.Next(after); ok {
					t.Fatalf("Next(%s) = %s, want none", after, got)
				}
			}
		})
	}
}

func inZone(t *testing.T, tz, s string) time.Time {
	t.Helper()
	loc, err := LoadZone(tz)
	if err != nil {
		t.Fatal(err)
	}
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDST checks daily and hourly rules on both transition days of two
// northern zones and one southern zone: a skipped wall-clock time runs at
// the instant it would have had before the jump (once), a repeated one
// runs once, at its first instant.
func TestDST(t *testing.T) {
	tests := []struct {
		name, tz, expr, from string
		want                 []string // UTC instants
	}{
		// New York, spring forward 2026-03-08 02:00 EST → 03:00 EDT.
		{"NY spring daily 02:30", "America/New_York", "cron(30 2 ? * * *)", "2026-03-07 00:00",
			[]string{"2026-03-07 07:30", "2026-03-08 07:30", "2026-03-09 06:30"}},
		// 02:30 EST never happens on 03-08; it runs at 03:30 EDT (07:30 UTC), once.
		{"NY spring hourly :30", "America/New_York", "cron(30 * ? * * *)", "2026-03-08 05:00",
			[]string{"2026-03-08 05:30", "2026-03-08 06:30", "2026-03-08 07:30", "2026-03-08 08:30"}},
		// New York, fall back 2026-11-01 02:00 EDT → 01:00 EST.
		{"NY fall daily 01:30", "America/New_York", "cron(30 1 ? * * *)", "2026-10-31 00:00",
			[]string{"2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30"}},
		{"NY fall daily 02:30", "America/New_York", "cron(30 2 ? * * *)", "2026-10-31 00:00",
			[]string{"2026-10-31 06:30", "2026-11-01 07:30", "2026-11-02 07:30"}},
		{"NY fall hourly :30", "America/New_York", "cron(30 * ? * * *)", "2026-11-01 03:00",
			[]string{"2026-11-01 03:30", "2026-11-01 04:30", "2026-11-01 05:30", "2026-11-01 07:30"}},
		// Berlin, spring forward 2026-03-29 02:00 CET → 03:00 CEST.
		{"Berlin spring daily 02:15", "Europe/Berlin", "cron(15 2 ? * * *)", "2026-03-28 00:00",
			[]string{"2026-03-28 01:15", "2026-03-29 01:15", "2026-03-30 00:15"}},
		// Berlin, fall back 2026-10-25 03:00 CEST → 02:00 CET.
		{"Berlin fall daily 02:15", "Europe/Berlin", "cron(15 2 ? * * *)", "2026-10-24 00:00",
			[]string{"2026-10-24 00:15", "2026-10-25 00:15", "2026-10-26 01:15"}},
		{"Berlin fall weekly Sunday 02:45", "Europe/Berlin", "cron(45 2 ? * SUN *)", "2026-10-20 00:00",
			[]string{"2026-10-25 00:45", "2026-11-01 01:45"}},
		// Sydney (southern hemisphere), fall back 2026-04-05 03:00 AEDT → 02:00 AEST,
		// spring forward 2026-10-04 02:00 AEST → 03:00 AEDT.
		{"Sydney fall daily 02:30", "Australia/Sydney", "cron(30 2 ? * * *)", "2026-04-04 00:00",
			[]string{"2026-04-04 15:30", "2026-04-05 16:30"}},
		{"Sydney spring daily 02:30", "Australia/Sydney", "cron(30 2 ? * * *)", "2026-10-03 00:00",
			[]string{"2026-10-03 16:30", "2026-10-04 15:30"}},
		// Samoa skipped 2011-12-30 entirely: a daily rule runs once for the
		// missing day (at the 30th's time shifted into the 31st) and then on the 31st.
		{"Apia skipped day", "Pacific/Apia", "cron(0 12 ? * * *)", "2011-12-28 00:00",
			[]string{"2011-12-28 22:00", "2011-12-29 22:00", "2011-12-30 22:00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.expr, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			after := utc(tc.from)
			for _, want := range tc.want {
				got, ok := s.Next(after)
				if !ok {
					t.Fatalf("Next(%s): none", after)
				}
				if g := got.UTC().Format("2006-01-02 15:04"); g != want {
					t.Fatalf("Next(%s) = %s (%s local), want %s", after.UTC(), g, got.In(s.Location()).Format("15:04 MST"), want)
				}
				after = got
			}
		})
	}
}

// TestDSTOncePerDay: over a whole year a daily rule at every minute of the
// transition hours runs exactly once per local day in two zones.
func TestDSTOncePerDay(t *testing.T) {
	for _, tz := range []string{"America/New_York", "Europe/Berlin"} {
		for _, hm := range []string{"30 1", "0 2", "30 2", "59 2", "0 3"} {
			s, err := Parse("cron("+hm+" ? * * *)", tz)
			if err != nil {
				t.Fatal(err)
			}
			days := map[string]int{}
			start := inZone(t, tz, "2026-01-01 00:00")
			end := inZone(t, tz, "2027-01-01 00:00")
			prev := start
			for t1, ok := s.Next(start); ok && t1.Before(end); t1, ok = s.Next(t1) {
				if !t1.After(prev) {
					t.Fatalf("%s %s: occurrences not increasing: %s after %s", tz, hm, t1, prev)
				}
				prev = t1
				days[t1.In(s.Location()).Format("2006-01-02")]++
			}
			if len(days) != 365 {
				t.Errorf("%s cron(%s): %d days with a run, want 365", tz, hm, len(days))
			}
			for d, n := range days {
				if n != 1 {
					t.Errorf("%s cron(%s): %d runs on %s", tz, hm, n, d)
				}
			}
		}
	}
}

func TestBetween(t *testing.T) {
	s, err := Parse("cron(0 * ? * * *)", "")
	if err != nil {
		t.Fatal(err)
	}
	ts, skipped := s.Between(utc("2026-01-01 00:00"), utc("2026-01-01 10:00"), 3)
	if len(ts) != 3 || skipped != 7 || !ts[2].Equal(utc("2026-01-01 10:00")) || !ts[0].Equal(utc("2026-01-01 08:00")) {
		t.Fatalf("Between = %v skipped %d", ts, skipped)
	}
	ts, skipped = s.Between(utc("2026-01-01 00:00"), utc("2026-01-01 00:59"), 3)
	if len(ts) != 0 || skipped != 0 {
		t.Fatalf("Between (none) = %v skipped %d", ts, skipped)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"cron(0 5 ? * * *)", "cron(15 10 ? * 6L 2025-2030)", "cron(0 6 15W * ? *)", "cron(0 3 ? * 3#2 *)", "cron(0 23 L-2 * ? *)"} {
		f.Add(s, "America/New_York")
	}
	f.Fuzz(func(t *testing.T, expr, tz string) {
		s, err := Parse(expr, tz)
		if err != nil {
			return
		}
		after := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 3; i++ {
			n, ok := s.Next(after)
			if !ok {
				return
			}
			if !n.After(after) {
				t.Fatalf("Next(%s) = %s, not after", after, n)
			}
			after = n
		}
	})
}

// BenchmarkNext: the next occurrence of a daily rule in a DST zone, of a
// last-Friday rule, and of a rule whose only year is far away.
func BenchmarkNext(b *testing.B) {
	from := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ name, expr, tz string }{
		{"daily-NY", "cron(30 2 ? * * *)", "America/New_York"},
		{"last-friday", "cron(15 10 ? * 6L *)", "Europe/Berlin"},
		{"year-2199", "cron(0 0 1 1 ? 2199)", ""},
	} {
		s, err := Parse(tc.expr, tc.tz)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, ok := s.Next(from); !ok {
					b.Fatal("none")
				}
			}
		})
	}
}
