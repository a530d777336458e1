package harness

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

func opLabel(op Op, pct float64) string {
	switch op {
	case OpInitial:
		return "initial backup"
	case OpChange:
		return fmt.Sprintf("%g%% change backup", pct)
	case OpNoChange:
		return "no-change backup"
	case OpRestore:
		return "full restore"
	}
	return fmt.Sprintf("op %d", int(op))
}

// median of a non-empty list (the mean of the two middle values for an
// even count).
func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// cell is one table value: a median over the rounds that produced it.
type cell struct {
	v  float64
	ok bool
	n  int // rounds that contributed
	// atMost marks a peak RSS that may be the harness's floor (see
	// Sample.RSSFloor): the true value is at most v.
	atMost bool
}

func medianCell(v []float64) cell {
	if len(v) == 0 {
		return cell{}
	}
	return cell{v: median(v), ok: true, n: len(v)}
}

type row struct {
	label  string
	unit   string // "s" or "MiB"
	values map[string]cell
}

// rows computes the table rows: the median over rounds per tool.
func (res *Results) rows() []row {
	pct := res.Dataset.ChangePct
	var rows []row
	for op := OpInitial; op < numOps; op++ {
		rw := row{label: opLabel(op, pct), unit: "s", values: map[string]cell{}}
		for _, t := range res.Tools {
			var v []float64
			for _, rd := range res.Rounds {
				if d := rd.Done[t]; d != nil && d[op] {
					v = append(v, rd.Samples[t][op].Wall.Seconds())
				}
			}
			rw.values[t] = medianCell(v)
		}
		rows = append(rows, rw)
	}
	size := row{label: "repository size", unit: "MiB", values: map[string]cell{}}
	mem := row{label: "peak memory (max over operations)", unit: "MiB", values: map[string]cell{}}
	for _, t := range res.Tools {
		var sz, pk []float64
		var floored bool
		for _, rd := range res.Rounds {
			if n, ok := rd.RepoSize[t]; ok {
				sz = append(sz, float64(n)/(1<<20))
			}
			var peak Sample
			var found bool
			for op := OpInitial; op < numOps; op++ {
				if d := rd.Done[t]; d != nil && d[op] && (!found || rd.Samples[t][op].MaxRSS > peak.MaxRSS) {
					peak, found = rd.Samples[t][op], true
				}
			}
			if found {
				pk = append(pk, float64(peak.MaxRSS)/(1<<20))
				floored = floored || peak.Floored()
			}
		}
		size.values[t], mem.values[t] = medianCell(sz), medianCell(pk)
		if c := mem.values[t]; c.ok && floored {
			c.atMost = true
			mem.values[t] = c
		}
	}
	return append(rows, size, mem)
}

func (c cell) format(unit string) string {
	if !c.ok {
		return "not measured"
	}
	switch unit {
	case "s":
		return fmt.Sprintf("%.2f s", c.v)
	case "MiB":
		if c.atMost {
			return fmt.Sprintf("≤ %.1f MiB", c.v)
		}
		return fmt.Sprintf("%.1f MiB", c.v)
	}
	return fmt.Sprintf("%g", c.v)
}

func ratio(a, b cell) string {
	if !a.ok || !b.ok || b.v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a.v/b.v)
}

// VerificationFailed reports whether any restore lost or changed data or
// failed outright, or any tool operation failed.
func (res *Results) VerificationFailed() bool {
	for _, rd := range res.Rounds {
		if len(rd.Failed) > 0 {
			return true
		}
		for _, d := range rd.Verify {
			if d.DataMismatches() > 0 {
				return true
			}
		}
	}
	return false
}

