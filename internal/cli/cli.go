// Package cli is the `coffer` command-line client: it speaks the AWS Backup
// API of a Coffer server (the same HTTP API the AWS CLI and SDKs use) and
// shows the progress of backup, restore and copy jobs.
package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/backup"
	"github.com/aws/smithy-go"
	"gopkg.in/yaml.v3"

	"coffer/internal/clock"
	"coffer/internal/config"
)

// Exit codes.
const (
	ExitOK        = 0 // success
	ExitJobFailed = 1 // a waited-for job ended in a state other than COMPLETED
	ExitUsage     = 2 // usage or API error
)

// DefaultEndpoint is the endpoint used when neither --endpoint-url nor
// AWS_ENDPOINT_URL_BACKUP/AWS_ENDPOINT_URL is set (the server's default).
const DefaultEndpoint = "http://" + config.DefaultListen

// maxCredentialsBytes caps the credentials file read.
const maxCredentialsBytes = 64 << 10

// Usage is the client's usage text.
const Usage = `usage: coffer [global flags] COMMAND [flags]

Commands:
  vaults list
  vaults create NAME
  backup --vault V --resource ARN [--iam-role-arn ARN] [--wait]
  restore (--recovery-point ARN | --resource ARN --latest)
          (--new-file-system | --file-system-id fs-...)
          [--vault V] [--item PATH ...] [--include GLOB ...] [--exclude GLOB ...]
          [--target-path P [--conflict-policy SKIP_EXISTING|OVERWRITE_EXISTING|OVERWRITE_IF_NEWER]]
          [--iam-role-arn ARN] [--wait | --dry-run]
  ls RECOVERY_POINT_ARN [PATH] [--glob GLOB] [--vault V]
                      list a directory (key prefix) of a recovery point, or search it
  jobs list [--kind backup|restore|copy] [--state S]
  jobs describe ID
  jobs watch ID
  recovery-points list --vault V
  plans [list] [--deleted]   every rule of every backup plan with its next run

Global flags (also accepted after the command):
  --endpoint-url URL  server URL (default $AWS_ENDPOINT_URL_BACKUP, $AWS_ENDPOINT_URL or ` + DefaultEndpoint + `)
  --data-dir DIR      read credentials from DIR/credentials.yaml when AWS_ACCESS_KEY_ID is unset (default ` + config.DefaultDataDir + `)

Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the zero-config
credentials file. Region: AWS_DEFAULT_REGION, AWS_REGION or us-east-1.
HTTPS with a private CA: AWS_CA_BUNDLE=FILE (PEM; its certificates are the
trusted roots, as for the aws CLI).
Exit status: 0 success, 1 job failed, 2 usage or API error.`

// usageError is a command-line mistake; Run prints it with the usage text.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// jobFailedError reports a waited-for job that did not complete.
type jobFailedError struct{ state string }

func (e *jobFailedError) Error() string { return "job ended in state " + e.state }

// Sleeper waits d or until ctx ends.
type Sleeper func(ctx context.Context, d time.Duration) error

func realSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Options are the dependencies of a CLI invocation; zero values take the
// real implementations.
type Options struct {
	Clock clock.Clock
	Sleep Sleeper
	// TTY, when non-nil, overrides terminal detection of stdout.
	TTY *bool
	// PollInterval is the Describe polling period (default 1 s);
	// PlainInterval the period of non-terminal progress lines (default 5 s).
	PollInterval, PlainInterval time.Duration
}

// Run runs one client command. env looks up environment variables (pass
// os.Getenv). It returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string) int {
	return RunWith(ctx, args, stdout, stderr, env, Options{})
}

// RunWith is Run with explicit dependencies.
func RunWith(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) string, o Options) int {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Sleep == nil {
		o.Sleep = realSleep
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.PlainInterval <= 0 {
		o.PlainInterval = 5 * time.Second
	}
	if env == nil {
		env = func(string) string { return "" }
	}
	tty := isTerminal(stdout)
	if o.TTY != nil {
		tty = *o.TTY
	}
	c := &cmd{stdout: stdout, stderr: stderr, env: env, opts: o, tty: tty}
	err := c.dispatch(ctx, args)
	var ue *usageError
	var jf *jobFailedError
	var ae smithy.APIError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "coffer: %s\n%s\n", ue.msg, Usage)
		return ExitUsage
	case errors.As(err, &jf):
		return ExitJobFailed
	case errors.As(err, &ae):
		fmt.Fprintf(stderr, "coffer: %s: %s\n", ae.ErrorCode(), ae.ErrorMessage())
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "coffer: %v\n", err)
		return ExitUsage
	}
}

type cmd struct {
	stdout, stderr io.Writer
	env            func(string) string
	opts           Options
	tty            bool

	endpoint, dataDir string // global flags
	client            *backup.Client
	tr                *http.Transport
}

// flags returns a flag set for a subcommand with the global flags.
func (c *cmd) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.endpoint, "endpoint-url", c.endpoint, "server URL")
	fs.StringVar(&c.dataDir, "data-dir", c.dataDir, "data directory holding credentials.yaml")
	return fs
}

// parse parses args into fs and checks the number of positional arguments.
func parse(fs *flag.FlagSet, args []string, positional ...string) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, usagef("%s: help requested", fs.Name())
		}
		return nil, usagef("%s: %v", fs.Name(), err)
	}
	rest := fs.Args()
	if len(rest) != len(positional) {
		if len(rest) < len(positional) {
			return nil, usagef("%s: missing %s", fs.Name(), strings.Join(positional[len(rest):], " "))
		}
		return nil, usagef("%s: unexpected argument %q", fs.Name(), rest[len(positional)])
	}
	return rest, nil
}

