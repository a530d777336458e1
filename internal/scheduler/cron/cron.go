// Package cron parses AWS cron expressions (the ScheduleExpression of a
// backup rule) and computes their occurrences in an IANA time zone.
//
// Syntax (AWS/EventBridge): cron(minutes hours day-of-month month
// day-of-week year), six fields separated by spaces.
//
//	field          values               wildcards
//	minutes        0-59                 , - * /
//	hours          0-23                 , - * /
//	day-of-month   1-31                 , - * ? / L W
//	month          1-12 or JAN-DEC      , - * /
//	day-of-week    1-7 or SUN-SAT       , - * ? L #
//	year           1970-2199            , - * /
//
// Exactly one of day-of-month and day-of-week is "?". Day-of-month also
// takes L (last day), L-n (n days before the last), LW (last weekday) and
// nW (the weekday nearest day n, never crossing into another month);
// day-of-week takes L alone (Saturday, the last day of the week), nL (the
// last day n of the month) and n#k (the k-th day n of the month, 1 ≤ k ≤ 5).
// A backup rule runs at most once an hour, so the minutes field must name
// exactly one minute.
//
// Time zones and daylight saving time: occurrences are wall-clock times in
// the schedule's zone. A wall-clock time that a spring-forward transition
// skips runs at the instant it would have had before the transition (02:30
// on a day the clock jumps from 02:00 to 03:00 runs at 03:30 new time), so
// a daily rule still runs once that day. A wall-clock time that a fall-back
// transition repeats runs once, at its first instant. The zone database is
// embedded (time/tzdata), so zones work on machines without one.
package cron

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zones work on machines without a zone database
)

// Year bounds of the year field.
const (
	MinYear = 1970
	MaxYear = 2199
)

// Error is a parse error; its message explains what is wrong in the
// caller's terms.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) error { return &Error{Msg: fmt.Sprintf(format, args...)} }

// DefaultTimezone is the zone of a rule without ScheduleExpressionTimezone.
const DefaultTimezone = "Etc/UTC"

// LoadZone resolves an IANA zone name ("" is DefaultTimezone). "Local" is
// refused: a schedule must not depend on the server's settings.
func LoadZone(name string) (*time.Location, error) {
	if name == "" {
		name = DefaultTimezone
	}
	if name == "Local" || strings.ContainsAny(name, " \\") || strings.Contains(name, "..") {
		return nil, errorf("%q is not an IANA time zone name (for example Europe/Paris or America/New_York)", name)
	}
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, errorf("%q is not an IANA time zone name (for example Europe/Paris or America/New_York)", name)
	}
	zones.Store(name, loc) // bounded: only names the zone database knows
	return loc, nil
}

// zones caches loaded zones: every scheduler pass parses every rule, and
// reading a zone from the embedded database costs more than the parse.
var zones sync.Map

// Schedule is a parsed cron expression in a time zone.
type Schedule struct {
	expr    string
	loc     *time.Location
	minutes uint64    // bit m for minute m
	hours   uint64    // bit h
	months  uint64    // bit m, 1..12
	years   [4]uint64 // bit y-MinYear
	dom     []domItem // nil: "?"
	dow     []dowItem // nil: "?"
}

type domKind int

const (
	domDays    domKind = iota // a set of days
	domLast                   // L or L-n
	domLastWkd                // LW
	domNearWkd                // nW
)

type domItem struct {
	kind domKind
	days uint64 // domDays: bit d
	n    int    // domLast: offset; domNearWkd: day
}

type dowKind int

const (
	dowDays dowKind = iota // a set of days (bit 1..7)
	dowLast                // nL
	dowNth                 // n#k
)

type dowItem struct {
	kind dowKind
	days uint64
	day  int
	nth  int
}

// Expr returns the expression as given.
func (s *Schedule) Expr() string { return s.expr }

// Location returns the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

