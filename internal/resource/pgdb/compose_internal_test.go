package pgdb

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// layerByLayer applies deltas one after the other with applyDelta (the
// reference composeLayers must agree with).
func layerByLayer(base []byte, deltas [][]byte) ([]byte, error) {
	cur := base
	for _, d := range deltas {
		var out bytes.Buffer
		if err := applyDelta(bytes.NewReader(cur), bytes.NewReader(d), &out); err != nil {
			return nil, err
		}
		cur = out.Bytes()
	}
	return cur, nil
}

// oneRead reads composeLayers' rows through a buffer of size buf.
func onePass(base []byte, deltas [][]byte, buf int) ([]byte, error) {
	rs := make([]io.Reader, len(deltas))
	for i, d := range deltas {
		rs[i] = bytes.NewReader(d)
	}
	r := composeLayers(bytes.NewReader(base), rs)
	var out bytes.Buffer
	p := make([]byte, buf)
	for {
		n, err := r.Read(p)
		out.Write(p[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// chain encodes the deltas from each stream of days to the next.
func chain(t testing.TB, days [][]byte) [][]byte {
	t.Helper()
	var deltas [][]byte
	for i := 1; i < len(days); i++ {
		var d bytes.Buffer
		if _, err := encodeDelta(bytes.NewReader(days[i-1]), bytes.NewReader(days[i]), &d); err != nil {
			t.Fatal(err)
		}
		deltas = append(deltas, d.Bytes())
	}
	return deltas
}

func checkCompose(t *testing.T, base []byte, deltas [][]byte, want []byte) {
	t.Helper()
	ref, rerr := layerByLayer(base, deltas)
	for _, buf := range []int{1, 3, 64, 1 << 16} {
		got, err := onePass(base, deltas, buf)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("read by %d: one pass: %v, layer by layer: %v\nbase %q\ndeltas %q", buf, err, rerr, base, deltas)
		}
		if err != nil {
			continue
		}
		if !bytes.Equal(got, ref) {
			t.Fatalf("read by %d: one pass gives\n%q\nlayer by layer\n%q\ndeltas %q", buf, got, ref, deltas)
		}
		if want != nil && !bytes.Equal(got, want) {
			t.Fatalf("read by %d: one pass gives\n%q\nwant\n%q", buf, got, want)
		}
	}
}

// TestComposeLayers: the rows of a base and several delta layers composed
// in one pass are those the layers give applied one by one, for deletes
// and updates of the same rows in several layers, inserts later deleted
// or updated, and emptied and refilled tables.
func TestComposeLayers(t *testing.T) {
	row := func(i int) string { return fmt.Sprintf("%d\trow %d\t%s", i, i, strings.Repeat("x", i%30)) }
	base := lines(300, row)
	edit := func(f func(i int) (string, bool)) []byte {
		var b bytes.Buffer
		for i := range 300 {
			if s, ok := f(i); ok {
				b.WriteString(s + "\n")
			}
		}
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		days [][]byte
	}{
		{"one layer", [][]byte{base, edit(func(i int) (string, bool) {
			if i%10 == 0 {
				return row(i) + " u", true
			}
			return row(i), true
		})}},
		{"same row updated in every layer", [][]byte{base,
			edit(func(i int) (string, bool) { return map[bool]string{true: "v1", false: row(i)}[i == 7], true }),
			edit(func(i int) (string, bool) { return map[bool]string{true: "v2", false: row(i)}[i == 7], true }),
			edit(func(i int) (string, bool) { return map[bool]string{true: "v3", false: row(i)}[i == 7], true }),
		}},
		{"updated then deleted", [][]byte{base,
			edit(func(i int) (string, bool) { return map[bool]string{true: "v1", false: row(i)}[i == 50], true }),
			edit(func(i int) (string, bool) { return row(i), i != 50 }),
		}},
		{"deleted then reinserted then updated", [][]byte{base,
			edit(func(i int) (string, bool) { return row(i), i < 100 || i >= 120 }),
			edit(func(i int) (string, bool) { return row(i), true }),
			edit(func(i int) (string, bool) {
				return map[bool]string{true: "again", false: row(i)}[i >= 100 && i < 120 && i%2 == 0], true
			}),
		}},
		{"inserted rows updated and deleted later", [][]byte{base,
			append(append([]byte{}, base...), lines(50, func(i int) string { return "new " + fmt.Sprint(i) })...),
			append(append([]byte{}, base...), lines(50, func(i int) string {
				if i%3 == 0 {
					return "changed new " + fmt.Sprint(i)
				}
				return "new " + fmt.Sprint(i)
			})...),
			append(append([]byte{}, base[:len(lines(10, row))]...), lines(25, func(i int) string { return "new " + fmt.Sprint(i) })...),
		}},
		{"emptied and refilled", [][]byte{base, nil, lines(5, row), base}},
		{"empty base", [][]byte{nil, lines(3, row), lines(6, row), nil}},
		{"purge and append in every layer", [][]byte{base,
			[]byte(strings.Join(strings.Split(string(base), "\n")[30:], "\n") + string(lines(30, func(i int) string { return "a " + fmt.Sprint(i) }))),
			[]byte(strings.Join(strings.Split(string(base), "\n")[60:], "\n") + string(lines(30, func(i int) string { return "a " + fmt.Sprint(i) })) +
				string(lines(30, func(i int) string { return "b " + fmt.Sprint(i) }))),
		}},
		{"seven layers", func() [][]byte {
			days := [][]byte{base}
			for d := 1; d <= 7; d++ {
				days = append(days, edit(func(i int) (string, bool) {
					if i%(d+3) == 0 {
						return fmt.Sprintf("%s day %d", row(i), d), true
					}
					return row(i), i%(11+d) != 0
				}))
			}
			return days
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkCompose(t, tc.days[0], chain(t, tc.days), tc.days[len(tc.days)-1])
		})
	}
}

// TestComposeLayersRandom: random chains of edits of streams with many
// repeated lines, composed in one pass, give the last stream.
func TestComposeLayersRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		alphabet := 1 + r.IntN(30)
		var cur []string
		for range r.IntN(200) {
			cur = append(cur, fmt.Sprintf("r%d", r.IntN(alphabet)))
		}
		join := func(s []string) []byte {
			if len(s) == 0 {
				return nil
			}
			return []byte(strings.Join(s, "\n") + "\n")
		}
		days := [][]byte{join(cur)}
		for range 1 + r.IntN(7) {
			cur = append([]string(nil), cur...)
			for range r.IntN(15) {
				switch k := r.IntN(3); {
				case k == 0 && len(cur) > 0:
					i := r.IntN(len(cur))
					cur = append(cur[:i], cur[i+1:]...)
				case k == 1:
					i := r.IntN(len(cur) + 1)
					cur = append(cur[:i], append([]string{fmt.Sprintf("n%d", r.IntN(alphabet))}, cur[i:]...)...)
				case len(cur) > 0:
					cur[r.IntN(len(cur))] = fmt.Sprintf("c%d", round)
				}
			}
			days = append(days, join(cur))
		}
		checkCompose(t, days[0], chain(t, days), days[len(days)-1])
	}
}

// TestComposeLayersRejects: layers that do not fit what is below them are
// an error, never a wrong stream, as applyDelta's.
func TestComposeLayersRejects(t *testing.T) {
	base := []byte("a\nb\nc\n")
	good := []byte("C 1\nS 1\nI 1 2\nx\nC 1\n") // a x c
	for _, d := range []string{"C 4\n", "C 2\n", "S 3\nI 1 2\nx", "I 2 4\nx\ny", "I 1 2\nxy", "X 1\n", "C -1\n", "C 3\nI 2 3\nab\n", "C 1\nS",
		"I 1 3\nx\n", "I 2 2\nx\n", "I 1 1\nx\n", "S 3\nI 1 4\nx\ny\n", strings.Repeat("C", 100) + "\n"} {
		for _, deltas := range [][][]byte{{[]byte(d)}, {good, []byte(d)}, {[]byte(d), []byte("C 3\n")}} {
			if got, err := onePass(base, deltas, 7); err == nil {
				t.Errorf("deltas %q composed: %q", deltas, got)
			}
			checkCompose(t, base, deltas, nil)
		}
	}
}

func FuzzComposeLayers(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), []byte("C 1\nS 1\nI 1 2\nx\nC 1\n"), []byte("S 1\nC 2\nI 1 2\ny\n"))
	f.Add([]byte(""), []byte("I 2 4\nx\ny\n"), []byte("C 1\nS 1\n"))
	f.Fuzz(func(t *testing.T, base, d1, d2 []byte) {
		checkCompose(t, base, [][]byte{d1, d2}, nil)
	})
}

