package pgdb

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"coffer/internal/testutil/pgtest"
)

// TestHashFunctionsMatchServer checks the client's PostgreSQL hash
// functions against the server's, for every length around the 12-byte
// blocks, bytes of every value and seeds zero and non-zero.
func TestHashFunctionsMatchServer(t *testing.T) {
	s := pgtest.Shared(t)
	c := s.Connect(t, "postgres")
	ctx := context.Background()
	var inputs []string
	for n := range 40 {
		var b strings.Builder
		for i := range n {
			b.WriteByte(byte('a' + (i*7+n)%26))
		}
		inputs = append(inputs, b.String())
	}
	inputs = append(inputs, "ünïcødé ✓ 漢字 😀", "(1,\"x \"\"y\"\"\",)", strings.Repeat("\x7f~ ", 50))
	for _, in := range inputs {
		for _, seed := range []int64{0, 1, -7, 1 << 40} {
			var want int64
			if err := c.QueryRow(ctx, "SELECT hashtextextended($1, $2)", in, seed).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if got := int64(hashBytesExtended([]byte(in), uint64(seed))); got != want {
				t.Fatalf("hashtextextended(%q, %d) = %d, server %d", in, seed, got, want)
			}
		}
	}
	for _, v := range []int64{0, 1, -1, 42, -42, 1 << 33, -(1 << 33), 9223372036854775807, -9223372036854775808} {
		var want int64
		if err := c.QueryRow(ctx, "SELECT hashint8extended($1, 1)", v).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := hashInt8Extended(v, 1); got != want {
			t.Fatalf("hashint8extended(%d, 1) = %d, server %d", v, got, want)
		}
	}
}