var monthNames = map[string]int{"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}
var dayNames = map[string]int{"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}

type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	fMinutes = field{"minutes", 0, 59, nil}
	fHours   = field{"hours", 0, 23, nil}
	fDOM     = field{"day-of-month", 1, 31, nil}
	fMonth   = field{"month", 1, 12, monthNames}
	fDOW     = field{"day-of-week", 1, 7, dayNames}
	fYear    = field{"year", MinYear, MaxYear, nil}
)

// Parse parses an AWS cron expression "cron(...)" for the zone tz (""
// means DefaultTimezone).
func Parse(expr, tz string) (*Schedule, error) {
	loc, err := LoadZone(tz)
	if err != nil {
		return nil, err
	}
	s, err := parseExpr(expr)
	if err != nil {
		return nil, err
	}
	s.loc = loc
	return s, nil
}

func parseExpr(expr string) (*Schedule, error) {
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "rate(") {
		return nil, errorf("rate expressions are not supported for backup rules; write a cron expression such as cron(0 5 ? * * *)")
	}
	if !strings.HasPrefix(e, "cron(") || !strings.HasSuffix(e, ")") {
		return nil, errorf("%q is not a cron expression: write cron(minutes hours day-of-month month day-of-week year), for example cron(0 5 ? * * *)", trunc(expr))
	}
	fields := strings.Fields(e[len("cron(") : len(e)-1])
	if len(fields) != 6 {
		return nil, errorf("a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), %q has %d", trunc(expr), len(fields))
	}
	s := &Schedule{expr: expr}
	var err error
	if s.minutes, err = parseSet(fields[0], fMinutes); err != nil {
		return nil, err
	}
	if n := bits.OnesCount64(s.minutes); n != 1 {
		return nil, errorf("the minutes field %q names %d minutes of the hour, so backups would start more often than once an hour; a backup rule runs at most hourly, so name exactly one minute (for example 0)", fields[0], n)
	}
	if s.hours, err = parseSet(fields[1], fHours); err != nil {
		return nil, err
	}
	if s.months, err = parseSet(fields[3], fMonth); err != nil {
		return nil, err
	}
	if err := parseYears(fields[5], &s.years); err != nil {
		return nil, err
	}
	domQ, dowQ := fields[2] == "?", fields[4] == "?"
	switch {
	case domQ && dowQ:
		return nil, errorf("day-of-month and day-of-week cannot both be ?: one of them must say which days (use * for every day)")
	case !domQ && !dowQ:
		return nil, errorf("day-of-month (%q) and day-of-week (%q) cannot both be specified: use ? in one of them, for example cron(0 5 ? * MON-FRI *) or cron(0 5 1 * ? *)", fields[2], fields[4])
	case dowQ:
		if s.dom, err = parseDOM(fields[2]); err != nil {
			return nil, err
		}
	default:
		if s.dow, err = parseDOW(fields[4]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func trunc(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func (f field) value(tok string) (int, error) {
	if f.names != nil {
		if v, ok := f.names[strings.ToUpper(tok)]; ok {
			return v, nil
		}
	}
	v, err := strconv.Atoi(tok)
	if err != nil || tok == "" || tok[0] == '+' || tok[0] == '-' {
		if f.names != nil {
			return 0, errorf("%q is not a value of the %s field (%d-%d or %s)", tok, f.name, f.min, f.max, f.nameRange())
		}
		return 0, errorf("%q is not a number in the %s field (%d-%d)", tok, f.name, f.min, f.max)
	}
	if v < f.min || v > f.max {
		return 0, errorf("%d is out of range in the %s field (%d-%d)", v, f.name, f.min, f.max)
	}
	return v, nil
}

func (f field) nameRange() string {
	if f.max == 12 {
		return "JAN-DEC"
	}
	return "SUN-SAT"
}

// parseRange parses one list item: *, a, a-b, optionally /step. It
// returns the values as (lo, hi, step).
func (f field) parseRange(item string) (lo, hi, step int, err error) {
	base, stepStr, hasStep := strings.Cut(item, "/")
	step = 1
	if hasStep {
		if f.name == fDOW.name {
			return 0, 0, 0, errorf("the day-of-week field does not take / increments (%q); list the days instead, for example MON,WED,FRI", item)
		}
		n, err := strconv.Atoi(stepStr)
		if err != nil || stepStr == "" || stepStr[0] == '+' {
			return 0, 0, 0, errorf("%q in the %s field: the increment after / must be a number", item, f.name)
		}
		if n < 1 || n > f.max-f.min+1 {
			return 0, 0, 0, errorf("%q in the %s field: the increment must be between 1 and %d", item, f.name, f.max-f.min+1)
		}
		step = n
	}
	switch base {
	case "*":
		return f.min, f.max, step, nil
	case "":
		return 0, 0, 0, errorf("empty value in the %s field (%q)", f.name, item)
	}
	a, b, isRange := strings.Cut(base, "-")
	if a == "" || (isRange && b == "") {
		return 0, 0, 0, errorf("empty value in the %s field (%q)", f.name, item)
	}
	if lo, err = f.value(a); err != nil {
		return 0, 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = f.value(b); err != nil {
			return 0, 0, 0, err
		}
		if hi < lo {
			return 0, 0, 0, errorf("the range %q in the %s field goes backwards (%d is after %d)", base, f.name, lo, hi)
		}
	} else if hasStep {
		hi = f.max // a/n: from a to the end
	}
	return lo, hi, step, nil
}

func parseSet(spec string, f field) (uint64, error) {
	if spec == "?" {
		return 0, errorf("? is only allowed in the day-of-month and day-of-week fields, not in the %s field", f.name)
	}
	var set uint64
	for _, item := range strings.Split(spec, ",") {
		lo, hi, step, err := f.parseRange(item)
		if err != nil {
			return 0, err
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

func parseYears(spec string, set *[4]uint64) error {
	if spec == "?" {
		return errorf("? is only allowed in the day-of-month and day-of-week fields, not in the year field")
	}
	for _, item := range strings.Split(spec, ",") {
		lo, hi, step, err := fYear.parseRange(item)
		if err != nil {
			return err
		}
		for v := lo; v <= hi; v += step {
			i := v - MinYear
			set[i/64] |= 1 << uint(i%64)
		}
	}
	return nil
}

func parseDOM(spec string) ([]domItem, error) {
	var out []domItem
	for _, item := range strings.Split(spec, ",") {
		u := strings.ToUpper(item)
		switch {
		case u == "L":
			out = append(out, domItem{kind: domLast})
		case u == "LW":
			out = append(out, domItem{kind: domLastWkd})
		case strings.HasPrefix(u, "L-"):
			n, err := strconv.Atoi(u[2:])
			if err != nil || n < 0 || n > 30 || u[2:] == "" || u[2] == '+' {
				return nil, errorf("%q in the day-of-month field: L-n takes a number of days between 0 and 30", item)
			}
			out = append(out, domItem{kind: domLast, n: n})
		case strings.HasSuffix(u, "W"):
			d, err := fDOM.value(u[:len(u)-1])
			if err != nil {
				return nil, errorf("%q in the day-of-month field: W follows a single day, for example 15W (the weekday nearest the 15th)", item)
			}
			out = append(out, domItem{kind: domNearWkd, n: d})
		case strings.ContainsAny(u, "LW#"):
			return nil, errorf("%q is not valid in the day-of-month field (L, L-n, LW and nW are; # belongs to day-of-week)", item)
		default:
			set, err := parseSet(item, fDOM)
			if err != nil {
				return nil, err
			}
			out = append(out, domItem{kind: domDays, days: set})
		}
	}
	return out, nil
}

func parseDOW(spec string) ([]dowItem, error) {
	var out []dowItem
	for _, item := range strings.Split(spec, ",") {
		u := strings.ToUpper(item)
		switch {
		case u == "L":
			out = append(out, dowItem{kind: dowDays, days: 1 << 7})
		case strings.Contains(u, "#"):
			a, b, _ := strings.Cut(u, "#")
			d, err := fDOW.value(a)
			if err != nil {
				return nil, err
			}
			k, err := strconv.Atoi(b)
			if err != nil || k < 1 || k > 5 || b == "" || b[0] == '+' {
				return nil, errorf("%q in the day-of-week field: the number after # must be between 1 and 5 (the k-th such day of the month)", item)
			}
			out = append(out, dowItem{kind: dowNth, day: d, nth: k})
		case len(u) > 1 && strings.HasSuffix(u, "L"):
			d, err := fDOW.value(u[:len(u)-1])
			if err != nil {
				return nil, errorf("%q in the day-of-week field: L follows a single day, for example 6L (the last Friday of the month)", item)
			}
			out = append(out, dowItem{kind: dowLast, day: d})
		case strings.Contains(u, "W"):
			if _, ok := dayNames[u]; ok {
				out = append(out, dowItem{kind: dowDays, days: 1 << uint(dayNames[u])})
				continue
			}
			set, err := parseSet(item, fDOW)
			if err != nil {
				return nil, errorf("%q is not valid in the day-of-week field (W belongs to day-of-month)", item)
			}
			out = append(out, dowItem{kind: dowDays, days: set})
		default:
			set, err := parseSet(item, fDOW)
			if err != nil {
				return nil, err
			}
			out = append(out, dowItem{kind: dowDays, days: set})
		}
	}
	return out, nil
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// weekday is AWS's day number: Sunday 1 … Saturday 7.
func weekday(y int, m time.Month, d int) int {
	return int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Weekday()) + 1
}

func (s *Schedule) yearOK(y int) bool {
	if y < MinYear || y > MaxYear {
		return false
	}
	i := y - MinYear
	return s.years[i/64]&(1<<uint(i%64)) != 0
}

func (s *Schedule) dayOK(y int, m time.Month, d int) bool {
	last := daysIn(y, m)
	if s.dom != nil {
		for _, it := range s.dom {
			switch it.kind {
			case domDays:
				if it.days&(1<<uint(d)) != 0 {
					return true
				}
			case domLast:
				if d == last-it.n {
					return true
				}
			case domLastWkd:
				t := last
				switch weekday(y, m, last) {
				case 7:
					t = last - 1
				case 1:
					t = last - 2
				}
				if d == t {
					return true
				}
			case domNearWkd:
				if it.n > last {
					continue
				}
				t := it.n
				switch weekday(y, m, it.n) {
				case 7: // Saturday: the Friday before, or Monday when the 1st
					if t == 1 {
						t = 3
					} else {
						t--
					}
				case 1: // Sunday: the Monday after, or Friday when the last day
					if t == last {
						t -= 2
					} else {
						t++
					}
				}
				if d == t {
					return true
				}
			}
		}
		return false
	}
	w := weekday(y, m, d)
	for _, it := range s.dow {
		switch it.kind {
		case dowDays:
			if it.days&(1<<uint(w)) != 0 {
				return true
			}
		case dowLast:
			if w == it.day && d+7 > last {
				return true
			}
		case dowNth:
			if w == it.day && (d-1)/7+1 == it.nth {
				return true
			}
		}
	}
	return false
}

// Next returns the first occurrence strictly after after, or false when
// the schedule has none (all its years have passed).
func (s *Schedule) Next(after time.Time) (time.Time, bool) {
	la := after.In(s.loc)
	// Start one wall-clock day early: a time skipped by a spring-forward
	// transition runs later than its wall-clock time suggests.
	day := time.Date(la.Year(), la.Month(), la.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
	var best time.Time
	found := false
	extra := 0
	for day.Year() <= MaxYear {
		if found {
			// Occurrences of the next two days can still come earlier than
			// the best one when a transition shifted it (a skipped day).
			if extra++; extra > 2 {
				break
			}
		}
		y, m, d := day.Date()
		if !s.yearOK(y) {
			if y < MinYear {
				day = time.Date(MinYear, 1, 1, 0, 0, 0, 0, time.UTC)
			} else {
				day = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC)
			}
			continue
		}
		if s.months&(1<<uint(m)) == 0 {
			day = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
			continue
		}
		if s.dayOK(y, m, d) {
			for h := 0; h < 24; h++ {
				if s.hours&(1<<uint(h)) == 0 {
					continue
				}
				for mi := 0; mi < 60; mi++ {
					if s.minutes&(1<<uint(mi)) == 0 {
						continue
					}
					t := resolve(y, m, d, h, mi, s.loc)
					if t.After(after) && (!found || t.Before(best)) {
						best, found = t, true
					}
				}
			}
		}
		day = day.AddDate(0, 0, 1)
	}
	return best, found
}

// NextN returns up to n occurrences after after, in order.
func (s *Schedule) NextN(after time.Time, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		t, ok := s.Next(after)
		if !ok {
			break
		}
		out = append(out, t)
		after = t
	}
	return out
}

// Between returns the occurrences in (from, to], at most limit of them,
// the latest ones when there are more; skipped is how many earlier ones
// were left out.
func (s *Schedule) Between(from, to time.Time, limit int) (ts []time.Time, skipped int) {
	for t, ok := s.Next(from); ok && !t.After(to); t, ok = s.Next(t) {
		ts = append(ts, t)
		if len(ts) > limit {
			ts = ts[1:]
			skipped++
		}
	}
	return ts, skipped
}

func sameWall(t time.Time, y int, m time.Month, d, h, mi int) bool {
	ty, tm, td := t.Date()
	return ty == y && tm == m && td == d && t.Hour() == h && t.Minute() == mi
}

// resolve turns a wall-clock time of loc into an instant: the first one
// when the time occurs twice (fall back), and for a time that does not
// occur (spring forward) the instant it would have had with the offset in
// effect before the transition.
func resolve(y int, m time.Month, d, h, mi int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, h, mi, 0, 0, loc)
	wall := time.Date(y, m, d, h, mi, 0, 0, time.UTC)
	if sameWall(t, y, m, d, h, mi) {
		start, _ := t.ZoneBounds()
		if !start.IsZero() {
			_, off := t.Zone()
			_, offPrev := start.Add(-time.Second).Zone()
			if offPrev != off {
				earlier := wall.Add(-time.Duration(offPrev) * time.Second).In(loc)
				if earlier.Before(start) && earlier.Before(t) && sameWall(earlier, y, m, d, h, mi) {
					return earlier
				}
			}
		}
		return t
	}
	// Skipped: find the offset in effect just before the transition.
	start, end := t.ZoneBounds()
	_, off := t.Zone()
	before := off
	naive := wall.Add(-time.Duration(off) * time.Second)
	switch {
	case !end.IsZero() && !naive.Before(end):
		before = off // t is before the transition, in the earlier zone
	case !start.IsZero() && naive.Before(start):
		_, before = start.Add(-time.Second).Zone()
	}
	return wall.Add(-time.Duration(before) * time.Second).In(loc)
}