// BenchmarkComposeLayers reads the rows of a base and three layers each
// changing 1% of 200,000 rows of about 100 bytes: composed in one pass,
// and layer by layer through a pipe each (as restores did before).
func BenchmarkComposeLayers(b *testing.B) {
	days := make([][]byte, 4)
	for d := range days {
		var s bytes.Buffer
		for i := range 200000 {
			if d > 0 && i%100 == 40+d {
				fmt.Fprintf(&s, "%d\tchanged %d day %d\t%s\n", i, i%977, d, strings.Repeat("y", 80))
				continue
			}
			fmt.Fprintf(&s, "%d\tcustomer %d\t%s\n", i, i%977, strings.Repeat("x", 80))
		}
		days[d] = s.Bytes()
	}
	deltas := chain(b, days)
	buf := make([]byte, 64<<10)
	b.Run("one-pass", func(b *testing.B) {
		b.SetBytes(int64(len(days[3])))
		for b.Loop() {
			rs := make([]io.Reader, len(deltas))
			for i, d := range deltas {
				rs[i] = bytes.NewReader(d)
			}
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{composeLayers(bytes.NewReader(days[0]), rs)}, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipes", func(b *testing.B) {
		b.SetBytes(int64(len(days[3])))
		for b.Loop() {
			var cur io.Reader = bytes.NewReader(days[0])
			for _, d := range deltas {
				pr, pw := io.Pipe()
				go func(prev io.Reader, d []byte) {
					pw.CloseWithError(applyDelta(prev, bytes.NewReader(d), pw))
				}(cur, d)
				cur = pr
			}
			if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{cur}, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}