// TestTextChecksumMatchesServer computes the text checksum of tables'
// COPY streams, written in pieces of every size, and compares it with the
// server's checksumSQL(ChecksumText): NULLs, empty strings, escapes,
// quotes, arrays, composites, ranges, jsonb, bytea, non-ASCII text.
func TestTextChecksumMatchesServer(t *testing.T) {
	s := pgtest.Shared(t)
	db := "textsum"
	s.CreateDB(t, db)
	s.Exec(t, db, `CREATE TYPE pair AS (a int, b text);
		CREATE TABLE t (id int, s text, n numeric, a text[], p pair, j jsonb, b bytea, r int4range, ts timestamptz, f float8, iv interval);
		INSERT INTO t VALUES (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
			(2, '', 0, '{}', ROW(NULL, ''), '{}', '', 'empty', '2020-01-01 00:00+00', 'NaN', '1 day'),
			(3, E'tab\there\nnew\\line "q" (p), c', -1.5, ARRAY['x"y,z', NULL, 'a b'], ROW(3, 'p q'), '{"a": [1, "b\"c"]}', '\x00ff5c', '[1,5)', '-infinity', '-0', '-1 year 2 mons'),
			(4, 'ünïcødé ✓ 漢字', 1e100, ARRAY['\\'], ROW(-4, E'\\'), '"s"', '\x', '(,)', 'infinity', 1.0/3, '00:00:01.5'),
			(5, E'\r\f\v\b' || chr(1) || chr(127), 12345678901234567890, '{{1,2},{3,4}}', NULL, 'null', NULL, NULL, NULL, 'Infinity', NULL);
		INSERT INTO t SELECT i, repeat(chr(32 + i % 90), i % 40), i, ARRAY[i::text], ROW(i, i::text)::pair, jsonb_build_object('i', i), decode(md5(i::text), 'hex'), int4range(i, i + 1), now(), i / 7.0, i * interval '1 second'
			FROM generate_series(6, 3000) i;
		CREATE TABLE one (x text); INSERT INTO one VALUES ('a'), (NULL), ('');
		CREATE TABLE nocols (); INSERT INTO nocols DEFAULT VALUES; INSERT INTO nocols DEFAULT VALUES;
		CREATE TABLE none (x int);`)
	c, err := (&Server{ID: "pg", Host: s.Host, Port: s.Port, User: pgtest.Superuser, Password: pgtest.Password, SSLMode: "disable"}).connect(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx := context.Background()
	for _, tab := range []string{"t", "one", "nocols", "none"} {
		tb := &Table{Schema: "public", Name: tab}
		var rows int64
		var want string
		if err := c.QueryRow(ctx, checksumSQL(tb, ChecksumText)).Scan(&rows, &want); err != nil {
			t.Fatal(err)
		}
		var buf strings.Builder
		if _, err := c.PgConn().CopyTo(ctx, &buf, copyOutSQL(tb)); err != nil {
			t.Fatal(err)
		}
		stream := buf.String()
		for _, piece := range []int{1, 2, 7, 4096, len(stream) + 1} {
			sum := textChecksum{noCols: tab == "nocols"}
			for rest := stream; len(rest) > 0; {
				n := min(piece, len(rest))
				_, _ = sum.Write([]byte(rest[:n]))
				rest = rest[n:]
			}
			if sum.Bad() || sum.Rows() != rows || sum.Sum() != want {
				t.Fatalf("%s in pieces of %d: %d rows, checksum %s (bad %v); server: %d rows, %s", tab, piece, sum.Rows(), sum.Sum(), sum.Bad(), rows, want)
			}
		}
	}
}

// A stream whose checksum is not the server's is not marked checked (its
// restore reads the table again); a stream that gives it is.
func TestCheckStream(t *testing.T) {
	d := &dumper{p: &Plugin{}, streamCheck: true}
	var ref textChecksum
	_, _ = ref.Write([]byte("1\ta\n2\t\\N\n"))
	for _, tc := range []struct {
		stream string
		want   string
	}{
		{"1\ta\n2\t\\N\n", StreamCheckV1},
		{"1\ta\n2\t\n", ""},
		{"1\ta\n", ""},
		{"1\ta\n2\t\\N", ""},
	} {
		tb := &Table{Schema: "s", Name: "t", Columns: []string{"id", "v"}, streamCheckable: true, ChecksumMethod: ChecksumText, Rows: ref.Rows(), Checksum: ref.Sum()}
		w := d.textSum(tb)
		_, _ = w.Write([]byte(tc.stream))
		d.checkStream(tb, w)
		if tb.StreamCheck != tc.want {
			t.Errorf("stream %q: check %q, want %q", tc.stream, tb.StreamCheck, tc.want)
		}
	}
}

// BenchmarkTextChecksum checksums COPY text rows like the benchmark's
// orders (go test -run '^$' -bench TextChecksum ./internal/resource/pgdb).
func BenchmarkTextChecksum(b *testing.B) {
	var s strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&s, "%d\t%d\t2024-01-%02d 10:11:12.123456+00\tshipped\t%d.%02d\t%s\n", i, i*7, 1+i%28, i%1000, i%100, strings.Repeat("note text ", i%5))
	}
	stream := []byte(s.String())
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		var sum textChecksum
		for p := stream; len(p) > 0; {
			n := min(len(p), 65536)
			_, _ = sum.Write(p[:n])
			p = p[n:]
		}
	}
}

// FuzzTextChecksum: any bytes are taken without a panic, and the checksum
// does not depend on how the stream is cut into writes.
func FuzzTextChecksum(f *testing.F) {
	f.Add([]byte("1\ta b\t\\N\n2\t\\\\x\\101\\x4g\t\"q\"\n"), 3)
	f.Add([]byte("\n\n"), 1)
	f.Fuzz(func(t *testing.T, stream []byte, piece int) {
		piece = 1 + int(uint(piece)%17)
		var whole, cut textChecksum
		_, _ = whole.Write(stream)
		for p := stream; len(p) > 0; {
			n := min(piece, len(p))
			_, _ = cut.Write(p[:n])
			p = p[n:]
		}
		if whole.Rows() != cut.Rows() || whole.Sum() != cut.Sum() || whole.Bad() != cut.Bad() {
			t.Fatalf("in one write: %d rows %s; in pieces of %d: %d rows %s", whole.Rows(), whole.Sum(), piece, cut.Rows(), cut.Sum())
		}
	})
}
