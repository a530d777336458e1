package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"coffer/internal/testutil"
)

func TestParseVmHWM(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr string
	}{
		{"real", "Name:\tcoffer\nVmPeak:\t 1300000 kB\nVmSize:\t 1200000 kB\nVmHWM:\t  137728 kB\nVmRSS:\t   90000 kB\n", 137728 << 10, ""},
		{"first line", "VmHWM: 4 kB\n", 4096, ""},
		{"no trailing newline", "Name:\tx\nVmHWM:\t0 kB", 0, ""},
		{"missing", "Name:\tx\nVmRSS:\t5 kB\n", 0, "no VmHWM line"},
		{"kernel thread", "Name:\tkthreadd\nState:\tS (sleeping)\n", 0, "no VmHWM line"},
		{"other unit", "VmHWM:\t5 MB\n", 0, "malformed"},
		{"no unit", "VmHWM:\t5\n", 0, "malformed"},
		{"not a number", "VmHWM:\tlots kB\n", 0, "malformed"},
		{"negative", "VmHWM:\t-5 kB\n", 0, "malformed"},
	}
	for _, tc := range tests {
		got, err := parseVmHWM(tc.status)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: got %d, %v; want error %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty_nr tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime ...
	tail := " S 1 1234 1234 0 -1 4194560 2500 0 3 0 1742 388 7 9 20 0 12 0 5000 1300000000 34000"
	tests := []struct {
		name    string
		stat    string
		want    procCPU
		wantErr string
	}{
		{"plain", "1234 (coffer)" + tail, procCPU{utime: 1742, stime: 388}, ""},
		{"space in name", "1234 (my server)" + tail, procCPU{utime: 1742, stime: 388}, ""},
		{"parens in name", "1234 (a) b (c))" + tail, procCPU{utime: 1742, stime: 388}, ""},
		{"newline at end", "1234 (coffer)" + tail + "\n", procCPU{utime: 1742, stime: 388}, ""},
		{"zero", "7 (x) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0", procCPU{}, ""},
		{"no name", "1234 coffer S 1 2 3", procCPU{}, "no command name"},
		{"short", "1234 (coffer) S 1 1234 1234 0 -1 4194560 2500 0 3 0 1742", procCPU{}, "want at least 13"},
		{"bad utime", "1234 (coffer) S 1 1234 1234 0 -1 4194560 2500 0 3 0 x 388", procCPU{}, "malformed"},
		{"negative stime", "1234 (coffer) S 1 1234 1234 0 -1 4194560 2500 0 3 0 1 -3", procCPU{}, "malformed"},
	}
	for _, tc := range tests {
		got, err := parseProcStat(tc.stat)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: got %+v, %v; want error %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
	if d := ticks(1742); d != 17420*time.Millisecond {
		t.Errorf("ticks(1742) = %s", d)
	}
}

// The parsers agree with the running kernel, and clear_refs works on a
// process of ours (the test process itself; other tests run meanwhile, so
// the peak after the reset is not compared with the one before).
func TestProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	hwm, err := readVmHWM(pid)
	if err != nil || hwm <= 0 {
		t.Fatalf("VmHWM %d, %v", hwm, err)
	}
	if err := resetPeakRSS(pid); err != nil {
		t.Fatal(err)
	}
	after, err := readVmHWM(pid)
	if err != nil || after <= 0 {
		t.Fatalf("VmHWM after reset %d, %v", after, err)
	}
	if _, err := readProcStat(pid); err != nil {
		t.Fatal(err)
	}
}

func TestCofferAPIToolWithoutServer(t *testing.T) {
	if _, err := NewTool("coffer-api", ToolOptions{}); err == nil || !strings.Contains(err.Error(), "no coffer executable") {
		t.Fatalf("NewTool without binary: %v", err)
	}
	tool, err := NewTool("coffer-api", ToolOptions{CofferServerBin: "/nonexistent/coffer"})
	if err != nil {
		t.Fatal(err)
	}
	if err := tool.Close(); err != nil {
		t.Errorf("Close before Init: %v", err)
	}
	if _, err := tool.Backup(t.Context(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "Init was not called") {
		t.Errorf("Backup before Init: %v", err)
	}
	if err := tool.Init(t.Context(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "start server") {
		t.Errorf("Init with a missing binary: %v", err)
	}
	if err := tool.Close(); err != nil {
		t.Errorf("Close after a failed Init: %v", err)
	}
}

// TestCofferAPIToolUnregisteredSource drives the tool without
// ToolOptions.Source: the first Backup restarts the server with the tree
// registered, the second reuses it, and the restore gives the tree back.
func TestCofferAPIToolUnregisteredSource(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs coffer serve; skipped with -short")
	}
	testutil.RequireTool(t, "go")
	root, err := FindModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "coffer")
	if err := BuildCofferServer(t.Context(), root, bin); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	for p, data := range map[string]string{"a.txt": "alpha\n", "sub/b.bin": strings.Repeat("b", 70000), "sub/deeper/c": ""} {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	tool, err := NewTool("coffer-api", ToolOptions{CofferServerBin: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	work := t.TempDir()
	dir := filepath.Join(work, "tool")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tool.Init(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	api := tool.(*cofferAPITool)
	first := api.srv.cmd.Process.Pid
	for i := range 2 {
		s, err := tool.Backup(t.Context(), src)
		if err != nil {
			t.Fatalf("backup %d: %v", i+1, err)
		}
		if s.Wall <= 0 || s.MaxRSS <= 0 || s.Floored() {
			t.Errorf("backup %d sample %+v", i+1, s)
		}
	}
	pid := api.srv.cmd.Process.Pid
	if pid == first {
		t.Error("the server was not restarted for the unregistered tree")
	}
	if n, err := TreeSize(tool.RepoDir()); err != nil || n == 0 {
		t.Errorf("repository %s: %d bytes, %v", tool.RepoDir(), n, err)
	}
	dst := filepath.Join(work, "restored")
	if _, err := tool.Restore(t.Context(), dst); err != nil {
		t.Fatal(err)
	}
	want, err := ScanTree(t.Context(), src, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ScanTree(t.Context(), dst, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(want, got); !d.OK() {
		t.Errorf("restore: %s %v", d.Summary(), d.Examples)
	}
	// A job that fails is an error naming its state and status message.
	if _, err := tool.Backup(t.Context(), filepath.Join(work, "missing")); err == nil || !strings.Contains(err.Error(), "FAILED: ") {
		t.Errorf("backup of a missing tree: %v", err)
	} else {
		t.Log(err)
	}
	pid = api.srv.cmd.Process.Pid
	if err := tool.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("server %d after Close: %v", pid, err)
	}
}
