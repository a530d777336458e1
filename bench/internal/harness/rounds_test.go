package harness

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeepRounds: rounds' files stay until the run ends while the file
// system has room for the remaining rounds; otherwise the rounds so far are
// deleted and the report says from which round on.
func TestKeepRounds(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name     string
		free     int64
		kept     bool
		wantNote string
	}{
		{"room", 100 << 30, true, ""},
		{"no room", 1 << 30, false, "from round 3 on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			for r := 0; r < 2; r++ {
				if err := os.MkdirAll(roundDir(work, r), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(roundDir(work, r), "f"), make([]byte, 1<<20), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			free := func(string) (int64, error) { return tc.free, nil }
			note := keepRounds(work, 1, 3, free, log)
			if tc.wantNote == "" && note != "" || !strings.Contains(note, tc.wantNote) {
				t.Errorf("note %q, want %q", note, tc.wantNote)
			}
			for r := 0; r < 2; r++ {
				_, err := os.Stat(roundDir(work, r))
				if kept := err == nil; kept != tc.kept {
					t.Errorf("round %d kept = %v, want %v (%v)", r+1, kept, tc.kept, err)
				}
			}
		})
	}
	// The real free space is positive.
	if n, err := freeSpace(t.TempDir()); err != nil || n <= 0 {
		t.Errorf("freeSpace = %d, %v", n, err)
	}
}
