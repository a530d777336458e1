package pgdb

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

func lines(n int, f func(i int) string) []byte {
	var b bytes.Buffer
	for i := range n {
		b.WriteString(f(i))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func roundTrip(t *testing.T, prev, cur []byte) (deltaStats, int) {
	t.Helper()
	var d bytes.Buffer
	st, err := encodeDelta(bytes.NewReader(prev), bytes.NewReader(cur), &d)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var out bytes.Buffer
	if err := applyDelta(bytes.NewReader(prev), bytes.NewReader(d.Bytes()), &out); err != nil {
		t.Fatalf("apply: %v\ndelta:\n%s", err, d.String())
	}
	if !bytes.Equal(out.Bytes(), cur) {
		t.Fatalf("delta does not rebuild the stream:\nprev %q\ncur  %q\ngot  %q\ndelta %q", prev, cur, out.Bytes(), d.String())
	}
	return st, d.Len()
}

func TestDeltaCases(t *testing.T) {
	row := func(i int) string { return fmt.Sprintf("%d\tcustomer %d\t%s", i, i, strings.Repeat("x", i%40)) }
	base := lines(5000, row)
	for _, tc := range []struct {
		name string
		cur  []byte
		max  int // delta bytes at most
	}{
		{"same", base, 20},
		{"empty to rows", base, 0},
		{"rows to empty", nil, 20},
		{"one changed", lines(5000, func(i int) string {
			if i == 2500 {
				return "changed"
			}
			return row(i)
		}), 60},
		{"appended", lines(5100, row), 100 * 60},
		{"prepended", append([]byte("new first\n"), base...), 60},
		{"deleted range", append(append([]byte{}, base[:len(lines(1000, row))]...), lines(5000, row)[len(lines(1200, row)):]...), 60},
		{"1% uniform", lines(5000, func(i int) string {
			if i%100 == 37 {
				return row(i) + " updated"
			}
			return row(i)
		}), 50 * 120},
		{"repeated rows", lines(3000, func(i int) string { return fmt.Sprint(i % 3) }), 0},
		{"block of 3000 deleted", lines(5000, func(i int) string {
			if i < 2000 {
				return row(i)
			}
			return row(i + 3000)
		})[:len(lines(2000, row))], 60},
		{"first 3000 deleted", []byte(strings.Join(strings.Split(string(base), "\n")[3000:], "\n")), 60},
		{"4000 inserted in the middle", []byte(strings.Join(strings.Split(string(base), "\n")[:2500], "\n") + "\n" +
			string(lines(4000, func(i int) string { return "new " + fmt.Sprint(i) })) + strings.Join(strings.Split(string(base), "\n")[2500:], "\n")), 4000*12 + 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := base
			if tc.name == "empty to rows" {
				prev = nil
			}
			st, n := roundTrip(t, prev, tc.cur)
			if tc.max > 0 && n > tc.max {
				t.Errorf("delta of %d bytes (%+v), want at most %d", n, st, tc.max)
			}
		})
	}
}

// Random edits of random streams (with many repeated lines) always
// round-trip.
func TestDeltaRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		n := r.IntN(400)
		alphabet := 1 + r.IntN(50)
		var prev []string
		for range n {
			prev = append(prev, fmt.Sprintf("r%d", r.IntN(alphabet)))
		}
		cur := append([]string(nil), prev...)
		for range r.IntN(20) {
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
		join := func(s []string) []byte {
			if len(s) == 0 {
				return nil
			}
			return []byte(strings.Join(s, "\n") + "\n")
		}
		roundTrip(t, join(prev), join(cur))
	}
}

// A delta that does not fit the stream it is applied to is an error, never
// a wrong stream.
func TestApplyDeltaRejects(t *testing.T) {
	prev := []byte("a\nb\nc\n")
	for _, d := range []string{"C 4\n", "C 2\n", "S 3\nI 1 2\nx", "I 2 4\nx\ny", "I 1 2\nxy", "X 1\n", "C -1\n", "C 3\nI 2 3\nab\n", "C 1\nS"} {
		var out bytes.Buffer
		if err := applyDelta(bytes.NewReader(prev), strings.NewReader(d), &out); err == nil {
			t.Errorf("delta %q applied: %q", d, out.String())
		}
	}
	if _, err := encodeDelta(strings.NewReader("a\nb"), strings.NewReader("a\n"), &bytes.Buffer{}); err == nil {
		t.Error("a stream ending inside a line encoded")
	}
}

func FuzzDelta(f *testing.F) {
	f.Add([]byte("a\nb\nc\n"), []byte("a\nc\nd\n"))
	f.Add([]byte(""), []byte("x\n"))
	f.Fuzz(func(t *testing.T, prev, cur []byte) {
		for _, b := range [][]byte{prev, cur} {
			if len(b) > 0 && b[len(b)-1] != '\n' {
				return
			}
		}
		roundTrip(t, prev, cur)
	})
}

func FuzzApplyDelta(f *testing.F) {
	f.Add([]byte("a\nb\n"), []byte("C 1\nI 1 2\nx\nS 1\n"))
	f.Fuzz(func(t *testing.T, prev, d []byte) {
		var out bytes.Buffer
		_ = applyDelta(bytes.NewReader(prev), bytes.NewReader(d), &out)
	})
}

// BenchmarkApplyDelta applies a delta changing 1% of 200,000 rows of
// about 100 bytes (go test -run '^$' -bench ApplyDelta ./internal/resource/pgdb/).
func BenchmarkApplyDelta(b *testing.B) {
	var prev, cur bytes.Buffer
	for i := range 200000 {
		row := fmt.Sprintf("%d\tcustomer %d\t%s\n", i, i%977, strings.Repeat("x", 80))
		prev.WriteString(row)
		if i%100 == 42 {
			row = fmt.Sprintf("%d\tchanged %d\t%s\n", i, i%977, strings.Repeat("y", 80))
		}
		cur.WriteString(row)
	}
	var delta bytes.Buffer
	if _, err := encodeDelta(bytes.NewReader(prev.Bytes()), bytes.NewReader(cur.Bytes()), &delta); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(cur.Len()))
	b.ResetTimer()
	for range b.N {
		if err := applyDelta(bytes.NewReader(prev.Bytes()), bytes.NewReader(delta.Bytes()), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
