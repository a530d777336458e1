package backupjob

import "testing"

// runnerProgress is a runner's Progress that takes a running status.
type runnerProgress struct{ status []string }

func (*runnerProgress) Update(int64, int64)    {}
func (p *runnerProgress) SetStatus(msg string) { p.status = append(p.status, msg) }

// A plugin's running status reaches the runner through the adapter.
func TestProgressPassesStatus(t *testing.T) {
	rp := &runnerProgress{}
	var pr any = progress{p: rp}
	sr, ok := pr.(interface{ SetStatus(string) })
	if !ok {
		t.Fatal("the backup progress adapter takes no running status")
	}
	sr.SetStatus("3 of 7 tables backed up")
	if len(rp.status) != 1 || rp.status[0] != "3 of 7 tables backed up" {
		t.Fatalf("runner got %q", rp.status)
	}
	// A runner without statuses: nothing happens.
	progress{p: nopProgress{}}.SetStatus("x")
}

type nopProgress struct{}

func (nopProgress) Update(int64, int64) {}