// WriteMarkdown prints the report: the main table (tools and the ratios of
// the first tool to each other one), the restore verification, the
// baselines and the raw samples.
func (res *Results) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	ds := res.Dataset
	p("## Coffer benchmark\n\n")
	p("Dataset: %s, %d files, %.1f MiB; change step: mkdata mutate -pct %g (in round 1 it changed or added files totalling %.1f MiB).  \n",
		ds.Source, ds.Files, float64(ds.Bytes)/(1<<20), ds.ChangePct, float64(ds.ChangeBytes)/(1<<20))
	p("Rounds: %d (values are medians over rounds; tool order rotates per round)", len(res.Rounds))
	if res.StoppedEarly != "" {
		p("; %s", res.StoppedEarly)
	}
	if res.Cleanup != "" {
		p("; %s", res.Cleanup)
	}
	p(".  \n")
	p("Run: %s → %s (%s)", res.Started.Format(time.RFC3339), res.Finished.Format(time.RFC3339),
		res.Finished.Sub(res.Started).Round(time.Second))
	if res.LoadStart != "" {
		p("; load average %s at the start, %s at the end", res.LoadStart, res.LoadEnd)
	}
	p(".\n\n")
	for _, s := range res.Settings {
		p("- %s\n", s)
	}
	for _, t := range res.Tools {
		if v := res.Versions[t]; v != "" {
			p("- %s version: %s\n", t, v)
		}
	}
	p("\n")

	subject := res.Tools[0]
	peers := res.Tools[1:]
	res.writeHeader(p)
	for _, rw := range res.rows() {
		p("| %s |", rw.label)
		for _, t := range res.Tools {
			p(" %s |", rw.values[t].format(rw.unit))
		}
		for _, peer := range peers {
			p(" %s |", ratio(rw.values[subject], rw.values[peer]))
		}
		p("\n")
	}
	p("| restore verification |")
	for _, t := range res.Tools {
		p(" %s |", res.verifyCell(t))
	}
	for range peers {
		p(" |")
	}
	p("\n\n")
	p("Ratios below 1 mean %s is faster (or smaller). Times are the wall clock of the tool's process; ", subject)
	p("peak memory is its maximum resident set size (getrusage); \"≤\" marks a value that is only the harness's own ")
	p("peak RSS, which Linux carries into a vforked child's ru_maxrss (the child's true peak is at most that).")
	if contains(res.Tools, "coffer-api") {
		p(" For coffer-api, time is the job's (Start call to COMPLETED) and peak memory the `coffer serve` process's VmHWM over the job (server VmHWM).")
	}
	p("\n\n")

	res.writeCosts(p)

	if res.VerificationFailed() {
		p("**!!! VERIFICATION OR TOOL FAILURE — the numbers above are not a valid comparison !!!**\n\n")
	}
	for i, rd := range res.Rounds {
		for _, t := range rd.Order {
			if err := rd.Failed[t]; err != nil {
				p("- round %d, %s FAILED: %s\n", i+1, t, firstLine(err.Error()))
			}
			if d, ok := rd.Verify[t]; ok && !d.OK() {
				p("- round %d, %s restore: %s\n", i+1, t, d.Summary())
				for _, ex := range d.Examples {
					p("  - %s\n", ex)
				}
			}
		}
	}

	if len(res.Baselines) > 0 {
		p("\n### Baselines (same tree, page cache warm)\n\n| | time | %s restore / baseline |\n|---|---:|---:|\n", subject)
		restore := res.rows()[OpRestore].values[subject]
		for _, name := range res.Baselines {
			var v []float64
			for _, rd := range res.Rounds {
				if s, ok := rd.Baselines[name]; ok {
					v = append(v, s.Wall.Seconds())
				}
			}
			c := medianCell(v)
			p("| %s | %s | %s |\n", name, c.format("s"), ratio(restore, c))
		}
		var pv, rv []float64
		var per []string
		for i, rd := range res.Rounds {
			if rd.Paired == nil || !rd.Done[subject][OpRestore] {
				continue
			}
			c, t := rd.Paired.Wall.Seconds(), rd.Samples[subject][OpRestore].Wall.Seconds()
			pv, rv = append(pv, c), append(rv, t/c)
			per = append(per, fmt.Sprintf("round %d: %.2f s / %.2f s = %.2f× (%s measured %s it)", i+1, t, c, t/c, res.Baselines[0], rd.pairedWhen()))
		}
		if len(pv) > 0 {
			p("| %s right next to %s's restore | %s | %.2f× (median of the rounds' ratios) |\n", res.Baselines[0], subject,
				medianCell(pv).format("s"), median(rv))
			p("\nPaired: %s.\n", strings.Join(per, "; "))
		}
		p("\nGoal: %s full restore ≤ 1.1× cp -r (the paired ratio compares the two in the same state of the machine).\n", subject)
	}

	p("\n### Raw samples\n\n| round | operation | tool | wall | user | sys | max RSS |\n|---:|---|---|---:|---:|---:|---:|\n")
	for i, rd := range res.Rounds {
		for op := OpInitial; op < numOps; op++ {
			for _, t := range rd.Order {
				if !rd.Done[t][op] {
					continue
				}
				s := rd.Samples[t][op]
				p("| %d | %s | %s | %.2f s | %.2f s | %.2f s | %s |\n", i+1, opLabel(op, ds.ChangePct), t,
					s.Wall.Seconds(), s.User.Seconds(), s.Sys.Seconds(), rssText(s))
			}
		}
		for _, name := range res.Baselines {
			if s, ok := rd.Baselines[name]; ok {
				p("| %d | baseline | %s | %.2f s | %.2f s | %.2f s | %s |\n", i+1, name,
					s.Wall.Seconds(), s.User.Seconds(), s.Sys.Seconds(), rssText(s))
			}
		}
		if s := rd.Paired; s != nil {
			p("| %d | baseline | %s, %s %s's restore | %.2f s | %.2f s | %.2f s | %s |\n", i+1, res.Baselines[0], rd.pairedWhen(), res.Tools[0],
				s.Wall.Seconds(), s.User.Seconds(), s.Sys.Seconds(), rssText(*s))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// costRows computes, per operation, the median CPU time (user and system
// separately, and their sum) and the median peak RSS of every tool.
func (res *Results) costRows() (cpu, rss []row, user, sys map[Op]map[string]cell) {
	pct := res.Dataset.ChangePct
	user, sys = map[Op]map[string]cell{}, map[Op]map[string]cell{}
	for op := OpInitial; op < numOps; op++ {
		c := row{label: opLabel(op, pct) + ": CPU user + sys", unit: "s", values: map[string]cell{}}
		m := row{label: opLabel(op, pct) + ": peak RSS", unit: "MiB", values: map[string]cell{}}
		user[op], sys[op] = map[string]cell{}, map[string]cell{}
		for _, t := range res.Tools {
			var us, ss, tot, pk []float64
			floored := false
			for _, rd := range res.Rounds {
				if d := rd.Done[t]; d == nil || !d[op] {
					continue
				}
				s := rd.Samples[t][op]
				us, ss = append(us, s.User.Seconds()), append(ss, s.Sys.Seconds())
				tot = append(tot, (s.User + s.Sys).Seconds())
				pk = append(pk, float64(s.MaxRSS)/(1<<20))
				floored = floored || s.Floored()
			}
			user[op][t], sys[op][t] = medianCell(us), medianCell(ss)
			c.values[t] = medianCell(tot)
			mc := medianCell(pk)
			mc.atMost = mc.ok && floored
			m.values[t] = mc
		}
		cpu, rss = append(cpu, c), append(rss, m)
	}
	return cpu, rss, user, sys
}

// writeHeader prints the header of a comparison table: a column per tool,
// then one per ratio of the first tool to each other.
func (res *Results) writeHeader(p func(string, ...any)) {
	subject, peers := res.Tools[0], res.Tools[1:]
	p("| |")
	for _, t := range res.Tools {
		p(" %s |", t)
	}
	for _, peer := range peers {
		p(" %s/%s |", subject, peer)
	}
	p("\n|---|")
	for range len(res.Tools) + len(peers) {
		p("---:|")
	}
	p("\n")
}

// writeCosts prints the second table: CPU-seconds (user + system, each
// shown) and peak RSS of every operation, with the first tool's ratios.
func (res *Results) writeCosts(p func(string, ...any)) {
	subject, peers := res.Tools[0], res.Tools[1:]
	cpu, rss, user, sys := res.costRows()
	p("### CPU and memory per operation\n\n")
	p("CPU cells are user + system = total CPU-seconds (medians of each over the rounds); ratios compare totals. ")
	p("Unlike wall times, CPU-seconds hardly depend on what else runs on the machine.\n\n")
	res.writeHeader(p)
	for i := range cpu {
		op := OpInitial + Op(i)
		for _, rw := range []row{cpu[i], rss[i]} {
			p("| %s |", rw.label)
			for _, t := range res.Tools {
				c := rw.values[t]
				if rw.unit == "s" && c.ok {
					p(" %.2f + %.2f = %.2f s |", user[op][t].v, sys[op][t].v, c.v)
				} else {
					p(" %s |", c.format(rw.unit))
				}
			}
			for _, peer := range peers {
				p(" %s |", ratio(rw.values[subject], rw.values[peer]))
			}
			p("\n")
		}
	}
	p("\n")
}

func (res *Results) verifyCell(t string) string {
	var ok, data, meta, missing int
	var worst Diff
	for _, rd := range res.Rounds {
		d, done := rd.Verify[t]
		switch {
		case !done:
			missing++
		case d.OK():
			ok++
		case d.DataMismatches() > 0:
			data++
			worst = d
		default:
			meta++
			if worst.DataMismatches() == 0 {
				worst = d
			}
		}
	}
	switch {
	case data > 0:
		return fmt.Sprintf("**%s**", worst.Summary())
	case meta > 0:
		return worst.Summary()
	case missing > 0 && ok == 0:
		return "not restored"
	case missing > 0:
		return fmt.Sprintf("OK in %d, not restored in %d rounds", ok, missing)
	}
	return "OK"
}

func rssText(s Sample) string {
	if s.Floored() {
		return fmt.Sprintf("≤ %.1f MiB", float64(s.MaxRSS)/(1<<20))
	}
	return fmt.Sprintf("%.1f MiB", float64(s.MaxRSS)/(1<<20))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// pairedWhen says whether the paired baseline ran "before" or "after" the
// first tool's restore.
func (rd *Round) pairedWhen() string {
	if rd.PairedBefore {
		return "before"
	}
	return "after"
}
