package s3bucket

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"coffer/internal/backup"
	"coffer/internal/resource"
)

// Plugin is the S3 bucket resource plugin.
type Plugin struct {
	// Endpoints are the configured S3 servers (config s3_endpoints).
	Endpoints []Endpoint
	// StateDir holds the journals of running restores (created buckets,
	// objects written, multipart uploads begun), which CleanStaging reads
	// after a crash. "" keeps journals in memory only (tests).
	StateDir string
	// Workers is how many objects are in flight at once (0: 16).
	Workers int
	// PartSize is the multipart part size of restores; objects larger
	// than it are uploaded in parts (0: 16 MiB; at least 5 MiB).
	PartSize int64
	// MaxBufferBytes bounds the object bytes a restore holds in memory at
	// once (0: 32 MiB, at least PartSize).
	MaxBufferBytes int64
	// MaxAttempts is the tries per S3 request (0: 5); MaxBackoff caps the
	// wait between tries (0: 10s).
	MaxAttempts int
	MaxBackoff  time.Duration
	// HTTPClient replaces the SDK's HTTP client (tests).
	HTTPClient *http.Client
	// Log, when set, receives one line per restore written.
	Log *slog.Logger

	mu      sync.Mutex
	clients map[string]*client
}

var (
	_ resource.Plugin         = (*Plugin)(nil)
	_ resource.StagingCleaner = (*Plugin)(nil)
)

// Defaults.
const (
	defaultWorkers   = 16
	defaultPartSize  = 16 << 20
	minPartSize      = 5 << 20
	defaultBuffer    = 32 << 20
	defaultAttempts  = 5
	defaultBackoff   = 10 * time.Second
	maxSinglePutSize = 5 << 30 // S3's PutObject limit
)

func (p *Plugin) workers() int {
	if p.Workers > 0 {
		return p.Workers
	}
	return defaultWorkers
}

func (p *Plugin) partSize() int64 {
	switch {
	case p.PartSize == 0:
		return defaultPartSize
	case p.PartSize < minPartSize:
		return minPartSize
	}
	return p.PartSize
}

func (p *Plugin) bufferBytes() int64 {
	b := p.MaxBufferBytes
	if b == 0 {
		b = defaultBuffer
	}
	return max(b, p.partSize())
}

// client returns the client of endpoint id.
func (p *Plugin) client(id string) (*client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[id]; ok {
		return c, nil
	}
	for i := range p.Endpoints {
		if ep := &p.Endpoints[i]; ep.ID == id {
			attempts, backoff := p.MaxAttempts, p.MaxBackoff
			if attempts <= 0 {
				attempts = defaultAttempts
			}
			if backoff <= 0 {
				backoff = defaultBackoff
			}
			c := newClient(ep, attempts, backoff, p.HTTPClient)
			if p.clients == nil {
				p.clients = map[string]*client{}
			}
			p.clients[id] = c
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: s3 endpoint %q is not configured (s3_endpoints)", resource.ErrInvalid, id)
}

// Type returns S3.
func (p *Plugin) Type() string { return ResourceType }

// ParseARN parses a bucket ARN (no region or account).
func (p *Plugin) ParseARN(arn string) (resource.Ref, bool) {
	name, ok := ParseARN(arn)
	return resource.Ref{ID: name}, ok
}

// ARN formats a bucket ARN.
func (p *Plugin) ARN(_, _, id string) string { return ARN(id) }

// Backup options (AWS spells them with and without the S3 prefix).
const (
	OptBackupACLs       = "BackupACLs"
	OptBackupObjectTags = "BackupObjectTags"
)

type backupOptions struct {
	acls, tags bool
}

func parseBackupOptions(opts map[string]string) (backupOptions, error) {
	o := backupOptions{acls: true, tags: true}
	seen := map[string]string{}
	for k, v := range opts {
		canon := strings.TrimPrefix(k, "S3")
		var dst *bool
		switch canon {
		case OptBackupACLs:
			dst = &o.acls
		case OptBackupObjectTags:
			dst = &o.tags
		default:
			return o, backup.InvalidParam("BackupOptions", "Backup option %q is not supported for resource type S3 (allowed: %s, %s)",
				backup.Truncate(k, 50), OptBackupACLs, OptBackupObjectTags)
		}
		if prev, dup := seen[canon]; dup {
			return o, backup.InvalidParam("BackupOptions", "Backup options %q and %q are the same option", prev, k)
		}
		seen[canon] = k
		switch strings.ToLower(v) {
		case "enabled":
			*dst = true
		case "disabled":
			*dst = false
		default:
			return o, backup.InvalidParam("BackupOptions", "Backup option %s must be \"enabled\" or \"disabled\", got %q", k, backup.Truncate(v, 50))
		}
	}
	return o, nil
}

// CheckBackupOptions accepts BackupACLs and BackupObjectTags (also with an
// S3 prefix), "enabled" or "disabled".
func (p *Plugin) CheckBackupOptions(opts map[string]string) error {
	_, err := parseBackupOptions(opts)
	return err
}

// Capabilities: new and existing buckets, a key prefix, items (object keys
// and key prefixes), Include/Exclude globs over keys and every conflict
// policy.
func (p *Plugin) Capabilities() resource.Capabilities {
	return resource.Capabilities{NewTarget: true, ExistingTarget: true, TargetPath: true, Items: true, Patterns: true,
		ConflictPolicies: backup.ConflictPolicies, ItemNoun: "object"}
}
