package s3bucket

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// A restore keeps a journal of what it changed on the S3 server, so that a
// restore that fails, is cancelled, or dies with its process can be undone
// (by itself, or by CleanStaging after a restart): the bucket it created,
// the objects it created in an existing bucket, the multipart uploads it
// began. The journal of job J is StateDir/J.journal, one JSON record per
// line; it is removed when the restore finishes or has been undone.
// Every record is written (one write call) before the change it
// describes is made, so a killed process leaves a journal that covers all
// its changes; records that must also survive a machine crash are synced
// (start, bucket creation, multipart upload). An object record carries the
// ETag the object will have (the MD5 of a single PUT) or has (after a
// multipart upload): an undo deletes only an object that still has it.

// journalEntry is one line of a journal.
type journalEntry struct {
	Op       string    `json:"op"` // start, bucket-created, put, mpu
	Job      string    `json:"job,omitempty"`
	Endpoint string    `json:"endpoint,omitempty"`
	Bucket   string    `json:"bucket,omitempty"`
	New      bool      `json:"new,omitempty"`
	Key      string    `json:"key,omitempty"`
	ETag     string    `json:"etag,omitempty"`
	Time     time.Time `json:"time,omitempty"`
}

const (
	opStart         = "start"
	opBucketCreated = "bucket-created"
	opPut           = "put"
	opMPU           = "mpu"
	journalSuffix   = ".journal"
)

// journal records one restore. Without a directory it keeps the records in
// memory (the restore can still undo itself, but not after a crash).
type journal struct {
	mu   sync.Mutex
	path string
	f    *os.File
	mem  []journalEntry
}

func openJournal(dir, jobID string, start journalEntry) (*journal, error) {
	j := &journal{}
	if dir != "" {
		if strings.ContainsAny(jobID, "/\\") || jobID == "" || strings.HasPrefix(jobID, ".") {
			return nil, fmt.Errorf("s3bucket: job id %q cannot name a journal", jobID)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("s3bucket: restore journal: %w", err)
		}
		j.path = filepath.Join(dir, jobID+journalSuffix)
		f, err := os.OpenFile(j.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("s3bucket: restore journal: %w", err)
		}
		j.f = f
	}
	if err := j.append(start, true); err != nil {
		j.remove()
		return nil, err
	}
	return j, nil
}

// append adds e; sync makes it durable before returning.
func (j *journal) append(e journalEntry, sync bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		j.mem = append(j.mem, e)
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("s3bucket: restore journal: %w", err)
	}
	if sync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("s3bucket: restore journal: %w", err)
		}
	}
	return nil
}

// entries are the records so far.
func (j *journal) entries() ([]journalEntry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return append([]journalEntry(nil), j.mem...), nil
	}
	return readJournal(j.path)
}

// remove deletes the journal: the restore is finished or undone.
func (j *journal) remove() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		_ = j.f.Close()
		_ = os.Remove(j.path)
		j.f = nil
	}
	j.mem = nil
}

// readJournal parses a journal file; a torn last line (a crash mid-write)
// is ignored.
func readJournal(path string) ([]journalEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []journalEntry
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if l == "" {
			continue
		}
		var e journalEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			if i == len(lines)-1 {
				break
			}
			return nil, fmt.Errorf("s3bucket: journal %s line %d: %w", filepath.Base(path), i+1, err)
		}
		out = append(out, e)
	}
	if len(out) == 0 || out[0].Op != opStart {
		return nil, errors.New("s3bucket: journal " + filepath.Base(path) + " has no start record")
	}
	return out, nil
}
