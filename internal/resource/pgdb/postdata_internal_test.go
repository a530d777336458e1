package pgdb

import (
	"reflect"
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