func (c *cmd) dispatch(ctx context.Context, args []string) error {
	g := c.flags("coffer")
	if err := g.Parse(args); err != nil {
		return usagef("%v", err)
	}
	args = g.Args()
	if len(args) == 0 {
		return usagef("missing command")
	}
	sub := func(i int) string {
		if len(args) > i {
			return args[i]
		}
		return ""
	}
	switch args[0] {
	case "help":
		fmt.Fprintln(c.stdout, Usage)
		return nil
	case "vaults":
		switch sub(1) {
		case "list":
			return c.vaultsList(ctx, args[2:])
		case "create":
			return c.vaultsCreate(ctx, args[2:])
		}
		return usagef("vaults: want list or create, got %q", sub(1))
	case "backup":
		return c.backup(ctx, args[1:])
	case "restore":
		return c.restore(ctx, args[1:])
	case "jobs":
		switch sub(1) {
		case "list":
			return c.jobsList(ctx, args[2:])
		case "describe":
			return c.jobsDescribe(ctx, args[2:])
		case "watch":
			return c.jobsWatch(ctx, args[2:])
		}
		return usagef("jobs: want list, describe or watch, got %q", sub(1))
	case "ls":
		return c.ls(ctx, args[1:])
	case "plans":
		if sub(1) == "list" {
			return c.plansList(ctx, args[2:])
		}
		return c.plansList(ctx, args[1:])
	case "recovery-points":
		if sub(1) == "list" {
			return c.recoveryPointsList(ctx, args[2:])
		}
		return usagef("recovery-points: want list, got %q", sub(1))
	}
	return usagef("unknown command %q", args[0])
}

// Connection is the resolved server connection.
type Connection struct {
	Endpoint, Region                           string
	AccessKeyID, SecretAccessKey, SessionToken string
}

// ResolveConnection applies the flag > environment > default order.
// endpointFlag and dataDir are the flag values ("" when not given).
func ResolveConnection(endpointFlag, dataDir string, env func(string) string) (Connection, error) {
	var cn Connection
	cn.Endpoint = firstNonEmpty(endpointFlag, env("AWS_ENDPOINT_URL_BACKUP"), env("AWS_ENDPOINT_URL"), DefaultEndpoint)
	if !strings.HasPrefix(cn.Endpoint, "http://") && !strings.HasPrefix(cn.Endpoint, "https://") {
		return cn, usagef("endpoint %q: must start with http:// or https://", cn.Endpoint)
	}
	cn.Region = firstNonEmpty(env("AWS_DEFAULT_REGION"), env("AWS_REGION"), config.DefaultRegion)
	ak, sk := env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")
	switch {
	case ak != "" && sk != "":
		cn.AccessKeyID, cn.SecretAccessKey, cn.SessionToken = ak, sk, env("AWS_SESSION_TOKEN")
		return cn, nil
	case ak != "" || sk != "":
		return cn, usagef("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
	}
	if dataDir == "" {
		dataDir = config.DefaultDataDir
	}
	key, err := readCredentials(filepath.Join(dataDir, config.CredentialsFile))
	if err != nil {
		return cn, err
	}
	cn.AccessKeyID, cn.SecretAccessKey = key.AccessKeyID, key.SecretAccessKey
	return cn, nil
}

// readCredentials reads the zero-config credentials file written by
// config.Default.
func readCredentials(path string) (config.AccessKey, error) {
	var ak config.AccessKey
	f, err := os.Open(path)
	if err != nil {
		return ak, fmt.Errorf("no credentials: AWS_ACCESS_KEY_ID is unset and %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCredentialsBytes+1))
	if err != nil {
		return ak, fmt.Errorf("credentials %s: %w", path, err)
	}
	if len(b) > maxCredentialsBytes {
		return ak, fmt.Errorf("credentials %s: larger than %d bytes", path, maxCredentialsBytes)
	}
	ak, err = parseCredentials(b)
	if err != nil {
		return ak, fmt.Errorf("credentials %s: %w", path, err)
	}
	return ak, nil
}

func parseCredentials(b []byte) (config.AccessKey, error) {
	var ak config.AccessKey
	if len(b) > maxCredentialsBytes {
		return ak, fmt.Errorf("larger than %d bytes", maxCredentialsBytes)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&ak); err != nil {
		return ak, err
	}
	if ak.AccessKeyID == "" || ak.SecretAccessKey == "" {
		return ak, errors.New("access_key_id and secret_access_key must be set")
	}
	return ak, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// api returns the API client, creating it on first use.
func (c *cmd) api() (*backup.Client, error) {
	if c.client != nil {
		return c.client, nil
	}
	cn, err := ResolveConnection(c.endpoint, c.dataDir, c.env)
	if err != nil {
		return nil, err
	}
	tr, err := c.transport()
	if err != nil {
		return nil, err
	}
	c.client = backup.New(backup.Options{
		Region:       cn.Region,
		BaseEndpoint: aws.String(cn.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(cn.AccessKeyID, cn.SecretAccessKey, cn.SessionToken),
		HTTPClient:   &http.Client{Transport: tr},
	})
	return c.client, nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	if v == "" {
		return errors.New("empty value")
	}
	*s = append(*s, v)
	return nil
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// accountOfArn returns the account field of an ARN.
func accountOfArn(arn string) (string, error) {
	p := strings.SplitN(arn, ":", 6)
	if len(p) < 6 || p[0] != "arn" || !accountRE.MatchString(p[4]) {
		return "", usagef("%q is not an ARN with a 12-digit account", arn)
	}
	return p[4], nil
}
