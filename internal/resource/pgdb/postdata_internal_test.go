package pgdb

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitTOC(t *testing.T) {
	tables := []Table{
		{Schema: "app", Name: "orders", Indexes: []string{"orders_customer", "orders_pkey"}, Constraints: []string{"orders_pkey"}},
		{Schema: "Mixed Case", Name: `Tab/le.1 "q"`, Indexes: []string{`Tab/le.1 "q"_pkey`}, Constraints: []string{`Tab/le.1 "q"_pkey`}},
		{Schema: "app", Name: "order", Indexes: []string{"orders"}},
	}
	lines := []string{
		";",
		"; Archive created at 2026-12-07 08:00:00 UTC",
		"",
		"3301; 2606 16500 CONSTRAINT app orders orders_pkey coffer",
		"3302; 1259 16510 INDEX app orders_customer coffer",
		`3303; 2606 16520 CONSTRAINT Mixed Case Tab/le.1 "q" Tab/le.1 "q"_pkey -`,
		"3304; 2606 16530 FK CONSTRAINT app orders orders_customer_id_fkey coffer",
		"3305; 2620 16540 TRIGGER app orders orders_audit coffer",
		"3306; 1259 16550 INDEX app orders coffer",
		"3307; 1259 16560 INDEX app unknown_idx coffer",
		"3308; 0 0 COMMENT app INDEX orders_customer coffer",
		"3309; 1259 16510 INDEX app orders_customer coffer", // a second entry of one name stays for the end
		"garbage without separator",
	}
	per, rest := splitTOC(lines, tables)
	wantPer := map[int][]string{
		0: {lines[3], lines[4]},
		1: {lines[5]},
		2: {lines[8]},
	}
	wantRest := []string{lines[6], lines[7], lines[9], lines[10], lines[11], lines[12]}
	if !reflect.DeepEqual(per, wantPer) {
		t.Errorf("per table:\n got %v\nwant %v", per, wantPer)
	}
	if !reflect.DeepEqual(rest, wantRest) {
		t.Errorf("rest:\n got %q\nwant %q", rest, wantRest)
	}
}

func TestSessionScript(t *testing.T) {
	const body = `--
-- PostgreSQL database dump
--

BEGIN;

SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.t
    ADD CONSTRAINT t_pkey PRIMARY KEY (id);

CREATE INDEX "i\x" ON public.t USING btree (((v || '
 \unrestrict other'::text)));

COMMIT;
`
	framed := "\\restrict K3y\n\n" + body + "\n\\unrestrict K3y\n"
	for name, tc := range map[string]struct {
		in       string
		want     string
		runnable bool
	}{
		// pg_restore 13.22, 14.19, 15.14, 16.10, 17.6 and later frame
		// their scripts with \restrict and \unrestrict; earlier ones not.
		"framed": {in: framed, want: "\n" + body + "\n", runnable: true},
		// A line of a string literal that starts with a backslash: psql
		// would not take it for a meta-command, but pg_restore runs it.
		"literal":  {in: strings.Replace(framed, " \\unrestrict other", "\\unrestrict other", 1)},
		"unframed": {in: body, want: body, runnable: true},
		"latin1":   {in: strings.Replace(framed, "'UTF8'", "'LATIN1'", 1)},
		// Only the first client_encoding counts (the header's).
		"latin1-literal": {in: strings.Replace(strings.Replace(framed, "'UTF8'", "'LATIN1'", 1), "COMMIT;", "SET client_encoding = 'UTF8';\nCOMMIT;", 1)},
		"no-encode":      {in: strings.Replace(framed, "SET client_encoding = 'UTF8';\n", "", 1)},
		"connect":        {in: strings.Replace(framed, "BEGIN;", "\\connect other\nBEGIN;", 1)},
		"2nd-key":        {in: strings.Replace(framed, "BEGIN;", "\\restrict K3y\nBEGIN;", 1)},
	} {
		got, ok := sessionScript(tc.in)
		if ok != tc.runnable || got != tc.want {
			t.Errorf("%s: sessionScript = %q, %v; want %q, %v", name, got, ok, tc.want, tc.runnable)
		}
	}
}
